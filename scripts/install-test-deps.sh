#!/usr/bin/env bash
# Installs the system packages the test suite drives for real: Prometheus and
# Alertmanager (a real alert sender), PostgreSQL (the read-only database MCP),
# Chromium (the browser MCP), bubblewrap and socat (the agent sandbox), bats and shellcheck
# (the bash harness), git, and the locales' sources (a harness test runs in a Turkish locale).
# Idempotent; skips packages that are already installed. Needs root (or sudo).
# Usage: bash scripts/install-test-deps.sh
set -euo pipefail

packages=(prometheus prometheus-alertmanager bats shellcheck git postgresql chromium bubblewrap socat locales)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "test dependencies already installed"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-test-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
# Package scripts must not start system services: tests start their own on loopback.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${sudo_cmd[@]}" chmod +x /usr/sbin/policy-rc.d
  trap '"${sudo_cmd[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
fi
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
