#!/usr/bin/env bash
# Builds the benchmarks in Release and runs them all with BenchmarkDotNet.
#   bench/run-benchmarks.sh                 short job (1 launch, 3 warm-up, 3 measured iterations)
#   bench/run-benchmarks.sh --full          BenchmarkDotNet's default job (much longer)
#   bench/run-benchmarks.sh --filter '*MacTable*'   any further arguments go to BenchmarkDotNet
# Results (markdown, csv, html, logs) go to bench/BenchmarkDotNet.Artifacts/results.
set -euo pipefail
cd "$(dirname "$0")"
BENCH_DIR=$(pwd)
PROJECT="$BENCH_DIR/VSwitch.Benchmarks/VSwitch.Benchmarks.csproj"
ARTIFACTS="$BENCH_DIR/BenchmarkDotNet.Artifacts"

job=(--job short)
filter=(--filter '*')
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --full) job=() ;;
    --filter) filter=(--filter "$2"); shift ;;
    *) extra+=("$1") ;;
  esac
  shift
done

echo "==> building $PROJECT (Release)"
dotnet build "$PROJECT" -c Release -nologo -v quiet

echo "==> running benchmarks (${job[*]:-default job})"
dotnet "$BENCH_DIR/VSwitch.Benchmarks/bin/Release/net10.0/VSwitch.Benchmarks.dll" \
  "${filter[@]}" "${job[@]}" --memory --artifacts "$ARTIFACTS" "${extra[@]}"

echo "==> markdown reports:"
ls -1 "$ARTIFACTS"/results/*.md
