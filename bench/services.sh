#!/usr/bin/env bash
# Services next to the kernel's load balancers, one topology each, in one run (issue 15):
#   kernel:   a "switch" namespace with two Linux bridges (front, back), ip_forward, the VIP on its loopback and
#             IPVS (ipvsadm -A -t VIP:80 -s rr / -a ... -m, NAT) to three backends; client and backends by veth.
#             A kernel built without IPVS (CONFIG_IP_VS unset, as on the machine of bench/RESULTS.md) gets the
#             same topology with netfilter's DNAT instead (nftables: numgen random mod 3 over the backends,
#             prerouting; what kube-proxy's iptables mode does), named "nft-dnat" in the table.
#   vswitchd: networks front and back (connected), the client and three backends attached, vsctl service add.
# Same backends (busybox httpd, forking per connection) and the same clients on both:
#   ab  -n N -c C           every request a new connection: new connections per second, p99 (ms)
#   wrk -H 'Connection: close' -d S -c C --latency: requests per second with short connections, p99
# Usage (root): bench/services.sh [--requests 5000] [--concurrency 16] [--seconds 10] [--runs 1]
# Everything it makes is named vsb* and removed at the end (trap), even when a step fails.
set -euo pipefail
REQUESTS=5000; CONC=16; SECONDS_=10; RUNS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --requests) REQUESTS=$2; shift ;;
    --concurrency) CONC=$2; shift ;;
    --seconds) SECONDS_=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "run as root (namespaces)" >&2; exit 1; }
for t in ab wrk busybox curl; do command -v $t >/dev/null || { echo "missing $t (apt-get install apache2-utils wrk ipvsadm busybox-static curl)" >&2; exit 1; }; done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VSWITCHD=$ROOT/vswitch/VSwitchd/bin/Release/net10.0/vswitchd
VSCTL=$ROOT/tools/vsctl/bin/Release/net10.0/vsctl
[ -x "$VSWITCHD" ] || { echo "build first: dotnet build -c Release" >&2; exit 1; }
S=$(printf '%04x' $((RANDOM % 65536)))
DIR=$(mktemp -d /tmp/vsb-XXXX)
VIP=10.96.0.10
PIDS=()
NS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$DIR/vswitchd.pid" ] && { kill "$(cat "$DIR/vswitchd.pid")" 2>/dev/null || true; sleep 1; }
  for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  # the daemon's services namespace (named after its state database)
  ip netns del "vsd-$(printf '%s' "$(readlink -f "$DIR/state.db")" | sha256sum | cut -c1-8)" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
mkns() { ip netns add "$1"; NS+=("$1"); ip -n "$1" link set lo up; }
serve() { # ns name
  mkdir -p "$DIR/www-$2"; echo "$2" > "$DIR/www-$2/index.html"
  ip netns exec "$1" busybox httpd -f -p 8080 -h "$DIR/www-$2" & PIDS+=($!)
}
waitfor() { timeout 20 sh -c "until ip netns exec $1 curl -s -m 1 -o /dev/null $2; do sleep 0.1; done"; }
measure() { # label client-ns
  local out
  out=$(ip netns exec "$2" timeout 120 ab -q -n "$REQUESTS" -c "$CONC" -s 5 "http://$VIP/" 2>&1)
  local rps p99 failed
  rps=$(echo "$out" | awk '/Requests per second/ {print $4}')
  p99=$(echo "$out" | awk '/^  99%/ {print $2}')
  failed=$(echo "$out" | awk '/Failed requests/ {print $3}')
  local w wrps wp99
  w=$(ip netns exec "$2" timeout $((SECONDS_ + 30)) wrk -t 2 -c "$CONC" -d "${SECONDS_}s" --latency -H 'Connection: close' "http://$VIP/" 2>&1)
  wrps=$(echo "$w" | awk '/Requests\/sec/ {print $2}')
  wp99=$(echo "$w" | awk '/ 99%/ {print $2}')
  printf '| %-8s | %10s | %8s | %6s | %10s | %8s |\n' "$1" "$rps" "$p99" "$failed" "$wrps" "$wp99"
}

# --- IPVS with Linux bridges --------------------------------------------------------------------------
R=vsbr$S; C1=vsbc$S; mkns $R; mkns $C1
ip netns exec $R sysctl -qw net.ipv4.ip_forward=1
ip -n $R link add brf type bridge; ip -n $R link add brb type bridge
ip -n $R addr add 10.91.0.1/24 dev brf; ip -n $R addr add 10.92.0.1/24 dev brb
ip -n $R link set brf up; ip -n $R link set brb up
ip -n $R addr add $VIP/32 dev lo
link() { # ns bridge addr gw
  local h=vsbv$S$((++L))
  ip link add $h netns $R type veth peer name eth0 netns "$1"
  ip -n $R link set $h master "$2" up
  ip -n "$1" addr add "$3/24" dev eth0; ip -n "$1" link set eth0 up
  ip -n "$1" route add default via "$4"
}
L=0
link $C1 brf 10.91.0.2 10.91.0.1
for i in 1 2 3; do B=vsbb$S$i; mkns $B; link $B brb 10.92.0.$((i + 1)) 10.92.0.1; serve $B kernel$i; done
if command -v ipvsadm >/dev/null && ip netns exec $R ipvsadm -A -t $VIP:80 -s rr 2>/dev/null; then
  KERNEL=ipvs
  for i in 1 2 3; do ip netns exec $R ipvsadm -a -t $VIP:80 -r 10.92.0.$((i + 1)):8080 -m; done
else
  KERNEL=nft-dnat
  echo "note: no IPVS in this kernel ($(uname -r)); the kernel side is netfilter DNAT (nftables)" >&2
  ip netns exec $R nft -f - <<NFT
table ip lb {
  chain pre { type nat hook prerouting priority dstnat; ip daddr $VIP tcp dport 80 dnat to numgen random mod 3 map { 0 : 10.92.0.2, 1 : 10.92.0.3, 2 : 10.92.0.4 } : 8080; }
}
NFT
fi
for i in 1 2 3; do waitfor $C1 "http://10.92.0.$((i + 1)):8080/"; done
waitfor $C1 "http://$VIP/"

# --- vswitchd ---------------------------------------------------------------------------------------
C2=vsbd$S; mkns $C2
echo '{"networks":[{"name":"front","subnet":"10.93.0.0/24"},{"name":"back","subnet":"10.94.0.0/24"}]}' > "$DIR/config.json"
"$VSWITCHD" --config "$DIR/config.json" --state "$DIR/state.db" --socket "$DIR/v.sock" > "$DIR/vswitchd.log" 2>&1 &
echo $! > "$DIR/vswitchd.pid"
vsctl() { "$VSCTL" --socket "$DIR/v.sock" "$@"; }
timeout 30 sh -c "until $VSCTL --socket $DIR/v.sock show >/dev/null 2>&1; do sleep 0.2; done"
vsctl network connect front back >/dev/null
vsctl attach $C2 --network front >/dev/null
for i in 1 2 3; do B=vsbe$S$i; mkns $B; vsctl attach $B --network back --label app=bench >/dev/null; serve $B vs$i; done
vsctl service add web --vip $VIP --port 80:8080/tcp --selector app=bench >/dev/null
timeout 30 sh -c "until [ \$($VSCTL --socket $DIR/v.sock --json service inspect web | grep -o '\"health\": *\"healthy\"' | wc -l) = 3 ]; do sleep 0.2; done"
waitfor $C2 "http://$VIP/"

echo "## services.sh: $(date -u '+%a %b %d %Y %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg); ab -n $REQUESTS -c $CONC, wrk -c $CONC -d ${SECONDS_}s (Connection: close), 3 busybox httpd backends"
echo
echo '| path     | ab conn/s  | ab p99 ms | failed | wrk req/s  | wrk p99  |'
echo '| -------- | ---------- | --------- | ------ | ---------- | -------- |'
for r in $(seq 1 "$RUNS"); do
  measure $KERNEL $C1
  measure vswitchd $C2
done
echo
vsctl service inspect web | tail -4
