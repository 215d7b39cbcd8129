#!/usr/bin/env bash
# Side by side with node-oidc-provider (panva's certified OpenID Provider, the peer in ../shared/peers):
# client_credentials with ES256 JWT access tokens, and introspection, measured with the same yardstick
# (`rsp loadtest`, closed loop) against both servers, alternately (A B A B …) in one run; prints the
# median of each server's rounds, their ratio, and each server's RSS after the run. A third server, the
# HTTP floor (`rsp`'s example `http_floor`: the same tokio, axum and hyper stack answering a fixed JSON
# object, no work at all), is measured the same way: floor / peer is the highest ratio any server on this
# stack could show on this box with the load generator beside it.
#
# Usage: bench/oidc-provider.sh [ROUNDS] [DURATION] [CONNECTIONS]   (defaults: 3 rounds, 10s, 32)
# Peer scripts come from RSP_PEERS_DIR (default ../shared/peers). Needs node and npm (the peer is installed from the npm registry into /tmp/peer-oidc-provider).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
DURATION=${2:-10s}
CONNECTIONS=${3:-32}
PEERS=${RSP_PEERS_DIR:-../shared/peers}
PEER_DIR=/tmp/peer-oidc-provider
if [ ! -f "$PEERS/oidc-provider/setup.sh" ]; then
  echo "bench: no peer scripts in $PEERS (set RSP_PEERS_DIR to the shared peers directory)" >&2
  exit 1
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rsp-target}"

cargo build --release --locked -p rsp >&2
cargo build --release --locked -p rsp --example http_floor >&2
RSP="$CARGO_TARGET_DIR/release/rsp"
FLOOR="$CARGO_TARGET_DIR/release/examples/http_floor"
bash "$PEERS/oidc-provider/setup.sh" "$PEER_DIR" >&2

# shellcheck source=bench/lib.sh
source bench/lib.sh

RUST_LOG=warn "$RSP" serve --data-dir "$WORK/data" --listen 127.0.0.1:18080 --ops-listen 127.0.0.1:19090 \
  >"$WORK/rsp.log" 2>&1 &
pids+=($!)
RSP_PID=$!
(cd "$PEER_DIR" && ALG=ES256 QUIET=1 PORT=13000 exec node server.mjs) >"$WORK/peer.log" 2>&1 &
pids+=($!)
PEER_PID=$!
"$FLOOR" 127.0.0.1:18280 >"$WORK/floor.log" 2>&1 &
pids+=($!)
wait_for http://127.0.0.1:19090/health/ready
wait_for http://127.0.0.1:13000/.well-known/openid-configuration
wait_for http://127.0.0.1:18280/ready any

common=(--connections "$CONNECTIONS" --duration "$DURATION" --warmup 2s --json)
peer=(--token-url http://127.0.0.1:13000/token --client-id bench --client-secret a-long-random-secret)
floor=(--token-url http://127.0.0.1:18280/token --client-id bench --client-secret a-long-random-secret)

# One measurement: prints "requests_per_sec p99_ms errors".
measure() {
  "$RSP" loadtest "$@" "${common[@]}" |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["requests_per_sec"], r["latency_ms"]["p99"], r["errors"])'
}

declare -A results
for round in $(seq 1 "$ROUNDS"); do
  echo "bench: round $round of $ROUNDS" >&2
  results[rsp-cc]+="$(measure --scenario client-credentials --data-dir "$WORK/data")"$'\n'
  results[peer-cc]+="$(measure --scenario client-credentials "${peer[@]}" --scope api:read)"$'\n'
  results[rsp-in]+="$(measure --scenario introspect --data-dir "$WORK/data")"$'\n'
  results[peer-in]+="$(measure --scenario introspect "${peer[@]}" --scope api:read \
    --resource https://opaque.bench.local --introspect-url http://127.0.0.1:13000/token/introspection)"$'\n'
  results[floor-cc]+="$(measure --scenario client-credentials "${floor[@]}")"$'\n'
  results[floor-in]+="$(measure --scenario introspect "${floor[@]}" \
    --introspect-url http://127.0.0.1:18280/introspect)"$'\n'
done

rss_mb() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

python3 - "$ROUNDS" "$DURATION" "$CONNECTIONS" "$(rss_mb "$RSP_PID")" "$(rss_mb "$PEER_PID")" \
  "${results[rsp-cc]}" "${results[peer-cc]}" "${results[rsp-in]}" "${results[peer-in]}" \
  "${results[floor-cc]}" "${results[floor-in]}" <<'EOF'
import statistics, sys
rounds, duration, connections, rsp_rss, peer_rss = sys.argv[1:6]
def parse(text):
    rows = [line.split() for line in text.strip().splitlines()]
    return [float(r[0]) for r in rows], [float(r[1]) for r in rows], sum(int(r[2]) for r in rows)
print(f"closed loop, {connections} connections, {rounds} rounds of {duration}, alternating; medians")
print()
print("| scenario | rsp req/s | node-oidc-provider req/s | ratio | rsp p99 ms | peer p99 ms | errors rsp/peer "
      "| floor req/s | floor / peer | rsp / floor |")
print("|---|---|---|---|---|---|---|---|---|---|")
scenarios = [("client_credentials ES256", sys.argv[6], sys.argv[7], sys.argv[10]),
             ("introspection", sys.argv[8], sys.argv[9], sys.argv[11])]
for name, ours, theirs, floor in scenarios:
    (a, ap, ae), (b, bp, be), (f, _, _) = parse(ours), parse(theirs), parse(floor)
    ma, mb, mf = statistics.median(a), statistics.median(b), statistics.median(f)
    ratio = ma / mb if mb else float("inf")
    print(f"| {name} | {ma:,.0f} | {mb:,.0f} | {ratio:.1f}x | {statistics.median(ap):.2f} "
          f"| {statistics.median(bp):.2f} | {ae}/{be} | {mf:,.0f} | {mf / mb if mb else float('inf'):.1f}x | {ma / mf if mf else 0:.2f} |")
print()
print(f"RSS after the run: rsp {rsp_rss} MB, node-oidc-provider {peer_rss} MB")
print("floor: a server on rsp's HTTP stack that answers a fixed JSON object (examples/http_floor.rs); floor / peer is")
print("the most any server measured this way could show on this box")
EOF
