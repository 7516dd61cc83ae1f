#!/usr/bin/env bash
# North-south through masquerade: TCP throughput and new connections per second from a container to a server in an
# "outside" namespace, through vswitchd's masquerade (a host port, ct(commit,nat)) next to the Linux bridge with an
# nftables masquerade rule, on the same machine in the same run.
#
#   bench/northsouth.sh [--runs N] [--seconds S] [--connections N]   (root; run `dotnet build -c Release` first)
#
# Each switch runs in a "host" namespace of its own (vnb-X-h1 for vswitchd, vnb-X-h2 for the bridge), so nothing is
# changed in the machine's own namespace: the host port, the policy rules and sysctls vswitchd sets, the bridge and
# the nftables table all live and die with those namespaces. Topology of each:
#   container (10.N.0.2/24, default via the switch) -- switch -- host ns -- veth -- outside (100.64.N.2/24)
# vswitchd: network with a host port (10.N.0.254) and masquerade, the container on a TAP (its usual attachment).
# bridge:   br0 10.N.0.1/24 in the host ns, the container on a veth, `nft ... oifname "vo" masquerade`, ip_forward=1.
# Measures: iperf3 -t S (one stream, the receiver's rate); new TCP connections per second: `ab -n N -c 16` against a
# small HTTP server in the outside namespace (python asyncio: one response and close per connection), so each request
# is one new connection through the NAT; and the CPU each connection cost the machine (both cores, /proc/stat) and vswitchd
# (its threads, /proc/PID/stat). Each run uses its own server port (8081, 8082, ...): vswitchd masquerades to
# 61000-65534 only, 4535 ports per server address and port, and the server keeps each in TIME_WAIT for 60 s. Per run, per setup: Gbit/s and connections/s; the medians are the result.
# Needs: iperf3, nftables, apache2-utils (ab): installed if missing (apt-get, as root).
set -euo pipefail
RUNS=3; SECONDS_=10; CONNS=4000   # at most 4535: the masquerade's ports to one server address and port (see RESULTS.md)
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --seconds) SECONDS_=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "northsouth.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "northsouth.sh: needs root (namespaces)" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VSWITCHD=$ROOT/vswitch/VSwitchd/bin/Release/net10.0/vswitchd
[ -x "$VSWITCHD" ] || { echo "northsouth.sh: build first (dotnet build -c Release)" >&2; exit 2; }
missing=()
for p in iperf3:iperf3 nft:nftables ab:apache2-utils; do command -v "${p%%:*}" >/dev/null || missing+=("${p#*:}"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi
SFX=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')
WORK=$(mktemp -d /tmp/vnb.XXXXXX)
PIDS=(); NSS=()
cleanup() {
  # ab's complaints, if any (a failed run ends the script: set -e).
  [ -f "$WORK/ab.log" ] && grep -iE "error|reset|timed? ?out|failed requests: *[1-9]" "$WORK/ab.log" | sort | uniq -c | head -5 >&2 || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; done
  for n in "${NSS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
wait_for() { local t=$1; shift; local end=$((SECONDS + t)); until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $end ] || return 1; sleep 0.1; done; }
ns() { ip netns add "$1"; NSS+=("$1"); ip -n "$1" link set lo up; }

SERVER_PY='
import asyncio, sys
R = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
async def h(r, w):
    try:
        await r.readuntil(b"\r\n\r\n"); w.write(R); await w.drain()
    except Exception: pass
    w.close()
async def main():
    ss = [await asyncio.start_server(h, sys.argv[1], 8080 + i, backlog=4096, reuse_address=True) for i in range(int(sys.argv[2]))]
    await asyncio.gather(*(s.serve_forever() for s in ss))
asyncio.run(main())'

# outside namespace N joined to host namespace H by a veth: H has 100.64.N.1, the outside 100.64.N.2 and its servers.
outside() { # H O N
  ns "$2"
  ip link add vo netns "$1" type veth peer name eth0 netns "$2"
  ip -n "$1" addr add 100.64.$3.1/24 dev vo; ip -n "$1" link set vo up
  ip -n "$2" addr add 100.64.$3.2/24 dev eth0; ip -n "$2" link set eth0 up
  ip netns exec "$2" iperf3 -s -D -B 100.64.$3.2 --pidfile "$WORK/iperf-$2.pid" >/dev/null
  wait_for 5 test -s "$WORK/iperf-$2.pid"; PIDS+=("$(cat "$WORK/iperf-$2.pid")")
  ip netns exec "$2" /usr/bin/python3 -c "$SERVER_PY" 100.64.$3.2 $((RUNS + 1)) & PIDS+=($!)
  wait_for 10 ip netns exec "$2" sh -c "ss -ltn | grep -q 100.64.$3.2:8080"
}

# vswitchd in host namespace H1: network with a host port and masquerade, the container C1 on a TAP.
H1=vnb-$SFX-h1; C1=vnb-$SFX-c1; O1=vnb-$SFX-o1
ns $H1; ns $C1; outside $H1 $O1 71
cat > "$WORK/vswitchd.json" <<JSON
{ "networks": [ { "name": "ns", "subnet": "10.71.0.0/24", "hostPort": true } ],
  "ports": [ { "name": "vnbc$SFX", "network": "ns", "netns": "$C1", "addresses": ["10.71.0.2/24"] } ] }
JSON
ip netns exec $H1 "$VSWITCHD" --config "$WORK/vswitchd.json" --socket "$WORK/vswitchd.sock" --state "$WORK/state.db" > "$WORK/vswitchd.log" 2>&1 &
PIDS+=($!); VSWITCHD_PID=$!
wait_for 30 curl -sf --unix-socket "$WORK/vswitchd.sock" http://localhost/v1/show || { cat "$WORK/vswitchd.log"; exit 1; }

# The Linux bridge in host namespace H2 with an nftables masquerade, the container C2 on a veth.
H2=vnb-$SFX-h2; C2=vnb-$SFX-c2; O2=vnb-$SFX-o2
ns $H2; ns $C2; outside $H2 $O2 72
ip -n $H2 link add br0 type bridge; ip -n $H2 addr add 10.72.0.1/24 dev br0; ip -n $H2 link set br0 up
ip link add vc netns $H2 type veth peer name eth0 netns $C2
ip -n $H2 link set vc master br0; ip -n $H2 link set vc up
ip -n $C2 addr add 10.72.0.2/24 dev eth0; ip -n $C2 link set eth0 up; ip -n $C2 route add default via 10.72.0.1
ip netns exec $H2 sysctl -qw net.ipv4.ip_forward=1
ip netns exec $H2 nft -f - <<'NFT'
table ip vnb { chain post { type nat hook postrouting priority 100; oifname "vo" masquerade; }; }
NFT

throughput() { # C O-address -> Gbit/s (receiver)
  ip netns exec "$1" iperf3 -c "$2" -t "$SECONDS_" -J | /usr/bin/python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))'
}
# Where the CPU goes during a connection-rate run: the machine's busy time (/proc/stat, both cores) and vswitchd's
# own (/proc/PID/stat: its threads, and the kernel work they do, such as the receiving network stack that a TAP write
# runs in the writer's context), in microseconds per connection. $WORK/cpu.log gets one line per run.
machine_busy() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9}' /proc/stat; }
proc_cpu() { [ -n "$1" ] && awk '{sub(/^.*\) /,""); print $12+$13}' "/proc/$1/stat" || echo 0; }
connrate() { # C O-address port [vswitchd-pid] -> connections/s
  local m0 p0 m1 p1 rate hz; hz=$(getconf CLK_TCK); m0=$(machine_busy); p0=$(proc_cpu "${4:-}")
  rate=$(ip netns exec "$1" ab -q -r -n "$CONNS" -c 16 -s 10 "http://$2:$3/" 2>&1 | tee -a "$WORK/ab.log" | awk '/Requests per second/ {print $4} /Failed requests/ {if ($3 != 0) print "FAILED:" $3 > "/dev/stderr"}')
  m1=$(machine_busy); p1=$(proc_cpu "${4:-}")
  # One line per run, numbers only: setup, machine µs per connection, vswitchd's µs per connection (- for the bridge).
  awk -v m=$((m1 - m0)) -v p=$((p1 - p0)) -v hz="$hz" -v n="$CONNS" -v pid="${4:-}" 'BEGIN {
    if (pid) printf "vswitchd-masquerade %.1f %.1f\n", m / hz / n * 1e6, p / hz / n * 1e6
    else printf "bridge-nft-masquerade %.1f -\n", m / hz / n * 1e6 }' >> "$WORK/cpu.log"
  echo "$rate"
}
# Both must work before anything is measured.
ip netns exec $C1 curl -sf -m 5 http://100.64.71.2:8080/ >/dev/null || { echo "vswitchd path does not work"; cat "$WORK/vswitchd.log"; exit 1; }
ip netns exec $C2 curl -sf -m 5 http://100.64.72.2:8080/ >/dev/null || { echo "bridge path does not work"; exit 1; }

echo "northsouth.sh: $RUNS runs, iperf3 ${SECONDS_} s, $CONNS connections (ab -c 16), $(nproc) cores, kernel $(uname -r)"
printf '%-4s %-22s %10s %14s\n' run setup Gbit/s conn/s
declare -A T C
for r in $(seq "$RUNS"); do
  T[v$r]=$(throughput $C1 100.64.71.2); C[v$r]=$(connrate $C1 100.64.71.2 $((8080 + r)) "$VSWITCHD_PID")
  printf '%-4s %-22s %10s %14s\n' "$r" vswitchd-masquerade "${T[v$r]}" "${C[v$r]}"
  T[b$r]=$(throughput $C2 100.64.72.2); C[b$r]=$(connrate $C2 100.64.72.2 $((8080 + r)))
  printf '%-4s %-22s %10s %14s\n' "$r" bridge-nft-masquerade "${T[b$r]}" "${C[b$r]}"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
vt=$(median $(for r in $(seq $RUNS); do echo ${T[v$r]}; done)); bt=$(median $(for r in $(seq $RUNS); do echo ${T[b$r]}; done))
vc=$(median $(for r in $(seq $RUNS); do echo ${C[v$r]}; done)); bc=$(median $(for r in $(seq $RUNS); do echo ${C[b$r]}; done))
echo "CPU during the connection-rate runs (both cores busy = the rate is bound by CPU, not by waiting):"
awk '{ m[$1] += $2; n[$1]++; if ($3 != "-") { v += $3; nv++ } }
     END { for (k in m) printf "  %-22s machine busy %4.0f us/connection (mean of %d runs)\n", k, m[k] / n[k], n[k]
           if (nv) printf "  %-22s of which vswitchd (its threads) %4.0f us/connection\n", "", v / nv }' "$WORK/cpu.log"
echo "median vswitchd-masquerade   $vt Gbit/s  $vc conn/s"
echo "median bridge-nft-masquerade $bt Gbit/s  $bc conn/s"
awk -v a="$vt" -v b="$bt" -v c="$vc" -v d="$bc" 'BEGIN { printf "vswitchd / bridge: throughput %.2fx, connection rate %.2fx\n", a/b, c/d }'
curl -s --unix-socket "$WORK/vswitchd.sock" http://localhost/v1/stats | /usr/bin/python3 -c 'import json,sys; n=json.load(sys.stdin)["northSouth"]; print("vswitchd masquerade: %d connections, %d open, %d refused (nat-ports-exhausted)" % (n["masqueraded"], n["masqueradedActive"], n["natPortsExhausted"]))'
