#!/usr/bin/env bash
# ctest fixture: a real nats-server for the integration tests. Loopback, a free port,
# a temp store dir, max_payload 8MB. Usage: nats-fixture.sh start|stop <dir>
set -euo pipefail
cmd=$1 dir=$2
case "$cmd" in
start)
  rm -rf "$dir" && mkdir -p "$dir/store"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >"$dir/nats.conf" <<CONF
listen: 127.0.0.1:$port
max_payload: 8MB
jetstream { store_dir: "$dir/store" }
CONF
  /usr/sbin/nats-server -c "$dir/nats.conf" >"$dir/nats.log" 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "nats://127.0.0.1:$port" >"$dir/url"
      exit 0
    fi
    sleep 0.05
  done
  echo "nats-server did not start" >&2; cat "$dir/nats.log" >&2; exit 1
  ;;
stop)
  if [ -f "$dir/pid" ]; then
    kill "$(cat "$dir/pid")" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$(cat "$dir/pid")" 2>/dev/null || break; sleep 0.05; done
  fi
  rm -rf "$dir"
  ;;
esac
