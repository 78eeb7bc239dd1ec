#!/usr/bin/env bash
# Validates k8s/ and the Dockerfile: yamllint, `kubectl kustomize` of every overlay,
# schema validation of the rendered objects (kubernetes-models, @kubernetes-models/keda,
# from the committed lockfile) and ReqRun's own checks (check-manifests.js), whose
# self-test proves each check can fail. Usage: validate.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: validate.sh BUILD_DIR}" && pwd)
work=$build/k8s-validate
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

for tool in yamllint kubectl node npm readelf; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool is not installed"
    exit 77
  fi
done
ingress=$build/bin/reqrun-ingress
[ -x "$ingress" ] || { echo "FAIL: $ingress is not built"; exit 1; }
mkdir -p "$work/rendered"

echo "== yamllint"
yamllint --strict -c "$here/.yamllint" "$root/k8s"
if command -v shellcheck >/dev/null; then
  shellcheck -x "$root/k8s/create-secrets.sh" "$here/validate.sh" "$here/nats-permissions.sh"
fi

echo "== kubectl kustomize"
overlays=()
for dir in "$root"/k8s/overlays/*/; do
  name=$(basename "$dir")
  kubectl kustomize "$dir" >"$work/rendered/$name.yaml"
  overlays+=("$name=$work/rendered/$name.yaml")
  echo "$name: $(grep -c '^kind:' "$work/rendered/$name.yaml") objects"
done
[ ${#overlays[@]} -ge 2 ] || { echo "FAIL: expected the dev and prod overlays"; exit 1; }

k8s_node_modules "$work"

echo "== checks"
"$ingress" --help >"$work/help.txt"
NODE_PATH=$work/node_modules node "$here/check-manifests.js" --root "$root" \
  --help-file "$work/help.txt" --bin-dir "$build/bin" --self-test "${overlays[@]}"
