#!/usr/bin/env bash
# Installs the Debian packages ReqRun needs, only those missing: one `apt-get update`,
# one `apt-get install`. Usage: scripts/install-deps.sh [build|test]
#   build: what `make run` needs;  test (default): also the test and benchmark tools.
set -euo pipefail

build_pkgs=(nats-server libnats-dev libcivetweb-dev protobuf-c-compiler libprotobuf-c-dev
            libcurl4-openssl-dev libssl-dev libjansson-dev cmake pkg-config build-essential)
test_pkgs=(libcmocka-dev clang libclang-rt-14-dev valgrind wrk hey prometheus yamllint
           curl ca-certificates procps iproute2 openssl python3)

want=("${build_pkgs[@]}")
if [ "${1:-test}" = test ]; then
  want+=("${test_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# node and npm may come from outside Debian (the machine image ships node 20 + npm):
# ask for Debian's only when the commands are absent.
if [ "${1:-test}" = test ]; then
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
