#!/usr/bin/env bash
# `make test`: every ctest of the plain build (unit, integration, e2e, chaos, clients,
# k8s), ending with ctest's summary.
set -uo pipefail
build=${1:-build}
exec ctest --test-dir "$build" --output-on-failure --no-tests=error
