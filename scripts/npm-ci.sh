#!/usr/bin/env bash
# npm ci in DIR from its committed lockfile, trusting the operating system's CA bundle
# besides Node's own: a registry reached through a TLS-inspecting proxy whose CA is
# installed in the system store (common on CI machines) then works as it does for curl
# and apt. Usage: scripts/npm-ci.sh DIR [npm ci options...]
set -euo pipefail
dir=$1
shift
bundle=/etc/ssl/certs/ca-certificates.crt
if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -s "$bundle" ]; then
  export NODE_EXTRA_CA_CERTS=$bundle
fi
cd "$dir"
exec npm ci --no-audit --no-fund "$@"
