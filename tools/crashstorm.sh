#!/usr/bin/env bash
# Crash storm: SIGKILL vswitchd at random moments during bursts of API writes, N times, and check after
# every restart that each acknowledged write is there, whole, and that nothing half-applied or unknown is.
#
#   tools/crashstorm.sh [--runs N] [--seed S] [--writers W] [--max-delay-ms MS] [--keep]
#
# One temporary folder with its own --socket and --state (no config file). Per run:
#   1. start vswitchd; it must answer `vsctl show` within 30 s (it must always start, else FAIL);
#   2. check the state it came back with against the model (all runs so far), see below;
#   3. W writers in the background, each a sequence of `vsctl` writes with keys of its own:
#      rules add (unique priority, cookie and nw_dst), rules del --strict of one it added, network add
#      (unique name and /24), route add --via an address in one of its networks, route del, network rm
#      of one without routes. Before each write it journals TRY, after exit 0 ACK: a write counts as
#      acknowledged only when vsctl exited 0. At the first failure (the daemon gone) a writer stops;
#   4. after a random delay in [0, MS] ms, SIGKILL vswitchd by its PID, wait for the writers.
# The check (after each restart, and once more at the end): for every rule, network and static route
#   - acknowledged add, not deleted since          -> listed, and whole (priority, cookie, match,
#                                                    actions; subnet, gateway; via and network);
#   - acknowledged delete                          -> not listed;
#   - its last write was in flight at the kill     -> either (what is seen is adopted for later runs),
#                                                    but if listed it must be whole;
#   - never written by this script                 -> must not be listed (nothing appears from nowhere);
#   - a listed route's network must be listed with the subnet that holds its gateway.
# A write refused with a definite answer (exit 2, 3, 4 or 6) is a failure too: every write is valid.
# Prints one line per run and a summary line:
#   crashstorm: OK runs=N writes-acked=A writes-unacked=U kills=K restarts=R seconds=T
# Exit 0 when all runs pass, 1 at the first violation (with what was wrong), 2 on bad usage.
# Environment: VSWITCHD and VSCTL override the binaries (default: this repository's Release build).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VSWITCHD=${VSWITCHD:-$ROOT/vswitch/VSwitchd/bin/Release/net10.0/vswitchd}
VSCTL=${VSCTL:-$ROOT/tools/vsctl/bin/Release/net10.0/vsctl}
RUNS=100; SEED=$(( $(date +%s) % 100000 )); WRITERS=3; MAX_DELAY_MS=2000; KEEP=0
OPS_PER_WRITER=40   # bound on each writer's burst (it usually dies with the daemon first)

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=${2:?}; shift 2 ;;
    --seed) SEED=${2:?}; shift 2 ;;
    --writers) WRITERS=${2:?}; shift 2 ;;
    --max-delay-ms) MAX_DELAY_MS=${2:?}; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage ;;
    *) echo "crashstorm: unknown argument '$1'" >&2; usage ;;
  esac
done
for n in "$RUNS" "$SEED" "$WRITERS" "$MAX_DELAY_MS"; do
  [[ $n =~ ^[0-9]+$ ]] || { echo "crashstorm: not a number: '$n'" >&2; exit 2; }
done
[ "$RUNS" -ge 1 ] && [ "$RUNS" -le 300 ] || { echo "crashstorm: --runs must be 1..300 (keys are unique per run)" >&2; exit 2; }
[ "$WRITERS" -ge 1 ] && [ "$WRITERS" -le 4 ] || { echo "crashstorm: --writers must be 1..4" >&2; exit 2; }
for b in "$VSWITCHD" "$VSCTL"; do [ -x "$b" ] || { echo "crashstorm: $b is not built (dotnet build VSwitch.sln -c Release)" >&2; exit 2; }; done
command -v python3 >/dev/null || { echo "crashstorm: needs python3 for the check" >&2; exit 2; }

DIR=$(mktemp -d /tmp/vscrash.XXXXXX)
SOCK=$DIR/vswitchd.sock; STATE=$DIR/state.db; LOG=$DIR/vswitchd.log
DPID=; WPIDS=()
cleanup() {
  for p in "${WPIDS[@]}"; do kill "$p" 2>/dev/null; done
  if [ -n "$DPID" ]; then kill -KILL "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; fi
  if [ "$KEEP" = 1 ]; then echo "crashstorm: kept $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

vsctl() { "$VSCTL" --socket "$SOCK" "$@"; }
fail() {
  echo "crashstorm: FAIL run $run: $*"
  echo "crashstorm: seed $SEED; last lines of vswitchd's log:"; tail -n 15 "$LOG" | sed 's/^/  | /'
  exit 1
}

start_daemon() {
  "$VSWITCHD" --socket "$SOCK" --state "$STATE" >> "$LOG" 2>&1 &
  DPID=$!
  local deadline=$((SECONDS + 30))
  until vsctl show > /dev/null 2>&1; do
    kill -0 "$DPID" 2>/dev/null || { wait "$DPID"; local rc=$?; DPID=; fail "vswitchd exited $rc at start"; }
    [ $SECONDS -lt $deadline ] || fail "vswitchd did not answer 'vsctl show' within 30 s"
    sleep 0.1
  done
}

# check LABEL: lists rules, networks and routes and checks them against the model and the journals.
check() {
  vsctl --json rules ls > "$DIR/rules.json" || fail "vsctl rules ls failed"
  vsctl --json network ls > "$DIR/networks.json" || fail "vsctl network ls failed"
  vsctl --json route ls > "$DIR/routes.json" || fail "vsctl route ls failed"
  local out
  out=$(python3 - "$DIR" <<'PY'
import json, os, sys, glob
d = sys.argv[1]
model_path = os.path.join(d, "model.json")
model = json.load(open(model_path)) if os.path.exists(model_path) else {}
# Replay the journals of the last burst (one per writer, in its order) over the model.
# model: key -> {"state": "present"|"absent"|"unknown", "spec": {...}}
refusals = []
for j in sorted(glob.glob(os.path.join(d, "journal.*"))):
    pending = None
    for line in open(j):
        kind, op, key, *rest = line.rstrip("\n").split("|")
        spec = json.loads(rest[0]) if rest and rest[0] else None
        if kind == "TRY":
            pending = (op, key, spec)
            e = model.setdefault(key, {"state": "absent", "spec": spec})
            if spec: e["spec"] = spec
            e["state"] = "unknown"
        elif kind == "ACK":
            model[key]["state"] = "present" if op == "add" else "absent"
            pending = None
        elif kind == "NAK":
            rc = int(rest[1]) if len(rest) > 1 else 0
            if rc in (2, 3, 4, 6):
                refusals.append(f"{op} {key} refused with exit {rc}: {rest[2] if len(rest) > 2 else ''}")
            pending = None
    os.remove(j)
seen = {}
for r in json.load(open(os.path.join(d, "rules.json"))):
    if r["priority"] == 0 and r["match"] == "" : continue   # the default rule
    key = "rule:" + r["cookie"]
    seen[key] = {"priority": r["priority"], "cookie": r["cookie"], "match": r["match"], "actions": r["actions"]}
nets = {}
for n in json.load(open(os.path.join(d, "networks.json"))):
    nets[n["name"]] = n
    seen["net:" + n["name"]] = {"subnet": n["subnet"], "gateway": n["gateway"]}
for rt in json.load(open(os.path.join(d, "routes.json"))):
    for p in rt["paths"]:
        if p["kind"] == "connected": continue
        seen["route:" + rt["prefix"]] = {"via": p["via"], "network": p["network"]}
problems = list(refusals)
for key, e in model.items():
    if e["state"] == "present" and key not in seen: problems.append(f"acknowledged {key} {e['spec']} is missing")
    if e["state"] == "absent" and key in seen: problems.append(f"{key} was deleted (acknowledged) but is listed: {seen[key]}")
    if key in seen and seen[key] != e["spec"]: problems.append(f"{key} is not whole: listed {seen[key]}, written {e['spec']}")
for key, s in seen.items():
    if key not in model: problems.append(f"{key} is listed but was never written: {s}")
    if key.startswith("route:"):
        n = nets.get(s["network"])
        if n is None: problems.append(f"{key} is listed but its network {s['network']} is not")
        elif s["via"] and not s["via"].startswith(n["subnet"].rsplit(".", 1)[0] + "."):
            problems.append(f"{key} via {s['via']} is not in its network's subnet {n['subnet']}")
unknown = sum(1 for e in model.values() if e["state"] == "unknown")
# What was in flight is now whatever the daemon has: adopt it.
for key, e in model.items():
    if e["state"] == "unknown": e["state"] = "present" if key in seen else "absent"
json.dump(model, open(model_path, "w"))
present = sum(1 for e in model.values() if e["state"] == "present")
if problems:
    print("VIOLATION " + "; ".join(problems[:10]) + (f" (+{len(problems) - 10} more)" if len(problems) > 10 else ""))
else:
    print(f"ok present={present} in-flight={unknown}")
PY
) || fail "the check itself failed: $out"
  case $out in
    ok*) CHECK_RESULT=${out#ok } ;;
    *) fail "${out#VIOLATION }" ;;
  esac
}

# writer W RUN: a burst of writes, journalled; stops at the first failure.
writer() {
  local w=$1 r=$2 j="$DIR/journal.$w" k=0 u op
  RANDOM=$(( (SEED * 7919 + r * 31 + w) % 32768 ))
  local rules=() nets=() routes=()    # what this writer added in this burst (acknowledged)
  declare -A routed=()                # network -> number of its routes added here
  while [ $k -lt $OPS_PER_WRITER ]; do
    u=$(( r * 200 + w * 50 + k )); k=$((k + 1))
    local pick=$((RANDOM % 100)) key spec cmd
    local a=$((u / 256)) b=$((u % 256))
    if [ $pick -lt 40 ] || { [ $pick -lt 50 ] && [ ${#rules[@]} -eq 0 ]; }; then
      local prio=$((100 + u)) cookie; cookie=$(printf '0x%x' $((0x5000000 + u)))
      key="rule:$cookie"; op=add
      spec="{\"priority\": $prio, \"cookie\": \"$cookie\", \"match\": \"ip,nw_dst=10.250.$a.$b\", \"actions\": \"drop\"}"
      cmd=(rules add "cookie=$cookie,priority=$prio,ip,nw_dst=10.250.$a.$b,actions=drop")
    elif [ $pick -lt 50 ]; then
      local i=$((RANDOM % ${#rules[@]})); local rk=${rules[$i]}
      key="rule:${rk%%|*}"; op=del; spec=""
      cmd=(rules del --strict "${rk#*|}")
      rules=("${rules[@]:0:$i}" "${rules[@]:$((i + 1))}")
    elif [ $pick -lt 72 ] || [ ${#nets[@]} -eq 0 ]; then
      local name="cs$u" x=$((64 + a))
      key="net:$name"; op=add
      spec="{\"subnet\": \"10.$x.$b.0/24\", \"gateway\": \"10.$x.$b.1\"}"
      cmd=(network add "$name" --subnet "10.$x.$b.0/24")
    elif [ $pick -lt 90 ] || [ ${#routes[@]} -eq 0 ]; then
      local n=${nets[$((RANDOM % ${#nets[@]}))]}; local nk=${n%%|*} sub=${n#*|}
      key="route:11.$a.$b.0/24"; op=add
      spec="{\"via\": \"${sub%.0/24}.254\", \"network\": \"$nk\"}"
      cmd=(route add "11.$a.$b.0/24" --via "${sub%.0/24}.254")
    elif [ $pick -lt 95 ]; then
      local i=$((RANDOM % ${#routes[@]})); local rt=${routes[$i]}
      key="route:${rt%%|*}"; op=del; spec=""
      cmd=(route del "${rt%%|*}")
      routes=("${routes[@]:0:$i}" "${routes[@]:$((i + 1))}")
      routed[${rt#*|}]=$(( ${routed[${rt#*|}]:-1} - 1 ))
    else
      local i n="" c
      for c in "${!nets[@]}"; do [ "${routed[${nets[$c]%%|*}]:-0}" = 0 ] && { i=$c; n=${nets[$c]}; break; }; done
      [ -n "$n" ] || continue
      key="net:${n%%|*}"; op=del; spec=""
      cmd=(network rm "${n%%|*}")
      nets=("${nets[@]:0:$i}" "${nets[@]:$((i + 1))}")
    fi
    echo "TRY|$op|$key|$spec" >> "$j"
    local out rc
    out=$(vsctl "${cmd[@]}" 2>&1); rc=$?
    if [ $rc -ne 0 ]; then
      echo "NAK|$op|$key||$rc|$(echo "$out" | head -n 1 | tr '|' '/')" >> "$j"
      return 0
    fi
    echo "ACK|$op|$key|" >> "$j"
    case "$op:$key" in
      add:rule:*) rules+=("${key#rule:}|priority=$prio,ip,nw_dst=10.250.$a.$b") ;;
      add:net:*) nets+=("${key#net:}|10.$((64 + a)).$b.0/24") ;;
      add:route:*) routes+=("${key#route:}|$nk"); routed[$nk]=$(( ${routed[$nk]:-0} + 1 )) ;;
    esac
  done
}

echo "crashstorm: runs=$RUNS seed=$SEED writers=$WRITERS max-delay=${MAX_DELAY_MS}ms dir=$DIR"
RANDOM=$SEED
t0=$SECONDS; kills=0; restarts=0; acked=0; unacked=0; run=0
start_daemon
check
for run in $(seq 1 "$RUNS"); do
  WPIDS=()
  for w in $(seq 1 "$WRITERS"); do writer "$w" "$run" & WPIDS+=($!); done
  delay=$(( (RANDOM * 32768 + RANDOM) % (MAX_DELAY_MS + 1) ))
  sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
  kill -KILL "$DPID" 2>/dev/null || fail "vswitchd (pid $DPID) was not running at the kill"
  wait "$DPID" 2>/dev/null; DPID=; kills=$((kills + 1))
  for p in "${WPIDS[@]}"; do wait "$p"; done; WPIDS=()
  a=$(cat "$DIR"/journal.* 2>/dev/null | grep -c '^ACK'); n=$(cat "$DIR"/journal.* 2>/dev/null | grep -c '^NAK')
  acked=$((acked + a)); unacked=$((unacked + n))
  start_daemon; restarts=$((restarts + 1))
  check
  printf 'run %d/%d: killed after %d ms, %d writes acknowledged, %d not; restarted; %s\n' "$run" "$RUNS" "$delay" "$a" "$n" "$CHECK_RESULT"
done
# A clean stop at the end, and one more start and check: the last state survives SIGTERM too.
kill -TERM "$DPID"; wait "$DPID"; rc=$?; DPID=
[ $rc = 0 ] || fail "vswitchd exited $rc on SIGTERM"
start_daemon; restarts=$((restarts + 1)); check
echo "crashstorm: OK runs=$RUNS writes-acked=$acked writes-unacked=$unacked kills=$kills restarts=$restarts seconds=$((SECONDS - t0)) seed=$SEED"
