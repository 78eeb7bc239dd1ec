#!/usr/bin/env bash
# ReqRun's benchmark (`make bench`; docs/PERFORMANCE.md says what each number means).
#   tests/bench/run.sh <build dir>
# Starts nats-server, reqrun-mockllm, reqrun-executor, reqrun-ingress and (when it
# installs) the Portkey gateway on free loopback ports, then measures in interleaved
# rounds (round 1: every case, round 2: every case, ...): serial latency, throughput at
# 64 connections, and a slow upstream under a constant offered rate. Writes
# tests/bench/results/latest.json (medians over the rounds) and prints the table with the
# targets of issue 8. Logs and per-round raw numbers go to tests/bench/results/*.log.
#
# Environment:
#   BENCH_QUICK=1        development mode: 1 round, short runs (numbers not comparable;
#                        written to results/quick.log, never to latest.json)
#   BENCH_ROUNDS, BENCH_SERIAL_N, BENCH_TP_SECONDS, BENCH_CONNS, BENCH_SLOW_SECONDS,
#   BENCH_SLOW_RATE, BENCH_SLOW_LATENCY_MS   override the defaults below
#   BENCH_PORTKEY=0      skip the Portkey peer (recorded as null with that reason)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
bin=$build/bin
tools=$build/bench
results=$here/results

quick=${BENCH_QUICK:-0}
if [ "$quick" = 1 ]; then
  rounds=${BENCH_ROUNDS:-1}; serial_n=${BENCH_SERIAL_N:-500}; tp_s=${BENCH_TP_SECONDS:-3}
  slow_s=${BENCH_SLOW_SECONDS:-10}; slow_direct_s=5; warm_s=1
else
  rounds=${BENCH_ROUNDS:-3}; serial_n=${BENCH_SERIAL_N:-2000}; tp_s=${BENCH_TP_SECONDS:-15}
  slow_s=${BENCH_SLOW_SECONDS:-60}; slow_direct_s=20; warm_s=3
fi
conns=${BENCH_CONNS:-64}
slow_rate=${BENCH_SLOW_RATE:-1000}
slow_latency_ms=${BENCH_SLOW_LATENCY_MS:-1500}
http_threads=2048        # > the 1,500 requests held by the slow case, and > slow_conns
slow_conns=1900          # the open-loop generator's connection cap (< http_threads)
serial_warmup=200

mkdir -p "$results" "$tools"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
rm -f "$results"/*.log
runlog=$results/bench.log
rounds_log=$results/rounds.log
say() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$runlog" >&2; }
die() { say "FAILED: $*"; exit 1; }

for cmd in cc pkg-config curl wrk python3 ss; do
  command -v "$cmd" >/dev/null 2>&1 || die "$cmd is missing (scripts/install-deps.sh test installs it)"
done
for b in reqrun-ingress reqrun-executor reqrun-mockllm; do
  [ -x "$bin/$b" ] || die "$bin/$b is missing: build first (make build)"
done
[ -x /usr/sbin/nats-server ] || die "/usr/sbin/nats-server is missing"
# The source the binaries were built from: HEAD when the run starts (make bench builds
# just before), "-dirty" with uncommitted changes to tracked files; and the build time.
commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ "$commit" != unknown ] && [ -n "$(GIT_OPTIONAL_LOCKS=0 git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit+="-dirty"
fi
built=$(date -u -r "$bin/reqrun-ingress" +%Y-%m-%dT%H:%M:%SZ)

# ---- the C tools (not part of the ctest suite) --------------------------------------
cflags="-std=c11 -O2 -g -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla"
for t in serial openloop; do
  if [ ! -x "$tools/$t" ] || [ "$here/$t.c" -nt "$tools/$t" ] ||
     [ "$here/benchlib.c" -nt "$tools/$t" ] || [ "$here/benchlib.h" -nt "$tools/$t" ]; then
    # shellcheck disable=SC2046,SC2086
    cc $cflags -o "$tools/$t" "$here/$t.c" "$here/benchlib.c" $(pkg-config --cflags --libs libcurl) ||
      die "building $t"
  fi
done

# ---- the peer: Portkey gateway, pinned by tests/bench/portkey/package-lock.json ------
portkey_reason=""
portkey_version=""
pk_dir=$tools/portkey
pk_main=$pk_dir/node_modules/@portkey-ai/gateway/build/start-server.js
if [ "${BENCH_PORTKEY:-1}" = 0 ]; then
  portkey_reason="skipped (BENCH_PORTKEY=0)"
elif ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  portkey_reason="node/npm not installed"
else
  mkdir -p "$pk_dir"
  if [ ! -f "$pk_main" ] || ! cmp -s "$here/portkey/package-lock.json" "$pk_dir/package-lock.json"; then
    say "installing the Portkey gateway (npm ci) into $pk_dir"
    cp "$here/portkey/package.json" "$here/portkey/package-lock.json" "$pk_dir/"
    if ! timeout 600 "$root/scripts/npm-ci.sh" "$pk_dir" >"$results/portkey-install.log" 2>&1; then
      portkey_reason="npm ci failed (see tests/bench/results/portkey-install.log)"
      rm -f "$pk_dir/package-lock.json"
    fi
  fi
  if [ -z "$portkey_reason" ]; then
    if [ -f "$pk_main" ]; then
      portkey_version=$(node -p "require('$pk_dir/node_modules/@portkey-ai/gateway/package.json').version")
    else
      portkey_reason="installed package has no build/start-server.js"
    fi
  fi
fi

# ---- ports, processes, clean-up ------------------------------------------------------
# Ports below the ephemeral range (32768+ here), so the thousands of outgoing connections
# of the run cannot take one between this check and the bind.
read -r p_nats p_mock p_exec p_ing p_pk < <(python3 - <<'PY'
import random, socket
ports = []
while len(ports) < 5:
    p = random.randrange(20000, 32000)
    if p in ports:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        ports.append(p)
    except OSError:
        pass
    finally:
        s.close()
print(*ports)
PY
)

work=$(mktemp -d /tmp/reqrun-bench.XXXXXX)
pids=()
names=()
# shellcheck disable=SC2034  # set by start(), read through ${!pv}
pid_nats="" pid_mockllm="" pid_executor="" pid_ingress="" pid_portkey=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  for ((i=${#pids[@]}-1; i>=0; i--)); do
    for _ in $(seq 1 100); do kill -0 "${pids[i]}" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "${pids[i]}" 2>/dev/null; then
      say "${names[i]} (pid ${pids[i]}) ignored SIGTERM for 10 s: SIGKILL"
      kill -KILL "${pids[i]}" 2>/dev/null || true
    fi
    wait "${pids[i]}" 2>/dev/null || true
  done
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # name cmd...: starts a process with its output in results/<name>.log
  local name=$1; shift
  "$@" >"$results/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
  printf -v "pid_$name" '%s' "$!"
}

wait_until() { # seconds what cmd...: polls cmd until it succeeds
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what (see tests/bench/results/)"
    sleep 0.1
  done
}

owns_port() { # pid port: the port is listened on by that process only, on 127.0.0.1 only
  local lines
  lines=$(ss -Hltnp "sport = :$2")
  [ -n "$lines" ] || return 1
  ! grep -qv "pid=$1," <<<"$lines" || return 1
  ! awk '{print $4}' <<<"$lines" | grep -qv '^127\.0\.0\.1:' || return 1
}

check_alive() { # after each case: a service that died is a finding, not noise
  local i
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[i]}" 2>/dev/null; then
      say "${names[i]} (pid ${pids[i]}) died during $1; last lines of its log:"
      if grep -q '"signal 15' "$results/${names[i]}.log" 2>/dev/null; then
        say "(it logged SIGTERM: another process on this machine stopped it; this script did not)"
      fi
      tail -n 20 "$results/${names[i]}.log" | tee -a "$runlog" >&2
      die "${names[i]} exited"
    fi
  done
}

# ---- the stack -----------------------------------------------------------------------
while read -r v; do unset "$v"; done < <(compgen -e | grep '^REQRUN_' || true)
export REQRUN_NATS_URL=nats://127.0.0.1:$p_nats
export REQRUN_MOCK_LISTEN=127.0.0.1:$p_mock
export REQRUN_EXECUTOR_LISTEN=127.0.0.1:$p_exec
export REQRUN_LISTEN=127.0.0.1:$p_ing
export REQRUN_UPSTREAM_URL=http://127.0.0.1:$p_mock/v1
export REQRUN_EXECUTOR_CONCURRENCY=2048      # DESIGN §9
export REQRUN_HTTP_THREADS=$http_threads
# The durable-accept case queues ~10^5 requests in 15 s, far past the default of 10,000
# pending per tenant: it measures the accept path, not the 429 of a full tenant.
export REQRUN_TENANT_MAX_PENDING=100000000

mkdir -p "$work/js"
cat >"$work/nats.conf" <<CONF
listen: 127.0.0.1:$p_nats
max_payload: 8MB
jetstream { store_dir: "$work/js" }
CONF
say "stack: nats :$p_nats, mock :$p_mock, executor :$p_exec, ingress :$p_ing, portkey :$p_pk; work dir $work"
start nats /usr/sbin/nats-server -c "$work/nats.conf"
wait_until 10 "nats-server did not listen" owns_port "$pid_nats" "$p_nats"
start mockllm "$bin/reqrun-mockllm"
wait_until 10 "reqrun-mockllm not healthy" curl -fs "http://127.0.0.1:$p_mock/healthz"
start executor "$bin/reqrun-executor"
wait_until 30 "reqrun-executor not ready" curl -fs "http://127.0.0.1:$p_exec/readyz"
start ingress "$bin/reqrun-ingress"
wait_until 30 "reqrun-ingress not ready" curl -fs "http://127.0.0.1:$p_ing/readyz"
for s in mockllm:$p_mock executor:$p_exec ingress:$p_ing; do
  pv="pid_${s%%:*}"
  owns_port "${!pv}" "${s#*:}" || die "${s%%:*} does not own 127.0.0.1:${s#*:} alone"
done

rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
idle_rss="\"ingress_rss_idle_mb\": $(awk -v k="$(rss_kb "$pid_ingress")" 'BEGIN{printf "%.1f", k/1024}'), \"executor_rss_idle_mb\": $(awk -v k="$(rss_kb "$pid_executor")" 'BEGIN{printf "%.1f", k/1024}'),"

if [ -z "$portkey_reason" ]; then
  # The gateway has no host option (serve({fetch, port}) binds every interface): the
  # preload bind-loopback.cjs makes it listen on 127.0.0.1, and owns_port checks it.
  start portkey env NODE_ENV=production node --require "$here/portkey/bind-loopback.cjs" \
    "$pk_main" "--port=$p_pk" --headless
  deadline=$((SECONDS + 30))
  until curl -fs -o /dev/null "http://127.0.0.1:$p_pk/"; do
    if [ $SECONDS -ge $deadline ] || ! kill -0 "$pid_portkey" 2>/dev/null; then
      portkey_reason="gateway did not start (see tests/bench/results/portkey.log)"
      break
    fi
    sleep 0.2
  done
  if [ -z "$portkey_reason" ] && ! owns_port "$pid_portkey" "$p_pk"; then
    portkey_reason="gateway is not listening on 127.0.0.1 only: not benchmarked"
  fi
  if [ -n "$portkey_reason" ]; then
    kill -TERM "$pid_portkey" 2>/dev/null || true
    wait "$pid_portkey" 2>/dev/null || true
    unset 'pids[-1]' 'names[-1]'
  fi
fi
if [ -z "$portkey_reason" ]; then
  say "portkey $portkey_version ready on 127.0.0.1:$p_pk"
else
  say "portkey: $portkey_reason"
fi

# ---- requests --------------------------------------------------------------------------
msg='"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in one word."}]'
printf '{%s,"wait":true}' "$msg" >"$work/wait.json"
printf '{%s,"wait":false}' "$msg" >"$work/accept.json"
printf '{%s,"wait":true,"mock":{"latency_ms":%d}}' "$msg" "$slow_latency_ms" >"$work/slow.json"
completion='"object":"chat.completion"'   # not the async object, not an error
direct_url=http://127.0.0.1:$p_mock/v1/chat/completions
rr_url=http://127.0.0.1:$p_ing/v1/chat/completions
pk_url=http://127.0.0.1:$p_pk/v1/chat/completions
pk_headers=$'x-portkey-provider: openai\nx-portkey-custom-host: http://127.0.0.1:'"$p_mock"$'/v1\nAuthorization: Bearer sk-bench'
pk_curl_headers=(-H "x-portkey-provider: openai" -H "x-portkey-custom-host: http://127.0.0.1:$p_mock/v1"
                 -H "Authorization: Bearer sk-bench")

get_id=$(curl -fsS -D - -o "$work/first.json" -H 'Content-Type: application/json' \
           --data-binary @"$work/wait.json" "$rr_url" | tr -d '\r' |
         awk -F': ' 'tolower($1)=="x-reqrun-request-id"{print $2}')
if [ -z "$get_id" ] || ! grep -qF "$completion" "$work/first.json"; then
  die "first wait:true request did not complete"
fi
get_url=http://127.0.0.1:$p_ing/v1/requests/$get_id
curl -fsS "$get_url" | grep -q '"status":"completed"' || die "GET $get_url is not completed"

# ---- measurement helpers ---------------------------------------------------------------
hz=$(getconf CLK_TCK)
cpu_ticks() { # pid -> utime+stime in clock ticks (/proc/<pid>/stat fields 14 and 15)
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  s=${s##*) }
  local -a f
  read -ra f <<<"$s"
  echo $((f[11] + f[12]))
}
hwm_kb() { awk '/^VmHWM:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
now_s() { date +%s.%N; }
waits_not_completed() { # ingress: wait:true answers that were not a completion so far
  { curl -fs "http://127.0.0.1:$p_ing/metrics" || true; } |
    awk '/^reqrun_wait_outcomes_total/ && !/outcome="completed"/{s+=$2} END{printf "%d", s}'
}
executor_idle() {
  local m
  m=$(curl -fs "http://127.0.0.1:$p_exec/metrics") || return 1
  awk '$1=="reqrun_consumer_pending"||$1=="reqrun_consumer_ack_pending"||$1=="reqrun_executor_jobs"{s+=$2; n++}
       END{exit !(n==3 && s==0)}' <<<"$m"
}
settle() { # the executor has nothing left to do, and the mock forgets its call table
  wait_until 600 "executor did not drain its backlog within 600 s" executor_idle
  curl -fs -X POST "http://127.0.0.1:$p_mock/mock/reset" >/dev/null
}

cpu_snapshot() { # -> "ingress executor nats mockllm portkey" ticks
  local out="" n pv
  for n in ingress executor nats mockllm portkey; do
    pv="pid_$n"
    if [ -n "${!pv:-}" ] && { [ "$n" != portkey ] || [ -z "$portkey_reason" ]; }; then
      out+="$(cpu_ticks "${!pv}") "
    else
      out+="0 "
    fi
  done
  echo "$out"
}
cpu_json() { # before after -> {"ingress_cpu_s":..,...}
  local -a a b
  read -ra a <<<"$1"
  read -ra b <<<"$2"
  local names=(ingress executor nats mockllm portkey) out="" i
  for i in 0 1 2 3 4; do
    out+="\"${names[i]}_cpu_s\":$(awk -v d=$((b[i] - a[i])) -v hz="$hz" 'BEGIN{printf "%.2f", d/hz}'),"
  done
  echo "${out%,}"
}
record() { # round case json-object-body
  printf '{"round":%d,"case":"%s",%s}\n' "$1" "$2" "$3" >>"$rounds_log"
}

serial_case() { # round case url [curl-ish args for serial]
  local r=$1 c=$2 url=$3; shift 3
  local out
  out=$(timeout 600 "$tools/serial" -u "$url" -n "$serial_n" -w "$serial_warmup" "$@" \
          2>>"$results/serial.log") || say "$c: some requests failed (see results/serial.log)"
  [ -n "$out" ] || die "$c: serial produced no result"
  record "$r" "$c" "\"r\":$out"
  say "round $r $c: $out"
  check_alive "$c"
}

wrk_case() { # round case url method body-file headers [seconds]
  local r=$1 c=$2 url=$3 method=$4 body=$5 headers=$6 secs=${7:-$tp_s}
  local before after t0 t1 out nc0 nc1
  nc0=$(waits_not_completed); before=$(cpu_snapshot); t0=$(now_s)
  out=$(BENCH_METHOD=$method BENCH_BODY_FILE=$body BENCH_HEADERS=$headers \
        timeout $((secs + 90)) wrk -t2 -c"$conns" -d"${secs}s" --timeout 30s \
        -s "$here/wrk.lua" "$url" 2>&1 | tee -a "$results/wrk.log" | sed -n 's/^WRKJSON //p')
  t1=$(now_s); after=$(cpu_snapshot); nc1=$(waits_not_completed)
  [ -n "$out" ] || die "$c: wrk produced no result (see results/wrk.log)"
  if [ "$r" -gt 0 ]; then
    record "$r" "$c" "\"waits_not_completed\":$((nc1 - nc0)),\"wall_s\":$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}'),$(cpu_json "$before" "$after"),\"r\":$out"
    say "round $r $c: $out"
  fi
  check_alive "$c"
}

accept_case() { # wait:false, then the time the executor needs to work off the backlog
  local r=$1 t0 t1 t2
  t0=$(now_s)
  wrk_case "$r" tp_accept "$rr_url" POST "$work/accept.json" ""
  t1=$(now_s)
  wait_until 600 "executor did not drain the accepted backlog within 600 s" executor_idle
  t2=$(now_s)
  record "$r" drain "\"accept_start_to_idle_s\":$(awk -v a="$t0" -v b="$t2" 'BEGIN{printf "%.3f", b-a}'),\"after_wrk_s\":$(awk -v a="$t1" -v b="$t2" 'BEGIN{printf "%.3f", b-a}')"
  say "round $r drain: backlog worked off $(awk -v a="$t1" -v b="$t2" 'BEGIN{printf "%.1f", b-a}') s after wrk ended"
}

slow_case() { # round case url seconds: constant offered rate, slow upstream
  local r=$1 c=$2 url=$3 secs=$4 before after t0 t1 out n pv
  for n in ingress executor nats; do
    pv="pid_$n"
    echo 5 >"/proc/${!pv}/clear_refs" 2>/dev/null || say "cannot reset VmHWM of $n"
  done
  before=$(cpu_snapshot); t0=$(now_s)
  out=$(timeout $((secs + 120)) "$tools/openloop" -u "$url" -r "$slow_rate" -t "$secs" \
          -c "$slow_conns" -D "$work/slow.json" -e "$completion" -T 30 \
          2>>"$results/openloop.log") || say "$c: some requests failed (see results/openloop.log)"
  t1=$(now_s); after=$(cpu_snapshot)
  [ -n "$out" ] || die "$c: openloop produced no result"
  record "$r" "$c" "\"wall_s\":$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}'),$(cpu_json "$before" "$after"),\"ingress_hwm_kb\":$(hwm_kb "$pid_ingress"),\"executor_hwm_kb\":$(hwm_kb "$pid_executor"),\"nats_hwm_kb\":$(hwm_kb "$pid_nats"),\"r\":$out"
  say "round $r $c: $out"
  check_alive "$c"
}

# ---- warm-up (not recorded) and the rounds ----------------------------------------------
say "warm-up ($warm_s s per target)"
wrk_case 0 warm_direct "$direct_url" POST "$work/wait.json" "" "$warm_s"
wrk_case 0 warm_wait "$rr_url" POST "$work/wait.json" "" "$warm_s"
[ -z "$portkey_reason" ] && wrk_case 0 warm_portkey "$pk_url" POST "$work/wait.json" "$pk_headers" "$warm_s"
settle

say "$rounds round(s): serial n=$serial_n, wrk ${tp_s}s at $conns connections, slow ${slow_rate}/s for ${slow_s}s at ${slow_latency_ms} ms"
for r in $(seq 1 "$rounds"); do
  serial_case "$r" serial_direct "$direct_url" -D "$work/wait.json" -e "$completion"
  serial_case "$r" serial_wait "$rr_url" -D "$work/wait.json" -e "$completion"
  [ -z "$portkey_reason" ] && serial_case "$r" serial_portkey "$pk_url" -D "$work/wait.json" \
    -e "$completion" "${pk_curl_headers[@]}"
  settle
  wrk_case "$r" tp_direct "$direct_url" POST "$work/wait.json" ""
  wrk_case "$r" tp_wait "$rr_url" POST "$work/wait.json" ""
  settle
  accept_case "$r"
  settle
  wrk_case "$r" tp_get "$get_url" GET "" ""
  [ -z "$portkey_reason" ] && wrk_case "$r" tp_portkey "$pk_url" POST "$work/wait.json" "$pk_headers"
  settle
  slow_case "$r" slow_direct "$direct_url" "$slow_direct_s"
  settle
  slow_case "$r" slow "$rr_url" "$slow_s"
  settle
done

# ---- facts and the report -----------------------------------------------------------------
errors_json=""
for n in ingress executor mockllm; do
  errors_json+="\"log_errors_$n\":$(grep -c '"level":"error"' "$results/$n.log" || true),"
done
# A quick run is not comparable: it never replaces the committed latest.json.
if [ "$quick" = 1 ]; then out_json=$results/quick.log; else out_json=$results/latest.json; fi
python3 "$here/report.py" "$rounds_log" "$out_json" <<META
{
  "mode": "$([ "$quick" = 1 ] && echo quick || echo full)",
  "rounds": $rounds, "serial_n": $serial_n, "tp_seconds": $tp_s, "connections": $conns,
  "slow_rate": $slow_rate, "slow_seconds": $slow_s, "slow_latency_ms": $slow_latency_ms,
  "http_threads": $http_threads, "executor_concurrency": 2048,
  "portkey_version": $([ -n "$portkey_version" ] && echo "\"$portkey_version\"" || echo null),
  "portkey_reason": $([ -n "$portkey_reason" ] && echo "\"$portkey_reason\"" || echo null),
  $errors_json
  $idle_rss
  "cpu_model": "$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)",
  "cores": $(nproc),
  "kernel": "$(uname -r)",
  "nats_server_version": "$(/usr/sbin/nats-server --version | awk '{print $2}')",
  "libcurl_version": "$(pkg-config --modversion libcurl)",
  "node_version": "$(node --version 2>/dev/null || echo none)",
  "loadavg_at_start": "$load_start",
  "loadavg_at_end": "$(cut -d' ' -f1-3 /proc/loadavg)",
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "git_commit": "$commit",
  "binaries_built": "$built"
}
META
say "wrote ${out_json#"$root/"}"
