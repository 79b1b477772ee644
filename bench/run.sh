#!/usr/bin/env bash
# Flotilla load benchmark: one command, one report.
#
#   bench/run.sh            full run (about 6-7 minutes), writes bench/results/latest.{md,json}
#   bench/run.sh --quick    1-2 s per step, to check that the benchmark builds and runs; writes bench/results/quick.{md,json}
#
# Layout on a 2-core machine (override with BENCH_GATEWAY_CPU / BENCH_LOAD_CPU):
#   core 0: the gateway alone (and, for the ceiling step only, a bare Kestrel app in its place)
#   core 1: wrk (one thread), the fake upstreams, the streaming probe
# The upstream shares core 1 with the load generator, so "direct" runs client and server on one core while gateway runs
# spread over two: for RPS the fair comparison is the ceiling (a bare Kestrel app on core 0, wrk alone on core 1); for
# latency it is direct (same client, same upstream, one hop less).
#
# Needs: dotnet (SDK of global.json), wrk (apt-get install -y wrk), taskset, curl, awk. Binds 127.0.0.1 only.
# Every process it starts is stopped by PID on exit, failure included. Env: BENCH_KEEP_TMP=1 keeps the temp dir and logs;
# BENCH_QUIET_WAIT=SECONDS (default 60) is how long to wait for other processes to quieten before measuring.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="$root/bench"
mode=full
for arg in "$@"; do
  case "$arg" in
    --quick) mode=quick ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$arg' (use --quick or nothing)" >&2; exit 2 ;;
  esac
done

gateway_cpu="${BENCH_GATEWAY_CPU:-0}"
load_cpu="${BENCH_LOAD_CPU:-1}"
if [[ "$mode" == full ]]; then
  step_s=10; window_s=5; warm_max_s=45; ceiling_warm_max_s=20; ttft_samples=2000; ttft_warmup=500; lat_samples=10000; lat_warmup=1000; mcp_samples=3000; mcp_warmup=500
  streams=1000; streams_s=10; ramp_ms=1000; quiet_wait_s=${BENCH_QUIET_WAIT:-60}
else
  step_s=1; window_s=1; warm_max_s=2; ceiling_warm_max_s=2; ttft_samples=200; ttft_warmup=50; lat_samples=500; lat_warmup=100; mcp_samples=200; mcp_warmup=50
  streams=200; streams_s=2; ramp_ms=200; quiet_wait_s=0
fi
conns=64            # saturation, instant upstream
conns_slow=256      # saturation, 20 ms upstream: at most 256 / 20 ms = 12,800 RPS (less: the timer adds ~2 ms)
slow_ms=20
stream_chunks=20; stream_chunk_ms=50   # the long streams of the concurrency step: ~1 s each
stall_ms=500
upstream_key="bench-upstream-key"
admin_token="bench-admin-$(od -An -N24 -tx1 /dev/urandom | tr -d " \n")"
started_at=$(date +%s)

say() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[bench] %s\033[0m\n' "$*" >&2; exit 1; }

for tool in dotnet wrk taskset curl awk; do
  hint=""; [[ "$tool" == wrk ]] && hint=" (apt-get install -y wrk)"
  command -v "$tool" >/dev/null || die "'$tool' is not installed$hint"
done
cpus=$(nproc --all)
(( cpus >= 2 )) || die "needs at least 2 cores (found $cpus): the gateway and the load generator each get one"

tmp="$(mktemp -d -t flotilla-bench.XXXXXX)"
logs="$tmp/logs"; mkdir -p "$logs" "$tmp/data" "$tmp/cwd"
out="$root/.build/bench"
pids=()

stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  wait 2>/dev/null || true
  if (( status != 0 )); then
    say "failed (exit $status); logs kept in $logs"
  elif [[ -z "${BENCH_KEEP_TMP:-}" ]]; then
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n 65536 2>/dev/null || true

# start NAME CPU COMMAND...: runs COMMAND pinned to CPU in the background, in an empty working directory (so no
# configuration file watcher sees the gateway's SQLite writes); its PID is left in $last_pid.
start() {
  local name=$1 cpu=$2; shift 2
  (cd "$tmp/cwd" && exec taskset -c "$cpu" "$@") >"$logs/$name.log" 2>&1 &
  last_pid=$!
  pids+=("$last_pid")
}

wait_http() {
  local url=$1 pid=$2 name=$3
  for _ in $(seq 1 300); do
    curl -sf -o /dev/null "$url" && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$logs/$name.log" >&2; die "$name exited before answering $url"; }
    sleep 0.1
  done
  cat "$logs/$name.log" >&2
  die "$name did not answer $url within 30 s"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
next_port=${BENCH_PORT_BASE:-18700}
take_port() {
  while ! port_free "$next_port"; do next_port=$((next_port + 1)); done
  port=$next_port
  next_port=$((next_port + 1))
}

# --- CPU accounting: how much of the machine did processes outside the benchmark use? ----------------------------------
hz=$(getconf CLK_TCK)
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
pid_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# Ticks of every running benchmark process plus the reaped children of this shell (wrk, probes, curl).
own_ticks() {
  local sum pid
  sum=$(awk '{print $16 + $17}' /proc/$$/stat)
  for pid in "${pids[@]}"; do sum=$((sum + $(pid_ticks "$pid"))); done
  echo "$sum"
}
now_ms() { date +%s%3N; }
acct_begin() { acct_busy=$(busy_ticks); acct_own=$(own_ticks); acct_t=$(now_ms); }
# acct_end: percent of the whole machine (all cores) used by other processes since acct_begin.
acct_end() {
  local busy own t
  busy=$(busy_ticks); own=$(own_ticks); t=$(now_ms)
  awk -v b=$((busy - acct_busy)) -v o=$((own - acct_own)) -v ms=$((t - acct_t)) -v hz="$hz" -v n="$cpus" \
    'BEGIN { x = (b - o) / (ms / 1000 * hz * n) * 100; if (x < 0) x = 0; printf "%.1f", x }'
}

# --- build -------------------------------------------------------------------------------------------------------------
build() {
  local project=$1 dir=$2
  if ! dotnet build "$root/$project" -c Release -o "$out/$dir" --nologo -v quiet >"$logs/build-$dir.log" 2>&1; then
    grep -E ' error |error [A-Z]+[0-9]+' "$logs/build-$dir.log" | sort -u >&2 || cat "$logs/build-$dir.log" >&2
    die "building $project failed"
  fi
}
say "building (Release): gateway, fake upstream, probe"
build src/Flotilla.Cli gateway
build bench/Flotilla.Bench.Upstream upstream
build bench/Flotilla.Bench.Probe probe
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# Tiered compilation waits for a 100 ms lull in new tier-0 methods before it counts calls; a process saturated on one
# core sees no lull for 30-60 s and runs unoptimised (and PGO-instrumented) code meanwhile. Counting at once reaches the
# same steady state within seconds (docs/performance.md has both curves). BENCH_TIERING=default measures as shipped.
if [[ "${BENCH_TIERING:-fast}" != default ]]; then
  export DOTNET_TC_CallCountingDelayMs=0
  tiering_note="DOTNET_TC_CallCountingDelayMs=0 for every process (steady state in seconds instead of a minute)"
else
  tiering_note="default tiered compilation (the gateway needs 30-60 s of load to reach its steady state)"
fi

# --- wait for a quiet machine --------------------------------------------------------------------------------------------
quiet_start=$(date +%s)
while :; do
  acct_begin; sleep 2; background=$(acct_end)
  awk -v x="$background" 'BEGIN { exit !(x <= 10) }' && break
  if (( $(date +%s) - quiet_start >= quiet_wait_s )); then
    say "other processes use ${background}% of the machine; measuring anyway (figures will be noisier)"
    break
  fi
  say "other processes use ${background}% of the machine; waiting for it to quieten (up to ${quiet_wait_s}s)"
done
background_start=$background

# --- start the upstreams and the gateway --------------------------------------------------------------------------------
take_port; up_port=$port
take_port; slow_port=$port
take_port; streams_port=$port
take_port; gw_port=$port
take_port; ceiling_port=$port
take_port; relay_port=$port
upstream_dll="$out/upstream/Flotilla.Bench.Upstream.dll"

start upstream "$load_cpu" dotnet "$upstream_dll" --port "$up_port"
up_pid=$last_pid
start upstream-slow "$load_cpu" dotnet "$upstream_dll" --port "$slow_port" --delay-ms "$slow_ms"
slow_pid=$last_pid
start upstream-streams "$load_cpu" dotnet "$upstream_dll" --port "$streams_port" --chunks "$stream_chunks" --chunk-delay-ms "$stream_chunk_ms"
streams_pid=$last_pid

# Every policy a fleet file declares is on, with limits the benchmark never reaches; the gateway applies whichever of
# them its request path implements at the commit measured (docs/performance.md says which).
fleet="$tmp/fleet.yaml"
cat >"$fleet" <<EOF
# Written by bench/run.sh.
gateway:
  providers:
    - { name: upstream, type: openai, base_url: "http://127.0.0.1:$up_port/v1", api_key: "\${env:BENCH_UPSTREAM_KEY}" }
    - { name: upstream-slow, type: openai, base_url: "http://127.0.0.1:$slow_port/v1", api_key: "\${env:BENCH_UPSTREAM_KEY}" }
    - { name: upstream-streams, type: openai, base_url: "http://127.0.0.1:$streams_port/v1", api_key: "\${env:BENCH_UPSTREAM_KEY}" }
  models:
    - { name: bench-mini, provider: upstream, model: gpt-4o-mini, price: { input_per_million: 0.15, output_per_million: 0.60 } }
    - { name: bench-backup, provider: upstream, model: gpt-4o, price: { input_per_million: 2.50, output_per_million: 10.00 } }
    - { name: bench-slow-mini, provider: upstream-slow, model: gpt-4o-mini, price: { input_per_million: 0.15, output_per_million: 0.60 } }
    - { name: bench-streams-mini, provider: upstream-streams, model: gpt-4o-mini, price: { input_per_million: 0.15, output_per_million: 0.60 } }
  routing:
    virtual_model: bench
    virtual_models:
      - name: bench
        strategy: priority
        targets: [ { model: bench-mini, priority: 0 }, { model: bench-backup, priority: 1 } ]
        fallback_on: [429, 500, 502, 503, 504]
        ttft_timeout_ms: 4000
      - name: bench-slow
        strategy: priority
        targets: [ { model: bench-slow-mini, priority: 0 }, { model: bench-backup, priority: 1 } ]
        ttft_timeout_ms: 4000
      - name: bench-streams
        strategy: priority
        targets: [ { model: bench-streams-mini, priority: 0 }, { model: bench-backup, priority: 1 } ]
        ttft_timeout_ms: 4000
    retries: { attempts: 2, on_status_codes: ["429", "500", "502", "503"] }
  guardrails:
    llm_input: [prompt-injection]
    llm_output: [pii, secrets-detection]
    mcp_pre_tool: [prompt-injection]
    mcp_post_tool: [secrets-detection, pii]
  budgets:
    - { applies_per: agent, limit: 1000000/day, alert_at: [75, 90, 100] }
  rate_limits:
    - { applies_per: agent, requests_per_minute: 1000000000, tokens_per_minute: 1000000000000, tool_calls_per_minute: 1000000000 }
---
mcp_server: { name: bench-tools, url: "http://127.0.0.1:$up_port/mcp", trusted: true }
---
agent:
  name: bench-agent
  owner: bench-team
  description: The caller of every benchmark request.
  model: bench
  mcp_servers: [bench-tools]
EOF

# Relay only: the same fleet without guardrails, budgets and rate limits (agent-key auth, routing with fallback and
# retries, and the trace stay), for the relay-only throughput step and a second run of the streams step.
relay_fleet="$tmp/fleet-relay.yaml"
awk '/^  (guardrails|budgets|rate_limits):/ { skip = 1; next } skip && /^    / { next } { skip = 0; print }' "$fleet" >"$relay_fleet"
grep -qE 'guardrails|budgets|rate_limits' "$relay_fleet" && die "could not write the relay-only fleet"

start gateway "$gateway_cpu" env FLOTILLA_ADMIN_TOKEN="$admin_token" BENCH_UPSTREAM_KEY="$upstream_key" \
  dotnet "$out/gateway/flotilla.dll" serve --fleet "$fleet" --urls "http://127.0.0.1:$gw_port" --data "$tmp/data"
gw_pid=$last_pid
wait_http "http://127.0.0.1:$up_port/hello" "$up_pid" upstream
wait_http "http://127.0.0.1:$slow_port/hello" "$slow_pid" upstream-slow
wait_http "http://127.0.0.1:$streams_port/hello" "$streams_pid" upstream-streams
wait_http "http://127.0.0.1:$gw_port/healthz" "$gw_pid" gateway
[[ "$(cat "/proc/$gw_pid/comm")" == dotnet ]] || die "PID $gw_pid is not the gateway's dotnet process"

agent_key=$(curl -sf -X POST "http://127.0.0.1:$gw_port/api/keys" -H "Authorization: Bearer $admin_token" \
  -H 'Content-Type: application/json' -d '{"agent":"bench-agent"}' | sed -n 's/.*"key" *: *"\([^"]*\)".*/\1/p')
[[ "$agent_key" == flt_* ]] || die "could not get an agent key from POST /api/keys"

# Request bodies: the ~1 KB chat body, per virtual model, non-streaming and streaming.
body="$bench/load/chat.json"
with_model() { sed "s/\"model\":\"bench\"/\"model\":\"$1\"/" "$body"; }
stream_body() { with_model "$1" | sed 's/^{/{"stream":true,/'; }
with_model bench >"$tmp/chat.json"
with_model bench-slow >"$tmp/chat-slow.json"
stream_body bench >"$tmp/stream.json"
stream_body bench-streams >"$tmp/stream-long.json"
body_bytes=$(wc -c <"$tmp/chat.json")
# A loop's history, resent on every step with only its last message new (__VARY__ becomes a counter per request):
# 60 turns (~70 KB) and the 2-turn baseline.
loop_body() { # loop_body TURNS
  awk -v turns="$1" 'BEGIN {
    filler = "the failing test reads the fixture before the migration runs; "
    printf "{\"model\":\"bench\",\"messages\":[{\"role\":\"system\",\"content\":\"You triage failing builds.\"}"
    for (t = 1; t < turns; t++) {
      text = ""; for (i = 0; i < 18; i++) text = text filler
      printf ",{\"role\":\"%s\",\"content\":\"step %d: %s\"}", (t % 2 ? "user" : "assistant"), t, text
    }
    printf ",{\"role\":\"user\",\"content\":\"step %d: what failed in run __VARY__?\"}],\"max_tokens\":64}", turns
  }'
}
loop_body 60 >"$tmp/loop-60.json"
loop_body 2 >"$tmp/loop-2.json"
loop_bytes=$(wc -c <"$tmp/loop-60.json")

gw_url="http://127.0.0.1:$gw_port/v1/chat/completions"
up_url="http://127.0.0.1:$up_port/v1/chat/completions"
slow_url="http://127.0.0.1:$slow_port/v1/chat/completions"

# Sanity: the gateway answers through the upstream, both ways, before anything is measured.
check=$(curl -s -D "$tmp/headers" -o "$tmp/answer" -w '%{http_code}' "$gw_url" -H "Authorization: Bearer $agent_key" \
  -H 'Content-Type: application/json' --data-binary @"$tmp/chat.json")
[[ "$check" == 200 ]] && grep -qi '^x-flotilla-target: bench-mini' "$tmp/headers" && grep -q '"chat.completion"' "$tmp/answer" \
  || { cat "$tmp/headers" "$tmp/answer" >&2; die "the gateway did not answer a chat call through the upstream (HTTP $check)"; }
curl -s "$gw_url" -H "Authorization: Bearer $agent_key" -H 'Content-Type: application/json' --data-binary @"$tmp/stream.json" \
  | grep -q '^data: \[DONE\]' || die "the gateway did not relay a stream through the upstream"

# --- measurements -------------------------------------------------------------------------------------------------------
declare -A R
# measure NAME CONNECTIONS SECONDS URL BODY|- [KEY]: one wrk run on the load core; figures land in R[NAME.field],
# including R[NAME.background], the share of the machine other processes used meanwhile.
measure() {
  local name=$1 c=$2 d=$3 url=$4 request=$5 key=${6:-}
  say "wrk $name: -c $c -d ${d}s $url"
  acct_begin
  taskset -c "$load_cpu" wrk -t 1 -c "$c" -d "${d}s" --timeout 5s --latency -s "$bench/load/wrk.lua" "$url" -- "$request" "$key" \
    >"$logs/wrk-$name.log" 2>&1 || { cat "$logs/wrk-$name.log" >&2; die "wrk $name failed"; }
  R[$name.background]=$(acct_end)
  local line kv
  line=$(grep '^BENCH_RESULT' "$logs/wrk-$name.log") || { cat "$logs/wrk-$name.log" >&2; die "wrk $name printed no result"; }
  for kv in ${line#BENCH_RESULT }; do R[$name.${kv%%=*}]=${kv#*=}; done
  R[$name.errors]=$(( ${R[$name.connect_errors]} + ${R[$name.read_errors]} + ${R[$name.write_errors]} + ${R[$name.status_errors]} + ${R[$name.timeouts]} ))
  local watched=${watched_pid:-$gw_pid}
  kill -0 "$watched" 2>/dev/null || { tail -20 "$logs/gateway.log" >&2; die "the gateway (PID $watched) is gone after step $name (killed from outside?)"; }
}
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# warm NAME MAX_SECONDS URL BODY|- [KEY]: windows of $window_s until two in a row agree within 5% (tiered JIT and PGO
# take a while on one saturated core), at most MAX_SECONDS; the first and last window's RPS land in R[NAME.first|last].
warm() {
  local name=$1 max=$2 url=$3 request=$4 key=${5:-} i=0 prev=0 rps elapsed=0 curve=""
  while (( elapsed < max )); do
    i=$((i + 1))
    measure "$name-$i" "$conns" "$window_s" "$url" "$request" "$key"
    rps=${R[$name-$i.rps]}; elapsed=$((elapsed + window_s)); curve="$curve${curve:+ → }$(printf '%.0f' "$rps")"
    (( i == 1 )) && R[$name.first]=$rps
    if (( i >= 3 )) && awk -v a="$rps" -v b="$prev" 'BEGIN { exit !(a > 0 && b > 0 && (a > b ? a / b : b / a) <= 1.05) }'; then break; fi
    prev=$rps
  done
  R[$name.last]=$rps; R[$name.seconds]=$elapsed; R[$name.curve]=$curve
}

# Ceiling: a bare Kestrel app on the gateway's core, wrk alone on the other.
say "ceiling: bare Kestrel on core $gateway_cpu"
start ceiling "$gateway_cpu" dotnet "$upstream_dll" --port "$ceiling_port"
ceiling_pid=$last_pid
wait_http "http://127.0.0.1:$ceiling_port/hello" "$ceiling_pid" ceiling
warm warm-ceiling "$ceiling_warm_max_s" "http://127.0.0.1:$ceiling_port/v1/chat/completions" "$tmp/chat.json" "$upstream_key"
measure hello "$conns" "$step_s" "http://127.0.0.1:$ceiling_port/hello" -
measure ceiling-chat "$conns" "$step_s" "http://127.0.0.1:$ceiling_port/v1/chat/completions" "$tmp/chat.json" "$upstream_key"
stop_pid "$ceiling_pid"

# The proxy ceiling: nginx as a plain reverse proxy to the same upstream (keep-alive upstream connections), one worker
# on the gateway's core. Installed from Debian for a full run when missing; a quick run uses it only if present.
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
if [[ ! -x $nginx_bin && $mode == full ]]; then
  say "installing nginx-light (apt-get) for the proxy ceiling"
  if [[ $(id -u) -eq 0 ]]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq nginx-light >"$logs/nginx-install.log" 2>&1 || say "could not install nginx-light"
fi
R[nginx.rps]=0
if [[ -x $nginx_bin ]]; then
  take_port; nginx_port=$port
  mkdir -p "$tmp/nginx/logs"
  cat >"$tmp/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body; proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi; uwsgi_temp_path $tmp/nginx/uwsgi; scgi_temp_path $tmp/nginx/scgi;
  upstream fake { server 127.0.0.1:$up_port; keepalive 256; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / { proxy_pass http://fake; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGINX
  say "proxy ceiling: nginx on core $gateway_cpu"
  start nginx "$gateway_cpu" "$nginx_bin" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf"
  nginx_pid=$last_pid
  wait_http "http://127.0.0.1:$nginx_port/hello" "$nginx_pid" nginx
  warm warm-nginx "$ceiling_warm_max_s" "http://127.0.0.1:$nginx_port/v1/chat/completions" "$tmp/chat.json" "$upstream_key"
  measure nginx "$conns" "$step_s" "http://127.0.0.1:$nginx_port/v1/chat/completions" "$tmp/chat.json" "$upstream_key"
  stop_pid "$nginx_pid"
fi
nginx_share() { awk -v a="$1" -v b="${R[nginx.rps]}" 'BEGIN { printf "%.1f", (b > 0 ? 100 * a / b : 0) }'; }
nginx_note() { [[ ${R[nginx.rps]%.*} -gt 0 ]] && printf '%s of nginx (%s)' "$(pct "$1" "${R[nginx.rps]}")" "$(fmt "${R[nginx.rps]}")" || printf 'no nginx'; }

say "warm-up until RPS settles (at most ${warm_max_s}s)"
warm warm-gateway "$warm_max_s" "$gw_url" "$tmp/chat.json" "$agent_key"
measure warm-gateway-slow "$conns_slow" "$window_s" "$gw_url" "$tmp/chat-slow.json" "$agent_key"

measure direct "$conns" "$step_s" "$up_url" "$tmp/chat.json" "$upstream_key"
ticks_before=$(pid_ticks "$gw_pid")
measure gateway "$conns" "$step_s" "$gw_url" "$tmp/chat.json" "$agent_key"
ticks_after=$(pid_ticks "$gw_pid")
measure direct-slow "$conns_slow" "$step_s" "$slow_url" "$tmp/chat-slow.json" "$upstream_key"
measure gateway-slow "$conns_slow" "$step_s" "$gw_url" "$tmp/chat-slow.json" "$agent_key"
measure direct-c1 1 "$step_s" "$up_url" "$tmp/chat.json" "$upstream_key"
measure gateway-c1 1 "$step_s" "$gw_url" "$tmp/chat.json" "$agent_key"
rss_after_load_kb=$(status_kb "$gw_pid" VmRSS)
cpu_us_per_request=$(awk -v t=$((ticks_after - ticks_before)) -v hz="$hz" -v n="${R[gateway.requests]}" \
  'BEGIN { printf "%.1f", (n > 0 ? t / hz * 1e6 / n : 0) }')

# The long-history loop: the full chain on a 60-turn history whose last message changes per request, against 2 turns.
measure loop-2 "$conns" "$step_s" "$gw_url" "$tmp/loop-2.json" "$agent_key"
measure loop-60 "$conns" "$step_s" "$gw_url" "$tmp/loop-60.json" "$agent_key"
loop_ratio=$(awk -v a="${R[loop-2.rps]}" -v b="${R[loop-60.rps]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')

probe() { taskset -c "$load_cpu" dotnet "$out/probe/Flotilla.Bench.Probe.dll" "$@"; }
say "latency at concurrency 1: $lat_samples calls each, direct and through the gateway, interleaved (cross-check of wrk -c 1)"
acct_begin
lat_json=$(probe latency --direct "$up_url" --direct-key "$upstream_key" --gateway "$gw_url" --gateway-key "$agent_key" \
  --body "$tmp/chat.json" --samples "$lat_samples" --warmup "$lat_warmup" 2>"$logs/probe-latency.log") \
  || { echo "$lat_json" >&2; cat "$logs/probe-latency.log" >&2; die "the latency probe failed"; }
R[latency.background]=$(acct_end)

say "time to first token: $ttft_samples streamed calls each, direct and through the gateway, interleaved"
acct_begin
ttft_json=$(probe ttft --direct "$up_url" --direct-key "$upstream_key" --gateway "$gw_url" --gateway-key "$agent_key" \
  --body "$tmp/stream.json" --samples "$ttft_samples" --warmup "$ttft_warmup" 2>"$logs/probe-ttft.log") \
  || { echo "$ttft_json" >&2; cat "$logs/probe-ttft.log" >&2; die "the TTFT probe failed"; }
R[ttft.background]=$(acct_end)

say "MCP tools/call at concurrency 1: $mcp_samples calls each, direct to the upstream's /mcp and through the gateway's, interleaved"
acct_begin
mcp_json=$(probe mcp --direct "http://127.0.0.1:$up_port/mcp" --gateway "http://127.0.0.1:$gw_port/mcp" --gateway-key "$agent_key" \
  --direct-tool lookup --gateway-tool bench-tools__lookup --samples "$mcp_samples" --warmup "$mcp_warmup" 2>"$logs/probe-mcp.log") \
  || { echo "$mcp_json" >&2; cat "$logs/probe-mcp.log" >&2; die "the MCP probe failed"; }
R[mcp.background]=$(acct_end)

# streams NAME PID URL KEY: $streams streams at once through the gateway PID; JSON in streams_json_NAME, peak RSS in
# rss_peak_NAME (kB), other load in R[NAME.background].
run_streams() {
  local name=$1 pid=$2 url=$3 key=$4 sampler json
  say "concurrent streams ($name): $streams at once for ${streams_s}s ($stream_chunks chunks ${stream_chunk_ms} ms apart each)"
  rm -f "$tmp/rss-peak"
  (
    peak=0
    while kill -0 "$pid" 2>/dev/null; do
      rss=$(status_kb "$pid" VmRSS)
      if (( rss > peak )); then peak=$rss; echo "$peak" >"$tmp/rss-peak"; fi
      sleep 0.2
    done
  ) &
  sampler=$!
  pids+=("$sampler")
  acct_begin
  json=$(probe streams --url "$url" --key "$key" --body "$tmp/stream-long.json" --concurrency "$streams" \
    --duration-s "$streams_s" --ramp-ms "$ramp_ms" --stall-ms "$stall_ms" 2>"$logs/probe-streams-$name.log") \
    || say "the streams probe ($name) reported errors: $json"
  R[streams-$name.background]=$(acct_end)
  [[ -n "$json" ]] || { cat "$logs/probe-streams-$name.log" >&2; die "the streams probe ($name) printed nothing"; }
  sleep 0.3
  stop_pid "$sampler"
  kill -0 "$pid" 2>/dev/null || die "the gateway (PID $pid) is gone after the streams step ($name)"
  printf -v "streams_json_$name" '%s' "$json"
  printf -v "rss_peak_$name" '%s' "$(cat "$tmp/rss-peak" 2>/dev/null || echo 0)"
}
run_streams full "$gw_pid" "$gw_url" "$agent_key"
streams_json=$streams_json_full
rss_streams_kb=$rss_peak_full
rss_end_kb=$(status_kb "$gw_pid" VmRSS)
hwm_kb=$(status_kb "$gw_pid" VmHWM)
stop_pid "$gw_pid"

start gateway-relay "$gateway_cpu" env FLOTILLA_ADMIN_TOKEN="$admin_token" BENCH_UPSTREAM_KEY="$upstream_key" \
  dotnet "$out/gateway/flotilla.dll" serve --fleet "$relay_fleet" --urls "http://127.0.0.1:$relay_port" --data "$tmp/data-relay"
relay_pid=$last_pid
wait_http "http://127.0.0.1:$relay_port/healthz" "$relay_pid" gateway-relay
relay_key=$(curl -sf -X POST "http://127.0.0.1:$relay_port/api/keys" -H "Authorization: Bearer $admin_token" \
  -H 'Content-Type: application/json' -d '{"agent":"bench-agent"}' | sed -n 's/.*"key" *: *"\([^"]*\)".*/\1/p')
[[ "$relay_key" == flt_* ]] || die "could not get an agent key from the relay-only gateway"
relay_url="http://127.0.0.1:$relay_port/v1/chat/completions"
say "relay only: warm-up, then RPS at c=$conns"
watched_pid=$relay_pid
warm warm-relay "$warm_max_s" "$relay_url" "$tmp/chat.json" "$relay_key"
measure relay "$conns" "$step_s" "$relay_url" "$tmp/chat.json" "$relay_key"
run_streams relay "$relay_pid" "http://127.0.0.1:$relay_port/v1/chat/completions" "$relay_key"
relay_hwm_kb=$(status_kb "$relay_pid" VmHWM)

# --- report -------------------------------------------------------------------------------------------------------------
# jnum JSON PATH: a number from the probe's JSON (jq when present, else a regex on a path of at most two keys).
jnum() {
  if command -v jq >/dev/null; then jq -r "$2" <<<"$1"; return; fi
  local key=${2##*.} parent=${2%.*}; parent=${parent#.}
  if [[ -z "$parent" ]]; then sed -n "s/.*\"$key\":\([-0-9.]*\).*/\1/p" <<<"$1"
  else sed -n "s/.*\"$parent\":{[^}]*\"$key\":\([-0-9.]*\).*/\1/p" <<<"$1"; fi
}
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
fmt() { awk -v x="$1" 'BEGIN { s = sprintf("%.0f", x); r = ""; while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) } printf "%s%s", s, r }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", (b > 0 ? 100 * a / b : 0) }'; }
verdict() { awk -v v="$1" -v op="$2" -v goal="$3" 'BEGIN { ok = (op == ">=") ? v >= goal : v <= goal; printf "%s", ok ? "met" : "**missed**" }'; }
bg() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { m = a > b ? a : b; printf "%.0f%%", m }'; }

ttft_direct_p50=$(jnum "$ttft_json" .direct.p50_us); ttft_direct_p99=$(jnum "$ttft_json" .direct.p99_us)
ttft_gw_p50=$(jnum "$ttft_json" .gateway.p50_us); ttft_gw_p99=$(jnum "$ttft_json" .gateway.p99_us)
ttft_add_p50=$((ttft_gw_p50 - ttft_direct_p50)); ttft_add_p99=$((ttft_gw_p99 - ttft_direct_p99))
tok_direct_p50=$(jnum "$ttft_json" .direct_first_token.p50_us); tok_direct_p99=$(jnum "$ttft_json" .direct_first_token.p99_us)
tok_gw_p50=$(jnum "$ttft_json" .gateway_first_token.p50_us); tok_gw_p99=$(jnum "$ttft_json" .gateway_first_token.p99_us)
tok_add_p50=$((tok_gw_p50 - tok_direct_p50)); tok_add_p99=$((tok_gw_p99 - tok_direct_p99))
wrk_add_p50=$(( ${R[gateway-c1.p50_us]} - ${R[direct-c1.p50_us]} )); wrk_add_p99=$(( ${R[gateway-c1.p99_us]} - ${R[direct-c1.p99_us]} ))
lat_direct_p50=$(jnum "$lat_json" .direct.p50_us); lat_direct_p99=$(jnum "$lat_json" .direct.p99_us)
lat_gw_p50=$(jnum "$lat_json" .gateway.p50_us); lat_gw_p99=$(jnum "$lat_json" .gateway.p99_us)
add_p50=$((lat_gw_p50 - lat_direct_p50)); add_p99=$((lat_gw_p99 - lat_direct_p99))
mcp_direct_p50=$(jnum "$mcp_json" .direct.p50_us); mcp_direct_p99=$(jnum "$mcp_json" .direct.p99_us)
mcp_gw_p50=$(jnum "$mcp_json" .gateway.p50_us); mcp_gw_p99=$(jnum "$mcp_json" .gateway.p99_us)
mcp_add_p50=$((mcp_gw_p50 - mcp_direct_p50)); mcp_add_p99=$((mcp_gw_p99 - mcp_direct_p99))
s_completed=$(jnum "$streams_json" .completed); s_errors=$(jnum "$streams_json" .errors); s_stalls=$(jnum "$streams_json" .stalls)
s_peak=$(jnum "$streams_json" .peak_in_flight)
s_gap_p99=$(jnum "$streams_json" .chunk_gap.p99_us); s_gap_max=$(jnum "$streams_json" .chunk_gap.max_us)
s_fb_p50=$(jnum "$streams_json" .first_byte.p50_us); s_fb_p99=$(jnum "$streams_json" .first_byte.p99_us)
s_ft_p50=$(jnum "$streams_json" .first_token.p50_us); s_ft_p99=$(jnum "$streams_json" .first_token.p99_us)
if (( streams < 1000 )); then streams_ok="n/a (quick run)"
else streams_ok=$([[ "$s_errors" == 0 && "$s_stalls" == 0 && "$s_peak" -ge 1000 ]] && echo met || echo "**missed**"); fi
r_completed=$(jnum "$streams_json_relay" .completed); r_errors=$(jnum "$streams_json_relay" .errors); r_stalls=$(jnum "$streams_json_relay" .stalls)
r_peak=$(jnum "$streams_json_relay" .peak_in_flight)
r_gap_p99=$(jnum "$streams_json_relay" .chunk_gap.p99_us); r_gap_max=$(jnum "$streams_json_relay" .chunk_gap.max_us)
r_fb_p50=$(jnum "$streams_json_relay" .first_byte.p50_us); r_fb_p99=$(jnum "$streams_json_relay" .first_byte.p99_us)
r_ft_p50=$(jnum "$streams_json_relay" .first_token.p50_us); r_ft_p99=$(jnum "$streams_json_relay" .first_token.p99_us)
rss_peak_kb=$(( rss_streams_kb > hwm_kb ? rss_streams_kb : hwm_kb ))
background_max=$(for k in "${!R[@]}"; do if [[ "$k" == *.background ]]; then echo "${R[$k]}"; fi; done | sort -g | tail -1)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -n "$(git -C "$root" status --porcelain -- src 2>/dev/null)" ]] && commit="$commit (src/ has uncommitted changes)"
cpu_model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
runtime=$(dotnet --list-runtimes | sed -n 's/^Microsoft.AspNetCore.App \([^ ]*\).*/\1/p' | tail -1)
wrk_version=$( (wrk -v 2>&1 || true) | head -1 | awk '{print $2}')
elapsed=$(( $(date +%s) - started_at ))
errors_note() { (( ${R[$1.errors]} == 0 )) && return; printf ' (%s errors: %s non-2xx, %s timeouts)' "${R[$1.errors]}" "${R[$1.status_errors]}" "${R[$1.timeouts]}"; }
result_name=$([[ "$mode" == full ]] && echo latest || echo quick)
mkdir -p "$bench/results"

md="$bench/results/$result_name.md"
cat >"$md" <<EOF
# Flotilla load benchmark — $mode run

$(date -u +"%Y-%m-%d %H:%M UTC") · commit $commit · $cpu_model, $cpus cores · Linux $(uname -r) · ASP.NET Core $runtime · wrk $wrk_version · ${elapsed}s

Layout: gateway alone on core $gateway_cpu; wrk (1 thread), fake upstreams and probe on core $load_cpu. Ceiling: a bare
Kestrel app (the fake upstream) on core $gateway_cpu in the gateway's place. Body: ${body_bytes}-byte chat request
(system + user message, one tool), \`Authorization: Bearer <agent key>\`. Each wrk step ${step_s}s, after a warm-up
that ran until two ${window_s}s windows agreed within 5% (gateway: ${R[warm-gateway.seconds]}s, $(fmt "${R[warm-gateway.first]}") → $(fmt "${R[warm-gateway.last]}") RPS).
Gateway policy chain (bench/run.sh writes the fleet): agent-key auth, rate limit (requests and tokens per minute), budget
per agent, guardrails (prompt-injection on input; pii and secrets-detection on output), a priority virtual model with a
fallback target, retries, a 4 s time-to-first-token cut-off, a trace per call to SQLite. Limits are never reached.
JIT: $tiering_note.
Latency at c=1 comes from the probe (HttpClient, one call at a time, direct and gateway interleaved, time to the whole
answer); wrk's \`-c 1\` figures are shown too, but on this machine their latency sum exceeds the run's wall time, so their tail is not trusted.
"other load" is the share of the whole machine used by processes outside the benchmark during that step.

| measure | gateway | direct to upstream | ceiling, core $gateway_cpu | goal | | other load |
|---|---:|---:|---:|---|---|---:|
| RPS, instant upstream, c=$conns, full chain | $(fmt "${R[gateway.rps]}")$(errors_note gateway) — $(nginx_note "${R[gateway.rps]}") | $(fmt "${R[direct.rps]}") | hello $(fmt "${R[hello.rps]}") · chat POST $(fmt "${R[ceiling-chat.rps]}") · nginx proxy $(fmt "${R[nginx.rps]}") | ≥ 40% of nginx | $(verdict "$(nginx_share "${R[gateway.rps]}")" ">=" 40) | $(bg "${R[gateway.background]}" "${R[hello.background]}") |
| RPS, instant upstream, c=$conns, relay only (auth, routing, trace) | $(fmt "${R[relay.rps]}")$(errors_note relay) — $(nginx_note "${R[relay.rps]}") | | | ≥ 60% of nginx | $(verdict "$(nginx_share "${R[relay.rps]}")" ">=" 60) | $(bg "${R[relay.background]}") |
| RPS, ${slow_ms} ms upstream, c=$conns_slow | $(fmt "${R[gateway-slow.rps]}")$(errors_note gateway-slow) | $(fmt "${R[direct-slow.rps]}") | $(fmt "$(awk -v c="$conns_slow" -v p="${R[direct-slow.p50_us]}" 'BEGIN { print (p > 0 ? c * 1e6 / p : 0) }')") (c / direct p50) | ≥ 10,000 | $(verdict "${R[gateway-slow.rps]}" ">=" 10000) | $(bg "${R[gateway-slow.background]}") |
| latency c=1, p50 (probe) | $lat_gw_p50 µs | $lat_direct_p50 µs | added **$add_p50 µs** | added ≤ 60 µs | $(verdict "$add_p50" "<=" 60) | $(bg "${R[latency.background]}") |
| latency c=1, p99 (probe) | $lat_gw_p99 µs | $lat_direct_p99 µs | added **$add_p99 µs** | added ≤ 150 µs | $(verdict "$add_p99" "<=" 150) | |
| latency c=1, p50 / p99 (wrk) | ${R[gateway-c1.p50_us]} / ${R[gateway-c1.p99_us]} µs | ${R[direct-c1.p50_us]} / ${R[direct-c1.p99_us]} µs | added $wrk_add_p50 / $wrk_add_p99 µs | | | $(bg "${R[gateway-c1.background]}" "${R[direct-c1.background]}") |
| loop history, full chain, c=$conns: 2 turns vs 60 turns ($(fmt "$loop_bytes") B), last message new per request | $(fmt "${R[loop-2.rps]}") vs $(fmt "${R[loop-60.rps]}") RPS$(errors_note loop-60) | | 60 turns cost **${loop_ratio}×** 2 turns | ≤ 2× | $(verdict "$loop_ratio" "<=" 2) | $(bg "${R[loop-2.background]}" "${R[loop-60.background]}") |
| MCP tools/call c=1, p50 / p99 (SDK client, mcp_pre/post_tool guardrails on) | $mcp_gw_p50 / $mcp_gw_p99 µs | $mcp_direct_p50 / $mcp_direct_p99 µs | added **$mcp_add_p50** / $mcp_add_p99 µs | added ≤ 100 µs p50 | $(verdict "$mcp_add_p50" "<=" 100) | $(bg "${R[mcp.background]}") |
| time to first token, p50 | $tok_gw_p50 µs | $tok_direct_p50 µs | added **$tok_add_p50 µs** | added ≤ 300 µs | $(verdict "$tok_add_p50" "<=" 300) | $(bg "${R[ttft.background]}") |
| time to first token, p99 | $tok_gw_p99 µs | $tok_direct_p99 µs | added **$tok_add_p99 µs** | (the goal reads as p50) | | |
| time to first \`data:\` byte, p50 / p99 | $ttft_gw_p50 / $ttft_gw_p99 µs | $ttft_direct_p50 / $ttft_direct_p99 µs | added $ttft_add_p50 / $ttft_add_p99 µs | | | |
| $streams concurrent streams, ${streams_s}s | $s_completed completed, $s_errors errors, **$s_stalls stalls** > ${stall_ms} ms; peak $s_peak open; first token p50 $(fmt $((s_ft_p50 / 1000))) ms | relay only (no guardrails, budgets, limits): $r_completed completed, $r_errors errors, $r_stalls stalls; first token p50 $(fmt $((r_ft_p50 / 1000))) ms | | ≥ 1,000 without a stall | $streams_ok | $(bg "${R[streams-full.background]}" "${R[streams-relay.background]}") |
| resident memory after the RPS steps | $(mb "$rss_after_load_kb") MB | | | ≤ 150 MB | $(verdict "$(mb "$rss_after_load_kb")" "<=" 150) | |
| resident memory with $streams open streams | $(mb "$rss_streams_kb") MB peak during streams · $(mb "$hwm_kb") MB VmHWM | relay only: $(mb "$rss_peak_relay") MB peak during streams | | ≤ 250 MB | $(verdict "$(mb "$rss_peak_kb")" "<=" 250) | |

Also measured:
- gateway CPU per request at saturation (instant upstream): $cpu_us_per_request µs; gateway RPS is $(pct "${R[gateway.rps]}" "${R[hello.rps]}") of the hello ceiling and $(pct "${R[gateway.rps]}" "${R[ceiling-chat.rps]}") of the bare chat POST ceiling.
- warm-up curve (RPS per ${window_s}s window, fresh process): gateway ${R[warm-gateway.curve]}; ceiling ${R[warm-ceiling.curve]}.
- saturation latency, instant upstream, c=$conns: gateway p50 ${R[gateway.p50_us]} µs / p99 ${R[gateway.p99_us]} µs; direct p50 ${R[direct.p50_us]} µs / p99 ${R[direct.p99_us]} µs.
- ${slow_ms} ms upstream, c=$conns_slow: gateway p50 ${R[gateway-slow.p50_us]} µs / p99 ${R[gateway-slow.p99_us]} µs; direct p50 ${R[direct-slow.p50_us]} µs / p99 ${R[direct-slow.p99_us]} µs.
- streams, full chain: gap between chunks p99 $s_gap_p99 µs, max $s_gap_max µs (the upstream sends every ${stream_chunk_ms} ms); first \`data:\` byte p50 $s_fb_p50 µs, p99 $s_fb_p99 µs; first token p50 $s_ft_p50 µs, p99 $s_ft_p99 µs. Output guardrails hold text back before releasing it, which these figures include.
- streams, relay only (same fleet without guardrails, budgets and rate limits; fresh process): gap p99 $r_gap_p99 µs, max $r_gap_max µs; first \`data:\` byte p50 $r_fb_p50 µs, p99 $r_fb_p99 µs; first token p50 $r_ft_p50 µs, p99 $r_ft_p99 µs; VmHWM $(mb "$relay_hwm_kb") MB.
- other load before the start: ${background_start}% of the machine; highest during a step: ${background_max}%.$(awk -v x="$background_max" 'BEGIN { if (x > 10) printf " **Other processes competed for the cores: treat these figures as a lower bound.**" }')
EOF

json="$bench/results/$result_name.json"
w() { printf '{"rps":%s,"requests":%s,"p50_us":%s,"p90_us":%s,"p99_us":%s,"p999_us":%s,"max_us":%s,"errors":%s,"connections":%s,"other_load_pct":%s}' \
  "${R[$1.rps]}" "${R[$1.requests]}" "${R[$1.p50_us]}" "${R[$1.p90_us]}" "${R[$1.p99_us]}" "${R[$1.p999_us]}" "${R[$1.max_us]}" "${R[$1.errors]}" "$2" "${R[$1.background]}"; }
cat >"$json" <<EOF
{
  "mode": "$mode",
  "generated_at": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "commit": "$commit",
  "machine": { "cpu": "$cpu_model", "cores": $cpus, "kernel": "$(uname -r)", "aspnetcore": "$runtime", "wrk": "$wrk_version" },
  "layout": { "gateway_cpu": $gateway_cpu, "load_cpu": $load_cpu, "upstream_cpu": $load_cpu, "ceiling_cpu": $gateway_cpu },
  "body_bytes": $body_bytes,
  "step_seconds": $step_s,
  "tiering": "${BENCH_TIERING:-fast}",
  "warmup": { "gateway_seconds": ${R[warm-gateway.seconds]}, "gateway_first_rps": ${R[warm-gateway.first]}, "gateway_last_rps": ${R[warm-gateway.last]}, "gateway_curve": "${R[warm-gateway.curve]}", "ceiling_curve": "${R[warm-ceiling.curve]}" },
  "saturation_instant": { "gateway": $(w gateway "$conns"), "relay_only": $(w relay "$conns"), "direct": $(w direct "$conns"), "ceiling_hello": $(w hello "$conns"), "ceiling_chat": $(w ceiling-chat "$conns"), "ceiling_nginx_proxy_rps": ${R[nginx.rps]}, "gateway_cpu_us_per_request": $cpu_us_per_request },
  "saturation_delay_${slow_ms}ms": { "gateway": $(w gateway-slow "$conns_slow"), "direct": $(w direct-slow "$conns_slow") },
  "latency_c1": { "probe": $lat_json, "added_p50_us": $add_p50, "added_p99_us": $add_p99, "probe_other_load_pct": ${R[latency.background]}, "wrk": { "gateway": $(w gateway-c1 1), "direct": $(w direct-c1 1), "added_p50_us": $wrk_add_p50, "added_p99_us": $wrk_add_p99 } },
  "loop_history": { "two_turns": $(w loop-2 "$conns"), "sixty_turns": $(w loop-60 "$conns"), "sixty_turn_bytes": $loop_bytes, "cost_ratio": $loop_ratio },
  "mcp_tools_call_c1": { "probe": $mcp_json, "added_p50_us": $mcp_add_p50, "added_p99_us": $mcp_add_p99, "other_load_pct": ${R[mcp.background]} },
  "ttft": { "probe": $ttft_json, "first_token_added_p50_us": $tok_add_p50, "first_token_added_p99_us": $tok_add_p99, "first_byte_added_p50_us": $ttft_add_p50, "first_byte_added_p99_us": $ttft_add_p99, "other_load_pct": ${R[ttft.background]} },
  "streams": { "full": $streams_json, "relay_only": $streams_json_relay, "other_load_pct": { "full": ${R[streams-full.background]}, "relay_only": ${R[streams-relay.background]} } },
  "memory": { "rss_after_rps_kb": $rss_after_load_kb, "rss_peak_streams_kb": $rss_streams_kb, "rss_end_kb": $rss_end_kb, "vmhwm_kb": $hwm_kb, "relay_only_rss_peak_streams_kb": $rss_peak_relay, "relay_only_vmhwm_kb": $relay_hwm_kb },
  "other_load_pct": { "before_start": $background_start, "max_during_step": $background_max },
  "goals": {
    "rps_instant_share_of_nginx_pct": { "goal": 40, "value": $(nginx_share "${R[gateway.rps]}") },
    "rps_relay_only_share_of_nginx_pct": { "goal": 60, "value": $(nginx_share "${R[relay.rps]}") },
    "rps_delay_20ms": { "goal": 10000, "value": ${R[gateway-slow.rps]} },
    "added_p50_us": { "goal": 60, "value": $add_p50 },
    "added_p99_us": { "goal": 150, "value": $add_p99 },
    "ttft_added_p50_us": { "goal": 300, "value": $tok_add_p50 },
    "mcp_added_p50_us": { "goal": 100, "value": $mcp_add_p50 },
    "loop_history_cost_ratio": { "goal": 2, "value": $loop_ratio },
    "concurrent_streams": { "goal": 1000, "value": $s_peak, "stalls": $s_stalls, "errors": $s_errors },
    "rss_after_rps_mb": { "goal": 150, "value": $(mb "$rss_after_load_kb") },
    "rss_streams_mb": { "goal": 250, "value": $(mb "$rss_peak_kb") }
  }
}
EOF

cat "$md"
say "wrote $md and $json in ${elapsed}s"
