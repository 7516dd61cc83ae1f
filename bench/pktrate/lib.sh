# Sourced by tools/pktrate.sh: the topology of each datapath and the measurements.
# Expects: P (name prefix vpr-XXXXXX), WORK, RAW, RUNLOG, NOTES, VSWITCHD, PY, RATE_WINDOW, IPERF_T,
# PING_COUNT, PIDS, log().
#
# Topology (the same for every datapath):
#   $P-gen  (10.61.0.1/24)  --  [ switch in namespace $P-sw ]  --  $P-rcv (10.61.0.2/24)
# The switch (vswitchd, the Linux bridge, ovs-vswitchd) lives in its own namespace $P-sw, not in the
# root namespace: nothing the benchmark makes touches the host's interfaces, and deleting the three
# namespaces removes every link.
# veth datapaths: $P-g (in gen) <-> $P-gs (in sw), $P-r (in rcv) <-> $P-rs (in sw), offloads as the
# kernel sets them (on), unless a datapath says otherwise.
# TAP datapath: vswitchd creates TAPs $P-g / $P-r in sw and moves them into gen / rcv.

NS_GEN="$P-gen"; NS_RCV="$P-rcv"; NS_SW="$P-sw"
# VXLAN rows: two "hosts", $P-sw (gen's side) and $P-sw2 (rcv's side), joined by an underlay veth.
NS_SW2="$P-sw2"; UL_A=10.62.0.1; UL_B=10.62.0.2
# The same underlay's IPv6 addresses (the *-vxlan6 rows: VTEPs over IPv6, MTU 1430 inside).
UL6_A=fd00:62::1; UL6_B=fd00:62::2
VSD2_PID=""
GEN_DEV="$P-g"; RCV_DEV="$P-r"
GEN_IP=10.61.0.1; RCV_IP=10.61.0.2
GEN_MAC=02:00:00:61:00:01; RCV_MAC=02:00:00:61:00:02
CLK_TCK=$(getconf CLK_TCK)

SW_KIND=""          # vswitchd | ovs | bridge
SW_PID=""           # the process whose CPU is counted (vswitchd / ovs-vswitchd)
VSD_PID=""; VSD_SOCK=""
OVS_DIR=""; OVS_BR=""
SKIP_REASON=""

json_str() { "$PY" -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }
note() { printf '{"dp":"%s","kind":"%s","text":%s}\n' "$1" "$2" "$(json_str "$3")" >>"$NOTES"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
now() { date +%s.%N; }

# --- processes ----------------------------------------------------------------------------------
# Stop one process we started, by PID: TERM, up to $2 seconds, then KILL.
stop_pid() {
  local pid=$1 grace=${2:-10} i
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  # The process may end on its own between the checks (iperf3 -s -1 does): under set -e a failed
  # kill must not end the run.
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then log "  pid $pid did not stop on TERM; KILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}

ovs_stop() {
  [ -n "$OVS_DIR" ] || return 0
  local f
  for f in ovs-vswitchd ovsdb-server; do
    [ -f "$OVS_DIR/$f.pid" ] && stop_pid "$(cat "$OVS_DIR/$f.pid")" 10
  done
  rm -rf "$OVS_DIR"; OVS_DIR=""
}

dp_teardown() {
  local pid
  stop_pid "$VSD_PID" 15; VSD_PID=""
  stop_pid "$VSD2_PID" 15; VSD2_PID=""
  ovs_stop
  for pid in "${PIDS[@]}"; do stop_pid "$pid" 3; done
  PIDS=()
  for ns in "$NS_GEN" "$NS_RCV" "$NS_SW" "$NS_SW2"; do
    [ -e "/run/netns/$ns" ] && ip netns del "$ns" 2>/dev/null
  done
  SW_KIND=""; SW_PID=""; VSD_SOCK=""
  return 0
}

# --- topology -------------------------------------------------------------------------------------
make_ns() {
  local ns
  for ns in "$NS_GEN" "$NS_RCV" "$NS_SW"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
}

# veth pairs gen<->sw and rcv<->sw, addressed, up.
make_veths() {
  ip link add "$GEN_DEV" netns "$NS_GEN" address "$GEN_MAC" type veth peer name "$P-gs" netns "$NS_SW"
  ip link add "$RCV_DEV" netns "$NS_RCV" address "$RCV_MAC" type veth peer name "$P-rs" netns "$NS_SW"
  ip -n "$NS_GEN" addr add "$GEN_IP/24" dev "$GEN_DEV"
  ip -n "$NS_RCV" addr add "$RCV_IP/24" dev "$RCV_DEV"
  ip -n "$NS_GEN" link set "$GEN_DEV" up
  ip -n "$NS_RCV" link set "$RCV_DEV" up
  ip -n "$NS_SW" link set "$P-gs" up
  ip -n "$NS_SW" link set "$P-rs" up
}

# Latency settings of the datapath threads, only when asked for (the daemon's defaults otherwise):
# VSD_SPIN (datapath.spinMicroseconds), VSD_SLICE (sliceMicroseconds), VSD_RT (realtimePriority).
VSD_EXTRA=""
[ -z "${VSD_SPIN:-}" ] || VSD_EXTRA+=", \"spinMicroseconds\": ${VSD_SPIN}"
[ -z "${VSD_SLICE:-}" ] || VSD_EXTRA+=", \"sliceMicroseconds\": ${VSD_SLICE}"
[ -z "${VSD_RT:-}" ] || VSD_EXTRA+=", \"realtimePriority\": ${VSD_RT}"

start_vswitchd() { # $1 = config file
  [ "${VSD_BUSYPOLL:-false}" = false ] || note "${DP:-vswitchd}" info "VSD_BUSYPOLL=${VSD_BUSYPOLL}: vswitchd datapath busyPoll=${VSD_BUSYPOLL}"
  [ -z "${VSD_EXTRA}" ] || note "${DP:-vswitchd}" info "vswitchd datapath settings:${VSD_EXTRA#,}"
  VSD_SOCK="$WORK/vswitchd.sock"; rm -f "$VSD_SOCK"
  # A fresh state database per start: a stored configuration would win over this run's config.
  rm -f "$WORK"/state.db*
  ip netns exec "$NS_SW" "$VSWITCHD" --config "$1" --socket "$VSD_SOCK" --state "$WORK/state.db" >"$WORK/vswitchd.log" 2>&1 &
  VSD_PID=$!
  local i
  for ((i = 0; i < 300; i++)); do
    [ -S "$VSD_SOCK" ] && break
    kill -0 "$VSD_PID" 2>/dev/null || { SKIP_REASON="vswitchd exited at start: $(tail -3 "$WORK/vswitchd.log" | tr '\n' ' ')"; VSD_PID=""; return 1; }
    sleep 0.1
  done
  [ -S "$VSD_SOCK" ] || { SKIP_REASON="vswitchd did not open its API socket within 30 s"; return 1; }
  SW_KIND=vswitchd; SW_PID=$VSD_PID
}

setup_vswitch_tap() {
  make_ns
  cat >"$WORK/vswitch.json" <<JSON
{
  "networks": [ { "name": "bench" } ],
  "ports": [
    { "name": "$GEN_DEV", "type": "tap", "network": "bench", "netns": "$NS_GEN", "addresses": ["$GEN_IP/24"], "mac": "$GEN_MAC" },
    { "name": "$RCV_DEV", "type": "tap", "network": "bench", "netns": "$NS_RCV", "addresses": ["$RCV_IP/24"], "mac": "$RCV_MAC" }
  ],
  "datapath": { "threads": ${VSD_THREADS:-1}, "busyPoll": ${VSD_BUSYPOLL:-false}, "batchSize": ${VSD_BATCH:-64}${VSD_EXTRA} }
}
JSON
  start_vswitchd "$WORK/vswitch.json" || return 1
  local i
  for ((i = 0; i < 100; i++)); do
    ip -n "$NS_RCV" link show "$RCV_DEV" >/dev/null 2>&1 && ip -n "$NS_GEN" link show "$GEN_DEV" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  SKIP_REASON="vswitchd's TAPs did not appear in $NS_GEN / $NS_RCV"; return 1
}

# VSD_AFP_RING=FRAMES:SIZE sets the afpacket ports' receive ring (afpacket.ringFrames and frameSize; the daemon's
# 120 slots of 69632 bytes when unset). A slot too small for a 64 KiB GSO super-frame would truncate gen's and rcv's
# TSO frames (dropped, rx-truncated), so their offloads are then turned off, as for the afxdp row (noted).
setup_vswitch_afpacket() {
  make_ns; make_veths
  local ring=""
  if [ -n "${VSD_AFP_RING:-}" ]; then
    local frames=${VSD_AFP_RING%%:*} size=${VSD_AFP_RING#*:}
    [[ "$VSD_AFP_RING" == *:* && "$frames" =~ ^[0-9]+$ && "$size" =~ ^[0-9]+$ ]] \
      || { SKIP_REASON="VSD_AFP_RING='$VSD_AFP_RING' is not FRAMES:SIZE (e.g. 2048:2048)"; return 1; }
    ring=", \"afpacket\": { \"ringFrames\": $frames, \"frameSize\": $size }"
    note vswitch-afpacket info "VSD_AFP_RING=$VSD_AFP_RING: afpacket ports' ring ringFrames=$frames frameSize=$size"
    if ((size < 69632)); then
      ip netns exec "$NS_GEN" ethtool -K "$GEN_DEV" tx off tso off gso off >/dev/null 2>&1
      ip netns exec "$NS_RCV" ethtool -K "$RCV_DEV" tx off tso off gso off >/dev/null 2>&1
      note vswitch-afpacket info "gen/rcv veths: ethtool -K tx off tso off gso off (a $size-byte slot holds no GSO super-frame)"
    fi
  fi
  cat >"$WORK/vswitch.json" <<JSON
{
  "networks": [ { "name": "bench" } ],
  "ports": [
    { "name": "$P-gs", "type": "afpacket", "network": "bench"$ring },
    { "name": "$P-rs", "type": "afpacket", "network": "bench"$ring }
  ],
  "datapath": { "threads": ${VSD_THREADS:-1}, "busyPoll": ${VSD_BUSYPOLL:-false}, "batchSize": ${VSD_BATCH:-64}${VSD_EXTRA} }
}
JSON
  start_vswitchd "$WORK/vswitch.json" || return 1
  # The ring each port got, as the daemon shows it (slots x slot size per queue), in the notes.
  local rings
  rings=$(curl -s --max-time 5 --unix-socket "$VSD_SOCK" http://x/v1/ports | "$PY" -c 'import json,sys; print(", ".join(p["name"]+": "+(p.get("features") or {}).get("ring-frames","?")+" x "+(p.get("features") or {}).get("ring-frame-size","?") for p in json.load(sys.stdin)))' 2>/dev/null || echo "?")
  note vswitch-afpacket info "AF_PACKET rings: $rings"
}

# The same veths as vswitch-afpacket, attached through AF_XDP (native XDP on veth where the kernel allows it).
# XDP hands frames over as they are, with no virtio header: a partial checksum or a TSO super-frame from
# gen/rcv would arrive unfinished, so their offloads are turned off (noted; the TCP figures of this row
# are therefore without offloads).
setup_vswitch_afxdp() {
  make_ns; make_veths
  ip netns exec "$NS_GEN" ethtool -K "$GEN_DEV" tx off tso off gso off >/dev/null 2>&1
  ip netns exec "$NS_RCV" ethtool -K "$RCV_DEV" tx off tso off gso off >/dev/null 2>&1
  note vswitch-afxdp info "gen/rcv veths: ethtool -K tx off tso off gso off (XDP carries no checksum/GSO metadata)"
  cat >"$WORK/vswitch.json" <<JSON
{
  "networks": [ { "name": "bench" } ],
  "ports": [
    { "name": "$P-gs", "type": "afxdp", "network": "bench", "afxdp": { "mode": "${VSD_XDP_MODE:-auto}", "attach": "${VSD_XDP_ATTACH:-auto}" } },
    { "name": "$P-rs", "type": "afxdp", "network": "bench", "afxdp": { "mode": "${VSD_XDP_MODE:-auto}", "attach": "${VSD_XDP_ATTACH:-auto}" } }
  ],
  "datapath": { "threads": ${VSD_THREADS:-1}, "busyPoll": ${VSD_BUSYPOLL:-false}, "batchSize": ${VSD_BATCH:-64} }
}
JSON
  start_vswitchd "$WORK/vswitch.json" || return 1
  # Which XDP mode each port got (native/generic, copy/zero-copy), in the notes.
  local modes
  modes=$(curl -s --max-time 5 --unix-socket "$VSD_SOCK" http://x/v1/ports | "$PY" -c 'import json,sys; print(", ".join(p["name"]+": "+(p.get("features") or {}).get("xdp","?") for p in json.load(sys.stdin)))' 2>/dev/null || echo "?")
  note vswitch-afxdp info "AF_XDP modes: $modes"
}

setup_linux_bridge() {
  make_ns; make_veths
  local br="$P-br"
  ip -n "$NS_SW" link add "$br" type bridge
  ip -n "$NS_SW" link set "$P-gs" master "$br"
  ip -n "$NS_SW" link set "$P-rs" master "$br"
  ip -n "$NS_SW" link set "$br" up
  SW_KIND=bridge; SW_PID=""
}

# Open vSwitch 3.1, userspace datapath, no kernel module, its own rundir (as in shared/PEERS.md),
# run inside the switch namespace. OVS_TSO=1 (default) sets other_config:userspace-tso-enable=true
# so that it reads the veths' TSO/partial-checksum frames (PACKET_VNET_HDR) like vswitchd does;
# OVS_TSO=0 instead turns tx offloads off on the gen/rcv veths.
setup_ovs_netdev() {
  command -v ovs-vswitchd >/dev/null && command -v ovsdb-server >/dev/null \
    || { SKIP_REASON="openvswitch-switch is not installed"; return 1; }
  make_ns; make_veths
  OVS_DIR="$WORK/ovs"; mkdir -p "$OVS_DIR"
  OVS_BR="vprb$SUFFIX"
  local D=$OVS_DIR
  local vs=(ip netns exec "$NS_SW" env OVS_RUNDIR=$D OVS_DBDIR=$D OVS_LOGDIR=$D OVS_SYSCONFDIR=$D)
  "${vs[@]}" ovsdb-tool create "$D/conf.db" /usr/share/openvswitch/vswitch.ovsschema >"$D/setup.log" 2>&1 \
    || { SKIP_REASON="ovsdb-tool create failed: $(tail -2 "$D/setup.log" | tr '\n' ' ')"; return 1; }
  "${vs[@]}" ovsdb-server "$D/conf.db" --remote=punix:$D/db.sock --unixctl=$D/ovsdb-server.ctl \
    --pidfile=$D/ovsdb-server.pid --log-file=$D/ovsdb-server.log --detach --no-chdir >>"$D/setup.log" 2>&1 \
    || { SKIP_REASON="ovsdb-server did not start: $(tail -2 "$D/setup.log" | tr '\n' ' ')"; return 1; }
  local vsctl=("${vs[@]}" ovs-vsctl --db=unix:$D/db.sock --timeout=20)
  "${vsctl[@]}" --no-wait init >>"$D/setup.log" 2>&1
  if [ "${OVS_TSO:-1}" = 1 ]; then
    "${vsctl[@]}" --no-wait set Open_vSwitch . other_config:userspace-tso-enable=true >>"$D/setup.log" 2>&1
    note ovs-netdev info "other_config:userspace-tso-enable=true (veth offloads left on, as for the other datapaths)"
  else
    ip netns exec "$NS_GEN" ethtool -K "$GEN_DEV" tx off tso off gso off >/dev/null 2>&1
    ip netns exec "$NS_RCV" ethtool -K "$RCV_DEV" tx off tso off gso off >/dev/null 2>&1
    note ovs-netdev info "OVS_TSO=0: tx/tso/gso offloads turned off on the gen/rcv veths"
  fi
  "${vs[@]}" ovs-vswitchd unix:$D/db.sock --unixctl=$D/ovs-vswitchd.ctl --pidfile=$D/ovs-vswitchd.pid \
    --log-file=$D/ovs-vswitchd.log --detach --no-chdir >>"$D/setup.log" 2>&1 \
    || { SKIP_REASON="ovs-vswitchd did not start: $(tail -2 "$D/setup.log" | tr '\n' ' ')"; return 1; }
  "${vsctl[@]}" add-br "$OVS_BR" -- set bridge "$OVS_BR" datapath_type=netdev >>"$D/setup.log" 2>&1 \
    || { SKIP_REASON="ovs-vsctl add-br failed: $(tail -2 "$D/setup.log" | tr '\n' ' ')"; return 1; }
  "${vsctl[@]}" add-port "$OVS_BR" "$P-gs" -- add-port "$OVS_BR" "$P-rs" >>"$D/setup.log" 2>&1 \
    || { SKIP_REASON="ovs-vsctl add-port failed: $(tail -2 "$D/setup.log" | tr '\n' ' ')"; return 1; }
  ip -n "$NS_SW" link set "$OVS_BR" up 2>/dev/null || true
  SW_KIND=ovs; SW_PID=$(cat "$D/ovs-vswitchd.pid")
}
ovs_appctl() { ip netns exec "$NS_SW" ovs-appctl -t "$OVS_DIR/ovs-vswitchd.ctl" "$@"; }

# The second host of the VXLAN rows and its underlay link to the first: $P-ua (sw) <-> $P-ub (sw2).
make_underlay() {
  ip netns add "$NS_SW2"
  ip -n "$NS_SW2" link set lo up
  ip link add "$P-ua" netns "$NS_SW" type veth peer name "$P-ub" netns "$NS_SW2"
  ip -n "$NS_SW" addr add "$UL_A/24" dev "$P-ua"
  ip -n "$NS_SW2" addr add "$UL_B/24" dev "$P-ub"
  ip -n "$NS_SW" addr add "$UL6_A/64" dev "$P-ua" nodad
  ip -n "$NS_SW2" addr add "$UL6_B/64" dev "$P-ub" nodad
  ip -n "$NS_SW" link set "$P-ua" up
  ip -n "$NS_SW2" link set "$P-ub" up
}

# vswitchd on each host, one VXLAN network (VNI 42), gen and rcv attached by TAP (MTU 1450; 1430 over IPv6).
# CPU is counted for gen's side vswitchd only (the receiving host's vswitchd runs too). Argument 6: IPv6 VTEPs.
setup_vswitch_vxlan() {
  local a=$UL_A b=$UL_B
  if [ "${1:-}" = 6 ]; then a=$UL6_A; b=$UL6_B; fi
  make_ns; make_underlay
  cat >"$WORK/vswitch.json" <<JSON
{ "overlay": { "local": "$a" },
  "networks": [ { "name": "bench", "vni": 42, "vteps": ["$b"] } ],
  "ports": [ { "name": "$GEN_DEV", "type": "tap", "network": "bench", "netns": "$NS_GEN", "addresses": ["$GEN_IP/24"], "mac": "$GEN_MAC" } ],
  "datapath": { "threads": ${VSD_THREADS:-1}, "busyPoll": ${VSD_BUSYPOLL:-false}, "batchSize": ${VSD_BATCH:-64}${VSD_EXTRA} } }
JSON
  cat >"$WORK/vswitch2.json" <<JSON
{ "overlay": { "local": "$b" },
  "networks": [ { "name": "bench", "vni": 42, "vteps": ["$a"] } ],
  "ports": [ { "name": "$RCV_DEV", "type": "tap", "network": "bench", "netns": "$NS_RCV", "addresses": ["$RCV_IP/24"], "mac": "$RCV_MAC" } ],
  "datapath": { "threads": ${VSD_THREADS:-1}, "busyPoll": ${VSD_BUSYPOLL:-false}, "batchSize": ${VSD_BATCH:-64}${VSD_EXTRA} } }
JSON
  rm -f "$WORK"/state2.db* "$WORK/vswitchd2.sock"
  ip netns exec "$NS_SW2" "$VSWITCHD" --config "$WORK/vswitch2.json" --socket "$WORK/vswitchd2.sock" --state "$WORK/state2.db" >"$WORK/vswitchd2.log" 2>&1 &
  VSD2_PID=$!
  start_vswitchd "$WORK/vswitch.json" || return 1
  local i
  for ((i = 0; i < 300; i++)); do
    ip -n "$NS_RCV" link show "$RCV_DEV" >/dev/null 2>&1 && ip -n "$NS_GEN" link show "$GEN_DEV" >/dev/null 2>&1 && return 0
    kill -0 "$VSD2_PID" 2>/dev/null || { SKIP_REASON="the second vswitchd exited: $(tail -3 "$WORK/vswitchd2.log" | tr '\n' ' ')"; return 1; }
    sleep 0.1
  done
  SKIP_REASON="vswitchd's TAPs did not appear in $NS_GEN / $NS_RCV"; return 1
}

# The kernel's VXLAN device on each host, bridged to a veth to gen / rcv (as Flannel or Docker's overlay would).
setup_kernel_vxlan() { # argument 6: IPv6 VTEPs (the device's MTU is then 1430)
  local ula=$UL_A ulb=$UL_B mtu=1450
  if [ "${1:-}" = 6 ]; then ula=$UL6_A; ulb=$UL6_B; mtu=1430; fi
  make_ns; make_underlay
  ip link add "$GEN_DEV" netns "$NS_GEN" address "$GEN_MAC" type veth peer name "$P-gs" netns "$NS_SW"
  ip link add "$RCV_DEV" netns "$NS_RCV" address "$RCV_MAC" type veth peer name "$P-rs" netns "$NS_SW2"
  local side ns ul peer port
  for side in a b; do
    if [ $side = a ]; then ns=$NS_SW; ul=$ula; peer=$ulb; port="$P-gs"; else ns=$NS_SW2; ul=$ulb; peer=$ula; port="$P-rs"; fi
    ip -n "$ns" link add vx0 type vxlan id 42 dstport 4789 local "$ul" remote "$peer" dev "$P-u$side"
    ip -n "$ns" link add br0 type bridge
    ip -n "$ns" link set vx0 master br0
    ip -n "$ns" link set "$port" master br0
    ip -n "$ns" link set vx0 up; ip -n "$ns" link set br0 up; ip -n "$ns" link set "$port" up
  done
  ip -n "$NS_GEN" link set "$GEN_DEV" mtu $mtu; ip -n "$NS_RCV" link set "$RCV_DEV" mtu $mtu
  ip -n "$NS_GEN" addr add "$GEN_IP/24" dev "$GEN_DEV"; ip -n "$NS_RCV" addr add "$RCV_IP/24" dev "$RCV_DEV"
  ip -n "$NS_GEN" link set "$GEN_DEV" up; ip -n "$NS_RCV" link set "$RCV_DEV" up
  SW_KIND=bridge; SW_PID=""
}

dp_setup() {
  SKIP_REASON="setup failed"; DP=$1
  case "$1" in
    vswitch-tap) setup_vswitch_tap ;;
    vswitch-afpacket) setup_vswitch_afpacket ;;
    vswitch-afxdp) setup_vswitch_afxdp ;;
    linux-bridge) setup_linux_bridge ;;
    ovs-netdev) setup_ovs_netdev ;;
    vswitch-vxlan) setup_vswitch_vxlan ;;
    kernel-vxlan) setup_kernel_vxlan ;;
    vswitch-vxlan6) setup_vswitch_vxlan 6 ;;
    kernel-vxlan6) setup_kernel_vxlan 6 ;;
  esac
}

# ARP both ways and MAC learning on the switch, so the measured traffic is forwarded, not flooded.
warmup() {
  local i
  for ((i = 0; i < 10; i++)); do
    ip netns exec "$NS_GEN" ping -c 2 -i 0.2 -W 1 -q "$RCV_IP" >/dev/null 2>&1 && break
  done
  [ $i -lt 10 ] || return 1
  ip netns exec "$NS_RCV" ping -c 2 -i 0.2 -W 1 -q "$GEN_IP" >/dev/null 2>&1 || return 1
  RCV_MAC_SEEN=$(ip -n "$NS_RCV" -j link show dev "$RCV_DEV" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
  GEN_MAC_SEEN=$(ip -n "$NS_GEN" -j link show dev "$GEN_DEV" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
}

# --- counters -------------------------------------------------------------------------------------
stat_of() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"; } # ns dev counter
# CPU ticks (utime+stime, all threads) of a process; fields after the ')' of comm.
proc_ticks() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && awk '{sub(/^.*\) /,""); print $12+$13}' "/proc/$1/stat" || echo 0; }
softirq_ticks() { awk '/^cpu /{print $8}' /proc/stat; }

dp_snapshot() { # dp tag: keep the switch's own view of counters and drops in results/raw/
  local f="$RAW/$1-$2"
  case "$SW_KIND" in
    vswitchd) curl -s --max-time 5 --unix-socket "$VSD_SOCK" http://x/v1/stats >"$f-stats.json" 2>/dev/null || true
              # Per-port details (offload counters: GSO whole/segmented, GRO, UDP GSO), both hosts for VXLAN.
              curl -s --max-time 5 --unix-socket "$VSD_SOCK" http://x/v1/ports >"$f-ports.json" 2>/dev/null || true
              [ -S "$WORK/vswitchd2.sock" ] && { curl -s --max-time 5 --unix-socket "$WORK/vswitchd2.sock" http://x/v1/ports >"$f-ports2.json" 2>/dev/null || true; } ;;
    ovs) { ovs_appctl dpctl/show -s; ovs_appctl dpif-netdev/pmd-stats-show; ovs_appctl coverage/show; } >"$f-ovs.txt" 2>&1 || true ;;
  esac
  { echo "# ss -0 -m in $NS_SW (AF_PACKET sockets; d<N> = receive-buffer drops)"
    ip netns exec "$NS_SW" ss -0 -m -a -p 2>&1
    for ns in "$NS_SW" "$NS_GEN" "$NS_RCV"; do echo "# ip -s link in $ns"; ip -n "$ns" -s link 2>&1; done
  } >"$f-links.txt"
}

# --- measurements ---------------------------------------------------------------------------------
# (a) 64-byte frames (60 + FCS): Ethernet + IPv4 + UDP + 18 bytes, unicast to the receiver's MAC.
# (a') the same with random UDP ports (fig "flowsetup"): nearly every frame is a connection no switch has seen
# (2^32 port pairs), so each one costs an exact-match switch a flow setup: vswitchd's slow path, OVS's upcall.
# (a'') the same frames delivered to a sink (fig "rate_sink"): rcv drops them at its netdev ingress hook (nftables),
# before its IP stack. Without it, rcv's stack looks each one up, finds no socket on UDP port 9 and routes an ICMP
# port-unreachable (rate-limited, but looked up every time), and that work runs in whichever thread delivered the
# frame: the sender's softirq for the bridge, vswitchd's datapath thread for vswitchd, the PMD thread for OVS. With
# the sink the figure is the switch's own rate, as a hardware tester's port counts it.
rcv_sink() { # on|off
  if [ "$1" = on ]; then
    ip netns exec "$NS_RCV" nft -f - <<NFT
table netdev pktrate_sink {
  chain in { type filter hook ingress device "$RCV_DEV" priority 0; policy accept; udp dport 9 counter drop; }
}
NFT
  else
    ip netns exec "$NS_RCV" nft delete table netdev pktrate_sink 2>/dev/null || true
  fi
}

measure_rate() { # dp run [fig] [udp ports]
  local dp=$1 r=$2 fig=${3:-rate} ports=${4:-"sp=9, dp=9"} conf="$WORK/trafgen.cfg" load
  cat >"$conf" <<CFG
{
  eth(da=$RCV_MAC_SEEN, sa=$GEN_MAC_SEEN, type=0x0800),
  ipv4(sa=$GEN_IP, da=$RCV_IP, ttl=64),
  udp($ports),
  fill(0x00, 18)
}
CFG
  load=$(loadavg)
  local gtx0 gdr0 rrx0 rdr0 c0 s0 t0 t1 gtx1 gdr1 rrx1 rdr1 c1 s1 rc=0
  gtx0=$(stat_of "$NS_GEN" "$GEN_DEV" tx_packets); gdr0=$(stat_of "$NS_GEN" "$GEN_DEV" tx_dropped)
  rrx0=$(stat_of "$NS_RCV" "$RCV_DEV" rx_packets); rdr0=$(stat_of "$NS_RCV" "$RCV_DEV" rx_dropped)
  # veth datapaths: what reached the switch's gen-facing interface, to tell drops before the switch
  # from drops inside it (vswitchd's ring drops show in no counter of its API).
  local swin0=0 swin1=0 swdr0=0 swdr1=0
  if [ "$dp" != vswitch-tap ] && [ "${dp#vswitch-vxlan}" = "$dp" ]; then
    swin0=$(stat_of "$NS_SW" "$P-gs" rx_packets); swdr0=$(stat_of "$NS_SW" "$P-gs" rx_dropped)
  fi
  [ "${fig%_sink}" = "$fig" ] || rcv_sink on
  c0=$(proc_ticks "$SW_PID"); s0=$(softirq_ticks); t0=$(now)
  timeout -s INT -k 5 "$RATE_WINDOW" ip netns exec "$NS_GEN" trafgen -o "$GEN_DEV" -i "$conf" -P 1 --no-sock-mem \
    >"$RAW/$dp-trafgen-$fig-$r.log" 2>&1 || rc=$?
  t1=$(now)
  sleep 0.3   # let what is queued in the switch arrive
  gtx1=$(stat_of "$NS_GEN" "$GEN_DEV" tx_packets); gdr1=$(stat_of "$NS_GEN" "$GEN_DEV" tx_dropped)
  rrx1=$(stat_of "$NS_RCV" "$RCV_DEV" rx_packets); rdr1=$(stat_of "$NS_RCV" "$RCV_DEV" rx_dropped)
  c1=$(proc_ticks "$SW_PID"); s1=$(softirq_ticks)
  [ "${fig%_sink}" = "$fig" ] || rcv_sink off
  if [ "$dp" != vswitch-tap ] && [ "${dp#vswitch-vxlan}" = "$dp" ]; then
    swin1=$(stat_of "$NS_SW" "$P-gs" rx_packets); swdr1=$(stat_of "$NS_SW" "$P-gs" rx_dropped)
  fi
  # timeout's SIGINT is the normal way trafgen stops (exit 124 or 130 is fine)
  case $rc in 0|124|130) ;; *) note "$dp" warn "trafgen ($fig) run $r exited $rc: $(tail -2 "$RAW/$dp-trafgen-$fig-$r.log" | tr '\n' ' ')" ;; esac
  printf '{"dp":"%s","fig":"%s","run":%d,"loadavg":"%s","window_s":%s,"offered":%d,"delivered":%d,"gen_tx_dropped":%d,"rcv_rx_dropped":%d,"sw_in_rx":%s,"sw_in_rx_dropped":%s,"switch_cpu_s":%s,"softirq_cpu_s":%s,"cpu_kind":"%s"}\n' \
    "$dp" "$fig" "$r" "$load" "$("$PY" -c "print(round($t1-$t0, 4))")" \
    $((gtx1 - gtx0)) $((rrx1 - rrx0)) $((gdr1 - gdr0)) $((rdr1 - rdr0)) \
    "$(case $dp in vswitch-tap|vswitch-vxlan*) echo null ;; *) echo $((swin1 - swin0)) ;; esac)" "$(case $dp in vswitch-tap|vswitch-vxlan*) echo null ;; *) echo $((swdr1 - swdr0)) ;; esac)" \
    "$("$PY" -c "print(($c1-$c0)/$CLK_TCK)")" "$("$PY" -c "print(($s1-$s0)/$CLK_TCK)")" \
    "$([ "$SW_KIND" = bridge ] && echo softirq || echo process)" >>"$RUNLOG"
}

# (b) TCP with iperf3, gen -> rcv.
measure_tcp() { # dp run streams
  local dp=$1 r=$2 s=$3 load out="$RAW/$dp-iperf-P$s-$r.json" spid i rc=0
  load=$(loadavg)
  timeout -k 5 $((IPERF_T + 30)) ip netns exec "$NS_RCV" iperf3 -s -1 -B "$RCV_IP" -p 5201 >"$WORK/iperf-server.log" 2>&1 &
  spid=$!; PIDS+=("$spid")
  for ((i = 0; i < 50; i++)); do
    ip netns exec "$NS_RCV" ss -Hltn 'sport = :5201' 2>/dev/null | grep -q . && break
    sleep 0.1
  done
  timeout -k 5 $((IPERF_T + 20)) ip netns exec "$NS_GEN" iperf3 -c "$RCV_IP" -p 5201 -t "$IPERF_T" -P "$s" -J >"$out" 2>&1 || rc=$?
  stop_pid "$spid" 3
  local parsed
  parsed=$("$PY" - "$out" <<'PYEOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    e = d["end"]
    bps = e["sum_received"]["bits_per_second"]
    rtx = e.get("sum_sent", {}).get("retransmits", 0)
    print(f'{bps/1e9:.4f} {rtx} ok')
except Exception as ex:
    print(f'null 0 {type(ex).__name__}')
PYEOF
)
  local gbps rtx status
  read -r gbps rtx status <<<"$parsed"
  [ "$status" = ok ] || note "$dp" warn "iperf3 -P $s run $r failed (exit $rc, $status): $(head -c 300 "$out" | tr '\n' ' ')"
  printf '{"dp":"%s","fig":"tcp%d","run":%d,"loadavg":"%s","gbps":%s,"retransmits":%d}\n' \
    "$dp" "$s" "$r" "$load" "$gbps" "${rtx:-0}" >>"$RUNLOG"
}

# (c) ping RTT.
measure_ping() { # dp run
  local dp=$1 r=$2 load out avg
  load=$(loadavg)
  out=$(timeout 30 ip netns exec "$NS_GEN" ping -c "$PING_COUNT" -i 0.05 -W 1 -q "$RCV_IP" 2>&1) || true
  echo "$out" >"$RAW/$dp-ping-$r.txt"
  avg=$(echo "$out" | sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p')
  [ -n "$avg" ] || { note "$dp" warn "ping run $r: no RTT ($(echo "$out" | tail -2 | tr '\n' ' '))"; avg=null; }
  local loss; loss=$(echo "$out" | sed -n 's|.* \([0-9.]*\)% packet loss.*|\1|p')
  printf '{"dp":"%s","fig":"ping","run":%d,"loadavg":"%s","rtt_avg_ms":%s,"loss_pct":%s}\n' \
    "$dp" "$r" "$load" "$avg" "${loss:-null}" >>"$RUNLOG"
}

# (d) flow setups per second: 64-byte frames with random UDP ports (see measure_rate). Open vSwitch is measured
# twice: with megaflows off (`upcall/disable-megaflows`: every new port pair is an upcall, its flow setup path,
# comparable to vswitchd's exact-match slow path) and as it ships (megaflows on: NORMAL looks at no port, so one
# wildcarded megaflow serves every port pair and almost no frame is an upcall).
measure_flowsetup() { # dp run
  local dp=$1 r=$2
  if [ "$SW_KIND" = ovs ]; then
    ovs_appctl upcall/disable-megaflows >/dev/null 2>&1 || note "$dp" warn "upcall/disable-megaflows failed"
    ovs_appctl dpctl/del-flows >/dev/null 2>&1 || true
    measure_rate "$dp" "$r" flowsetup "sp=drnd(), dp=drnd()"
    ovs_appctl upcall/enable-megaflows >/dev/null 2>&1 || true
    ovs_appctl dpctl/del-flows >/dev/null 2>&1 || true
    measure_rate "$dp" "$r" flowsetup_megaflows "sp=drnd(), dp=drnd()"
  else
    measure_rate "$dp" "$r" flowsetup "sp=drnd(), dp=drnd()"
  fi
}
