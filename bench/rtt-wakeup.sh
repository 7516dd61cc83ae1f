#!/bin/bash
# Where a ping's time goes: the Linux bridge against vswitchd (two TAP ports, default settings), each with ping
# free to run anywhere and with ping and vswitchd's datapath thread pinned to one CPU (taskset), so that the
# wake-up of another, idle vCPU is taken out. Figures and what they mean: bench/RESULTS.md ("Where a ping's time
# goes through vswitchd"). Needs root; makes namespaces rtXXXXXX-*, removed on exit; traffic stays in them.
#   sudo bench/rtt-wakeup.sh            (build first: dotnet build -c Release)
# RTT: Linux bridge vs vswitchd (TAP), each with ping unpinned, and with ping + the switch's thread on one CPU.
set -u
S=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n'); A=rt$S-a; B=rt$S-b; C=rt$S-c; E=rt$S-e; BR=rt$S-s; D=$(mktemp -d /tmp/rtt-wakeup.XXXXXX)
VSD="$(cd "$(dirname "$0")/.." && pwd)/vswitch/VSwitchd/bin/Release/net10.0/vswitchd"
[ -x "$VSD" ] || { echo "rtt-wakeup: build first (dotnet build -c Release): no $VSD" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "rtt-wakeup: needs root (namespaces)" >&2; exit 1; }
cleanup() { [ -n "${P:-}" ] && kill $P 2>/dev/null; wait 2>/dev/null; for n in $A $B $C $E $BR; do ip netns del $n 2>/dev/null; done; rm -rf $D; }
trap cleanup EXIT
for n in $A $B $C $E $BR; do ip netns add $n; ip -n $n link set lo up; done
# bridge: C <-> BR <-> E
ip -n $BR link add br0 type bridge; ip -n $BR link set br0 up
for n in $C $E; do ip -n $BR link add p-$n type veth peer name eth0 netns $n; ip -n $BR link set p-$n master br0 up; ip -n $n link set eth0 up; done
ip -n $C addr add 10.78.0.2/24 dev eth0; ip -n $E addr add 10.78.0.3/24 dev eth0
cat > $D/c.json <<J
{ "networks": [ { "name": "n", "subnet": "10.77.0.0/24" } ],
  "ports": [
    { "name": "$A", "type": "tap", "network": "n", "netns": "$A", "addresses": ["10.77.0.2/24"] },
    { "name": "$B", "type": "tap", "network": "n", "netns": "$B", "addresses": ["10.77.0.3/24"] } ] }
J
$VSD --config $D/c.json --socket $D/s.sock --state $D/st.db > $D/log 2>&1 & P=$!
for i in $(seq 100); do ip netns exec $A ping -c1 -W1 10.77.0.3 >/dev/null 2>&1 && break; sleep 0.1; done
ip netns exec $C ping -c1 -W1 10.78.0.3 >/dev/null
DP=$(for t in /proc/$P/task/*; do [ "$(cat $t/comm)" = vswitch-dp0 ] && basename $t; done)
ALL=$(taskset -pc $DP | sed 's/.*: //')
rtt() { ip netns exec $1 $2 ping -c 40 -i 0.05 -q $3 | sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p'; }
for round in 1 2 3; do
  br=$(rtt $C "" 10.78.0.3); brp=$(rtt $C "taskset -c 0" 10.78.0.3)
  taskset -pc $ALL $DP >/dev/null; u=$(rtt $A "" 10.77.0.3)
  taskset -pc 0 $DP >/dev/null; s0=$(rtt $A "taskset -c 0" 10.77.0.3); o=$(rtt $A "taskset -c 1" 10.77.0.3)
  taskset -pc $ALL $DP >/dev/null
  echo "round $round load $(cut -d' ' -f1 /proc/loadavg): bridge $br (ping on cpu0: $brp) | vswitchd $u | dp+ping on cpu0 $s0 | dp cpu0, ping cpu1 $o  (ms)"
done
