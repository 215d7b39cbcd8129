#!/usr/bin/env bash
# Where a client_credentials token's cost goes: callgrind instruction counts (stable on a noisy box) of
# the release server and of the load generator, both under valgrind, over the same fixed window of a
# steady open-loop load, divided by the tokens the server issued in that window.
#
# Builds the release binary with debug symbols into its own target dir (CARGO_PROFILE_RELEASE_DEBUG=true,
# $HOME/.cache/rsp-prof), first-starts the server natively (key generation and migrations stay out of the
# profile), restarts it under callgrind with instrumentation off, starts `rsp loadtest --scenario
# client-credentials --rate RATE` under callgrind too, switches instrumentation on in both once tokens flow,
# and dumps both after WINDOW seconds. Prints instructions per token for each process and the top
# functions (inclusive and self) of each; the raw files stay in OUT (default /tmp/rsp-profile) for
# `callgrind_annotate` or kcachegrind.
#
# Usage: bench/profile-tokens.sh [RATE] [WINDOW_SECS]   (defaults: 40 tokens/s, 15 s)
# RSP_BIN=path profiles another server build (it needs debug symbols for readable names).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-40}
WINDOW=${2:-15}
OUT=${OUT:-/tmp/rsp-profile}
PROF_TARGET=${RSP_PROF_TARGET_DIR:-$HOME/.cache/rsp-prof}
command -v valgrind >/dev/null || { echo "bench: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }

CARGO_PROFILE_RELEASE_DEBUG=true CARGO_TARGET_DIR="$PROF_TARGET" cargo build --release --locked -p rsp >&2
RSP="$PROF_TARGET/release/rsp"
SERVER=${RSP_BIN:-$RSP}

rm -rf "$OUT" && mkdir -p "$OUT"
# Under valgrind the server takes up to two minutes to answer.
WAIT_FOR_TRIES=2400
# shellcheck source=bench/lib.sh
source bench/lib.sh
serve=(serve --data-dir "$WORK/data" --listen 127.0.0.1:18080 --ops-listen 127.0.0.1:19090)
tokens_issued() {
  curl -fsS http://127.0.0.1:19090/metrics | awk '/^rsp_tokens_issued_total/ {sum += $NF} END {print sum + 0}'
}

# First start, natively: keys, migrations, the admin client.
RUST_LOG=warn "$SERVER" "${serve[@]}" >"$WORK/first.log" 2>&1 &
first=$!
wait_for http://127.0.0.1:19090/health/ready
kill "$first" && wait "$first" 2>/dev/null || true

callgrind=(valgrind --tool=callgrind --instr-atstart=no)
RUST_LOG=warn "${callgrind[@]}" --callgrind-out-file="$OUT/server.out" "$SERVER" "${serve[@]}" \
  >"$WORK/server.log" 2>&1 &
server=$!
pids+=("$server")
wait_for http://127.0.0.1:19090/health/ready

"${callgrind[@]}" --callgrind-out-file="$OUT/loadgen.out" "$RSP" loadtest --scenario client-credentials \
  --rate "$RATE" --connections 4 --warmup 0s --duration "$((WINDOW + 120))s" --data-dir "$WORK/data" \
  >"$WORK/loadgen.log" 2>&1 &
loadgen=$!
pids+=("$loadgen")
for _ in $(seq 1 600); do
  [ "$(tokens_issued)" -ge "$((RATE * 3))" ] && break
  sleep 0.5
done
callgrind_control -i on "$server" "$loadgen" >/dev/null
before=$(tokens_issued)
sleep "$WINDOW"
callgrind_control -d "$server" "$loadgen" >/dev/null
after=$(tokens_issued)
tokens=$((after - before))
kill "$loadgen" "$server" 2>/dev/null || true

echo "client_credentials at $RATE tokens/s under callgrind: $tokens tokens in the ${WINDOW}s window"
for who in server loadgen; do
  dump=$(ls "$OUT/$who.out".* 2>/dev/null | head -n 1)
  [ -n "$dump" ] || { echo "bench: no callgrind dump for the $who" >&2; continue; }
  total=$(callgrind_annotate --auto=no "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  [[ "$total" =~ ^[0-9]+$ ]] || { echo "bench: the $who's dump holds no counts" >&2; continue; }
  echo
  echo "== $who: $total instructions, $((total / (tokens > 0 ? tokens : 1))) per token ($dump)"
  echo "-- inclusive (top 40)"
  # `head` closes the pipe early: `|| true` keeps pipefail from ending the script there.
  callgrind_annotate --auto=no --inclusive=yes "$dump" 2>/dev/null | grep -E '^ *[0-9,]+ ' | head -n 40 || true
  echo "-- self (top 30)"
  callgrind_annotate --auto=no "$dump" 2>/dev/null | grep -E '^ *[0-9,]+ ' | head -n 30 || true
done
