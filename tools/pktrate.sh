#!/usr/bin/env bash
# End-to-end packet-rate comparison: the same two namespaces (gen -> rcv), the same traffic, through
# the datapaths in turn: vswitchd with TAP ports, vswitchd with AF_PACKET or AF_XDP ports on veths, the
# Linux bridge, Open vSwitch's userspace (netdev) datapath, VXLAN. See bench/pktrate/README.md.
#
#   sudo tools/pktrate.sh [--runs N] [--short] [--only NAME[,NAME]] [--figures rate,sink,flowsetup,tcp,ping] [--out DIR]
#   (PKTRATE_MD=FILE: where the Markdown goes; VSD_SPIN, VSD_SLICE, VSD_RT: vswitchd's datapath latency settings;
#    VSD_AFP_RING=FRAMES:SIZE: the afpacket ports' receive ring)
#
# Everything it creates (namespaces vpr-XXXXXX-*, veths, a bridge, vswitchd/ovs processes, a work
# directory under /tmp) is removed on exit, also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
BENCH="$REPO/bench/pktrate"

RUNS=3
SHORT=0
ONLY=""
FIGURES="rate,sink,flowsetup,tcp,ping"
OUTDIR="$BENCH/results"
ALL_DPS=(vswitch-tap vswitch-afpacket vswitch-afxdp linux-bridge ovs-netdev vswitch-vxlan kernel-vxlan)
# Rows run only when named with --only: VXLAN over an IPv6 underlay (both VTEPs IPv6).
EXTRA_DPS=(vswitch-vxlan6 kernel-vxlan6)

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --runs=*) RUNS="${1#*=}"; shift ;;
    --short) SHORT=1; shift ;;
    --only) ONLY="$2"; shift 2 ;;
    --only=*) ONLY="${1#*=}"; shift ;;
    --figures) FIGURES="$2"; shift 2 ;;
    --figures=*) FIGURES="${1#*=}"; shift ;;
    --out) OUTDIR="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "pktrate: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "pktrate: --runs '$RUNS' is not a positive number" >&2; exit 2; }
if [ "$SHORT" = 1 ]; then RUNS=1; RATE_WINDOW=2; IPERF_T=2; PING_COUNT=5; else RATE_WINDOW=5; IPERF_T=5; PING_COUNT=20; fi

DPS=()
if [ -n "$ONLY" ]; then
  IFS=, read -r -a want <<<"$ONLY"
  for w in "${want[@]}"; do
    ok=0; for d in "${ALL_DPS[@]}" "${EXTRA_DPS[@]}"; do [ "$d" = "$w" ] && ok=1; done
    [ $ok = 1 ] || { echo "pktrate: --only: '$w' is not a datapath (${ALL_DPS[*]} ${EXTRA_DPS[*]})" >&2; exit 2; }
    DPS+=("$w")
  done
else
  DPS=("${ALL_DPS[@]}")
fi

if [ "$(id -u)" != 0 ]; then
  echo "pktrate: run as root (it creates network namespaces, veths, TAPs and a bridge): sudo $0" >&2
  exit 1
fi

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*"; }

# One run at a time: two runs would share the cores (and the results directory).
exec 9>/tmp/vpr-pktrate.lock
flock -n 9 || { echo "pktrate: another pktrate run holds /tmp/vpr-pktrate.lock; wait for it" >&2; exit 1; }

# --- what it needs ------------------------------------------------------------------------------
PACKAGES=(iproute2 iputils-ping iperf3 netsniff-ng ethtool sysstat curl procps python3-matplotlib openvswitch-switch)
missing=()
for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq -o DPkg::Lock::Timeout=600
  # openvswitch-switch may fail to install; the ovs-netdev datapath is then skipped with the reason.
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null \
    || apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 \
         $(printf '%s\n' "${missing[@]}" | grep -v '^openvswitch-switch$') >/dev/null
fi
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

log "building vswitchd (Release)"
dotnet build "$REPO/vswitch/VSwitchd" -c Release -nologo -v quiet >/dev/null
VSWITCHD="$REPO/vswitch/VSwitchd/bin/Release/net10.0/vswitchd"
[ -x "$VSWITCHD" ] || { echo "pktrate: $VSWITCHD was not built" >&2; exit 1; }

# --- state and cleanup ----------------------------------------------------------------------------
SUFFIX=$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')
P="vpr-$SUFFIX"
WORK=$(mktemp -d "/tmp/$P-XXXX")
RUNLOG="$WORK/runs.jsonl"; : >"$RUNLOG"
NOTES="$WORK/notes.jsonl"; : >"$NOTES"
mkdir -p "$OUTDIR"
RAW="$OUTDIR/raw"; rm -rf "$RAW"; mkdir -p "$RAW"
PIDS=()        # every process this script started (by PID)

# shellcheck source=../bench/pktrate/lib.sh
. "$BENCH/lib.sh"

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  dp_teardown
  rm -rf "$WORK" /tmp/vpr-pktrate.lock
  exit $rc
}
trap cleanup EXIT
trap 'echo; log "interrupted"; exit 130' INT TERM

# --- runs -----------------------------------------------------------------------------------------
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
log "pktrate: datapaths: ${DPS[*]}; runs: $RUNS; 64B window ${RATE_WINDOW}s, iperf3 -t $IPERF_T, ping -c $PING_COUNT; prefix $P"
# Rounds, not blocks: each round sets up every datapath afresh and measures each figure once, so a
# slow spell of the host (this VM's neighbours come and go) falls on every datapath alike instead of
# on whichever ran then, and each run is a fresh setup. Medians are over the rounds.
declare -A SKIPPED=()
for r in $(seq "$RUNS"); do
  i=0
  for dp in "${DPS[@]}"; do
    i=$((i + 1))
    [ -n "${SKIPPED[$dp]:-}" ] && continue
    TAG="[round $r/$RUNS, $i/${#DPS[@]}] $dp"
    log "$TAG: setting up"
    if ! dp_setup "$dp"; then
      log "$TAG: SKIPPED: $SKIP_REASON"
      note "$dp" skip "$SKIP_REASON"
      SKIPPED[$dp]=1
      dp_teardown
      continue
    fi
    if ! warmup; then
      log "$TAG: SKIPPED: no connectivity gen -> rcv through $dp"
      note "$dp" skip "no connectivity gen -> rcv (ping failed after setup, round $r)"
      dp_snapshot "$dp" "r$r-after-fail"
      SKIPPED[$dp]=1
      dp_teardown
      continue
    fi
    dp_snapshot "$dp" "r$r-before"
    if [[ ",$FIGURES," == *,rate,* ]]; then
      log "$TAG: 64B rate (load $(cut -d' ' -f1-3 /proc/loadavg))"
      measure_rate "$dp" "$r"
      dp_snapshot "$dp" "r$r-after-rate"
    fi
    if [[ ",$FIGURES," == *,sink,* ]]; then
      log "$TAG: 64B rate to a sink (load $(cut -d' ' -f1-3 /proc/loadavg))"
      measure_rate "$dp" "$r" rate_sink
    fi
    if [[ ",$FIGURES," == *,flowsetup,* ]]; then
      log "$TAG: flow setups, 64B with random UDP ports (load $(cut -d' ' -f1-3 /proc/loadavg))"
      measure_flowsetup "$dp" "$r"
    fi
    if [[ ",$FIGURES," == *,tcp,* ]]; then
      for s in 1 4; do
        log "$TAG: TCP $s stream(s) (load $(cut -d' ' -f1-3 /proc/loadavg))"
        measure_tcp "$dp" "$r" "$s"
      done
    fi
    if [[ ",$FIGURES," == *,ping,* ]]; then
      log "$TAG: ping RTT (load $(cut -d' ' -f1-3 /proc/loadavg))"
      measure_ping "$dp" "$r"
    fi
    dp_snapshot "$dp" "r$r-end"
    log "$TAG: tearing down"
    dp_teardown
  done
done
FINISHED=$(date -u +%Y-%m-%dT%H:%M:%SZ)

"$PY" "$BENCH/aggregate.py" --runs-file "$RUNLOG" --notes-file "$NOTES" --out-json "$OUTDIR/latest.json" \
  --out-md "${PKTRATE_MD:-$BENCH/RESULTS-e2e.md}" --raw-dir "$RAW" --started "$STARTED" --finished "$FINISHED" \
  --mode "$([ $SHORT = 1 ] && echo short || echo normal)" --runs "$RUNS" --rate-window "$RATE_WINDOW" \
  --iperf-t "$IPERF_T" --ping-count "$PING_COUNT" --datapaths "$(IFS=,; echo "${DPS[*]}")"

# The plot: a panel per figure, a bar per datapath (Debian's matplotlib, with the system python).
if /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
  /usr/bin/python3 "$BENCH/plot.py" "$OUTDIR/latest.json" "$OUTDIR/latest.png" || log "plot failed (the table and JSON are complete)"
else
  log "python3-matplotlib is missing: no plot (the table and JSON are complete)"
fi
