#!/usr/bin/env bash
# Start-up of the API's clients, managed (framework-dependent apphost) against Native AOT, next to the reference CNI
# plugin: medians over N runs of
#   - Debian's containernetworking-plugins `bridge` answering VERSION (the yardstick: a small Go program);
#   - vswitch-cni VERSION; vsctl --help (no daemon);
#   - vsctl port ls, and a vswitch-cni ADD+DEL round trip in a throwaway namespace, against a vswitchd this script
#     starts on a temporary socket with no configuration (a network made through vsctl), stopped by its PID at the end;
#   - the API calls alone, as curl --unix-socket sends them (GET /v1/ports; POST /v1/attachments + DELETE), timed
#     by curl itself (time_total): the request and the daemon's work, without any program's start-up.
# The goal (the management-plane issue, item 11): ADD+DEL and `vsctl port ls`, native, each within
# 2 x (bridge VERSION + the API call alone).
#
#   bench/startup.sh [--runs N] [--rt] [--no-write]   (root: namespaces and TAP devices; N: 30 by default, 5..200)
#
# --rt runs everything (the daemon, the timed commands, curl) under SCHED_FIFO (chrt -f 10): on a machine shared
# with other builds, their load then adds no scheduling delays to one side or the other (the kernel still keeps
# 5% of each second for the others). Every figure of a run is taken the same way.
# Prints a table and writes it, with the date, the machine and the ratios, into bench/RESULTS.md (a section per
# mode, replaced on each run; --no-write leaves the file alone). Builds what is missing (the managed Release build, the
# native clients through tools/publish-native.sh). Only a temporary socket and one namespace (vsb-XXXXXX) are made,
# both removed on exit, as is the daemon.
set -euo pipefail
SELF=$(readlink -f "$0")
cd "$(dirname "$SELF")/.."
ROOT_DIR=$(pwd)
export LC_ALL=C

RUNS=30
WRITE=1
WARMUP=3
RT=0
ARGS=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
    --no-write) WRITE=0; shift ;;
    --rt) RT=1; shift ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "startup.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ $RUNS =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 5 ] && [ "$RUNS" -le 200 ] || { echo "startup.sh: --runs is 5..200" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "startup.sh: needs root (a network namespace and TAP devices for ADD+DEL)" >&2; exit 1; }
if [ "$RT" = 1 ] && [ -z "${VSB_UNDER_RT:-}" ]; then
  VSB_UNDER_RT=1 exec chrt -f 10 "$SELF" "${ARGS[@]}"
fi
MODE=normal
[ "$RT" = 1 ] && MODE="SCHED_FIFO"

say() { printf '==> %s\n' "$*" >&2; }

BRIDGE=/usr/lib/cni/bridge
if [ ! -x "$BRIDGE" ]; then
  say "installing containernetworking-plugins (the reference bridge plugin)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 containernetworking-plugins >/dev/null
fi
command -v curl >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl >/dev/null

MANAGED_VSCTL=$ROOT_DIR/tools/vsctl/bin/Release/net10.0/vsctl
MANAGED_CNI=$ROOT_DIR/tools/vswitch-cni/bin/Release/net10.0/vswitch-cni
VSWITCHD=$ROOT_DIR/vswitch/VSwitchd/bin/Release/net10.0/vswitchd
NATIVE=$ROOT_DIR/.artifacts/native
if [ ! -x "$MANAGED_VSCTL" ] || [ ! -x "$MANAGED_CNI" ] || [ ! -x "$VSWITCHD" ]; then
  say "building vswitchd, vsctl and vswitch-cni (Release)"
  for p in vswitch/VSwitchd tools/vsctl tools/vswitch-cni; do dotnet build "$p" -c Release -nologo -v quiet >/dev/null; done
fi
if [ ! -x "$NATIVE/vsctl" ] || [ ! -x "$NATIVE/vswitch-cni" ]; then
  tools/publish-native.sh "$NATIVE" >&2
fi

# ---- the daemon, the network, the namespace; all removed on exit ----
TMP=$(mktemp -d /tmp/vsb-XXXXXX)
NS=vsb-$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')
SOCK=$TMP/vswitchd.sock
DPID=
cleanup() {
  set +e
  if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
    kill -TERM "$DPID"
    for _ in $(seq 50); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$DPID" 2>/dev/null && kill -KILL "$DPID"
  fi
  ip netns del "$NS" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting vswitchd on $SOCK (no configuration)"
"$VSWITCHD" --socket "$SOCK" --state "$TMP/state.db" > "$TMP/vswitchd.log" 2>&1 &
DPID=$!
for _ in $(seq 300); do
  [ -S "$SOCK" ] && curl -s -o /dev/null --unix-socket "$SOCK" http://localhost/v1/show && break
  kill -0 "$DPID" 2>/dev/null || { cat "$TMP/vswitchd.log" >&2; exit 1; }
  sleep 0.1
done
"$NATIVE/vsctl" --socket "$SOCK" network add bench --subnet 10.213.0.0/24 >/dev/null
ip netns add "$NS"
# One attachment stays for the port listing (a table with a row), in the same namespace under eth9.
"$NATIVE/vsctl" --socket "$SOCK" attach "$NS" --network bench --ifname eth9 --container-id bench-keep >/dev/null

CONF=$TMP/conf.json
printf '{"cniVersion":"1.0.0","name":"bench","type":"vswitch-cni","network":"bench","socket":"%s"}' "$SOCK" > "$CONF"
printf '{"cniVersion":"1.0.0","name":"bench","type":"bridge","bridge":"vsb0"}' > "$TMP/bridge.json"

# ---- timing: wall time of each run from bash's own clock (no extra process), median over RUNS after WARMUP ----
declare -A MEDIAN
median_of() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2; printf "%.2f", m / 1000}'; }
usec() { local t=${1/./}; echo $((10#$t)); }
measure() { # KEY COMMAND...: median wall time in ms into MEDIAN[KEY]
  local key=$1; shift
  local i t0 t1 times=()
  for ((i = 0; i < WARMUP; i++)); do "$@" || { say "$key failed"; exit 1; }; done
  for ((i = 0; i < RUNS; i++)); do
    t0=$EPOCHREALTIME
    "$@" || { say "$key failed (run $i)"; exit 1; }
    t1=$EPOCHREALTIME
    times+=($(( $(usec "$t1") - $(usec "$t0") )))
  done
  MEDIAN[$key]=$(median_of "${times[@]}")
  say "$(printf '%-28s median %8s ms over %d runs' "$key" "${MEDIAN[$key]}" "$RUNS")"
}
measure_curl() { # KEY FUNCTION: the function prints curl time_total (seconds) per call; their sum per run, median
  local key=$1 fn=$2 i times=() s
  for ((i = 0; i < WARMUP; i++)); do "$fn" >/dev/null || { say "$key failed"; exit 1; }; done
  for ((i = 0; i < RUNS; i++)); do
    s=$("$fn" | awk '{t += $1} END {printf "%d", t * 1000000}') || { say "$key failed"; exit 1; }
    times+=("$s")
  done
  MEDIAN[$key]=$(median_of "${times[@]}")
  say "$(printf '%-28s median %8s ms over %d runs' "$key" "${MEDIAN[$key]}" "$RUNS")"
}

bridge_version() { CNI_COMMAND=VERSION "$BRIDGE" < "$TMP/bridge.json" > /dev/null; }
cni_version() { CNI_COMMAND=VERSION "$1" < "$CONF" > /dev/null; }
vsctl_help() { "$1" --help > /dev/null; }
vsctl_port_ls() { "$1" --socket "$SOCK" port ls > /dev/null; }
N=0
cni_add_del() {
  N=$((N + 1))
  CNI_COMMAND=ADD CNI_CONTAINERID=bench-$N CNI_NETNS=/run/netns/$NS CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni "$1" < "$CONF" > "$TMP/add.out" ||
    { cat "$TMP/add.out" >&2; return 1; }
  CNI_COMMAND=DEL CNI_CONTAINERID=bench-$N CNI_NETNS=/run/netns/$NS CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni "$1" < "$CONF" > "$TMP/del.out" ||
    { cat "$TMP/del.out" >&2; return 1; }
}
api_ports() { curl -sf -o /dev/null -w '%{time_total}\n' --unix-socket "$SOCK" http://localhost/v1/ports; }
api_add_del() {
  N=$((N + 1))
  curl -sf -o /dev/null -w '%{time_total}\n' --unix-socket "$SOCK" -H 'Content-Type: application/json' \
    -d "{\"network\":\"bench\",\"netns\":\"/run/netns/$NS\",\"containerId\":\"bench-$N\",\"ifname\":\"eth0\",\"source\":\"cni:bench\"}" \
    http://localhost/v1/attachments
  curl -sf -o /dev/null -w '%{time_total}\n' --unix-socket "$SOCK" -X DELETE \
    "http://localhost/v1/attachments?containerId=bench-$N&ifname=eth0"
}

say "timing: $WARMUP warm-up runs, then $RUNS"
measure bridge_version bridge_version
measure cni_version_managed cni_version "$MANAGED_CNI"
measure cni_version_native cni_version "$NATIVE/vswitch-cni"
measure help_managed vsctl_help "$MANAGED_VSCTL"
measure help_native vsctl_help "$NATIVE/vsctl"
measure_curl api_ports api_ports
measure port_ls_managed vsctl_port_ls "$MANAGED_VSCTL"
measure port_ls_native vsctl_port_ls "$NATIVE/vsctl"
measure_curl api_add_del api_add_del
measure add_del_managed cni_add_del "$MANAGED_CNI"
measure add_del_native cni_add_del "$NATIVE/vswitch-cni"

# ---- the table, the goal, RESULTS.md ----
m() { echo "${MEDIAN[$1]}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
B=$(m bridge_version)
GOAL_PORTS=$(awk -v b="$B" -v a="$(m api_ports)" 'BEGIN { printf "%.2f", 2 * (b + a) }')
GOAL_ADDDEL=$(awk -v b="$B" -v a="$(m api_add_del)" 'BEGIN { printf "%.2f", 2 * (b + a) }')
verdict() { awk -v x="$1" -v g="$2" 'BEGIN { print (x <= g) ? "met" : "missed" }'; }
row() { printf '| %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" "$5"; }
TABLE=$(
  echo "| what (median of $RUNS runs, ms) | managed | Native AOT | native ÷ bridge VERSION | managed ÷ native |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  row "reference \`bridge\` plugin VERSION" "" "$B" "1.0" ""
  row "\`vswitch-cni\` VERSION" "$(m cni_version_managed)" "$(m cni_version_native)" "$(ratio "$(m cni_version_native)" "$B")" "$(ratio "$(m cni_version_managed)" "$(m cni_version_native)")"
  row "\`vsctl --help\`" "$(m help_managed)" "$(m help_native)" "$(ratio "$(m help_native)" "$B")" "$(ratio "$(m help_managed)" "$(m help_native)")"
  row "\`vsctl port ls\` (1 port)" "$(m port_ls_managed)" "$(m port_ls_native)" "$(ratio "$(m port_ls_native)" "$B")" "$(ratio "$(m port_ls_managed)" "$(m port_ls_native)")"
  row "API alone: GET /v1/ports (curl time_total)" "" "$(m api_ports)" "" ""
  row "\`vswitch-cni\` ADD+DEL round trip" "$(m add_del_managed)" "$(m add_del_native)" "$(ratio "$(m add_del_native)" "$B")" "$(ratio "$(m add_del_managed)" "$(m add_del_native)")"
  row "API alone: POST /v1/attachments + DELETE (curl time_total)" "" "$(m api_add_del)" "" ""
)
GOALS=$(
  echo "- \`vsctl port ls\` native: $(m port_ls_native) ms against 2 × (bridge VERSION $B + API $(m api_ports)) = $GOAL_PORTS ms: **$(verdict "$(m port_ls_native)" "$GOAL_PORTS")** (managed: $(m port_ls_managed) ms, $(verdict "$(m port_ls_managed)" "$GOAL_PORTS"))"
  echo "- ADD+DEL native: $(m add_del_native) ms against 2 × (bridge VERSION $B + API $(m api_add_del)) = $GOAL_ADDDEL ms: **$(verdict "$(m add_del_native)" "$GOAL_ADDDEL")** (managed: $(m add_del_managed) ms, $(verdict "$(m add_del_managed)" "$GOAL_ADDDEL"))"
)
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
HEADER="$(date -u '+%Y-%m-%d %H:%M UTC'), scheduling: $MODE, $(nproc) cores ($CPU), load $(cut -d' ' -f1 /proc/loadavg), kernel $(uname -r), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"

echo
echo "$HEADER"
echo "$TABLE"
echo
echo "$GOALS"

if [ "$WRITE" = 1 ]; then
  SECTION=$(cat <<EOF
<!-- bench/startup.sh $MODE: this section is rewritten by each run -->
## Start-up of the clients, $MODE scheduling: managed against Native AOT (\`bench/startup.sh --runs $RUNS$([ "$RT" = 1 ] && echo ' --rt')\`)

$HEADER. $([ "$RT" = 1 ] && echo "Everything ran under SCHED_FIFO (chrt -f 10), out of the way of the machine's other load. ")Each figure is the median wall time of $RUNS runs (after $WARMUP warm-up runs) from bash's own clock
(\`\$EPOCHREALTIME\` around the command: fork, exec, the program, its exit). Managed: the framework-dependent apphosts
of \`dotnet build -c Release\`; Native AOT: \`tools/publish-native.sh\` (clang-14). The daemon is the managed vswitchd
on a temporary socket, with one network and one attachment; ADD+DEL attaches a throwaway namespace's eth0 and
detaches it (a TAP created, moved, addressed, then removed). "API alone" is the same requests sent by
\`curl --unix-socket\`, timed by curl's \`time_total\` (connection, request, the daemon's work, the answer), so it
excludes every program's start-up: the goal's "API call".

$TABLE

Goal (management-plane issue, item 11): ADD+DEL and \`vsctl port ls\`, each within 2 × (the bridge plugin's VERSION + the API call alone):

$GOALS
<!-- bench/startup.sh $MODE: end -->
EOF
)
  RESULTS=bench/RESULTS.md
  python3 - "$RESULTS" "$SECTION" "$MODE" <<'PY'
import sys, re
path, section, mode = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path).read()
pattern = re.compile(r"<!-- bench/startup.sh " + re.escape(mode) + r": this section is rewritten by each run -->.*?<!-- bench/startup.sh " + re.escape(mode) + r": end -->\n?", re.S)
if pattern.search(text):
    text = pattern.sub(lambda _: section + "\n", text)
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
  say "written to $RESULTS"
fi
