#!/usr/bin/env bash
# Full test run: installs what the tests need (idempotent), builds herald, runs the Rust tests,
# then the real-client compatibility suite (tests/compat, node --test).
# Runnable from any directory. Exits non-zero on any failure.
#
# Environment:
#   HERALD_BIN            herald binary for the compat suite (default: target/debug/herald, built here)
#   COMPAT_ONLY=1         skip `cargo test --workspace`
#   COMPAT_FILES="a b"    run only these files of tests/compat/test (e.g. "public-channels.test.mjs")
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

COMPAT="$ROOT/tests/compat"
EXAMPLE="$ROOT/examples/browser"
PYDIR="$COMPAT/python"
STAMP_DIR="$ROOT/target/.test-stamps"
mkdir -p "$STAMP_DIR"

LOG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/herald-test.XXXXXX")"
PASSED=0
FAILED=0
declare -a SUMMARY=()
step_start=0
log() { printf '\n==> %s\n' "$*"; }
record() { SUMMARY+=("$(printf '%-34s %s (%ss)' "$1" "$2" "$(( $(date +%s) - step_start ))")"); }
print_summary() {
  printf '\n===== herald test summary =====\n'
  local line
  for line in "${SUMMARY[@]}"; do printf '%s\n' "$line"; done
  printf 'total: %d passed, %d failed\n' "$PASSED" "$FAILED"
  rm -rf "$LOG_DIR"
}
trap print_summary EXIT

# run STEP_NAME command...  — records ok/FAILED and stops the script on failure.
# (Inside `if` bash suspends `set -e`, so step functions return their failures explicitly.)
run() {
  local name="$1"; shift
  step_start=$(date +%s)
  log "$name"
  if "$@"; then
    record "$name" ok
  else
    local rc=$?
    record "$name" "FAILED (exit $rc)"
    exit "$rc"
  fi
}

# keep_going STEP_NAME command... — like run, but a failure only marks the run failed (later steps still run)
OVERALL_RC=0
keep_going() {
  local name="$1"; shift
  step_start=$(date +%s)
  log "$name"
  if "$@"; then
    record "$name" ok
  else
    local rc=$?
    record "$name" "FAILED (exit $rc)"
    OVERALL_RC=$rc
  fi
}

# ---------------------------------------------------------------- installs

checksum() { sha256sum "$@" | sha256sum | cut -d' ' -f1; }

ensure_chromium() {
  if [[ -x /usr/bin/chromium ]]; then
    echo "chromium present: $(/usr/bin/chromium --version 2>/dev/null | head -n1)"
    return 0
  fi
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update || return
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends chromium
}

# The cluster tests (tests/compat/test/cluster-*.test.mjs, crates/herald/tests/cluster_*.rs) start
# their own private redis-server on a free port.
ensure_redis() {
  if command -v redis-server >/dev/null 2>&1; then
    echo "redis-server present: $(redis-server --version | head -n1)"
    return 0
  fi
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update || return
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends redis-server
}

# tests/compat/test/tls.test.mjs makes its CA and certificate with the openssl command line.
ensure_openssl() {
  if command -v openssl >/dev/null 2>&1; then
    echo "openssl present: $(openssl version)"
    return 0
  fi
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update || return
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends openssl
}

ensure_npm() { # dir
  local dir="$1" stamp sum
  stamp="$STAMP_DIR/npm-$(echo "$dir" | sha256sum | cut -c1-12)"
  sum="$(checksum "$dir/package.json" "$dir/package-lock.json")"
  if [[ -d "$dir/node_modules" && -f "$stamp" && "$(cat "$stamp")" == "$sum" ]]; then
    echo "$dir: node_modules up to date"
    return 0
  fi
  (cd "$dir" && npm ci --no-audit --no-fund) || return
  echo "$sum" > "$stamp"
}

ensure_venv() {
  local stamp="$PYDIR/.venv/.requirements.sha256" sum
  sum="$(checksum "$PYDIR/requirements.txt")"
  if [[ -x "$PYDIR/.venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$sum" ]]; then
    echo "python venv up to date"
    return 0
  fi
  if [[ ! -x "$PYDIR/.venv/bin/python" ]]; then
    python3 -m venv "$PYDIR/.venv" || return
  fi
  "$PYDIR/.venv/bin/pip" install --disable-pip-version-check -q -r "$PYDIR/requirements.txt" || return
  echo "$sum" > "$stamp"
}

run "install: chromium" ensure_chromium
run "install: redis-server" ensure_redis
run "install: openssl" ensure_openssl
run "install: npm ci tests/compat" ensure_npm "$COMPAT"
run "install: npm ci examples/browser" ensure_npm "$EXAMPLE"
run "install: python venv" ensure_venv

# ---------------------------------------------------------------- build + tests

run "cargo build -p herald" cargo build -p herald
# add_counts FILE PASS_REGEX FAIL_REGEX — sum the numbers captured by the regexes into PASSED/FAILED
add_counts() {
  local n
  for n in $(sed -nE "s/$2/\1/p" "$1"); do PASSED=$((PASSED + n)); done
  for n in $(sed -nE "s/$3/\1/p" "$1"); do FAILED=$((FAILED + n)); done
}

cargo_tests() {
  local rc=0
  cargo test --workspace 2>&1 | tee "$LOG_DIR/cargo-test.log" || rc=$?
  add_counts "$LOG_DIR/cargo-test.log" '^test result: .* ([0-9]+) passed; .*$' '^test result: .* ([0-9]+) failed; .*$'
  return "$rc"
}
lint() {
  "$ROOT/scripts/check-docs.sh" \
    && cargo fmt --all -- --check && cargo clippy --workspace --all-targets -- -D warnings
}
if [[ "${COMPAT_ONLY:-0}" != "1" ]]; then
  keep_going "lint (docs, rustfmt, clippy -D warnings)" lint
  keep_going "cargo test --workspace" cargo_tests
fi

export HERALD_BIN="${HERALD_BIN:-$ROOT/target/debug/herald}"

compat() {
  local files=()
  if [[ -n "${COMPAT_FILES:-}" ]]; then
    local f
    for f in $COMPAT_FILES; do files+=("test/$f"); done
  else
    files=(test/)
  fi
  # Each file starts its own herald on an OS-chosen port, so files may run in parallel.
  local rc=0
  # Node 20 has the WebSocket global only behind a flag (bad-input.test.mjs uses it).
  local node_flags=()
  if node -e 'process.exit(typeof WebSocket === "undefined" ? 0 : 1)'; then node_flags+=(--experimental-websocket); fi
  (cd "$COMPAT" && node "${node_flags[@]}" --test --test-reporter=spec --test-timeout=60000 "${files[@]}") 2>&1 \
    | tee "$LOG_DIR/compat.log" || rc=$?
  add_counts "$LOG_DIR/compat.log" '^ℹ pass ([0-9]+)$' '^ℹ fail ([0-9]+)$'
  return "$rc"
}
keep_going "compat suite (node --test)" compat
exit "$OVERALL_RC"
