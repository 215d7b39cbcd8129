#!/usr/bin/env bash
# The whole test suite: every Rust test of the workspace, the deployment checks, then the interoperability
# tests that drive the real binary with certified third-party OpenID libraries and a headless browser (Node.js).
# Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rsp-target}"

cargo test --workspace --locked

# The Dockerfile, the Kubernetes overlays, the alert rules and the dashboard (tools absent: skipped).
bash scripts/check-deploy.sh

if command -v node >/dev/null && command -v npm >/dev/null; then
  RSP_BIN="$CARGO_TARGET_DIR/debug/rsp" bash interop/run.sh
elif [ "${CI:-}" = "true" ]; then
  echo "interop: node and npm are required under CI=true" >&2
  exit 1
else
  echo "interop: skipped (node and npm not found)"
fi
