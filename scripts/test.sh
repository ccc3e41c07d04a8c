#!/usr/bin/env bash
# Full test run: installs what the tests need (idempotent), builds herald, runs the Rust tests,
# then the real-client compatibility suite (tests/compat, node --test).
# Runnable from any directory. Exits non-zero on any failure.
#
# Environment:
#   HERALD_BIN            herald binary for the compat suite (default: target/debug/herald, built here)
#   COMPAT_ONLY=1         skip `cargo test --workspace`
#   COMPAT_FILES="a b"    run only these files of tests/compat/test (e.g. "public-channels.test.mjs")
#   HERALD_TEST_POSTGRES_URL, HERALD_TEST_MYSQL_URL   the app-store tests' databases (defaults:
#                         postgres://postgres@127.0.0.1:5432/test, mysql://root@127.0.0.1:3306/test)
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

# The app-store tests (crates/herald/tests/app_store_*.rs, tests/compat/test/app-store.test.mjs)
# need a PostgreSQL and a MariaDB/MySQL server: the shared ones at HERALD_TEST_POSTGRES_URL / HERALD_TEST_MYSQL_URL (defaults below;
# trust / empty root password, database `test`), the clients psql and mariadb (they write rows
# with plain SQL), and the server binaries, with which the outage tests start private servers on
# free ports. Missing packages are installed; a default server that is down is started and set
# up; a server that still cannot be reached fails the run with a message (never a skip).
export HERALD_TEST_POSTGRES_URL="${HERALD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export HERALD_TEST_MYSQL_URL="${HERALD_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}"
PG_DEFAULT_URL="postgres://postgres@127.0.0.1:5432/test"
MY_DEFAULT_URL="mysql://root@127.0.0.1:3306/test"

APT_UPDATED=0
apt_install() { # packages...
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  if [[ $APT_UPDATED -eq 0 ]]; then
    $sudo apt-get update || return
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "$@"
}

ensure_sql_packages() {
  local missing=()
  command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
  command -v mariadb >/dev/null 2>&1 || command -v mysql >/dev/null 2>&1 || missing+=(mariadb-client)
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
  { command -v mariadbd && command -v mariadb-install-db; } >/dev/null 2>&1 || missing+=(mariadb-server)
  if ((${#missing[@]})); then
    echo "installing ${missing[*]}"
    apt_install "${missing[@]}" || return
  fi
  echo "psql: $(psql --version)"
  echo "mariadb client: $( (mariadb --version || mysql --version) 2>/dev/null | head -n1)"
  echo "initdb: $(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)"
  echo "mariadbd: $(command -v mariadbd)"
}

# mysql_url_cmd URL SQL — runs SQL with the mariadb (or mysql) client against a mysql:// URL.
mysql_url_cmd() {
  local re='^(mysql|mariadb)://([^:@/]+)(:([^@]*))?@([^:/]+)(:([0-9]+))?/([^?]*)'
  if [[ ! "$1" =~ $re ]]; then
    echo "cannot parse $1 (expected mysql://user[:password]@host[:port]/database)" >&2
    return 2
  fi
  local client=mariadb
  command -v mariadb >/dev/null 2>&1 || client=mysql
  "$client" --host="${BASH_REMATCH[5]}" --port="${BASH_REMATCH[7]:-3306}" --user="${BASH_REMATCH[2]}" \
    --password="${BASH_REMATCH[4]}" --batch --skip-column-names "${BASH_REMATCH[8]}" -e "$2"
}
pg_reachable() { psql "$HERALD_TEST_POSTGRES_URL" -X -q -A -t -c 'SELECT 1' >/dev/null 2>&1; }
mysql_reachable() { mysql_url_cmd "$HERALD_TEST_MYSQL_URL" 'SELECT 1' >/dev/null 2>&1; }
wait_for() { # seconds command...
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@"; do
    (( $(date +%s) < deadline )) || return 1
    sleep 0.5
  done
}

ensure_postgres() {
  if pg_reachable; then
    echo "PostgreSQL reachable at $HERALD_TEST_POSTGRES_URL"
    return 0
  fi
  if [[ "$HERALD_TEST_POSTGRES_URL" != "$PG_DEFAULT_URL" ]]; then
    echo "PostgreSQL at HERALD_TEST_POSTGRES_URL=$HERALD_TEST_POSTGRES_URL is not reachable" >&2
    return 1
  fi
  local version conf
  version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)"
  if [[ -z "$version" ]]; then
    echo "PostgreSQL is installed but has no cluster in /etc/postgresql" >&2
    return 1
  fi
  # Trust on loopback (idempotent: the lines are added once, before every other rule).
  conf="/etc/postgresql/$version/main/pg_hba.conf"
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$conf"; then
    sed -i '1i local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$conf" || return
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
    || pg_ctlcluster --skip-systemctl-redirect "$version" main reload || return
  wait_for 30 psql "postgres://postgres@127.0.0.1:5432/postgres" -X -q -c 'SELECT 1' || {
    echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; return 1; }
  if [[ -z "$(psql postgres://postgres@127.0.0.1:5432/postgres -X -A -t -c "SELECT 1 FROM pg_database WHERE datname = 'test'")" ]]; then
    psql postgres://postgres@127.0.0.1:5432/postgres -X -q -c 'CREATE DATABASE test' || return
  fi
  pg_reachable || { echo "PostgreSQL still not reachable at $HERALD_TEST_POSTGRES_URL" >&2; return 1; }
  echo "PostgreSQL started and set up at $HERALD_TEST_POSTGRES_URL"
}

ensure_mysql() {
  if mysql_reachable; then
    echo "MariaDB/MySQL reachable at $HERALD_TEST_MYSQL_URL"
    return 0
  fi
  if [[ "$HERALD_TEST_MYSQL_URL" != "$MY_DEFAULT_URL" ]]; then
    echo "MariaDB/MySQL at HERALD_TEST_MYSQL_URL=$HERALD_TEST_MYSQL_URL is not reachable" >&2
    return 1
  fi
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld || return
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || return
  wait_for 60 test -S /run/mysqld/mysqld.sock || { echo "MariaDB did not create its socket" >&2; return 1; }
  # root with an empty password over TCP (Debian's root uses the unix socket only), and `test`.
  wait_for 30 mariadb --protocol=socket -uroot -e 'SELECT 1' || return
  mariadb --protocol=socket -uroot -e "
    ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket;
    CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
    GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
    FLUSH PRIVILEGES;
    CREATE DATABASE IF NOT EXISTS test;" || return
  mysql_reachable || { echo "MariaDB still not reachable at $HERALD_TEST_MYSQL_URL" >&2; return 1; }
  echo "MariaDB started and set up at $HERALD_TEST_MYSQL_URL"
}

# tests/compat/test/tls.test.mjs makes its CA and certificate with the openssl command line.
ensure_openssl() {
  if command -v openssl >/dev/null 2>&1; then
    echo "openssl present: $(openssl version)"
    return 0
  fi
  apt_install openssl
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
run "install: PostgreSQL + MariaDB packages" ensure_sql_packages
run "service: PostgreSQL (app store tests)" ensure_postgres
run "service: MariaDB/MySQL (app store tests)" ensure_mysql
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
