#!/usr/bin/env bash
# The README's test command: installs what the tests need, builds, runs every test project,
# and ends with one line of totals: "N passed, N failed, N skipped".
# As root it installs Debian packages (iproute2, iperf3, tcpdump, ethtool, scapy) and runs the
# integration tests; as a normal user those tests skip, each with its reason.
# It also publishes vsctl and vswitch-cni with Native AOT (tools/publish-native.sh) and runs the vsctl, CNI and
# podman test classes a second time against those binaries (VSWITCH_NATIVE_CLIENTS), counted as a run of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$(pwd)
CONFIG=${CONFIG:-Release}
OUT="$ROOT_DIR/.artifacts/test"
mkdir -p "$OUT"

say() { printf '==> %s\n' "$*"; }

# Debian packages the integration tests drive (real peers: iproute2, ping, iperf3, tcpdump...).
# zsh and man-db: the install test checks the completion scripts (zsh -n) and the manual pages (man -l).
PACKAGES=(iproute2 iputils-ping iperf3 tcpdump ethtool python3-scapy util-linux procps tshark nfdump chromium podman runc containernetworking-plugins busybox-static openvswitch-switch curl zsh man-db docker.io ndisc6 etcd-server etcd-client apache2-utils wrk bind9-dnsutils ipvsadm)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
    apt-get update -qq -o DPkg::Lock::Timeout=600
    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
  else
    say "Debian packages present: ${PACKAGES[*]}"
  fi
else
  say "not root: skipping package installation; integration tests will skip"
fi

say "building VSwitch.sln ($CONFIG)"
if ! dotnet build VSwitch.sln -c "$CONFIG" -nologo -v quiet > "$OUT/build.log" 2>&1; then
  grep -E "error" "$OUT/build.log" | sort -u | head -n 40
  echo "Totals: 0 passed, 1 failed, 0 skipped (the build failed)"
  exit 1
fi

# Native AOT clients, for the second run below and for the install test (clang-14 is installed by the script).
NATIVE="$ROOT_DIR/.artifacts/native"
native_skip=
say "publishing vsctl and vswitch-cni with Native AOT (tools/publish-native.sh)"
set +e
tools/publish-native.sh "$NATIVE" > "$OUT/publish-native.log" 2>&1
rc=$?
set -e
case $rc in
  0) ;;
  3) native_skip="clang-14 is not available: $(grep -v '^==>' "$OUT/publish-native.log" | tail -n 1)" ;;
  *) grep -E "error|publish-native" "$OUT/publish-native.log" | sort -u | head -n 20
     native_skip="the Native AOT publish failed (counted as a failure), see $OUT/publish-native.log" ;;
esac

passed=0; failed=0; skipped=0; status=0
if [ "$rc" != 0 ] && [ "$rc" != 3 ]; then failed=1; status=1; fi
# run_tests NAME LOG [dotnet test arguments...]: one run of the test runner, its counts added to the totals.
run_tests() {
  local name=$1 log=$2; shift 2
  say "running $name"
  set +e
  dotnet test "$@" -c "$CONFIG" --no-build -nologo --logger "console;verbosity=normal" 2>&1 | tee "$log" | grep -E "^\s+(Failed|Skipped) |\[FAIL\]|Error Message|^\s+(Assert|Expected|Actual)"
  local rc=${PIPESTATUS[0]}
  set -e
  # The console logger ends with "Total tests: N" and then "Passed: N", "Failed: N", "Skipped: N" lines (zeros omitted).
  if ! grep -qE "^Total tests: [0-9]+" "$log"; then
    say "$name: no summary (the test host failed), see $log"
    failed=$((failed + 1)); status=1; return 0
  fi
  local p f s
  p=$(count "$log" Passed); f=$(count "$log" Failed); s=$(count "$log" Skipped)
  p=${p:-0}; f=${f:-0}; s=${s:-0}
  say "$name: $p passed, $f failed, $s skipped"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  [ "$rc" = 0 ] || status=1
}
count() { sed -n -E "/^Total tests:/,\$ s/^ +$2: +([0-9]+).*/\1/p" "$1" | tail -n 1; }

for proj in tests/*/*.csproj; do
  name=$(basename "$proj" .csproj)
  # tests/VSwitch.Fuzz is a program (the fuzz harnesses, run by tools/fuzz.sh); Core.Tests replays its corpus.
  grep -q 'Microsoft.NET.Test.Sdk' "$proj" || { say "$name: not a test project, skipped"; continue; }
  run_tests "$name" "$OUT/$name.log" "$proj"
done

# The same vsctl, CNI and podman tests against the Native AOT binaries: a run of its own in the totals.
if [ -z "$native_skip" ]; then
  VSWITCH_NATIVE_CLIENTS="$NATIVE" run_tests "VSwitch.Integration.Tests with the Native AOT vsctl and vswitch-cni" \
    "$OUT/VSwitch.Integration.Tests.native.log" tests/VSwitch.Integration.Tests/VSwitch.Integration.Tests.csproj \
    --filter "FullyQualifiedName~Vsctl|FullyQualifiedName~Cni|FullyQualifiedName~Podman"
else
  say "skipping the run with the Native AOT clients: $native_skip"
fi

echo "Totals: $passed passed, $failed failed, $skipped skipped"
exit $status
