#!/usr/bin/env bash
# Publishes the API's clients, vsctl and vswitch-cni, with Native AOT into one folder (default .artifacts/native):
# two self-contained native executables that start in milliseconds (a container runtime runs vswitch-cni for every
# container). tools/install.sh, tools/test.sh and bench/startup.sh all publish through this script.
#
#   tools/publish-native.sh [DIR]
#
# Native AOT links with clang: Debian's clang-14 (and zlib1g-dev for -lz), installed here when missing (as root).
# Exit status 3: they are missing and cannot be installed (the message says why); 1: the publish failed.
# Any warning fails the publish (-warnaserror): trimming and AOT warnings are to be fixed, not silenced.
# The build goes to .artifacts/publish (UseArtifactsOutput), away from the projects' bin/ and obj/ that
# `dotnet build` and the managed tests use, so the two never rebuild each other's outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$(pwd)
OUT=${1:-$ROOT_DIR/.artifacts/native}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

say() { printf '==> %s\n' "$*"; }

case "$(uname -m)" in
  x86_64) RID=linux-x64 ;;
  aarch64) RID=linux-arm64 ;;
  *) echo "publish-native: no Native AOT runtime identifier for $(uname -m)" >&2; exit 3 ;;
esac

missing=()
for p in clang-14 zlib1g-dev; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "publish-native: Native AOT needs Debian's ${missing[*]} (the linker); run as root to install them" >&2
    exit 3
  fi
  say "installing ${missing[*]} (Native AOT links with clang-14)"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null 2>&1 ||
         { apt-get update -qq -o DPkg::Lock::Timeout=600 >/dev/null 2>&1 &&
           apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null; }; }; then
    echo "publish-native: apt-get could not install ${missing[*]}" >&2
    exit 3
  fi
fi

for project in vsctl vswitch-cni; do
  say "publishing $project with Native AOT ($RID, clang-14) to $OUT"
  if ! dotnet publish "tools/$project" -c Release -r "$RID" -nologo -v quiet -warnaserror \
      -p:PublishAot=true -p:CppCompilerAndLinker=clang-14 \
      -p:UseArtifactsOutput=true -p:ArtifactsPath="$ROOT_DIR/.artifacts/publish" \
      -o "$OUT"; then
    echo "publish-native: publishing $project failed" >&2
    exit 1
  fi
done
say "native clients: $(cd "$OUT" && ls -l vsctl vswitch-cni | awk '{printf "%s %.1f MB  ", $NF, $5 / 1048576}')"
