#!/usr/bin/env bash
# Removes what tools/install.sh installed, saying what it does as it goes.
#
#   tools/uninstall.sh [--prefix DIR] [--purge]
#
# When systemd runs this machine and its vswitchd.service is the unit this install put there, it stops and disables
# it first (then reloads systemd). It removes exactly the files in PREFIX/lib/vswitch/install-manifest (the
# programs, the unit, the CNI plugin, completion and manual pages) and the folders the install created, once empty.
# The configuration (SYSCONFDIR/vswitch/config.json) is kept if it was changed since install, and the state
# database (STATEDIR/state.db) is kept; --purge removes both. The groups vswitch-admin and vswitch-read go when the
# install created them. PREFIX defaults to /usr/local.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=/usr/local
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) PREFIX=${1#*=}; shift ;;
    --purge) args+=(--purge); shift ;;
    -h|--help) sed -n '4p' "$0" | sed 's/^# *//'; exit 0 ;;
    *) echo "uninstall.sh: unknown argument '$1'" >&2; sed -n '4p' "$0" | sed 's/^# *//' >&2; exit 2 ;;
  esac
done
say() { printf '==> %s\n' "$*"; }
if [ ! -d "$PREFIX" ]; then say "nothing installed under $PREFIX"; exit 0; fi
PREFIX=$(cd "$PREFIX" && pwd)
PATHS=$PREFIX/lib/vswitch/install-paths
UNIT_DIR=$PREFIX/lib/systemd/system
[ -f "$PATHS" ] && UNIT_DIR=$(sed -n 's/^UNIT_DIR=//p' "$PATHS")
UNIT=$UNIT_DIR/vswitchd.service

# systemd as PID 1 (/run/systemd/system exists) and its vswitchd.service loaded from this install's file.
systemd_owns=0
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null && [ -f "$UNIT" ]; then
  loaded=$(systemctl show -p FragmentPath --value vswitchd.service 2>/dev/null || true)
  if [ "$loaded" = "$UNIT" ]; then
    systemd_owns=1
    if systemctl is-active --quiet vswitchd.service; then say "stopping vswitchd.service"; systemctl stop vswitchd.service; fi
    if systemctl is-enabled --quiet vswitchd.service 2>/dev/null; then say "disabling vswitchd.service"; systemctl disable --quiet vswitchd.service; fi
  fi
fi

bash tools/install.sh --uninstall --prefix "$PREFIX" "${args[@]}"

if [ "$systemd_owns" = 1 ]; then
  systemctl daemon-reload
  systemctl reset-failed vswitchd.service 2>/dev/null || true
  say "systemd reloaded"
fi
