#!/usr/bin/env bash
# Flotilla's test command: installs what the tests need, builds, runs every test suite and the smoke checks,
# and prints "N passed, N failed" as its last line. Exit code 0 only when nothing failed.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
results="$root/TestResults"
rm -rf "$results" && mkdir -p "$results"
passed=0
failed=0
pids=()

cleanup() {
  for pid in "${pids[@]:-}"; do
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null
  done
}
trap cleanup EXIT

finish() {
  echo
  echo "$passed passed, $failed failed"
  [[ $failed -eq 0 ]]
  exit $?
}

check() { # check NAME COMMAND...: one smoke check, counted as one test
  local name="$1"; shift
  if "$@" >"$results/$name.log" 2>&1; then
    passed=$((passed + 1)); echo "PASS $name"
  else
    failed=$((failed + 1)); echo "FAIL $name (log: TestResults/$name.log)"; tail -n 30 "$results/$name.log" | sed 's/^/    /'
  fi
}

# 1. What the tests need.
if ! command -v dotnet >/dev/null; then
  echo "dotnet (the .NET 10 SDK) is required and was not found on PATH" >&2
  failed=1; finish
fi
need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
command -v curl >/dev/null || need_apt+=(curl)
command -v taskset >/dev/null || need_apt+=(util-linux)
if [[ ${#need_apt[@]} -gt 0 ]]; then
  echo "Installing ${need_apt[*]} (apt-get)…"
  if [[ $(id -u) -eq 0 ]]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  "${apt_get[@]}" update -qq >/dev/null 2>&1
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq "${need_apt[@]}" >/dev/null 2>&1 \
    || echo "warning: could not install ${need_apt[*]}; checks that need them will fail" >&2
fi

# Real MCP servers from npm (server-everything, server-filesystem) for the MCP gateway tests, pinned by the lock file.
if ! command -v npm >/dev/null; then
  echo "Installing nodejs and npm (apt-get)…"
  if [[ $(id -u) -eq 0 ]]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  "${apt_get[@]}" update -qq >/dev/null 2>&1
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq nodejs npm >/dev/null 2>&1 \
    || echo "warning: could not install nodejs and npm; the MCP server tests will fail" >&2
fi
servers=tests/mcp-servers
if [[ ! -d $servers/node_modules || $servers/package-lock.json -nt $servers/node_modules ]]; then
  echo "Installing the MCP servers the tests run (npm ci)…"
  if npm ci --prefix "$servers" --no-audit --no-fund >"$results/npm.log" 2>&1; then
    touch "$servers/node_modules"
  else
    echo "warning: npm ci failed (log: TestResults/npm.log); the MCP server tests will fail" >&2
  fi
fi

# 2. Build everything (warnings are errors).
echo "Restoring and building…"
if ! dotnet build Flotilla.slnx -c Debug --nologo -v quiet >"$results/build.log" 2>&1; then
  grep -E ' error |error [A-Z]+[0-9]+' "$results/build.log" | sort -u | head -40
  failed=$((failed + 1)); echo "FAIL build (log: TestResults/build.log)"
  finish
fi

# 3. Test suites (xunit v3), one assembly at a time on this 2-core budget. Each has a time limit; running out of it
#    counts as a failure (a hung test must not hang the run).
suite_timeout="${FLOTILLA_SUITE_TIMEOUT:-600}"

attr() { # attr NAME TAG: the value of attribute NAME in TAG, whatever the attribute order; 0 when absent
  local value
  value="$(grep -o " $1=\"[0-9]*\"" <<<"$2" | head -1 | tr -dc '0-9')"
  echo "${value:-0}"
}

for project in tests/*.Tests/*.csproj; do
  name="$(basename "$project" .csproj)"
  dll="$(dirname "$project")/bin/Debug/net10.0/$name.dll"
  xml="$results/$name.xml"
  echo "Running $name…"
  timeout --kill-after=15 "$suite_timeout" dotnet "$dll" -noColor -noLogo -result-xml "$xml" >"$results/$name.log" 2>&1
  code=$?
  if [[ $code -eq 124 || $code -eq 137 ]]; then
    failed=$((failed + 1)); echo "FAIL $name: did not finish within ${suite_timeout} s (log: TestResults/$name.log)"
    tail -n 20 "$results/$name.log" | sed 's/^/    /'
    continue
  fi
  if [[ -f "$xml" ]]; then
    tag="$(grep -o '<assembly [^>]*>' "$xml" | head -1)"
    p=$(attr passed "$tag"); f=$(( $(attr failed "$tag") + $(attr errors "$tag") )); s=$(( $(attr skipped "$tag") + $(attr not-run "$tag") ))
    # A skipped test is a test that did not run: it counts as failed.
    passed=$((passed + p)); failed=$((failed + f + s))
    echo "  $name: $p passed, $f failed, $s skipped"
    if [[ $f -gt 0 || $s -gt 0 ]]; then
      grep -E '\[FAIL\]|\[SKIP\]' "$results/$name.log" | head -40 | sed 's/^/    /'
    fi
    if [[ $code -ne 0 && $f -eq 0 ]]; then
      failed=$((failed + 1)); echo "  $name exited with $code (log: TestResults/$name.log)"
    fi
    if [[ -z "$tag" || $p -eq 0 ]]; then
      failed=$((failed + 1)); echo "  $name: no test ran (log: TestResults/$name.log)"
    fi
  else
    failed=$((failed + 1)); echo "FAIL $name: no results (exit $code; log: TestResults/$name.log)"
    tail -n 30 "$results/$name.log" | sed 's/^/    /'
  fi
done

# 4. Smoke checks through the public surface, as a new user would.
serve_pid=""
serve_url=""
start_server() { # start_server DATA_DIR [ENV...]: serve the quickstart on a free port; sets serve_pid and serve_url
  local data="$1"; shift
  env "$@" ./flotilla serve --urls "http://127.0.0.1:0" --data "$data" >"$results/serve.out" 2>&1 &
  serve_pid=$!; pids+=("$serve_pid")
  serve_url=""
  for _ in $(seq 1 120); do
    serve_url="$(grep -o 'on http://127\.0\.0\.1:[0-9]*' "$results/serve.out" | head -1 | cut -c4-)"
    [[ -n "$serve_url" ]] && curl -fs "$serve_url/readyz" >/dev/null && return 0
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.5
  done
  cat "$results/serve.out"
  echo "the server did not become ready"
  return 1
}

stop_server() { kill "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null; }

smoke_validate() {
  ./flotilla validate examples/quickstart/fleet.yaml && ./flotilla validate examples/northwind/fleet.yaml || return 1
  local broken="$results/broken-fleet.yaml"
  printf 'gateway:\n  providers:\n    - { name: p, type: nope }\n---\nagent:\n  name: a\n  owner: t\n  model: missing\n' >"$broken"
  local out; out="$(./flotilla validate "$broken")"; local code=$?
  echo "$out"
  [[ $code -eq 1 ]] && grep -q "broken-fleet.yaml:3:" <<<"$out" && grep -q "broken-fleet.yaml:8:" <<<"$out"
}

smoke_serve() {
  local data; data="$(mktemp -d)/data"
  start_server "$data" || return 1
  cat "$results/serve.out"
  local key; key="$(grep -o 'flt_[A-Za-z0-9_-]*' "$results/serve.out" | head -1)"
  [[ -n "$key" ]] || { echo "no starter key printed"; stop_server; return 1; }
  local answer
  answer="$(curl -fsS "$serve_url/v1/chat/completions" -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' -d '{"model":"resilient","messages":[{"role":"user","content":"hello"}]}')" || { stop_server; return 1; }
  echo "$answer"
  grep -q '"chat.completion"' <<<"$answer" || { stop_server; return 1; }
  sleep 1
  local traces; traces="$(FLOTILLA_ADMIN_TOKEN="$(cat "$data/admin-token")" ./flotilla traces --server "$serve_url" --json)"
  echo "$traces"
  stop_server
  [[ "$(stat -c %a "$data")" == 700 && "$(stat -c %a "$data/flotilla.db")" == 600 && "$(stat -c %a "$data/admin-token")" == 600 ]] \
    || { echo "data directory modes: $(stat -c '%a %n' "$data" "$data"/*)"; return 1; }
  grep -q '"fell_back":true' <<<"$traces" && grep -q 'sim-broken' <<<"$traces" && ! grep -q "$key" <<<"$traces"
}

# An operator's terminal over hostile data: escape sequences and control characters sent by a caller never reach it.
smoke_hostile_traces() {
  local data; data="$(mktemp -d)/data"
  start_server "$data" || return 1
  local key; key="$(grep -o 'flt_[A-Za-z0-9_-]*' "$results/serve.out" | head -1)"
  local model; model='\u001b[31mRED\u001b]0;pwned\u0007\u009b2J\r\nline'
  local status
  status="$(curl -s -o /dev/null -w '%{http_code}' "$serve_url/v1/chat/completions" -H "Authorization: Bearer $key" \
    -d "{\"model\":\"$model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")"
  [[ "$status" == 404 ]] || { echo "expected 404 for an unknown model, got $status"; stop_server; return 1; }
  sleep 1
  local table="$results/hostile-traces.txt"
  FLOTILLA_ADMIN_TOKEN="$(cat "$data/admin-token")" ./flotilla traces --server "$serve_url" >"$table" 2>&1
  local code=$?
  stop_server
  cat -v "$table"
  [[ $code -eq 0 ]] || return 1
  # No byte of C0 (except newline), DEL or C1 (as UTF-8: C2 80–C2 9F) in the output.
  if LC_ALL=C grep -qP '[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]' "$table"; then
    echo "control characters reached the terminal"; return 1
  fi
  grep -q 'RED' "$table"
}

# GitOps as an operator does it: plan, apply, list revisions, roll back, and SIGHUP re-reading the fleet file.
smoke_plan_apply() {
  local dir; dir="$(mktemp -d)"
  cp examples/quickstart/fleet.yaml "$dir/fleet.yaml"
  local data="$dir/data"
  env ./flotilla serve --fleet "$dir/fleet.yaml" --urls "http://127.0.0.1:0" --data "$data" >"$results/serve.out" 2>&1 &
  serve_pid=$!; pids+=("$serve_pid")
  for _ in $(seq 1 120); do
    serve_url="$(grep -o 'on http://127\.0\.0\.1:[0-9]*' "$results/serve.out" | head -1 | cut -c4-)"
    [[ -n "$serve_url" ]] && curl -fs "$serve_url/readyz" >/dev/null && break
    sleep 0.5
  done
  export FLOTILLA_ADMIN_TOKEN; FLOTILLA_ADMIN_TOKEN="$(cat "$data/admin-token")"
  ./flotilla plan "$dir/fleet.yaml" --server "$serve_url"; local code=$?
  [[ $code -eq 0 ]] || { echo "plan of the running file: exit $code, expected 0"; stop_server; return 1; }
  sed 's/limit: 5\/day/limit: 8\/day/' "$dir/fleet.yaml" >"$dir/edited.yaml"
  local plan; plan="$(./flotilla plan "$dir/edited.yaml" --server "$serve_url")"; code=$?
  echo "$plan"
  [[ $code -eq 2 ]] && grep -q 'limit 5/day → 8/day' <<<"$plan" || { echo "plan of an edit: exit $code"; stop_server; return 1; }
  ./flotilla apply "$dir/edited.yaml" --server "$serve_url" | tee "$results/apply.out"
  grep -q 'now revision 2' "$results/apply.out" || { stop_server; return 1; }
  printf 'gateway: { budgets: [ { applies_per: agent, limit: lots } ] }\n' >"$dir/broken.yaml"
  ./flotilla apply "$dir/broken.yaml" --server "$serve_url"; code=$?
  [[ $code -eq 1 ]] || { echo "apply of a broken file: exit $code, expected 1"; stop_server; return 1; }
  ./flotilla apply --revision 1 --server "$serve_url" | tee "$results/rollback.out"
  grep -q 'now revision 3' "$results/rollback.out" || { stop_server; return 1; }
  # SIGHUP: the file on disk (edited) is applied as revision 4.
  cp "$dir/edited.yaml" "$dir/fleet.yaml"
  kill -HUP "$serve_pid"
  for _ in $(seq 1 40); do grep -q 'SIGHUP: applied' "$results/serve.out" && break; sleep 0.25; done
  local revisions; revisions="$(./flotilla revisions --server "$serve_url")"
  echo "$revisions"
  stop_server
  grep -q 'SIGHUP: applied .* as revision 4' "$results/serve.out" && grep -q 'SIGHUP' <<<"$revisions" && grep -q '^ *1 ' <<<"$revisions"
}

# A start-up failure is one line on stderr and exit code 1, never a stack trace.
smoke_serve_unusable_data() {
  local err="$results/serve-bad-data.err"
  ./flotilla serve --urls "http://127.0.0.1:0" --data /proc/flotilla-nope >/dev/null 2>"$err"
  local code=$?
  cat "$err"
  [[ $code -eq 1 && "$(wc -l <"$err")" -eq 1 ]] && grep -q "cannot use the data directory '/proc/flotilla-nope'" "$err" && ! grep -q ' at ' "$err"
}

# An MCP side effect in flight when Flotilla is killed with -9: after the restart its outcome is unknown, and a retry with
# the same idempotency key is refused for a human to check instead of running it again.
mcp_post() { # mcp_post URL KEY SESSION BODY: one JSON-RPC message; prints the answer
  curl -s "$1" -H "Authorization: Bearer $2" -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    ${3:+-H "Mcp-Session-Id: $3"} -d "$4"
}
mcp_session() { # mcp_session URL KEY: the initialize handshake; prints the session id
  local headers; headers="$(mktemp)"
  curl -s -D "$headers" -o /dev/null "$1" -H "Authorization: Bearer $2" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"smoke","version":"1"}}}'
  local session; session="$(grep -i '^mcp-session-id:' "$headers" | cut -d' ' -f2 | tr -d '\r')"
  rm -f "$headers"
  mcp_post "$1" "$2" "$session" '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
  echo "$session"
}
serve_fleet() { # serve_fleet FLEET DATA OUT: start serve on a free port; sets serve_pid and serve_url
  env ./flotilla serve --fleet "$1" --urls "http://127.0.0.1:0" --data "$2" >"$3" 2>&1 &
  serve_pid=$!; pids+=("$serve_pid")
  serve_url=""
  for _ in $(seq 1 120); do
    serve_url="$(grep -o 'on http://127\.0\.0\.1:[0-9]*' "$3" | head -1 | cut -c4-)"
    [[ -n "$serve_url" ]] && curl -fs "$serve_url/readyz" >/dev/null && return 0
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.5
  done
  cat "$3"; echo "the server did not become ready"; return 1
}
kill_marked() { # kill_marked MARKER: stop processes whose environment carries MARKER (never an empty one)
  [[ ${#1} -ge 16 ]] || return 0
  local p; for p in $(grep -ls -- "$1" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3); do kill "$p" 2>/dev/null; done
}
smoke_mcp_kill9() {
  local dir; dir="$(mktemp -d)"
  local data="$dir/data" marker="flotilla-smoke-marker-$RANDOM$RANDOM$RANDOM" out="$results/serve-mcp.out"
  printf 'mcp_server:\n  name: everything\n  command: [node, "%s", stdio]\n  env: { SMOKE_MARKER: "%s" }\n---\nagent: { name: loop, owner: qa, mcp_servers: [everything] }\n' \
    "$root/tests/mcp-servers/node_modules/@modelcontextprotocol/server-everything/dist/index.js" "$marker" >"$dir/fleet.yaml"
  # This check's own admin token, whatever an earlier check left in the environment.
  export FLOTILLA_ADMIN_TOKEN; FLOTILLA_ADMIN_TOKEN="smoke-admin-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  serve_fleet "$dir/fleet.yaml" "$data" "$out" || return 1
  local key; key="$(grep -o 'flt_[A-Za-z0-9_-]*' "$out" | head -1)"
  for _ in $(seq 1 60); do ./flotilla mcp-servers --server "$serve_url" --json | grep -q '"state":"ready"' && break; sleep 0.5; done
  local session; session="$(mcp_session "$serve_url/mcp" "$key")"
  local call='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"everything__trigger-long-running-operation","arguments":{"duration":30,"steps":30},"_meta":{"flotilla/idempotency_key":"smoke-deploy-1"}}}'
  mcp_post "$serve_url/mcp" "$key" "$session" "$call" >"$dir/first.out" 2>&1 &
  sleep 3
  kill -9 "$serve_pid"; wait "$serve_pid" 2>/dev/null
  kill_marked "$marker"   # the killed gateway's stdio server is orphaned
  serve_fleet "$dir/fleet.yaml" "$data" "$out" || { kill_marked "$marker"; return 1; }
  for _ in $(seq 1 60); do ./flotilla mcp-servers --server "$serve_url" --json | grep -q '"state":"ready"' && break; sleep 0.5; done
  key="$(./flotilla keys create loop --server "$serve_url" --json | grep -o 'flt_[A-Za-z0-9_-]*' | head -1)"
  session="$(mcp_session "$serve_url/mcp" "$key")"
  local retry; retry="$(mcp_post "$serve_url/mcp" "$key" "$session" "$call")"
  echo "retry after kill -9: $retry"
  stop_server
  kill_marked "$marker"
  grep -q '"code":-32010' <<<"$retry" && grep -q 'Outcome unknown, needs a human' <<<"$retry"
}

check cli-validate smoke_validate
check cli-serve-quickstart smoke_serve
check cli-traces-hostile-text smoke_hostile_traces
check cli-serve-unusable-data smoke_serve_unusable_data
check cli-plan-apply-sighup smoke_plan_apply
check mcp-kill9-outcome-unknown smoke_mcp_kill9
if [[ -x bench/run.sh ]]; then
  check bench-quick bench/run.sh --quick
fi

finish
