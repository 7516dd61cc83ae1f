#!/usr/bin/env bash
# Fuzzes one parser with AFL++ through SharpFuzz (FUZZING.md).
#
#   tools/fuzz.sh list                 the targets
#   tools/fuzz.sh TARGET SECONDS       fuzz TARGET for SECONDS, starting from its seed corpus
#   tools/fuzz.sh replay TARGET FILE...  run inputs (a crash) once, in process, and print their exceptions
#
# It installs what it needs (Debian's afl++ as root; the SharpFuzz.CommandLine tool into
# .artifacts/fuzz/tools), publishes tests/VSwitch.Fuzz into .artifacts/fuzz/TARGET/bin, instruments
# the target's assemblies there (never the build the tests use), runs afl-fuzz with the seeds and the
# committed regression cases, and at the end prints executions, exec/s, paths, crashes and hangs
# from afl's fuzzer_stats. Crash inputs are copied to .artifacts/fuzz/findings/TARGET and replayed
# once to show their exceptions. Exit status: 0 no crash, 1 crashes found, 2 usage, 3 set-up failed.
#
# Environment: NICE (default 19: the fuzzer yields the CPU to everything else), FUZZ_TIMEOUT_MS (one
# input, default 5000), FINDINGS (default .artifacts/fuzz/findings).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$(pwd)
FUZZ_PROJECT="$ROOT_DIR/tests/VSwitch.Fuzz"
WORK="$ROOT_DIR/.artifacts/fuzz"
TOOLS="$WORK/tools"
SHARPFUZZ_VERSION=2.3.0
NICE=${NICE:-19}
FUZZ_TIMEOUT_MS=${FUZZ_TIMEOUT_MS:-5000}
FINDINGS=${FINDINGS:-$WORK/findings}

say() { printf '==> %s\n' "$*"; }
die() { printf 'fuzz.sh: %s\n' "$*" >&2; exit "${2:-3}"; }
usage() { echo "usage: tools/fuzz.sh list | TARGET SECONDS | replay TARGET FILE..." >&2; exit 2; }

[ $# -ge 1 ] || usage
mkdir -p "$WORK"

# The fuzz project, published (uninstrumented) once per call into a clean folder; each target then
# gets its own copy, because sharpfuzz rewrites assemblies in place.
publish() {
  say "publishing tests/VSwitch.Fuzz (Release) into $WORK/publish"
  rm -rf "$WORK/publish"
  if ! dotnet publish "$FUZZ_PROJECT/VSwitch.Fuzz.csproj" -c Release -o "$WORK/publish" -nologo -v quiet > "$WORK/publish.log" 2>&1; then
    grep -E "error" "$WORK/publish.log" | sort -u | head -n 20 >&2
    die "the fuzz project did not build, see $WORK/publish.log"
  fi
}

if [ "$1" = list ]; then
  publish
  dotnet "$WORK/publish/VSwitch.Fuzz.dll" list
  exit 0
fi

if [ "$1" = replay ]; then
  [ $# -ge 3 ] || usage
  files=()
  for f in "${@:3}"; do files+=("$(realpath "$f")"); done
  publish
  exec dotnet "$WORK/publish/VSwitch.Fuzz.dll" replay "$2" "${files[@]}"
fi

[ $# -eq 2 ] || usage
TARGET=$1
SECONDS_TO_RUN=$2
[[ "$SECONDS_TO_RUN" =~ ^[0-9]+$ ]] && [ "$SECONDS_TO_RUN" -gt 0 ] || die "SECONDS must be a positive number, not '$SECONDS_TO_RUN'" 2

# ---- what it needs ----
if ! command -v afl-fuzz >/dev/null; then
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || die "afl-fuzz is missing: install Debian's afl++ (as root: apt-get install afl++)"
  say "installing Debian's afl++ (afl-fuzz)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq -o DPkg::Lock::Timeout=600
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 afl++ >/dev/null
fi
if [ ! -x "$TOOLS/sharpfuzz" ]; then
  say "installing the SharpFuzz.CommandLine tool $SHARPFUZZ_VERSION into $TOOLS"
  dotnet tool install --tool-path "$TOOLS" SharpFuzz.CommandLine --version "$SHARPFUZZ_VERSION" > "$WORK/tool-install.log" 2>&1 \
    || die "dotnet tool install SharpFuzz.CommandLine failed, see $WORK/tool-install.log"
fi
say "afl-fuzz: $(command -v afl-fuzz) ($(dpkg-query -W -f='${Version}' afl++ 2>/dev/null || echo '?')); sharpfuzz $SHARPFUZZ_VERSION"

publish
FUZZ="dotnet $WORK/publish/VSwitch.Fuzz.dll"
$FUZZ instrument "$TARGET" > /dev/null 2>&1 || { $FUZZ list >&2; die "no target '$TARGET' (the list is above)" 2; }

# ---- instrument this target's copy ----
RUN="$WORK/$TARGET"
rm -rf "$RUN"
mkdir -p "$RUN"
cp -r "$WORK/publish" "$RUN/bin"
while read -r assembly prefixes; do
  say "instrumenting $assembly${prefixes:+ (only $prefixes)}"
  # shellcheck disable=SC2086 # the prefixes are separate arguments
  "$TOOLS/sharpfuzz" "$RUN/bin/$assembly" $prefixes > "$RUN/instrument.log" 2>&1 \
    || { cat "$RUN/instrument.log" >&2; die "sharpfuzz could not instrument $assembly"; }
done < <($FUZZ instrument "$TARGET")

# ---- the seeds: the committed corpus and every regression case ----
mkdir -p "$RUN/in"
cp "$FUZZ_PROJECT/corpus/$TARGET"/* "$RUN/in/"
if [ -d "$FUZZ_PROJECT/regressions/$TARGET" ]; then
  for f in "$FUZZ_PROJECT/regressions/$TARGET"/*; do [ -f "$f" ] && cp "$f" "$RUN/in/regression-$(basename "$f")"; done
fi
DICT=$($FUZZ dict "$TARGET")
DICT_ARGS=()
[ -n "$DICT" ] && DICT_ARGS=(-x "$FUZZ_PROJECT/dict/$DICT")

# ---- fuzz ----
# AFL_SKIP_BIN_CHECK: the program is `dotnet`, which carries no AFL instrumentation of its own
# (SharpFuzz's assemblies report coverage through AFL's shared memory). AFL_NO_AFFINITY: the cores
# are shared, none is free to bind to. The fork server of a .NET program needs seconds to start.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 \
       AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_FORKSRV_INIT_TMOUT=60000 AFL_NO_CRASH_README=1
AFL_PID=
cleanup() {
  if [ -n "$AFL_PID" ] && kill -0 "$AFL_PID" 2>/dev/null; then
    say "stopping afl-fuzz (pid $AFL_PID)"
    kill -INT "$AFL_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$AFL_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$AFL_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "fuzzing $TARGET for ${SECONDS_TO_RUN}s (nice $NICE, $(ls "$RUN/in" | wc -l) seeds${DICT:+, dictionary $DICT}); afl's log: $RUN/afl.log"
nice -n "$NICE" afl-fuzz -i "$RUN/in" -o "$RUN/out" -t "$FUZZ_TIMEOUT_MS" -m none -V "$SECONDS_TO_RUN" "${DICT_ARGS[@]}" \
  -- dotnet "$RUN/bin/VSwitch.Fuzz.dll" run "$TARGET" > "$RUN/afl.log" 2>&1 &
AFL_PID=$!
# afl-fuzz stops itself after -V seconds; the deadline covers its start-up (calibrating the seeds
# through a .NET fork server) and a stop that never comes.
deadline=$((SECONDS + SECONDS_TO_RUN + 300))
while kill -0 "$AFL_PID" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 1; done
set +e
if kill -0 "$AFL_PID" 2>/dev/null; then say "afl-fuzz overran its time; stopping it"; cleanup; fi
wait "$AFL_PID"; rc=$?
set -e
AFL_PID=
STATS="$RUN/out/default/fuzzer_stats"
if [ ! -f "$STATS" ]; then
  tail -n 30 "$RUN/afl.log" >&2
  die "afl-fuzz ended (status $rc) without fuzzer_stats: see $RUN/afl.log"
fi

stat() { sed -n -E "s/^$1 +: (.*)$/\1/p" "$STATS"; }
execs=$(stat execs_done); run_time=$(stat run_time)
crashes=$(stat saved_crashes); hangs=$(stat saved_hangs)
say "$TARGET: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, afl++ $(stat afl_version)"
printf '%-10s executions %s, %s exec/s over %ss, paths (corpus count) %s, crashes %s, hangs %s, stability %s\n' \
  "$TARGET" "$execs" "$(awk -v e="$execs" -v t="$run_time" 'BEGIN { printf "%.0f", (t > 0 ? e / t : 0) }')" "$run_time" \
  "$(stat corpus_count)" "$crashes" "$hangs" "$(stat stability)"

status=0
if [ "${crashes:-0}" != 0 ] || [ "${hangs:-0}" != 0 ]; then
  mkdir -p "$FINDINGS/$TARGET"
  for kind in crashes hangs; do
    for f in "$RUN/out/default/$kind"/id:*; do
      [ -f "$f" ] || continue
      # afl's names (id:000000,sig:06,...) hold colons; keep them apart from earlier runs.
      cp "$f" "$FINDINGS/$TARGET/$kind-$(date -u +%Y%m%d%H%M%S)-$(basename "$f" | tr ':,' '-_')"
    done
  done
  say "crash and hang inputs copied to $FINDINGS/$TARGET; their exceptions, replayed in process:"
  for f in "$RUN/out/default/crashes"/id:*; do
    [ -f "$f" ] && { $FUZZ replay "$TARGET" "$f" 2>&1 | head -n 12 || true; }
  done
  [ "${crashes:-0}" != 0 ] && status=1
fi
exit $status
