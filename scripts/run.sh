#!/usr/bin/env bash
# `make run`: the whole stack on this machine. nats-server (JetStream, data under
# .reqrun/), reqrun-mockllm (unless REQRUN_UPSTREAM_URL is set), reqrun-executor and
# reqrun-ingress. Ctrl-C stops every process this script started.
set -euo pipefail
build=${1:-build}
bin="$build/bin"
state=.reqrun
mkdir -p "$state/nats" "$state/logs"

nats_port=${REQRUN_NATS_PORT:-4222}
export REQRUN_NATS_URL=${REQRUN_NATS_URL:-nats://127.0.0.1:$nats_port}
export REQRUN_LISTEN=${REQRUN_LISTEN:-127.0.0.1:8080}
export REQRUN_EXECUTOR_LISTEN=${REQRUN_EXECUTOR_LISTEN:-127.0.0.1:8081}
export REQRUN_MOCK_LISTEN=${REQRUN_MOCK_LISTEN:-127.0.0.1:8090}
# no load balancer to take the ingress out of rotation first: stop without the delay
export REQRUN_SHUTDOWN_DELAY_S=${REQRUN_SHUTDOWN_DELAY_S:-0}

# Each service runs in its own session, so Ctrl-C reaches this script alone and the
# services stop in order: the ingress first (it answers what it holds while NATS is still
# up), then the executor, the mock, nats-server.
pids=()
names=()
start() { # name command...
  local name=$1
  shift
  setsid "$@" >"$state/logs/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
}
stop() {
  trap - EXIT
  # a second Ctrl-C while stopping: no more waiting
  trap 'echo "killing..."; kill -KILL "${pids[@]}" 2>/dev/null; exit 130' INT TERM
  echo
  echo "stopping... (Ctrl-C again to kill)"
  for ((i=${#pids[@]}-1; i>=0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  echo "stopped"
}
trap stop EXIT
trap 'exit 130' INT TERM

wait_http() { # url what
  for _ in $(seq 1 150); do
    curl -fs -o /dev/null "$1" && return 0
    sleep 0.2
  done
  echo "$2 did not become ready; see $state/logs/" >&2
  exit 1
}

cat > "$state/nats.conf" <<CONF
listen: 127.0.0.1:$nats_port
max_payload: 8MB
jetstream { store_dir: "$PWD/$state/nats" }
CONF
start nats-server /usr/sbin/nats-server -c "$state/nats.conf"
for _ in $(seq 1 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break
  sleep 0.1
done

if [ -z "${REQRUN_UPSTREAM_URL:-}" ]; then
  export REQRUN_UPSTREAM_URL="http://$REQRUN_MOCK_LISTEN/v1"
  start reqrun-mockllm "$bin/reqrun-mockllm"
  wait_http "http://$REQRUN_MOCK_LISTEN/healthz" reqrun-mockllm
fi
start reqrun-executor "$bin/reqrun-executor"
wait_http "http://$REQRUN_EXECUTOR_LISTEN/readyz" reqrun-executor
start reqrun-ingress "$bin/reqrun-ingress"
wait_http "http://$REQRUN_LISTEN/readyz" reqrun-ingress

cat <<MSG

ReqRun is ready on http://$REQRUN_LISTEN (upstream: $REQRUN_UPSTREAM_URL)
Logs: $state/logs/   Stop: Ctrl-C

Try:
  curl -s http://$REQRUN_LISTEN/v1/chat/completions \\
    -H 'Content-Type: application/json' \\
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}],"wait":true}'

MSG
# Until Ctrl-C (exit 130, the EXIT trap stops everything) or a service exits (exit 1).
gone=""
wait -n -p gone "${pids[@]}" && rc=0 || rc=$?
for i in "${!pids[@]}"; do
  if [ "${pids[i]}" = "$gone" ]; then
    echo "${names[i]} exited with status $rc; see $state/logs/${names[i]}.log" >&2
  fi
done
exit 1
