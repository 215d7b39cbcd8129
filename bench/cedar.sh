#!/usr/bin/env bash
# The Cedar side by side (performance issue), on the peers' synthetic workload (100 policies, ~1,000
# entities; the first 2,000 of its requests cycled, as the peer's wrk script does), alternately, ROUNDS
# times, medians of decisions/s:
#   (a) in process: the engine on two threads, through the code a decision takes in the server with the
#       decision cache off, minus HTTP, authentication and JSON (rsp-policy's `cedar_throughput` example);
#   (b) rsp over HTTP, decision cache off (`policy_decision_cache = false`), `rsp loadtest --scenario authorize`;
#   (b') the same with the audit of denied decisions off (`audit_denied_decision_sample_rate = 0`; by
#       default every denial becomes a `decision.denied` event in the audit trail, written through the
#       event bus), to show what that audit costs;
#   (c) rsp over HTTP, decision cache on (the default);
#   (d) rsp's batch endpoint (`--scenario authorize-batch`, 100 per request), cache off and on;
#   (e) cedar-agent (permitio's Cedar HTTP server, from crates.io) if it was built: CEDAR_AGENT=path, default
#       /tmp/cedar-agent/bin/cedar-agent (`cargo install --root /tmp/cedar-agent cedar-agent`); skipped
#       with the reason printed otherwise. The issue's yardstick is its fork on Cedar 4.7, which is not
#       published; crates.io has only upstream cedar-agent.
#   (f) the HTTP floor: `rsp`'s example `http_floor`, the same tokio, axum and hyper stack answering a fixed
#       JSON object to every request, no authentication, parsing or decision. floor / (a) is the highest
#       "HTTP / in process" ratio any server measured this way could show on this box.
# Every HTTP run uses the same yardstick: `rsp loadtest`, closed loop, CONNECTIONS connections, HTTP/1.1.
# Prints the table and the ratios the issue asks for.
#
# Usage: bench/cedar.sh [ROUNDS] [DURATION] [CONNECTIONS]   (defaults: 3 rounds, 10s, 32)
# The workload is generated with $RSP_PEERS_DIR/cedar-workload/gen_workload.py (default ../shared/peers).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
DURATION=${2:-10s}
CONNECTIONS=${3:-32}
PEERS=${RSP_PEERS_DIR:-../shared/peers}
CEDAR_AGENT=${CEDAR_AGENT:-/tmp/cedar-agent/bin/cedar-agent}
if [ ! -f "$PEERS/cedar-workload/gen_workload.py" ]; then
  echo "bench: no cedar workload generator in $PEERS (set RSP_PEERS_DIR to the shared peers directory)" >&2
  exit 1
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rsp-target}"

cargo build --release --locked -p rsp >&2
cargo build --release --locked -p rsp-policy --example cedar_throughput >&2
cargo build --release --locked -p rsp --example http_floor >&2
RSP="$CARGO_TARGET_DIR/release/rsp"
FLOOR="$CARGO_TARGET_DIR/release/examples/http_floor"
INPROC="$CARGO_TARGET_DIR/release/examples/cedar_throughput"

# shellcheck source=bench/lib.sh
source bench/lib.sh

WORKLOAD="$WORK/workload"
mkdir -p "$WORKLOAD"
python3 "$PEERS/cedar-workload/gen_workload.py" "$WORKLOAD" >&2
# The engine evaluates only the policies whose scope matches a request: first prove, on every request of
# the workload, that its answers are Cedar's over the whole set.
verified=$("$INPROC" "$WORKLOAD" --verify)
echo "bench: $verified" >&2

# Three servers: decision cache off, off without the denial audit, and on.
RSP_POLICY_DECISION_CACHE=false RUST_LOG=warn "$RSP" serve --data-dir "$WORK/off" --listen 127.0.0.1:18081 \
  --ops-listen 127.0.0.1:19091 >"$WORK/off.log" 2>&1 &
pids+=($!)
RSP_POLICY_DECISION_CACHE=true RUST_LOG=warn "$RSP" serve --data-dir "$WORK/on" --listen 127.0.0.1:18082 \
  --ops-listen 127.0.0.1:19092 >"$WORK/on.log" 2>&1 &
pids+=($!)
RSP_POLICY_DECISION_CACHE=false RSP_AUDIT_DENIED_DECISION_SAMPLE_RATE=0 RUST_LOG=warn "$RSP" serve \
  --data-dir "$WORK/quiet" --listen 127.0.0.1:18083 --ops-listen 127.0.0.1:19093 >"$WORK/quiet.log" 2>&1 &
pids+=($!)
wait_for http://127.0.0.1:19091/health/ready
wait_for http://127.0.0.1:19092/health/ready
wait_for http://127.0.0.1:19093/health/ready
"$FLOOR" 127.0.0.1:18280 >"$WORK/floor.log" 2>&1 &
pids+=($!)
wait_for http://127.0.0.1:18280/ready any

agent_reason=""
if [ ! -x "$CEDAR_AGENT" ]; then
  agent_reason="cedar-agent not built at $CEDAR_AGENT (cargo install --root /tmp/cedar-agent cedar-agent)"
else
  # Errors only: at its default level it logs every request, which would be measured as its cost.
  "$CEDAR_AGENT" --addr 127.0.0.1 --port 18180 --log-level error >"$WORK/agent.log" 2>&1 &
  pids+=($!)
  wait_for http://127.0.0.1:18180/v1/ any
  curl -fsS -X PUT -H 'Content-Type: application/json' --data-binary @"$WORKLOAD/policies.json" \
    http://127.0.0.1:18180/v1/policies >/dev/null || agent_reason="cedar-agent refused the workload's policies"
  curl -fsS -X PUT -H 'Content-Type: application/json' --data-binary @"$WORKLOAD/data.json" \
    http://127.0.0.1:18180/v1/data >/dev/null || agent_reason="cedar-agent refused the workload's entities"
fi

secs=$(python3 -c 'import sys; t=sys.argv[1]; print(float(t[:-2])/1000 if t.endswith("ms") else float(t.rstrip("s")))' "$DURATION")
common=(--connections "$CONNECTIONS" --duration "$DURATION" --warmup 2s --cedar-workload "$WORKLOAD" --json)
# One HTTP run: prints "decisions_per_sec p99_ms errors".
measure() {
  "$RSP" loadtest "$@" "${common[@]}" 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(r["decisions_per_sec"] or r["requests_per_sec"], r["latency_ms"]["p99"], r["errors"])'
}

declare -A results
for round in $(seq 1 "$ROUNDS"); do
  echo "bench: round $round of $ROUNDS" >&2
  results[inproc]+="$("$INPROC" "$WORKLOAD" --threads 2 --duration "$secs" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["decisions_per_sec"], 0, 0)')"$'\n'
  results[off]+="$(measure --scenario authorize --server http://127.0.0.1:18081 --data-dir "$WORK/off")"$'\n'
  results[quiet]+="$(measure --scenario authorize --server http://127.0.0.1:18083 --data-dir "$WORK/quiet")"$'\n'
  results[on]+="$(measure --scenario authorize --server http://127.0.0.1:18082 --data-dir "$WORK/on")"$'\n'
  results[batch]+="$(measure --scenario authorize-batch --server http://127.0.0.1:18081 --data-dir "$WORK/off")"$'\n'
  results[batch_on]+="$(measure --scenario authorize-batch --server http://127.0.0.1:18082 --data-dir "$WORK/on")"$'\n'
  if [ -z "$agent_reason" ]; then
    results[agent]+="$(measure --scenario authorize --authorize-url http://127.0.0.1:18180/v1/is_authorized)"$'\n'
  fi
  results[floor]+="$(measure --scenario authorize --authorize-url http://127.0.0.1:18280/authorize)"$'\n'
done

echo "Decisions of the engine (scope-sliced) against Cedar over the whole set, every workload request: $verified"
echo
python3 - "$ROUNDS" "$DURATION" "$CONNECTIONS" "$agent_reason" "${results[inproc]}" "${results[off]}" \
  "${results[quiet]}" "${results[on]}" "${results[batch]}" "${results[batch_on]}" "${results[agent]:-}" \
  "${results[floor]}" <<'EOF'
import statistics, sys
rounds, duration, connections, agent_reason = sys.argv[1:5]
def parse(text):
    rows = [list(map(float, line.split())) for line in text.strip().splitlines()]
    if not rows:
        return None
    return statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows), int(sum(r[2] for r in rows))
inproc, off, quiet, on, batch, batch_on, agent, floor = (parse(t) for t in sys.argv[5:13])
print(f"Cedar workload (100 policies, ~1,000 entities, 2,000 distinct requests); {rounds} rounds of {duration}, "
      f"alternating; HTTP: closed loop, {connections} connections; medians")
print()
print("| | decisions/s | p99 ms | errors |")
print("|---|---|---|---|")
rows = [("(a) Cedar in process, 2 threads, no cache", inproc), ("(b) rsp HTTP, decision cache off", off),
        ("(b') rsp HTTP, decision cache off, denial audit off", quiet),
        ("(c) rsp HTTP, decision cache on", on), ("(d) rsp batch endpoint (100 per request), cache off", batch),
        ("(d) rsp batch endpoint (100 per request), cache on", batch_on),
        ("(e) cedar-agent (upstream, crates.io)", agent),
        ("(f) HTTP floor: a fixed answer, no work (examples/http_floor.rs)", floor)]
for name, row in rows:
    if row is None:
        print(f"| {name} | skipped: {agent_reason} | | |")
    elif row is inproc:
        print(f"| {name} | {row[0]:,.0f} | | |")
    else:
        print(f"| {name} | {row[0]:,.0f} | {row[1]:.2f} | {row[2]} |")
print()
ratio = lambda a, b: f"{a[0] / b[0]:.2f}" if a and b and b[0] else "n/a"
print(f"HTTP cache off / in process:   {ratio(off, inproc)} (target >= 0.90)")
print(f"  the same, denial audit off:  {ratio(quiet, inproc)}")
print(f"  the most any HTTP server could show here (floor / in process): {ratio(floor, inproc)}")
print(f"HTTP cache off / floor:        {ratio(off, floor)}")
print(f"HTTP cache off / cedar-agent:  {ratio(off, agent)} (target >= 3 against the cedar-agent fork)")
print(f"HTTP cache on / cedar-agent:   {ratio(on, agent)} (target >= 10 against the cedar-agent fork)")
print(f"batch / single, cache on:      {ratio(batch_on, on)} (target >= 10)")
print(f"batch / single, cache off:     {ratio(batch, off)} (bound by Cedar itself: see (a))")
EOF
