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

# 2. Build everything (warnings are errors).
echo "Restoring and building…"
if ! dotnet build Flotilla.slnx -c Debug --nologo -v quiet >"$results/build.log" 2>&1; then
  grep -E ' error |error [A-Z]+[0-9]+' "$results/build.log" | sort -u | head -40
  failed=$((failed + 1)); echo "FAIL build (log: TestResults/build.log)"
  finish
fi

# 3. Test suites (xunit v3), one assembly at a time on this 2-core budget.
for project in tests/*.Tests/*.csproj; do
  name="$(basename "$project" .csproj)"
  dll="$(dirname "$project")/bin/Debug/net10.0/$name.dll"
  xml="$results/$name.xml"
  echo "Running $name…"
  dotnet "$dll" -noColor -noLogo -result-xml "$xml" >"$results/$name.log" 2>&1
  code=$?
  if [[ -f "$xml" ]]; then
    read -r p f s < <(python3 - "$xml" <<'PY' 2>/dev/null || sed -n 's/.*<assembly [^>]*passed="\([0-9]*\)"[^>]*failed="\([0-9]*\)"[^>]*skipped="\([0-9]*\)".*/\1 \2 \3/p' "$xml" | head -1
import sys, xml.etree.ElementTree as ET
a = ET.parse(sys.argv[1]).getroot().find('assembly')
print(a.get('passed', 0), int(a.get('failed', 0)) + int(a.get('errors', 0)), int(a.get('skipped', 0)) + int(a.get('not-run', 0)))
PY
)
    p=${p:-0}; f=${f:-0}; s=${s:-0}
    # A skipped test is a test that did not run: it counts as failed.
    passed=$((passed + p)); failed=$((failed + f + s))
    echo "  $name: $p passed, $f failed, $s skipped"
    if [[ $f -gt 0 || $s -gt 0 ]]; then
      grep -E '\[FAIL\]|\[SKIP\]' "$results/$name.log" | head -40 | sed 's/^/    /'
    fi
    if [[ $code -ne 0 && $f -eq 0 ]]; then
      failed=$((failed + 1)); echo "  $name exited with $code (log: TestResults/$name.log)"
    fi
  else
    failed=$((failed + 1)); echo "FAIL $name: no results (exit $code; log: TestResults/$name.log)"
    tail -n 30 "$results/$name.log" | sed 's/^/    /'
  fi
done

# 4. Smoke checks through the public surface, as a new user would.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

smoke_validate() {
  ./flotilla validate examples/quickstart/fleet.yaml && ./flotilla validate examples/northwind/fleet.yaml || return 1
  local broken="$results/broken-fleet.yaml"
  printf 'gateway:\n  providers:\n    - { name: p, type: nope }\n---\nagent:\n  name: a\n  owner: t\n  model: missing\n' >"$broken"
  local out; out="$(./flotilla validate "$broken")"; local code=$?
  echo "$out"
  [[ $code -eq 1 ]] && grep -q "broken-fleet.yaml:3:" <<<"$out" && grep -q "broken-fleet.yaml:8:" <<<"$out"
}

smoke_serve() {
  local port; port="$(free_port)"
  local data; data="$(mktemp -d)"
  ./flotilla serve --urls "http://127.0.0.1:$port" --data "$data" >"$results/serve.out" 2>&1 &
  local pid=$!; pids+=("$pid")
  for _ in $(seq 1 120); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.5; done
  cat "$results/serve.out"
  local key; key="$(grep -o 'flt_[A-Za-z0-9_-]*' "$results/serve.out" | head -1)"
  [[ -n "$key" ]] || { echo "no starter key printed"; kill "$pid"; return 1; }
  local answer
  answer="$(curl -fsS "http://127.0.0.1:$port/v1/chat/completions" -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' -d '{"model":"resilient","messages":[{"role":"user","content":"hello"}]}')" || { kill "$pid"; return 1; }
  echo "$answer"
  grep -q '"chat.completion"' <<<"$answer" || { kill "$pid"; return 1; }
  sleep 1
  local traces; traces="$(FLOTILLA_ADMIN_TOKEN="$(cat "$data/admin-token")" ./flotilla traces --server "http://127.0.0.1:$port" --json)"
  echo "$traces"
  kill "$pid"; wait "$pid" 2>/dev/null
  grep -q '"fell_back":true' <<<"$traces" && grep -q 'sim-broken' <<<"$traces" && ! grep -q "$key" <<<"$traces"
}

check cli-validate smoke_validate
check cli-serve-quickstart smoke_serve
if [[ -x bench/run.sh ]]; then
  check bench-quick bench/run.sh --quick
fi

finish
