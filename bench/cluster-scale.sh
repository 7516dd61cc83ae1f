#!/usr/bin/env bash
# Cluster scale (issue 14): one vswitchd programs COUNT simulated hosts (1000 by default) written to etcd by a tool,
# while a ping through it loses nothing.
#
#   bench/cluster-scale.sh [COUNT]      (root: namespaces, TAP devices; Debian's etcd-server and etcd-client)
#
# What it builds, all in namespaces named vsb?XXXXXX and a folder /tmp/vsbench-XXXXXX, removed on exit:
#   - an underlay bridge; host A (10.220.0.1/16) runs vswitchd in cluster mode and etcd on its own loopback;
#   - host F (10.220.0.2) is not vswitchd: a kernel VXLAN device programmed as Flannel's vxlan backend does, with a
#     container on cni0; its lease is written in Flannel's format. The ping goes from F's container to a container
#     attached to A, so it crosses A's VXLAN endpoint and router while A's tables change;
#   - bench/cluster-leases writes COUNT leases (create-only transactions, parallel 32), public IPs 10.220.1.1.. on the
#     underlay's /16 (nobody answers there: frames to them stay in the lab's namespaces).
# Measured: the write; from the first write to A having all programmed (the watch path); A's memory (VmRSS) before and
# after; then A killed (SIGKILL) and started again with the leases in place (the list path: start to all programmed);
# then every simulated lease deleted (to all removed). Prints one line per figure.
set -euo pipefail
SELF=$(readlink -f "$0")
cd "$(dirname "$SELF")/.."
ROOT_DIR=$(pwd)
export LC_ALL=C
COUNT=${1:-1000}
[[ $COUNT =~ ^[0-9]+$ && $COUNT -ge 1 && $COUNT -le 4000 ]] || { echo "cluster-scale: COUNT '$COUNT' must be 1..4000" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "cluster-scale: needs root (namespaces, TAP devices)" >&2; exit 2; }
command -v etcd >/dev/null && command -v etcdctl >/dev/null || { echo "cluster-scale: needs etcd-server and etcd-client (apt-get install etcd-server etcd-client)" >&2; exit 2; }

VSD=$ROOT_DIR/vswitch/VSwitchd/bin/Release/net10.0/vswitchd
VSCTL=$ROOT_DIR/tools/vsctl/bin/Release/net10.0/vsctl
LEASES=$ROOT_DIR/bench/cluster-leases/bin/Release/net10.0/cluster-leases
if [[ ! -x $VSD || ! -x $VSCTL || ! -x $LEASES ]]; then
  echo "building (Release)..."
  dotnet build "$ROOT_DIR/VSwitch.sln" -c Release -nologo -v quiet >/dev/null
fi

S=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')
NU=vsbu$S NA=vsba$S NF=vsbf$S NCA=vsbc$S NCF=vsbd$S
D=/tmp/vsbench-$S
mkdir -p "$D"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for n in $NCA $NCF $NA $NF $NU; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$D"
}
trap cleanup EXIT
now() { date +%s.%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }
in_a() { ip netns exec "$NA" "$@"; }
vsctl() { "$VSCTL" --socket "$D/a.sock" "$@"; }
programmed() { vsctl --json cluster 2>/dev/null | sed -n 's/.*"programmed": *\([0-9]*\).*/\1/p'; }
wait_programmed() { # N TIMEOUT_S: until A has N hosts programmed
  local deadline=$(( $(date +%s) + $2 ))
  until [[ $(programmed) == "$1" ]]; do
    (( $(date +%s) < deadline )) || { echo "cluster-scale: A has $(programmed) programmed, not $1, after $2 s" >&2; exit 1; }
    sleep 0.05
  done
}
rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }

# The lab: underlay, host A, host F, two containers.
for n in $NU $NA $NF $NCA $NCF; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip -n "$NU" link add br0 type bridge; ip -n "$NU" link set br0 up
i=1
for n in $NA $NF; do
  ip link add u0 netns "$n" type veth peer name p$i netns "$NU"
  ip -n "$NU" link set p$i master br0; ip -n "$NU" link set p$i up
  ip -n "$n" addr add 10.220.0.$i/16 dev u0; ip -n "$n" link set u0 up
  i=$((i + 1))
done
for n in $NCA $NCF; do ip netns exec "$n" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1; done

# etcd on host A's loopback.
PORT=$(( 20000 + RANDOM % 20000 ))
EP=http://127.0.0.1:$PORT
# ip netns exec execs etcd: $! is etcd's own PID (a shell function in between would make it a subshell's)
ip netns exec "$NA" etcd --name b1 --data-dir "$D/etcd" --listen-client-urls "$EP" --advertise-client-urls "$EP" \
  --listen-peer-urls http://127.0.0.1:$((PORT + 1)) --initial-advertise-peer-urls http://127.0.0.1:$((PORT + 1)) \
  --initial-cluster b1=http://127.0.0.1:$((PORT + 1)) --log-level error >"$D/etcd.log" 2>&1 &
PIDS+=($!)
etcdctl_a() { in_a env ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$PORT" "$@"; }
for _ in $(seq 100); do etcdctl_a put /vsbench ok >/dev/null 2>&1 && break; sleep 0.1; done
etcdctl_a put /coreos.com/network/config '{"Network": "10.96.0.0/12", "SubnetLen": 24, "Backend": {"Type": "vxlan", "VNI": 1, "Port": 8472}}' >/dev/null

# Host F, as Flannel's vxlan backend sets a host up; its lease in Flannel's format, bound to an etcd lease.
ip netns exec "$NF" ip link add flannel.1 type vxlan id 1 local 10.220.0.2 dev u0 dstport 8472 nolearning
ip -n "$NF" addr add 10.96.1.0/32 dev flannel.1; ip -n "$NF" link set flannel.1 up
FMAC=$(ip -n "$NF" -o link show flannel.1 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
ip netns exec "$NF" sysctl -q -w net.ipv4.ip_forward=1
ip -n "$NF" link add cni0 type bridge; ip -n "$NF" link set cni0 mtu 1450; ip -n "$NF" addr add 10.96.1.1/24 dev cni0; ip -n "$NF" link set cni0 up
ip link add vf0 netns "$NF" mtu 1450 type veth peer name eth0 netns "$NCF" mtu 1450
ip -n "$NF" link set vf0 master cni0; ip -n "$NF" link set vf0 up
ip -n "$NCF" addr add 10.96.1.2/24 dev eth0; ip -n "$NCF" link set eth0 up; ip -n "$NCF" route add default via 10.96.1.1
LID=$(etcdctl_a lease grant 3600 | awk '{print $2}')
etcdctl_a put --lease="$LID" /coreos.com/network/subnets/10.96.1.0-24 \
  "{\"PublicIP\":\"10.220.0.2\",\"BackendType\":\"vxlan\",\"BackendData\":{\"VNI\":1,\"VtepMAC\":\"$FMAC\"}}" >/dev/null

start_a() {
  ip netns exec "$NA" "$VSD" --socket "$D/a.sock" --state "$D/a.db" --etcd-endpoints "$EP" --public-ip 10.220.0.1 >>"$D/a.log" 2>&1 &
  APID=$!
  PIDS+=($APID)
}
start_a
for _ in $(seq 300); do vsctl --json cluster 2>/dev/null | grep -q '"subnet"' && break; sleep 0.1; done
ASUB=$(vsctl --json cluster | sed -n 's/.*"subnet": *"\([0-9.]*\)\/24".*/\1/p' | head -1)
AMAC=$(vsctl --json cluster | sed -n 's/.*"vtepMac": *"\([0-9a-f:]*\)".*/\1/p' | head -1)
[[ -n $ASUB && -n $AMAC ]] || { echo "cluster-scale: host A has no lease: $(tail -5 "$D/a.log")" >&2; exit 1; }
vsctl attach "$NCA" --network cluster >/dev/null
AIP=$(vsctl --json attach ls | sed -n 's/.*"ip": *"\([0-9.]*\)".*/\1/p' | head -1)
# F programs A, as flanneld does for a lease it sees.
ip -n "$NF" neigh replace "$ASUB" lladdr "$AMAC" dev flannel.1 nud permanent
ip netns exec "$NF" bridge fdb append "$AMAC" dev flannel.1 dst 10.220.0.1 self permanent
ip -n "$NF" route replace "$ASUB/24" via "$ASUB" dev flannel.1 onlink
wait_programmed 1 30
for _ in $(seq 50); do ip netns exec "$NCF" ping -c 1 -W 1 "$AIP" >/dev/null 2>&1 && break; done

[[ $(readlink "/proc/$APID/exe") == *vswitchd* || $(tr '\0' ' ' <"/proc/$APID/cmdline") == *vswitchd* ]] || { echo "cluster-scale: pid $APID is not vswitchd" >&2; exit 1; }
echo "cluster-scale: $COUNT simulated hosts; host A $ASUB/24 (vswitchd pid $APID), load $(cut -d' ' -f1-3 /proc/loadavg), ping from F's container to $AIP on A"
# The ping runs through everything below except A's restart (20 s at 20 a second, bounded).
ip netns exec "$NCF" ping -i 0.05 -c 400 -W 1 "$AIP" >"$D/ping.log" 2>&1 &
PING=$!
PIDS+=($PING)
sleep 1
RSS0=$(rss_kb "$APID")
T0=$(now)
in_a "$LEASES" write --endpoints "$EP" --count "$COUNT" --public-base 10.220.1.0 --ttl 3600 | sed 's/^/  tool: /'
T1=$(now)
wait_programmed $((COUNT + 1)) 60
T2=$(now)
sleep 1
RSS1=$(rss_kb "$APID")
echo "watch path: $COUNT leases written in $(ms "$T0" "$T1") ms; all programmed $(ms "$T0" "$T2") ms after the first write, $(ms "$T1" "$T2") ms after the last"
echo "memory: VmRSS $((RSS0 / 1024)) MiB before, $((RSS1 / 1024)) MiB with $COUNT more hosts (+$(( (RSS1 - RSS0) / 1024 )) MiB)"
wait "$PING" || true
echo "ping through A while it programmed: $(grep -E 'packets transmitted' "$D/ping.log")"

# The list path: A killed and started again with every lease in place.
OLD=$APID
kill -9 "$OLD"; wait "$OLD" 2>/dev/null || true
[[ ! -e /proc/$OLD ]] || { echo "cluster-scale: vswitchd $OLD still runs after SIGKILL" >&2; exit 1; }
T3=$(now)
start_a
wait_programmed $((COUNT + 1)) 60
T4=$(now)
[[ -e /proc/$APID ]] || { echo "cluster-scale: the restarted vswitchd exited: $(tail -3 "$D/a.log")" >&2; exit 1; }
RSS2=$(rss_kb "$APID")
echo "list path: VmRSS $((RSS2 / 1024)) MiB with $((COUNT + 1)) hosts after the restart"
echo "list path: vswitchd started again (SIGKILL before) and had all $((COUNT + 1)) programmed $(ms "$T3" "$T4") ms after its start"
grep -E 'vswitchd ready|took back|listed [0-9]+ lease' "$D/a.log" | tail -3 | sed 's/^/  log: /'
for _ in $(seq 100); do ip netns exec "$NCF" ping -c 1 -W 1 "$AIP" >/dev/null 2>&1 && break; done
ip netns exec "$NCF" ping -c 20 -i 0.05 -W 1 "$AIP" | grep -E 'packets transmitted' | sed 's/^/after the restart: /'

T5=$(now)
in_a "$LEASES" delete --endpoints "$EP" --count "$COUNT" | sed 's/^/  tool: /'
wait_programmed 1 60
T6=$(now)
echo "removal: all $COUNT removed $(ms "$T5" "$T6") ms after the first delete"
