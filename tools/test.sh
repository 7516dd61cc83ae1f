#!/usr/bin/env bash
# The README's test command: installs what the tests need, builds, runs every test project,
# and ends with one line of totals: "N passed, N failed, N skipped".
# As root it installs Debian packages (iproute2, iperf3, tcpdump, ethtool, scapy) and runs the
# integration tests; as a normal user those tests skip, each with its reason.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$(pwd)
CONFIG=${CONFIG:-Release}
OUT="$ROOT_DIR/.artifacts/test"
mkdir -p "$OUT"

say() { printf '==> %s\n' "$*"; }

# Debian packages the integration tests drive (real peers: iproute2, ping, iperf3, tcpdump...).
PACKAGES=(iproute2 iputils-ping curl iperf3 tcpdump ethtool python3-scapy util-linux procps tshark podman runc containernetworking-plugins busybox-static openvswitch-switch)
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

passed=0; failed=0; skipped=0; status=0
for proj in tests/*/*.csproj; do
  name=$(basename "$proj" .csproj)
  say "running $name"
  log="$OUT/$name.log"
  set +e
  dotnet test "$proj" -c "$CONFIG" --no-build -nologo --logger "console;verbosity=normal" 2>&1 | tee "$log" | grep -E "^\s+(Failed|Skipped) |\[FAIL\]|Error Message|^\s+(Assert|Expected|Actual)" 
  rc=${PIPESTATUS[0]}
  set -e
  # The console logger ends with "Total tests: N" and then "Passed: N", "Failed: N", "Skipped: N" lines (zeros omitted).
  if ! grep -qE "^Total tests: [0-9]+" "$log"; then
    say "$name: no summary (the test host failed), see $log"
    failed=$((failed + 1)); status=1; continue
  fi
  count() { sed -n -E "/^Total tests:/,\$ s/^ +$1: +([0-9]+).*/\1/p" "$log" | tail -n 1; }
  p=$(count Passed); f=$(count Failed); s=$(count Skipped)
  p=${p:-0}; f=${f:-0}; s=${s:-0}
  say "$name: $p passed, $f failed, $s skipped"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  [ "$rc" = 0 ] || status=1
done

echo "Totals: $passed passed, $failed failed, $skipped skipped"
exit $status
