#!/usr/bin/env bash
# iperf3 between two Docker containers: on a vswitch network (vswitchd's remote driver) and on Docker's own bridge
# network, same machine, same run, one after the other.
#
#   sudo bench/docker-iperf.sh [--runs N] [--seconds S]      (default 3 runs of 5 s each way)
#
# Two private dockerds (PEERS.md: own data root, exec root, pidfile and API socket, vfs, cgroupfs, --iptables=false):
# the first with --bridge=none and the vswitch driver; the second with Docker's bridge driver on a bridge this
# script makes, vsbench0 with 10.93.0.1/24 (dockerd is told --bridge vsbench0 --ip-forward=false --ip-masq=false,
# so it touches neither docker0, nor the host's iptables, nor its ip_forward). The containers run busybox `sleep`;
# iperf3 is the host's own binary run inside each container's network namespace (nsenter --net), so the image needs
# no iperf3. Everything (containers, dockerds, vswitchd, the bridge, mounts, /tmp/vsdb.*) is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
RUNS=3
SECONDS_PER_RUN=5
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --seconds) SECONDS_PER_RUN="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "docker-iperf: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ "$RUNS" =~ ^[1-9][0-9]?$ ]] || { echo "docker-iperf: --runs '$RUNS' must be 1..99" >&2; exit 2; }
[[ "$SECONDS_PER_RUN" =~ ^[1-9][0-9]?$ ]] || { echo "docker-iperf: --seconds '$SECONDS_PER_RUN' must be 1..99" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "docker-iperf: run as root (dockerd, namespaces, TAPs)" >&2; exit 1; }
VSWITCHD="$REPO/vswitch/VSwitchd/bin/Release/net10.0/vswitchd"
[ -x "$VSWITCHD" ] || { echo "docker-iperf: build first (dotnet build VSwitch.sln -c Release)" >&2; exit 1; }
for p in docker.io busybox-static iperf3; do
  dpkg -s "$p" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "$p" >/dev/null
done

W=$(mktemp -d /tmp/vsdb.XXXX)
PLUGIN="vsb$$"
BRIDGE=vsbench0
VSWITCHD_PID=""
declare -A DOCKERD_PID=()
cleanup() {
  set +e
  for name in "${!DOCKERD_PID[@]}"; do
    local h="unix://$W/$name/docker.sock"
    ids=$(docker -H "$h" ps -aq 2>/dev/null); [ -n "$ids" ] && docker -H "$h" rm -f $ids >/dev/null 2>&1
    for n in $(docker -H "$h" network ls --filter type=custom -q 2>/dev/null); do docker -H "$h" network rm "$n" >/dev/null 2>&1; done
    kill "${DOCKERD_PID[$name]}" 2>/dev/null
    for _ in $(seq 100); do kill -0 "${DOCKERD_PID[$name]}" 2>/dev/null || break; sleep 0.1; done
  done
  [ -n "$VSWITCHD_PID" ] && kill "$VSWITCHD_PID" 2>/dev/null && wait "$VSWITCHD_PID" 2>/dev/null
  ip link del "$BRIDGE" 2>/dev/null
  grep " $W/" /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT INT TERM

mkdir -p "$W/rootfs/bin"; for d in etc proc sys dev tmp run; do mkdir -p "$W/rootfs/$d"; done
cp /bin/busybox "$W/rootfs/bin/"; for a in sh sleep ip; do ln -s busybox "$W/rootfs/bin/$a"; done
tar -C "$W/rootfs" -cf "$W/rootfs.tar" .

start_dockerd() { # NAME EXTRA-ARGS...
  local name=$1; shift
  mkdir -p "$W/$name"
  dockerd --data-root "$W/$name/data" --exec-root "$W/$name/exec" --pidfile "$W/$name/docker.pid" -H "unix://$W/$name/docker.sock" \
    --storage-driver vfs --iptables=false --exec-opt native.cgroupdriver=cgroupfs "$@" >"$W/$name/dockerd.log" 2>&1 &
  DOCKERD_PID[$name]=$!
  for _ in $(seq 300); do docker -H "unix://$W/$name/docker.sock" info >/dev/null 2>&1 && break; sleep 0.1; done
  docker -H "unix://$W/$name/docker.sock" import "$W/rootfs.tar" localhost/busybox:latest >/dev/null
}

# One direction a run: a -> b, then b -> a; prints Gbit/s per run.
measure() { # NAME NETWORK
  local h="unix://$W/$1/docker.sock" net=$2
  for c in a b; do docker -H "$h" run -d --net "$net" --name "$1-$c" localhost/busybox:latest sleep 600 >/dev/null; done
  local pa pb ipb
  pa=$(docker -H "$h" inspect -f '{{.State.Pid}}' "$1-a"); pb=$(docker -H "$h" inspect -f '{{.State.Pid}}' "$1-b")
  ipb=$(docker -H "$h" inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$1-b")
  for r in $(seq "$RUNS"); do
    nsenter --net=/proc/$pb/ns/net iperf3 -s -1 -p 5299 >/dev/null 2>&1 &
    local srv=$!
    for _ in $(seq 50); do nsenter --net=/proc/$pb/ns/net ss -ltn 2>/dev/null | grep -q ':5299 ' && break; sleep 0.1; done
    nsenter --net=/proc/$pa/ns/net timeout $((SECONDS_PER_RUN + 20)) iperf3 -c "$ipb" -p 5299 -t "$SECONDS_PER_RUN" -J >"$W/$1-$r.json"
    wait $srv 2>/dev/null || true
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print('%.2f' % (d['end']['sum_received']['bits_per_second']/1e9))" "$W/$1-$r.json"
  done
}

echo "== vswitch network (remote driver '$PLUGIN', TAP ports with offloads)"
"$VSWITCHD" --socket "$W/vswitchd.sock" --state "$W/state.db" --docker-plugin "/run/docker/plugins/$PLUGIN.sock" >"$W/vswitchd.log" 2>&1 &
VSWITCHD_PID=$!
for _ in $(seq 100); do [ -S "/run/docker/plugins/$PLUGIN.sock" ] && break; sleep 0.1; done
start_dockerd vs --bridge=none
docker -H "unix://$W/vs/docker.sock" network create -d "$PLUGIN" --ipam-driver "$PLUGIN" --subnet 10.92.0.0/24 bench-net >/dev/null
VS=$(measure vs bench-net)

echo "== Docker's bridge network (bridge $BRIDGE, 10.93.0.0/24, veth pairs)"
ip link add "$BRIDGE" type bridge
ip addr add 10.93.0.1/24 dev "$BRIDGE"
ip link set "$BRIDGE" up
start_dockerd br --bridge "$BRIDGE" --ip-forward=false --ip-masq=false
BR=$(measure br bridge)

echo
echo "| network | Gbit/s per run (a -> b, ${SECONDS_PER_RUN} s each) |"
echo "|---|---|"
echo "| vswitch (remote driver, TAP) | $(echo $VS | tr ' ' '/') |"
echo "| Docker bridge (Linux bridge, veth) | $(echo $BR | tr ' ' '/') |"
