#!/usr/bin/env bash
# Runs the interoperability tests against freshly started rsp servers: openid-client / jose
# (oidc-client.test.mjs) and the browser code flow (code-flow.test.mjs, Debian's chromium driven by
# Playwright). The server binary is $RSP_BIN, else $CARGO_TARGET_DIR/debug/rsp, else target/debug/rsp; the
# browser is $CHROMIUM, else /usr/bin/chromium (scripts/install-tools.sh installs it). Without a browser
# the browser test is skipped with a reason, except under CI=true, where that is a failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if [[ ! -d node_modules || node_modules -ot package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi

export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
tests=(oidc-client.test.mjs)
if [[ -x "$CHROMIUM" ]]; then
  tests+=(code-flow.test.mjs)
elif [[ "${CI:-}" == "true" ]]; then
  echo "interop: no browser at $CHROMIUM; the browser test is required under CI=true (scripts/install-tools.sh)" >&2
  exit 1
else
  echo "interop: code-flow.test.mjs skipped: no browser at $CHROMIUM (scripts/install-tools.sh installs chromium)"
fi

status=0
node --test "${tests[@]}" || status=$?
exit "$status"
