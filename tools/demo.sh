#!/usr/bin/env bash
# README command 1: three network namespaces ("containers") attached to VSwitch through TAP
# interfaces ping each other and pass a TCP transfer; then the learned MAC table and the port
# counters are shown, and everything is torn down (also on Ctrl-C or failure).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
say() { printf '\n==> %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "demo: run as root (it creates network namespaces and TAP devices): sudo $0" >&2
  exit 1
fi

PACKAGES=(iproute2 iputils-ping iperf3)
missing=()
for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq -o DPkg::Lock::Timeout=600
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi

say "building vswitchd and vsctl (Release)"
dotnet build vswitch/VSwitchd -c Release -nologo -v quiet >/dev/null
dotnet build tools/vsctl -c Release -nologo -v quiet >/dev/null
VSWITCHD="$REPO/vswitch/VSwitchd/bin/Release/net10.0/vswitchd"
VSCTL="$REPO/tools/vsctl/bin/Release/net10.0/vsctl"

SUFFIX=$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')
WORK=$(mktemp -d /tmp/vswitch-demo-XXXXXX)
SOCK="$WORK/vswitchd.sock"
NS=(vsd-$SUFFIX-1 vsd-$SUFFIX-2 vsd-$SUFFIX-3)
PID=""

cleanup() {
  set +e
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID"; wait "$PID" 2>/dev/null
  fi
  for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "creating namespaces ${NS[*]}"
for n in "${NS[@]}"; do ip netns add "$n"; ip -n "$n" link set lo up; done

cat > "$WORK/vswitch.json" <<JSON
{
  "networks": [ { "name": "demo", "macAgingSeconds": 300 } ],
  "ports": [
    { "name": "vsd${SUFFIX}a", "type": "tap", "network": "demo", "netns": "${NS[0]}", "addresses": ["10.250.0.1/24"] },
    { "name": "vsd${SUFFIX}b", "type": "tap", "network": "demo", "netns": "${NS[1]}", "addresses": ["10.250.0.2/24"] },
    { "name": "vsd${SUFFIX}c", "type": "tap", "network": "demo", "netns": "${NS[2]}", "addresses": ["10.250.0.3/24"] }
  ]
}
JSON
say "starting vswitchd with $WORK/vswitch.json"
"$VSWITCHD" --config "$WORK/vswitch.json" --socket "$SOCK" --state "$WORK/state.db" > "$WORK/vswitchd.log" 2>&1 &
PID=$!
for _ in $(seq 300); do
  [ -S "$SOCK" ] && break
  kill -0 "$PID" 2>/dev/null || { cat "$WORK/vswitchd.log"; echo "demo: vswitchd exited" >&2; exit 1; }
  sleep 0.1
done
[ -S "$SOCK" ] || { cat "$WORK/vswitchd.log"; echo "demo: vswitchd did not open its socket within 30 s" >&2; exit 1; }
export VSWITCH_SOCKET="$SOCK"
"$VSCTL" show

say "ping between the namespaces (ARP is broadcast, flooded by the switch)"
ip netns exec "${NS[0]}" ping -c 3 -i 0.2 -W 2 10.250.0.2
ip netns exec "${NS[1]}" ping -c 3 -i 0.2 -W 2 10.250.0.3
ip netns exec "${NS[2]}" ping -c 3 -i 0.2 -W 2 10.250.0.1

say "iperf3: TCP for 5 s from ${NS[0]} to ${NS[1]}"
ip netns exec "${NS[1]}" iperf3 -s -1 -B 10.250.0.2 >/dev/null 2>&1 &
IPERF=$!
for _ in $(seq 50); do ip netns exec "${NS[1]}" ss -ltn 2>/dev/null | grep -q ':5201' && break; sleep 0.1; done
ip netns exec "${NS[0]}" iperf3 -c 10.250.0.2 -t 5 -f m | tail -n 4
wait "$IPERF" 2>/dev/null || true

say "the learned MAC table (vsctl fdb show)"
"$VSCTL" fdb show
say "port counters and per-stage cost (vsctl stats)"
"$VSCTL" stats

say "stopping vswitchd (its TAP devices go with it)"
kill -TERM "$PID"; wait "$PID" || true; PID=""
echo "demo: OK"
