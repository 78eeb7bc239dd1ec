#!/usr/bin/env bash
# Creates the Secrets ReqRun reads (none of them is in git):
#   reqrun-nats-auth  NATS passwords (keys ingress, executor, provision, monitor); generated
#                     once, never overwritten (the NATS servers read them at start)
#   reqrun-upstream   the upstream provider's API key (key api-key), executors only
#   reqrun-api-keys   client keys (key api-keys, lines '<tenant> <sha256 hex of key>
#                     [<signing secret>]'), ingress only
#   reqrun-webhook-secrets  webhook signing secrets (key webhook-secrets, lines
#                     '<tenant> whsec_<base64>'), ingress and executors; empty when not given
#                     and absent (no tenant can ask for webhooks)
# Usage: k8s/create-secrets.sh NAMESPACE [--upstream-key-file F] [--api-keys-file F]
#                              [--webhook-secrets-file F] [--dev]
#   --dev: a placeholder upstream key (the dev mock expects the same one) and one
#          generated client key for tenant "default", printed once.
set -euo pipefail

ns=${1:?usage: $0 NAMESPACE [--upstream-key-file F] [--api-keys-file F] [--webhook-secrets-file F] [--dev]}
shift
upstream_file="" api_keys_file="" webhook_file="" dev=0
while [ $# -gt 0 ]; do
  case $1 in
    --upstream-key-file) upstream_file=$2; shift 2 ;;
    --api-keys-file) api_keys_file=$2; shift 2 ;;
    --webhook-secrets-file) webhook_file=$2; shift 2 ;;
    --dev) dev=1; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

# Letters and digits starting with a letter: the NATS server parses the value as config.
password() { printf 'rr%s' "$(openssl rand -hex 24)"; }

apply_secret() { # name, then kubectl create secret generic arguments
  local name=$1
  shift
  kubectl create secret generic "$name" -n "$ns" "$@" --dry-run=client -o yaml |
    kubectl apply -f -
}

kubectl get namespace "$ns" >/dev/null 2>&1 || kubectl create namespace "$ns"

if kubectl get secret reqrun-nats-auth -n "$ns" >/dev/null 2>&1; then
  echo "reqrun-nats-auth exists: kept"
else
  apply_secret reqrun-nats-auth --from-literal=ingress="$(password)" \
    --from-literal=executor="$(password)" --from-literal=provision="$(password)" \
    --from-literal=monitor="$(password)"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ $dev = 1 ]; then
  if [ -z "$upstream_file" ]; then
    printf 'sk-mock\n' >"$tmp/upstream"
    upstream_file=$tmp/upstream
  fi
  if [ -z "$api_keys_file" ]; then
    key="rr_dev_$(openssl rand -hex 16)"
    printf 'default %s\n' "$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)" >"$tmp/api-keys"
    api_keys_file=$tmp/api-keys
    echo "client key for tenant default (shown once): $key"
  fi
fi
if [ -n "$upstream_file" ]; then
  apply_secret reqrun-upstream --from-file=api-key="$upstream_file"
fi
if [ -n "$api_keys_file" ]; then
  apply_secret reqrun-api-keys --from-file=api-keys="$api_keys_file"
fi
if [ -n "$webhook_file" ]; then
  apply_secret reqrun-webhook-secrets --from-file=webhook-secrets="$webhook_file"
elif ! kubectl get secret reqrun-webhook-secrets -n "$ns" >/dev/null 2>&1; then
  : >"$tmp/webhook-secrets"
  apply_secret reqrun-webhook-secrets --from-file=webhook-secrets="$tmp/webhook-secrets"
fi
for s in reqrun-nats-auth reqrun-upstream reqrun-api-keys reqrun-webhook-secrets; do
  kubectl get secret "$s" -n "$ns" >/dev/null 2>&1 || echo "missing: Secret $s in $ns" >&2
done
