#!/usr/bin/env bash
# Does a password-guessing storm slow token issuance down? (performance issue: "a login storm leaves token
# p99 within 20% of its quiet value".) Starts the release server, then alternately, ROUNDS times:
#   quiet: client_credentials open loop at RATE requests/s for DURATION;
#   storm: the same, while `rsp loadtest --scenario login --wrong-password` runs beside it.
# The storm posts wrong passwords for ever-new unknown usernames from ever-new loopback source
# addresses (127.1.0.0 onwards, 20 attempts each), as a credential-stuffing botnet would: the server's
# per-account, per-IP and per-pair throttle counters all stay below their allowances, so every attempt
# costs the server an Argon2 hash (a storm from one address would be throttled to cheap 429s after 100
# attempts). Prints the median p99 of each, their ratio, and the storm's attempts/s and errors
# (an error there is mostly a 429: an attempt the throttle answered before Argon2 did).
#
# Usage: bench/login-storm.sh [ROUNDS] [DURATION] [RATE] [STORM_CONNECTIONS]
#        (defaults: 3 rounds, 10s, 2000 requests/s, 32 storm connections)
# RSP_BIN=path runs another build of the server (the load generators stay this tree's build).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
DURATION=${2:-10s}
RATE=${3:-2000}
STORM=${4:-32}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rsp-target}"

cargo build --release --locked -p rsp >&2
RSP="$CARGO_TARGET_DIR/release/rsp"
SERVER=${RSP_BIN:-$RSP}

# shellcheck source=bench/lib.sh
source bench/lib.sh

RUST_LOG=warn "$SERVER" serve --data-dir "$WORK/data" --listen 127.0.0.1:18080 --ops-listen 127.0.0.1:19090 \
  >"$WORK/rsp.log" 2>&1 &
pids+=($!)
wait_for http://127.0.0.1:19090/health/ready

seconds() { python3 -c 'import sys; t=sys.argv[1]; print(float(t[:-2])/1000 if t.endswith("ms") else float(t.rstrip("s")))' "$1"; }
# The storm starts 2 s before the measured run and outlasts it (2 s warm-up, the run, 2 s to spare).
STORM_SECS=$(python3 -c "print($(seconds "$DURATION") + 6)")

# One client_credentials run: prints "p99_ms requests_per_sec errors".
tokens() {
  "$RSP" loadtest --scenario client-credentials --rate "$RATE" --connections 64 --duration "$DURATION" --warmup 2s \
    --data-dir "$WORK/data" --json 2>/dev/null |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["latency_ms"]["p99"], r["requests_per_sec"], r["errors"])'
}

quiet="" stormy="" storms=""
for round in $(seq 1 "$ROUNDS"); do
  echo "bench: round $round of $ROUNDS: quiet" >&2
  quiet+="$(tokens)"$'\n'
  echo "bench: round $round of $ROUNDS: during a login storm" >&2
  "$RSP" loadtest --scenario login --wrong-password --connections "$STORM" --warmup 0s --duration "${STORM_SECS}s" \
    --data-dir "$WORK/data" --json >"$WORK/storm.json" 2>/dev/null &
  storm_pid=$!
  sleep 2
  stormy+="$(tokens)"$'\n'
  wait "$storm_pid"
  storms+="$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["requests_per_sec"], r["errors"], r["requests"])' "$WORK/storm.json")"$'\n'
done

python3 - "$ROUNDS" "$DURATION" "$RATE" "$STORM" "$quiet" "$stormy" "$storms" <<'EOF'
import statistics, sys
rounds, duration, rate, storm = sys.argv[1:5]
rows = lambda text: [list(map(float, line.split())) for line in text.strip().splitlines()]
quiet, stormy, storms = rows(sys.argv[5]), rows(sys.argv[6]), rows(sys.argv[7])
q, s = statistics.median(r[0] for r in quiet), statistics.median(r[0] for r in stormy)
print(f"client_credentials open loop at {rate}/s, {rounds} rounds of {duration}, alternating quiet / storm; medians")
print()
print("| | token p99 ms | token req/s | token errors |")
print("|---|---|---|---|")
print(f"| quiet | {q:.3f} | {statistics.median(r[1] for r in quiet):,.0f} | {sum(int(r[2]) for r in quiet)} |")
print(f"| login storm | {s:.3f} | {statistics.median(r[1] for r in stormy):,.0f} | {sum(int(r[2]) for r in stormy)} |")
print()
print(f"token p99 storm / quiet: {s / q if q else float('inf'):.2f} (target: at most 1.20)")
print(f"storm: {storm} connections, {statistics.median(r[0] for r in storms):,.1f} wrong-password logins/s answered 401, "
      f"{sum(int(r[1]) for r in storms)} errors (429s mostly) of {sum(int(r[2]) for r in storms)} attempts")
EOF
