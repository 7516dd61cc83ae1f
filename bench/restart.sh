#!/usr/bin/env bash
# Restart under traffic, vswitchd against Open vSwitch on the same topology: two namespaces ("containers") each on a
# veth pair whose other end is a port of the switch, which runs in its own namespace. `ping -i 0.01` runs between
# them while the switch restarts; the loss is read from ping's summary.
#
#   bench/restart.sh [--runs N] [--pings N]       (root; builds nothing: run `dotnet build -c Release` first)
#
# Rows:
#   vswitchd-afpacket  `vsctl restart`: hand-over of the AF_PACKET sockets to a new process (same veths as OVS)
#   vswitchd-afxdp     the same veths as afxdp ports: hand-over of the AF_XDP sockets, UMEMs and XDP links
#   vswitchd-tap       `vsctl restart` with the containers attached by TAP (`vsctl attach`), its usual set-up
#   ovs-netdev         ovs-vswitchd (userspace datapath) stopped by its PID and started again on the same database
#                      (ovsdb-server keeps running), as `ovs-ctl restart` does for the daemon
# Everything it makes is named vrb-XXXXXX* (namespaces, veths) and lives in a temporary folder; processes are
# stopped by their PIDs and everything is removed on exit, even on failure.
set -euo pipefail
RUNS=3; PINGS=600
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --pings) PINGS=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "restart.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "restart.sh: needs root (namespaces, veths)" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VSWITCHD=$ROOT/vswitch/VSwitchd/bin/Release/net10.0/vswitchd
VSCTL=$ROOT/tools/vsctl/bin/Release/net10.0/vsctl
[ -x "$VSWITCHD" ] && [ -x "$VSCTL" ] || { echo "restart.sh: build first (dotnet build -c Release)" >&2; exit 2; }
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/vrb.XXXXXX)
PIDS=()
NSS=()
cleanup() {
  # A restart inside measure's subshell leaves its new PID in its pidfile only.
  for f in "$WORK"/ovs-*/*.pid; do [ -f "$f" ] && PIDS+=("$(cat "$f")"); done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; done
  for n in "${NSS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_for() { # seconds command...: until the command succeeds
  local t=$1; shift
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $end ] || return 1; sleep 0.1; done
}

# Three namespaces: the switch's and two containers, a veth from each container into the switch's.
topology() { # suffix
  SFX=$1; NS_SW=vrb-$SFX-s; NS_A=vrb-$SFX-a; NS_B=vrb-$SFX-b
  for n in $NS_SW $NS_A $NS_B; do ip netns add $n; NSS+=($n); ip -n $n link set lo up; done
  for c in a b; do
    local ns=vrb-$SFX-$c
    ip link add vrb$SFX$c netns $NS_SW type veth peer name eth0 netns $ns
    ip -n $NS_SW link set vrb$SFX$c up
  done
  ip -n $NS_A addr add 10.90.0.2/24 dev eth0; ip -n $NS_A link set eth0 up
  ip -n $NS_B addr add 10.90.0.3/24 dev eth0; ip -n $NS_B link set eth0 up
}

# ping -i 0.01 from A to B for PINGS echoes; the restart command runs 2 s in. Prints "sent received restart-output".
measure() { # restart command...
  ip netns exec $NS_A ping -c 3 -W 1 -q 10.90.0.3 >/dev/null # learned, ARP done
  ip netns exec $NS_A ping -i 0.01 -c "$PINGS" -W 1 10.90.0.3 >"$WORK/ping.txt" 2>&1 &
  local pp=$!
  sleep 2
  local t0 t1 out
  t0=$(date +%s.%N)
  out=$("$@")
  t1=$(date +%s.%N)
  wait $pp || true
  local summary
  summary=$(grep -Eo '[0-9]+ packets transmitted, [0-9]+ received' "$WORK/ping.txt")
  echo "$(echo "$summary" | awk '{print $1, $4}') $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') $out"
}

row() { # name sent received seconds extra
  local lost=$(( $2 - $3 ))
  printf '| %s | %d | %d | %d | %.1f | %.2f | %s |\n' "$1" "$2" "$3" "$lost" "$(awk -v l=$lost -v s=$2 'BEGIN{print 100*l/s}')" "$4" "$5"
}

echo "# bench/restart.sh --runs $RUNS --pings $PINGS ($(date -u '+%a %b %d %Y %H:%M UTC'), $(uname -r), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
echo
echo "| switch | sent | received | lost | loss % | restart took (s) | notes |"
echo "| --- | --- | --- | --- | --- | --- | --- |"

vswitchd_restart() { # socket
  local j
  j=$("$VSCTL" --socket "$1" --json restart)
  NEWPID=$(echo "$j" | $PY -c 'import json,sys; print(json.load(sys.stdin)["newPid"])')
  echo "$j" | $PY -c 'import json,sys; j=json.load(sys.stdin); print("gap %s ms (old datapath stopped until the new one ran), pid %s -> %s" % (j["gapMs"], j["oldPid"], j["newPid"]))'
}

for run in $(seq "$RUNS"); do
  # --- vswitchd, AF_PACKET on the veths ---
  topology "$(printf '%06x' $((RANDOM * 32768 + RANDOM)) | tail -c 6)"
  D=$WORK/vsd-$run; mkdir -p $D
  ip netns exec $NS_SW "$VSWITCHD" --socket $D/s.sock --state $D/state.db >$D/log 2>&1 &
  PIDS+=($!)
  wait_for 30 "$VSCTL" --socket $D/s.sock show
  "$VSCTL" --socket $D/s.sock network add blue >/dev/null
  for c in a b; do "$VSCTL" --socket $D/s.sock port add vrb$SFX$c --type afpacket --network blue >/dev/null; done
  read -r sent recv took notes < <(measure vswitchd_restart $D/s.sock)
  PIDS+=("$(grep -o 'pid [0-9]* -> [0-9]*' <<<"$notes" | awk '{print $4}')")
  row "vswitchd-afpacket (run $run)" "$sent" "$recv" "$took" "$notes"
  # --- vswitchd, AF_XDP on the same veths (socket, UMEM memfd and XDP link handed over) ---
  for c in a b; do
    "$VSCTL" --socket $D/s.sock port rm vrb$SFX$c >/dev/null
    "$VSCTL" --socket $D/s.sock port add vrb$SFX$c --type afxdp --network blue >/dev/null
  done
  read -r sent recv took notes < <(measure vswitchd_restart $D/s.sock)
  PIDS+=("$(grep -o 'pid [0-9]* -> [0-9]*' <<<"$notes" | awk '{print $4}')")
  row "vswitchd-afxdp (run $run)" "$sent" "$recv" "$took" "$notes"
  # --- vswitchd, TAP attachments (the containers' usual set-up; the veths stay unused) ---
  ip -n $NS_A link del eth0; ip -n $NS_B link del eth0 2>/dev/null || true
  "$VSCTL" --socket $D/s.sock network add green --subnet 10.90.0.0/24 >/dev/null
  "$VSCTL" --socket $D/s.sock attach $NS_A --network green --ip 10.90.0.2 >/dev/null
  "$VSCTL" --socket $D/s.sock attach $NS_B --network green --ip 10.90.0.3 >/dev/null
  read -r sent recv took notes < <(measure vswitchd_restart $D/s.sock)
  PIDS+=("$(grep -o 'pid [0-9]* -> [0-9]*' <<<"$notes" | awk '{print $4}')")
  row "vswitchd-tap (run $run)" "$sent" "$recv" "$took" "$notes"

  # --- Open vSwitch, userspace (netdev) datapath, same veth topology ---
  if command -v ovs-vswitchd >/dev/null; then
    topology "$(printf '%06x' $((RANDOM * 32768 + RANDOM)) | tail -c 6)"
    O=$WORK/ovs-$run; mkdir -p $O
    vs=(ip netns exec $NS_SW env OVS_RUNDIR=$O OVS_DBDIR=$O OVS_LOGDIR=$O OVS_SYSCONFDIR=$O)
    "${vs[@]}" ovsdb-tool create $O/conf.db /usr/share/openvswitch/vswitch.ovsschema
    "${vs[@]}" ovsdb-server $O/conf.db --remote=punix:$O/db.sock --unixctl=$O/ovsdb-server.ctl --pidfile=$O/ovsdb-server.pid \
      --log-file=$O/ovsdb-server.log --detach --no-chdir -vconsole:off >>$O/console.log 2>&1
    PIDS+=("$(cat $O/ovsdb-server.pid)")
    ovsctl=("${vs[@]}" ovs-vsctl --db=unix:$O/db.sock --timeout=20)
    "${ovsctl[@]}" --no-wait init
    start_ovs() {
      "${vs[@]}" ovs-vswitchd unix:$O/db.sock --unixctl=$O/ovs-vswitchd.ctl --pidfile=$O/ovs-vswitchd.pid \
        --log-file=$O/ovs-vswitchd.log --detach --no-chdir -vconsole:off >>$O/console.log 2>&1
      PIDS+=("$(cat $O/ovs-vswitchd.pid)")
    }
    start_ovs
    "${ovsctl[@]}" add-br vrbbr$run -- set bridge vrbbr$run datapath_type=netdev -- add-port vrbbr$run vrb${SFX}a -- add-port vrbbr$run vrb${SFX}b
    ovs_restart() {
      local pid; pid=$(cat $O/ovs-vswitchd.pid)
      kill -TERM "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
      start_ovs
      # Started is not forwarding: wait until it has the bridge's ports again (ovs-vsctl waits for the daemon).
      "${ovsctl[@]}" --timeout=20 -- wait-until Interface vrb${SFX}a ofport!=-1 >/dev/null 2>&1 || true
      echo "stop by pid, start on the same database (ovsdb-server kept running)"
    }
    read -r sent recv took notes < <(measure ovs_restart)
    row "ovs-netdev (run $run)" "$sent" "$recv" "$took" "$notes"
  else
    echo "| ovs-netdev | | | | | | skipped: openvswitch-switch is not installed |"
  fi
done
