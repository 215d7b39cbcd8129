#!/usr/bin/env bash
# Memory of the release server (performance issue: < 20 MB RSS idle, < 64 MB under load), from
# /proc/PID/status: VmRSS idle (after start-up and first-start set-up, no load), then for each load the
# peak (VmHWM, reset before the load by writing 5 to /proc/PID/clear_refs) and the RSS left after it.
# Loads: client_credentials, introspection, mixed (token + decision + introspection), single decisions and
# batches of 100 on the peers' Cedar workload (100 policies, ~1,000 entities, 2,000 distinct requests; the
# loadtest's own small policy set when the workload generator is not there), closed loop, each twice in
# turn, so memory that grows with the requests served (rather than peaking) shows as a rising column.
# "MB" here are MiB (kB / 1024), as in every memory figure of BENCHMARKS.md.
#
# Usage: bench/memory.sh [DURATION] [CONNECTIONS]   (defaults: 10s, 32)
# SCENARIOS="a b …" runs other loads, in that order.
# RSP_BIN=path runs another build of the server (e.g. one with a different allocator); the load
# generator is always the release build of this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10s}
CONNECTIONS=${2:-32}
PEERS=${RSP_PEERS_DIR:-../shared/peers}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rsp-target}"

cargo build --release --locked -p rsp >&2
RSP="$CARGO_TARGET_DIR/release/rsp"
SERVER=${RSP_BIN:-$RSP}

# shellcheck source=bench/lib.sh
source bench/lib.sh

RUST_LOG=warn "$SERVER" serve --data-dir "$WORK/data" --listen 127.0.0.1:18080 --ops-listen 127.0.0.1:19090 \
  >"$WORK/rsp.log" 2>&1 &
PID=$!
pids+=("$PID")
wait_for http://127.0.0.1:19090/health/ready
sleep 2

decisions=()
if [ -f "$PEERS/cedar-workload/gen_workload.py" ]; then
  mkdir -p "$WORK/workload"
  python3 "$PEERS/cedar-workload/gen_workload.py" "$WORK/workload" >&2
  decisions=(--cedar-workload "$WORK/workload")
else
  echo "bench: no cedar workload generator in $PEERS: decision loads use the loadtest's own policies" >&2
fi

# A /proc/PID/status field in MB.
field_mb() { awk -v f="$1:" '$1 == f {printf "%.1f", $2 / 1024}' "/proc/$PID/status"; }

echo "| state | VmRSS MB | peak (VmHWM) MB | load req/s |"
echo "|---|---|---|---|"
echo "| idle after start | $(field_mb VmRSS) | $(field_mb VmHWM) | |"
loads="client-credentials introspect mixed authorize authorize-batch"
for scenario in ${SCENARIOS:-$loads $loads}; do
  echo 5 >"/proc/$PID/clear_refs"
  extra=()
  case "$scenario" in authorize*) extra=("${decisions[@]}") ;; esac
  rate=$("$RSP" loadtest --scenario "$scenario" --connections "$CONNECTIONS" --duration "$DURATION" --warmup 2s \
    --data-dir "$WORK/data" "${extra[@]}" --json 2>/dev/null |
    python3 -c 'import json,sys; print(round(json.load(sys.stdin)["requests_per_sec"]))')
  echo "| $scenario, closed loop, $CONNECTIONS connections, $DURATION | $(field_mb VmRSS) | $(field_mb VmHWM) | $rate |"
done
sleep 5
echo "| idle again, 5 s after the loads | $(field_mb VmRSS) (anonymous $(field_mb RssAnon), file $(field_mb RssFile), shared $(field_mb RssShmem)) | | |"
