#!/usr/bin/env bash
# Runs the openid-client / jose interoperability test against a freshly started rsp server.
# The server binary is $RSP_BIN, else $CARGO_TARGET_DIR/debug/rsp, else target/debug/rsp.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if [[ ! -d node_modules || node_modules -ot package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi

status=0
node --test oidc-client.test.mjs || status=$?
exit "$status"
