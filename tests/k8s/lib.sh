# Shared by validate.sh and nats-permissions.sh (sourced).
# shellcheck shell=bash

# Installs tests/k8s/package-lock.json into $1/node_modules with npm ci, again only when
# the lockfile changed. Never in the source tree.
k8s_node_modules() {
  local work=$1 here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  mkdir -p "$work"
  if ! cmp -s "$here/package-lock.json" "$work/package-lock.json" || [ ! -d "$work/node_modules" ]; then
    echo "== npm ci ($work)"
    cp "$here/package.json" "$here/package-lock.json" "$work/"
    "$here/../../scripts/npm-ci.sh" "$work" --loglevel=error
  fi
}
