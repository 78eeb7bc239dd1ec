#!/usr/bin/env bash
# Client compatibility tests (ctest label clients): the official openai SDK, the OpenAPI
# spec against real answers, the README examples, metrics and logs. Installs the pinned
# npm packages (package-lock.json) under the build tree, never here, copies the test files
# next to them (ESM resolves packages from the importing file's directory) and runs node's
# test runner, one file at a time. Usage: run.sh BUILD_DIR [test files...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
build=$(cd "${1:?usage: run.sh BUILD_DIR [test files...]}" && pwd)
shift
work=$build/tests/clients/node

for tool in node npm /usr/sbin/nats-server promtool yamllint; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool is not installed"
    exit 77
  fi
done
for bin in reqrun-ingress reqrun-executor reqrun-mockllm; do
  [ -x "$build/bin/$bin" ] || { echo "FAIL: $build/bin/$bin is not built"; exit 1; }
done

mkdir -p "$work"
# npm ci only when the lockfile differs from the one installed last time
if ! cmp -s "$here/package-lock.json" "$work/node_modules/.reqrun-package-lock.json"; then
  cp "$here/package.json" "$here/package-lock.json" "$work/"
  "$root/scripts/npm-ci.sh" "$work" --loglevel=error
  cp "$here/package-lock.json" "$work/node_modules/.reqrun-package-lock.json"
fi
rm -f "$work"/*.js
cp "$here"/*.js "$work/"

export REQRUN_BIN_DIR=$build/bin REQRUN_SOURCE_DIR=$root
cd "$work"
if [ $# -eq 0 ]; then
  set -- *.test.js
fi
exec node --test --test-concurrency=1 "$@"
