#!/usr/bin/env bash
# Password logins against the Argon2 cost that bounds them (performance issue: "password logins limited only
# by Argon2 cost"). Each round starts a fresh server and runs `rsp loadtest --scenario login` closed loop (the
# browser flow: authorize, login page, form post, one Argon2id verification each), then reads the server's
# /metrics: the mean time of one Argon2 computation (`rsp_password_hash_seconds`) and how many may run at once
# (`rsp_password_hashing_threads`). threads / mean hash time is what hashing alone allows; logins/s over that
# is the share of it the logins reach: 1.00 means nothing but Argon2 limits them.
#
# Usage: bench/logins.sh [ROUNDS] [DURATION] [CONNECTIONS]   (defaults: 3, 10s, 8)
# RSP_BIN=path runs another build of the server (the load generator stays this tree's build); it must export
# the two metrics.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
DURATION=${2:-10s}
CONNECTIONS=${3:-8}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rsp-target}"

cargo build --release --locked -p rsp >&2
RSP="$CARGO_TARGET_DIR/release/rsp"
SERVER=${RSP_BIN:-$RSP}

# shellcheck source=bench/lib.sh
source bench/lib.sh

# One round's "logins/s errors p99_ms hash_ms threads", from the load test's JSON and the server's metrics.
summarize() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
run = json.load(open(sys.argv[1]))
metrics = {}
for line in open(sys.argv[2]):
    if line.startswith("rsp_password_hash"):
        fields = line.split()
        metrics[fields[0]] = float(fields[-1])
mean = metrics["rsp_password_hash_seconds_sum"] / metrics["rsp_password_hash_seconds_count"]
print(run["requests_per_sec"], run["errors"], run["latency_ms"]["p99"], mean * 1000, metrics["rsp_password_hashing_threads"])
EOF
}

rows=""
for round in $(seq 1 "$ROUNDS"); do
  echo "bench: round $round of $ROUNDS" >&2
  data="$WORK/data-$round"
  RUST_LOG=warn "$SERVER" serve --data-dir "$data" --listen 127.0.0.1:18080 --ops-listen 127.0.0.1:19090 \
    >"$WORK/rsp-$round.log" 2>&1 &
  server=$!
  pids+=("$server")
  wait_for http://127.0.0.1:19090/health/ready
  "$RSP" loadtest --scenario login --connections "$CONNECTIONS" --duration "$DURATION" --warmup 2s \
    --data-dir "$data" --json >"$WORK/login.json" 2>/dev/null
  curl -fsS http://127.0.0.1:19090/metrics >"$WORK/metrics.txt"
  kill "$server"
  wait "$server" 2>/dev/null || true
  rows+="$(summarize "$WORK/login.json" "$WORK/metrics.txt")"$'\n'
done

python3 - "$ROUNDS" "$DURATION" "$CONNECTIONS" "$rows" <<'EOF'
import statistics, sys
rounds, duration, connections, text = sys.argv[1:5]
rows = [list(map(float, line.split())) for line in text.strip().splitlines()]
print(f"rsp loadtest --scenario login, closed loop, {connections} connections, {duration}; a fresh server per round")
print()
print("| round | logins/s | errors | login p99 ms | Argon2 ms per hash | hashing threads | Argon2 allows /s | logins / allowed |")
print("|---|---|---|---|---|---|---|---|")
shares = []
for i, (rate, errors, p99, hash_ms, threads) in enumerate(rows, 1):
    allowed = threads * 1000 / hash_ms
    shares.append(rate / allowed)
    print(f"| {i} | {rate:.1f} | {int(errors)} | {p99:.1f} | {hash_ms:.2f} | {int(threads)} | {allowed:.1f} | {rate / allowed:.2f} |")
print()
print(f"logins / what Argon2 allows, median of {rounds}: {statistics.median(shares):.2f} (1.00: limited only by Argon2)")
EOF
