#!/usr/bin/env bash
# Checks the deployment files against the tools that will consume them, without a cluster or a Docker
# engine:
#   - hadolint lints the Dockerfile (settings in .hadolint.yaml);
#   - `kubectl kustomize` renders every overlay and the monitoring kustomization, kubernetes-validate checks
#     the output in strict mode against the oldest supported and the newest Kubernetes API, and
#     check-deploy-manifests.py checks security settings, probes and the references between objects;
#   - promtool checks the alert and recording rules and every query of the Grafana dashboard;
#   - deploy/kubernetes/monitoring/prometheusrule.yaml must be the rule file wrapped for the Prometheus
#     Operator (`--write` regenerates it).
# A tool that is absent is skipped with the reason, except under CI=true, where every check is required
# (.ci/run installs the tools first with scripts/install-tools.sh). Whether /metrics exports what the
# dashboard and the rules name is checked by `cargo test -p rsp --test process observability`.
#
# Usage: bash scripts/check-deploy.sh [--write]
set -euo pipefail
cd "$(dirname "$0")/.."

# The oldest Kubernetes the manifests support (the preStop `sleep` action is on by default from 1.30),
# and the newest that kubernetes-validate knows.
MIN_KUBERNETES=1.30
MONITORING=deploy/kubernetes/monitoring
OVERLAYS=(single scaled istio)
# Custom resources: no schema offline; check-deploy-manifests.py checks their references instead.
CUSTOM_KINDS='DestinationRule|Gateway|VirtualService|PeerAuthentication|AuthorizationPolicy|ServiceMonitor|PrometheusRule'

failed=0
skipped=0
fail() {
  echo "deploy: FAILED: $*" >&2
  failed=1
}
# Returns success when the tool is there; otherwise says why the check is skipped (or fails under CI).
have() {
  if command -v "$1" >/dev/null 2>&1; then
    return 0
  elif [ "${CI:-}" = "true" ]; then
    fail "$1 is required under CI=true (bash scripts/install-tools.sh)"
  else
    echo "deploy: skipped $2 ($1 not found; bash scripts/install-tools.sh installs it)"
    skipped=$((skipped + 1))
  fi
  return 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The PrometheusRule is the plain rule file indented under `spec:`, so comments and layout survive.
render_prometheusrule() {
  cat <<'EOF'
# Generated from rsp.rules.yml by `bash scripts/check-deploy.sh --write`: edit that file, not this one.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: rsp
  labels:
    app.kubernetes.io/name: rsp
spec:
EOF
  sed -e 's/^\(.\)/  \1/' "$MONITORING/rsp.rules.yml"
}

if [ "${1:-}" = "--write" ]; then
  render_prometheusrule >"$MONITORING/prometheusrule.yaml"
  echo "deploy: wrote $MONITORING/prometheusrule.yaml"
elif ! render_prometheusrule | cmp -s - "$MONITORING/prometheusrule.yaml"; then
  fail "$MONITORING/prometheusrule.yaml differs from rsp.rules.yml: run bash scripts/check-deploy.sh --write"
else
  echo "deploy: prometheusrule.yaml matches rsp.rules.yml"
fi

if have hadolint "the Dockerfile lint"; then
  if hadolint Dockerfile; then echo "deploy: hadolint passed"; else fail "hadolint Dockerfile"; fi
fi

# kubectl must embed kustomize v5 (components, `labels`, inline patches); Debian's kubernetes-client
# (kubectl 1.20, kustomize v2) cannot render these overlays.
if have kubectl "rendering the overlays"; then
  if ! kubectl version --client 2>/dev/null | grep -Eq 'Kustomize Version: v[5-9]'; then
    fail "kubectl embeds kustomize older than v5: bash scripts/install-tools.sh installs a recent one"
  else
    for target in "${OVERLAYS[@]/#/overlays/}" monitoring; do
      out="$work/$(basename "$target").yaml"
      if kubectl kustomize "deploy/kubernetes/$target" >"$out"; then
        echo "deploy: rendered $target ($(grep -c '^kind:' "$out") objects)"
      else
        fail "kubectl kustomize deploy/kubernetes/$target"
        rm -f "$out"
      fi
    done
  fi
fi

rendered=("$work"/*.yaml)
if [ -e "${rendered[0]}" ] && have kubernetes-validate "schema validation"; then
  for version in "$MIN_KUBERNETES" ""; do
    for file in "${rendered[@]}"; do
      args=(--strict)
      [ -n "$version" ] && args+=(--kubernetes-version "$version")
      if ! output=$(kubernetes-validate "${args[@]}" "$file" 2>&1); then
        echo "$output" | grep -v '^INFO' >&2
        fail "kubernetes-validate ${args[*]} $(basename "$file")"
      fi
      # A warning about any other kind means a typo in a kind or an apiVersion that slipped past.
      unexpected=$(echo "$output" | grep '^WARN' | grep -Ev "kind ($CUSTOM_KINDS) with" || true)
      if [ -n "$unexpected" ]; then
        echo "$unexpected" >&2
        fail "kubernetes-validate found no schema for $(basename "$file")"
      fi
    done
    echo "deploy: kubernetes-validate --strict passed (Kubernetes ${version:-latest})"
  done
fi

if [ -e "${rendered[0]}" ] && have python3 "the manifest checks"; then
  if ! python3 -c 'import yaml' 2>/dev/null; then
    if [ "${CI:-}" = "true" ]; then
      fail "PyYAML is required under CI=true"
    else
      echo "deploy: skipped the manifest checks (PyYAML not found)"
      skipped=$((skipped + 1))
    fi
  else
    for overlay in "${OVERLAYS[@]}"; do
      [ -e "$work/$overlay.yaml" ] || continue
      # The monitoring objects are checked against each overlay's Services.
      monitoring=()
      [ -e "$work/monitoring.yaml" ] && monitoring=("$work/monitoring.yaml")
      if python3 scripts/check-deploy-manifests.py "$work/$overlay.yaml" "${monitoring[@]}"; then
        echo "deploy: manifest checks passed ($overlay)"
      else
        fail "manifest checks ($overlay)"
      fi
    done
  fi
fi

if have promtool "the rule checks"; then
  if promtool check rules "$MONITORING/rsp.rules.yml"; then echo "deploy: promtool passed the rules"; else fail "promtool check rules"; fi
  # Every dashboard query, as a recording rule, so promtool parses it ($__rate_interval becomes 5m).
  if have python3 "the dashboard query check"; then
    python3 - "$MONITORING/rsp-dashboard.json" >"$work/dashboard.rules.yml" <<'EOF'
import json, sys
dashboard = json.load(open(sys.argv[1], encoding="utf-8"))
def panels(items):
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))
exprs = [t["expr"] for p in panels(dashboard["panels"]) for t in p.get("targets", []) if t.get("expr")]
if not exprs:
    sys.exit("the dashboard has no queries")
print("groups:\n  - name: dashboard\n    rules:")
for i, expr in enumerate(exprs):
    print(f"      - record: dashboard:query_{i}")
    print(f"        expr: {json.dumps(expr.replace('$__rate_interval', '5m'))}")
EOF
    if promtool check rules "$work/dashboard.rules.yml" >/dev/null; then
      echo "deploy: promtool parsed every dashboard query"
    else
      promtool check rules "$work/dashboard.rules.yml" >&2 || true
      fail "a dashboard query does not parse"
    fi
  fi
fi

if [ "$failed" -ne 0 ]; then
  echo "deploy: some checks failed" >&2
  exit 1
fi
if [ "$skipped" -ne 0 ]; then
  echo "deploy: the checks that ran passed; $skipped skipped"
else
  echo "deploy: all checks passed"
fi
