#!/usr/bin/env bash
# The NATS users of k8s/nats/values.yaml against the real binaries: a local nats-server
# with the same accounts and permissions; the provisioning run, reqrun-executor and
# reqrun-ingress each log in as their own user and serve submit, replay, status, retry,
# cancel, a webhook, a signed request and a NATS-native submit. Fails on any permissions violation
# the server logs, and when the ingress or executor user can provision.
# Usage: nats-permissions.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: nats-permissions.sh BUILD_DIR}" && pwd)
bin=$build/bin
work=$build/k8s-validate
dir=$work/nats-permissions
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

nats_server=$(command -v nats-server || echo /usr/sbin/nats-server)
for tool in "$nats_server" node npm curl python3 openssl; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
k8s_node_modules "$work"
rm -rf "$dir" && mkdir -p "$dir/store"
printf 'plain whsec_%s\n' "$(openssl rand -base64 24)" >"$dir/webhook-secrets"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$dir"/*.log; do echo "--- $f"; tail -n 20 "$f"; done
  exit 1
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# until DEADLINE_S COMMAND...: polls COMMAND every 0.1 s
until_ok() {
  local end=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.1
  done
}

nats_port=$(free_port) ingress_port=$(free_port) executor_port=$(free_port) mock_port=$(free_port)
hook_port=$(free_port)
for who in INGRESS EXECUTOR PROVISION MONITOR CLIENT; do
  export "NATS_PASSWORD_$who=rr$(openssl rand -hex 12)"
done
# NATS_VALUES: another values file (to audit a permission list); default the chart's.
NODE_PATH=$work/node_modules node "$here/nats-conf.js" "${NATS_VALUES:-$root/k8s/nats/values.yaml}" \
  "$nats_port" "$dir/store" plain >"$dir/nats.conf"
"$nats_server" -c "$dir/nats.conf" >"$dir/nats.log" 2>&1 &
pids+=($!)
until_ok 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$nats_port" || fail "nats-server did not start"

# The base env table, on loopback ports, the mock as upstream.
set -a
# shellcheck source=/dev/null
. "$root/k8s/base/config.env"
set +a
export REQRUN_NATS_URL=nats://127.0.0.1:$nats_port REQRUN_LISTEN=127.0.0.1:$ingress_port \
  REQRUN_EXECUTOR_LISTEN=127.0.0.1:$executor_port REQRUN_MOCK_LISTEN=127.0.0.1:$mock_port \
  REQRUN_UPSTREAM_URL=http://127.0.0.1:$mock_port/v1 REQRUN_RETRY_BASE_MS=100 \
  REQRUN_RETRY_MAX_MS=200 REQRUN_DRAIN_TIMEOUT_S=5 REQRUN_WEBHOOK_ALLOW=127.0.0.1 \
  REQRUN_WEBHOOK_SECRETS_FILE=$dir/webhook-secrets
as_user() { # as_user NAME: the env of ReqRun user reqrun-NAME
  local pw="NATS_PASSWORD_${1^^}"
  echo "REQRUN_NATS_USER=reqrun-$1" "REQRUN_NATS_PASSWORD=${!pw}" \
    "REQRUN_NATS_INBOX_PREFIX=_INBOX_reqrun-$1"
}

echo "== provisioning: only reqrun-provision may"
for user in ingress executor; do
  # shellcheck disable=SC2046
  if env $(as_user "$user") REQRUN_PROVISION=1 "$bin/reqrun-ingress" --provision >"$dir/provision-$user.log" 2>&1; then
    fail "reqrun-$user could provision the NATS resources"
  fi
  grep -q "Violation.*reqrun-$user.*STREAM.CREATE\|reqrun-$user.*Violation.*STREAM.CREATE" "$dir/nats.log" ||
    fail "reqrun-$user failed to provision, but not for want of permission"
done
seen=$(wc -l <"$dir/nats.log")
# Twice, as two releases would: the second changes settings, so streams, bucket and
# consumer are updated, not only created. The services run with the second settings.
for release in 1 2; do
  if [ $release = 2 ]; then
    export REQRUN_RECORD_TTL_S=7200 REQRUN_DEDUP_WINDOW_S=60 REQRUN_MAX_ACK_PENDING=5000
  fi
  # shellcheck disable=SC2046
  env $(as_user provision) REQRUN_PROVISION=1 "$bin/reqrun-ingress" --provision \
    >>"$dir/provision.log" 2>&1 || fail "reqrun-ingress --provision as reqrun-provision"
done

echo "== the stack, each process as its own user"
key_plain=rr_plain_$(openssl rand -hex 8) key_signed=rr_signed_$(openssl rand -hex 8) secret=sig_$(openssl rand -hex 8)
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
printf 'plain %s\nsigned %s %s\n' "$(sha "$key_plain")" "$(sha "$key_signed")" "$secret" >"$dir/api-keys"
"$bin/reqrun-mockllm" >"$dir/mockllm.log" 2>&1 &
pids+=($!)
# A webhook receiver: records each delivery's body in hooks.log.
python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        open(sys.argv[2], "ab").write(body + b"\n")
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
' "$hook_port" "$dir/hooks.log" 2>"$dir/receiver.log" &
pids+=($!)
# shellcheck disable=SC2046
env $(as_user executor) "$bin/reqrun-executor" >"$dir/executor.log" 2>&1 &
executor_pid=$!
pids+=("$executor_pid")
# shellcheck disable=SC2046
env $(as_user ingress) REQRUN_API_KEYS_FILE="$dir/api-keys" "$bin/reqrun-ingress" >"$dir/ingress.log" 2>&1 &
ingress_pid=$!
pids+=("$ingress_pid")
api=http://127.0.0.1:$ingress_port
until_ok 30 curl -fsS "$api/readyz" || fail "ingress not ready"
until_ok 30 curl -fsS "http://127.0.0.1:$executor_port/readyz" || fail "executor not ready"

# call METHOD PATH BODY [CURL ARGS...]: prints "<status> <headers and body>", as tenant
# "plain" unless $key names another key
call() {
  local method=$1 target=$2 body=$3
  shift 3
  curl -sS -i -o "$dir/body" -w '%{http_code}' -X "$method" -H "Authorization: Bearer ${key:-$key_plain}" \
    -H 'Content-Type: application/json' --data-binary "$body" "$@" "$api$target"
  printf ' %s\n' "$(cat "$dir/body")"
}
expect() { # expect STATUS PATTERN "<status> <body>"
  [[ $3 == "$1 "* && $3 == *$2* ]] || fail "want $1 and '$2', got: $3"
}
json_id() { sed -n 's/.*"id":"\(rr_[a-z2-7]*\)".*/\1/p'; }
msgs='"model":"m","messages":[{"role":"user","content":"hi"}]'

out=$(call POST /v1/chat/completions "{$msgs,\"wait\":true}" -H 'Idempotency-Key: k1')
expect 200 chat.completion "$out"
out=$(call POST /v1/chat/completions "{$msgs,\"wait\":true}" -H 'Idempotency-Key: k1')
expect 200 Idempotent-Replayed "$out"
id=$(call POST /v1/chat/completions "{$msgs}" | json_id)
[ -n "$id" ] || fail "no id from an async submit"
until_ok 20 bash -c "curl -sS -H 'Authorization: Bearer $key_plain' $api/v1/requests/$id | grep -q '\"status\":\"completed\"'" ||
  fail "request $id did not complete"
out=$(call POST /v1/chat/completions "{$msgs,\"wait\":true,\"mock\":{\"fault\":\"500:1\"}}")
expect 200 chat.completion "$out"
id=$(call POST /v1/chat/completions "{$msgs,\"mock\":{\"fault\":\"hang\"}}" | json_id)
until_ok 20 bash -c "curl -sS -H 'Authorization: Bearer $key_plain' $api/v1/requests/$id | grep -q '\"status\":\"processing\"'" ||
  fail "request $id did not start"
expect 200 "$id" "$(call POST "/v1/requests/$id/cancel" '{}')"
until_ok 20 bash -c "curl -sS -H 'Authorization: Bearer $key_plain' $api/v1/requests/$id | grep -q '\"status\":\"cancelled\"'" ||
  fail "request $id was not cancelled"

# A webhook: the terminal event goes through stream REQRUN_EVENTS, consumer webhooks.
hook="\"reqrun\":{\"webhook_url\":\"http://127.0.0.1:$hook_port/hook\"}"
id=$(call POST /v1/chat/completions "{$msgs,$hook}" | json_id)
[ -n "$id" ] || fail "no id from a submit with a webhook"
until_ok 20 grep -q "$id" "$dir/hooks.log" || fail "no webhook delivered for $id"

# A signed request: the nonce goes to bucket reqrun_nonces (DESIGN §6).
body="{$msgs,\"wait\":true}"
ts=$(date -u +%Y-%m-%dT%H:%M:%S.000Z) nonce=$(openssl rand -hex 16)
sig=$(printf 'POST\n/v1/chat/completions\n%s\n%s\n%s' "$ts" "$nonce" "$(sha "$body")" |
  openssl dgst -sha256 -hmac "$secret" | sed 's/.*= //')
out=$(key=$key_signed call POST /v1/chat/completions "$body" \
  -H "X-ReqRun-Timestamp: $ts" -H "X-ReqRun-Nonce: $nonce" -H "X-ReqRun-Signature: v1=$sig")
expect 200 chat.completion "$out"
# NATS-native submit: tenant plain's client user; the ingress answers (allow_responses).
out=$(node "$here/nats-request.js" "$nats_port" client-plain "$NATS_PASSWORD_CLIENT" \
  reqrun.submit.plain "{$msgs,\"wait\":true}") || fail "NATS-native submit: $out"
expect 200 chat.completion "$out"
# ... and cannot read the ingress's replies (records read from the KV bucket).
if out=$(INBOX=_INBOX_reqrun-ingress.spy node "$here/nats-request.js" "$nats_port" client-plain \
  "$NATS_PASSWORD_CLIENT" reqrun.submit.plain "{$msgs,\"wait\":true}" 2>&1); then
  fail "client-plain subscribed to the ingress's inbox: $out"
fi
grep -q "Permissions Violation for Subscription" <<<"$out" || fail "client-plain spying: $out"
seen=$(wc -l <"$dir/nats.log")
curl -fsS "http://127.0.0.1:$executor_port/metrics" | grep -q '^reqrun_consumer_pending' ||
  fail "executor metrics lack the consumer gauges"

echo "== graceful stop"
kill -TERM "$ingress_pid" "$executor_pid"
until_ok 30 bash -c "! kill -0 $ingress_pid 2>/dev/null && ! kill -0 $executor_pid 2>/dev/null" ||
  fail "ingress or executor did not stop on SIGTERM"

if tail -n +$((seen + 1)) "$dir/nats.log" | grep -i violation ||
  grep -i violation "$dir/ingress.log" "$dir/executor.log" "$dir/provision.log"; then
  fail "permissions violations (above): k8s/nats/values.yaml lacks a permission"
fi
echo "ok: every ReqRun user works with only its own permissions"
