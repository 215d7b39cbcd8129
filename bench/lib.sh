# Shared by the bench/ scripts (sourced, not run): a scratch directory and the processes to stop, both
# cleaned up on exit, and `wait_for URL [any]`, which waits up to 10 s for a URL to answer with a success
# (with `any`: with any HTTP status); set WAIT_FOR_TRIES for longer than 200 tries 50 ms apart.
# Add each background process's pid to `pids`.

WORK=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_for() {
  local fail=-f
  [ "${2:-}" = any ] && fail=
  for _ in $(seq 1 "${WAIT_FOR_TRIES:-200}"); do
    curl $fail -sS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench: $1 did not answer" >&2
  exit 1
}
