#!/usr/bin/env bash
# Side-by-side benchmark: herald vs sockudo 5.2.0 (and/or an earlier herald build), same machine, same port, same credentials,
# same herald-bench scenarios. Each server is restarted for every scenario (clean RSS baseline).
# Writes JSON reports per server and scenario, a Markdown table with herald/sockudo ratios
# (results/table.md, also printed), the machine description and the exact commands run.
#
# Loopback only. Runnable from any directory. See docs/BENCHMARKS.md.
#
# Environment (defaults finish in about 10 minutes on a 2-core machine):
#   BENCH_PORT=6001                 port both servers listen on (127.0.0.1)
#   BENCH_RESULTS=target/bench-results/<date>   output folder
#   BENCH_CACHE=~/.cache/herald-bench           sockudo install cache
#   SOCKUDO_BIN=<cache>/sockudo-5.2.0/bin/sockudo  use this sockudo binary instead
#   HERALD_BIN=...                  use this herald binary (default: build target/release/herald)
#   BENCH_BIN=...                   use this herald-bench binary (default: build it)
#   BENCH_SERVERS="herald sockudo"  which servers to run; add herald-base to measure a change against
#                                   an earlier herald build in the same run (needs BASE_HERALD_BIN),
#                                   herald-tls for the same herald terminating TLS ([tls] with a
#                                   certificate made here by openssl; herald-bench connects with
#                                   --tls-ca: wss:// and https://); the table then shows herald-tls
#                                   against herald (ratios TLS / plain), herald-sql for the same
#                                   herald with its app read from a PostgreSQL table ([app_store]
#                                   driver "postgres", cache_ttl 30; the row made here by psql in a
#                                   table bench_apps_<pid> that is dropped at the end); the table
#                                   then shows herald-sql against herald (ratios SQL / [[apps]])
#   BENCH_PG_URL=postgres://postgres@127.0.0.1:5432/test   the database herald-sql reads (psql
#                                   must reach it too)
#   BASE_HERALD_BIN=...             the baseline herald binary for herald-base (e.g. a release build
#                                   of the commit before the change, from a git worktree)
#   BENCH_SCENARIOS="connections fanout saturate client-events churn"  (add connections-19k for
#                                   the 19,000-connection memory scenario; needs ulimit -Hn >= 20000)
#   Scales:
#   CONN_COUNT=2000 CONN_CHANNELS=100 CONN_RATE=1000 CONN_HOLD=10
#   BIG_CONN_COUNT=19000 BIG_CONN_RATE=1500 BIG_CONN_HOLD=10           (connections-19k)
#   FANOUT_SUBS=1000 FANOUT_CHANNELS=10 FANOUT_RATE=100 FANOUT_DURATION=15
#   SAT_SUBS=1000 SAT_CHANNELS=10 SAT_START=100 SAT_FACTOR=1.5 SAT_STEP=5 SAT_MAX_STEPS=12 SAT_P99_MS=50 SAT_PUBLISHERS=10
#   CE_CONNS=300 CE_CHANNELS=30 CE_RATE=2 CE_DURATION=15
#   CHURN_SUBS=500 CHURN_CHANNELS=10 CHURN_RATE=50 CHURN_DURATION=60 CHURN_WORKERS=20 CHURN_HOLD_MS=200
#   send-floor (no server; also run whenever fanout is): the kernel's CPU per message for one
#                                   send per message per socket at the fanout pattern, the floor
#                                   every server pays; the table then shows CPU above that floor
#   CALLGRIND=1                     run every herald variant under valgrind's callgrind during fanout and
#                                   add "user-space instructions per delivered message" to the table:
#                                   a count that does not move with the machine's load, for changes
#                                   too small for the CPU-time ratio to show (keep the scale small:
#                                   e.g. FANOUT_SUBS=200 FANOUT_CHANNELS=2 FANOUT_RATE=20)
#   PERF=1                          also record `perf record` (cpu-clock, dwarf call graphs) of each
#                                   server during fanout, into <results>/<server>/fanout.perf.data
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PORT="${BENCH_PORT:-6001}"
CACHE="${BENCH_CACHE:-$HOME/.cache/herald-bench}"
SOCKUDO_ROOT="$CACHE/sockudo-5.2.0"
SOCKUDO_BIN="${SOCKUDO_BIN:-$SOCKUDO_ROOT/bin/sockudo}"
RESULTS="${BENCH_RESULTS:-$ROOT/target/bench-results/$(date +%Y%m%d-%H%M%S)}"
SERVERS="${BENCH_SERVERS:-herald sockudo}"
SCENARIOS="${BENCH_SCENARIOS:-connections fanout saturate client-events churn}"

CONN_COUNT="${CONN_COUNT:-2000}" CONN_CHANNELS="${CONN_CHANNELS:-100}" CONN_RATE="${CONN_RATE:-1000}" CONN_HOLD="${CONN_HOLD:-10}"
BIG_CONN_COUNT="${BIG_CONN_COUNT:-19000}" BIG_CONN_RATE="${BIG_CONN_RATE:-1500}" BIG_CONN_HOLD="${BIG_CONN_HOLD:-10}"
FANOUT_SUBS="${FANOUT_SUBS:-1000}" FANOUT_CHANNELS="${FANOUT_CHANNELS:-10}" FANOUT_RATE="${FANOUT_RATE:-100}" FANOUT_DURATION="${FANOUT_DURATION:-15}"
SAT_SUBS="${SAT_SUBS:-1000}" SAT_CHANNELS="${SAT_CHANNELS:-10}" SAT_START="${SAT_START:-100}" SAT_FACTOR="${SAT_FACTOR:-1.5}"
SAT_STEP="${SAT_STEP:-5}" SAT_MAX_STEPS="${SAT_MAX_STEPS:-12}" SAT_P99_MS="${SAT_P99_MS:-50}" SAT_PUBLISHERS="${SAT_PUBLISHERS:-10}"
CE_CONNS="${CE_CONNS:-300}" CE_CHANNELS="${CE_CHANNELS:-30}" CE_RATE="${CE_RATE:-2}" CE_DURATION="${CE_DURATION:-15}"
CHURN_SUBS="${CHURN_SUBS:-500}" CHURN_CHANNELS="${CHURN_CHANNELS:-10}" CHURN_RATE="${CHURN_RATE:-50}"
CHURN_DURATION="${CHURN_DURATION:-60}" CHURN_WORKERS="${CHURN_WORKERS:-20}" CHURN_HOLD_MS="${CHURN_HOLD_MS:-200}"

mkdir -p "$RESULTS"
COMMANDS="$RESULTS/commands.txt"
: >"$COMMANDS"
log() { printf '\n==> %s\n' "$*" >&2; }
run_logged() { printf '%s\n' "$*" >>"$COMMANDS"; "$@"; }

# --- build herald and herald-bench ------------------------------------------------------------
if [[ -z "${HERALD_BIN:-}" || -z "${BENCH_BIN:-}" ]]; then
  log "building herald and herald-bench (release)"
  run_logged cargo build --release -p herald -p herald-bench
fi
HERALD_BIN="${HERALD_BIN:-$ROOT/target/release/herald}"
BENCH_BIN="${BENCH_BIN:-$ROOT/target/release/herald-bench}"

# --- sockudo, built once into the cache -------------------------------------------------------
if [[ " $SERVERS " == *" sockudo "* && ! -x "$SOCKUDO_BIN" ]]; then
  log "installing sockudo 5.2.0 into $SOCKUDO_ROOT (about 25 minutes on 2 cores; cached afterwards)"
  if ! command -v protoc >/dev/null; then
    if [[ $(id -u) -eq 0 ]]; then
      apt-get update -qq && apt-get install -y -qq protobuf-compiler
    else
      sudo apt-get update -qq && sudo apt-get install -y -qq protobuf-compiler
    fi
  fi
  mkdir -p "$SOCKUDO_ROOT"
  run_logged cargo install sockudo --version 5.2.0 --no-default-features --features local --locked \
    --root "$SOCKUDO_ROOT" 2>&1 | tee "$CACHE/sockudo-build.log" | tail -n 3 ||
    echo "sockudo install failed (see $CACHE/sockudo-build.log); continuing without it" >&2
  SOCKUDO_BIN="$SOCKUDO_ROOT/bin/sockudo"
fi

# --- limits and machine -----------------------------------------------------------------------
ulimit -n "$(ulimit -Hn)" || true
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (dirty tree)')"
  echo "nproc: $(nproc)"
  echo "kernel: $(uname -sr)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "memory: $(free -h | awk '/^Mem:/ {print $2 " total, " $7 " available"}')"
  echo "open files (soft/hard): $(ulimit -n)/$(ulimit -Hn)"
  echo "ip_local_port_range: $(cat /proc/sys/net/ipv4/ip_local_port_range | tr '\t' ' ')"
  echo "herald: $HERALD_BIN"
  [[ -n "${BASE_HERALD_BIN:-}" ]] && echo "herald-base: $BASE_HERALD_BIN"
  [[ " $SERVERS " == *" herald-sql "* ]] && echo "herald-sql: table bench_apps_$$ in ${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/test} ($(psql -XAtc 'SHOW server_version' "${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/test}" 2>/dev/null || echo unreachable))"
  echo "sockudo: $SOCKUDO_BIN ($("$SOCKUDO_BIN" --version 2>/dev/null || echo missing))"
} >"$RESULTS/machine.txt"
cat "$RESULTS/machine.txt" >&2

# --- servers ----------------------------------------------------------------------------------
# herald-tls: a CA and a leaf for 127.0.0.1 (herald-bench verifies it against the CA).
if [[ " $SERVERS " == *" herald-tls "* ]]; then
  TLS_DIR="$RESULTS/tls"
  mkdir -p "$TLS_DIR"
  (
    cd "$TLS_DIR"
    ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -days 30 -subj "/CN=herald bench CA" -keyout ca.key -out ca.pem
    openssl req "${ec[@]}" -subj "/CN=localhost" -keyout key.pem -out leaf.csr
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >leaf.ext
    openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile leaf.ext -out cert.pem
  ) >"$TLS_DIR/openssl.log" 2>&1
  printf 'openssl: a CA and a P-256 leaf for 127.0.0.1 in %s (the commands of docs/OPERATIONS.md, "TLS")\n' "$TLS_DIR" >>"$COMMANDS"
fi

# herald-sql: the same app as a row of a table of its own (the CREATE TABLE of docs/OPERATIONS.md,
# "App store"), dropped when the script ends.
SQL_TABLE=""
PG_URL="${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
drop_sql_table() {
  [[ -n "$SQL_TABLE" ]] || return 0
  psql -X -q -v ON_ERROR_STOP=1 "$PG_URL" -c "DROP TABLE IF EXISTS \"$SQL_TABLE\"" >/dev/null || true
  SQL_TABLE=""
}
trap drop_sql_table EXIT # and the servers too, once they exist (below)
if [[ " $SERVERS " == *" herald-sql "* ]]; then
  SQL_TABLE="bench_apps_$$"
  sql="CREATE TABLE \"$SQL_TABLE\" (
  \"id\" VARCHAR(191) PRIMARY KEY,
  \"key\" VARCHAR(191) NOT NULL UNIQUE,
  \"secret\" VARCHAR(255) NOT NULL,
  \"enabled\" BOOLEAN NOT NULL DEFAULT TRUE,
  \"settings\" JSONB NOT NULL DEFAULT '{}',
  \"created_at\" TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
  \"updated_at\" TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
);
INSERT INTO \"$SQL_TABLE\" (id, key, secret, settings) VALUES ('app-id', 'app-key', 'app-secret',
  '{\"enable_client_messages\": true, \"max_client_events_per_second\": 10}');"
  printf 'psql -X -1 -v ON_ERROR_STOP=1 %s <<SQL\n%s\nSQL\n' "$PG_URL" "$sql" >>"$COMMANDS"
  if ! psql -X -q -1 -v ON_ERROR_STOP=1 "$PG_URL" <<<"$sql" >"$RESULTS/psql.log" 2>&1; then
    echo "herald-sql: could not create table $SQL_TABLE in $PG_URL (set BENCH_PG_URL); see $RESULTS/psql.log" >&2
    cat "$RESULTS/psql.log" >&2
    SQL_TABLE=""
    exit 1
  fi
fi

# herald and its variants: one file each, the same but for the app (herald-sql) or [tls].
HERALD_COMMON="host = \"127.0.0.1\"
port = $PORT
log_level = \"warn\"
data_dir = \"$RESULTS/herald-data\"
"
cat >"$RESULTS/herald.toml" <<EOF
$HERALD_COMMON
[[apps]]
id = "app-id"
key = "app-key"
secret = "app-secret"
enable_client_messages = true
max_client_events_per_second = 10
EOF
if [[ -n "${TLS_DIR:-}" ]]; then
  cp "$RESULTS/herald.toml" "$RESULTS/herald-tls.toml"
  printf '\n[tls]\ncert_file = "%s"\nkey_file = "%s"\n' "$TLS_DIR/cert.pem" "$TLS_DIR/key.pem" >>"$RESULTS/herald-tls.toml"
fi
if [[ -n "$SQL_TABLE" ]]; then
  cat >"$RESULTS/herald-sql.toml" <<EOF
$HERALD_COMMON
[app_store]
driver = "postgres"
url = "$PG_URL"
table = "$SQL_TABLE"
cache_ttl = 30
EOF
fi

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

SERVER_PID=""
start_server() { # name logfile
  local name=$1 logf=$2
  local -a wrap=()
  if port_busy; then
    echo "port $PORT is already in use; stop whatever listens there or set BENCH_PORT" >&2
    exit 1
  fi
  case $name in
    herald | herald-base | herald-tls | herald-sql)
      local bin="$HERALD_BIN" toml="$RESULTS/herald.toml"
      [[ $name == herald-base ]] && bin="$BASE_HERALD_BIN"
      [[ $name == herald-tls ]] && toml="$RESULTS/herald-tls.toml"
      [[ $name == herald-sql ]] && toml="$RESULTS/herald-sql.toml"
      if [[ "${CALLGRIND:-0}" == 1 && ${CALLGRIND_OUT:-} ]]; then
        wrap=(valgrind --tool=callgrind --callgrind-out-file="$CALLGRIND_OUT")
      fi
      printf '%s%s --config %s\n' "${wrap[*]}${wrap[*]:+ }" "$bin" "$toml" >>"$COMMANDS"
      "${wrap[@]}" "$bin" --config "$toml" >"$logf" 2>&1 &
      SERVER_PID=$!
      ;;
    sockudo)
      # An empty working directory so no config/config.{toml,json} is picked up; everything
      # comes from the environment: same host, port and app; limits that herald does not have
      # are lifted (sockudo's default app allows 100 connections and 100 API calls/s, and its
      # connection rate limiter 20 per minute); client events at herald's default of 10/s.
      local dir="$RESULTS/sockudo-cwd"
      mkdir -p "$dir"
      local -a envs=(
        HOST=127.0.0.1 PORT="$PORT" RUST_LOG=warn DEBUG_MODE=false
        SOCKUDO_DEFAULT_APP_ID=app-id SOCKUDO_DEFAULT_APP_KEY=app-key SOCKUDO_DEFAULT_APP_SECRET=app-secret
        SOCKUDO_DEFAULT_APP_ENABLED=true SOCKUDO_DEFAULT_APP_ENABLE_CLIENT_MESSAGES=true
        SOCKUDO_DEFAULT_APP_MAX_CONNECTIONS=10000000 SOCKUDO_DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SECOND=10000000
        SOCKUDO_DEFAULT_APP_MAX_READ_REQUESTS_PER_SECOND=10000000 SOCKUDO_DEFAULT_APP_MAX_CLIENT_EVENTS_PER_SECOND=10
        RATE_LIMITER_ENABLED=false METRICS_ENABLED=false
      )
      printf '(cd %s && env %s %s)\n' "$dir" "${envs[*]}" "$SOCKUDO_BIN" >>"$COMMANDS"
      (cd "$dir" && exec env "${envs[@]}" "$SOCKUDO_BIN") >"$logf" 2>&1 &
      SERVER_PID=$!
      ;;
  esac
  local tries=100
  [[ ${#wrap[@]} -gt 0 ]] && tries=600 # valgrind starts slowly
  for _ in $(seq 1 "$tries"); do
    if port_busy; then
      # herald-sql must have read its table (/ready is 503 until then), or every connection fails.
      if [[ $name == herald-sql ]] && ! curl -fsS "http://127.0.0.1:$PORT/ready" 2>/dev/null | grep -q '^ready'; then
        sleep 0.1
        continue
      fi
      sleep 0.5
      return 0
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "$name exited at start; see $logf" >&2
      tail -n 20 "$logf" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "$name did not listen on $PORT within $((tries / 10)) s; see $logf" >&2
  return 1
}

stop_server() {
  [[ -n "$SERVER_PID" ]] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  # Under callgrind, shutdown and writing the profile take a while.
  for _ in $(seq 1 600); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  # Let the TIME_WAIT sockets of the previous run not matter and the port be free.
  for _ in $(seq 1 50); do port_busy || break; sleep 0.1; done
}
trap 'stop_server; drop_sql_table' EXIT

scenario_args() { # scenario -> herald-bench arguments
  case $1 in
    connections) echo "connections --count $CONN_COUNT --channels $CONN_CHANNELS --connect-rate $CONN_RATE --hold $CONN_HOLD" ;;
    connections-19k) echo "connections --count $BIG_CONN_COUNT --channels 100 --connect-rate $BIG_CONN_RATE --hold $BIG_CONN_HOLD --max-in-flight 128" ;;
    fanout) echo "fanout --subscribers $FANOUT_SUBS --channels $FANOUT_CHANNELS --rate $FANOUT_RATE --duration $FANOUT_DURATION" ;;
    saturate) echo "saturate --subscribers $SAT_SUBS --channels $SAT_CHANNELS --start-rate $SAT_START --factor $SAT_FACTOR --step $SAT_STEP --max-steps $SAT_MAX_STEPS --p99-bound-ms $SAT_P99_MS --publishers $SAT_PUBLISHERS --half-check" ;;
    client-events) echo "client-events --connections $CE_CONNS --channels $CE_CHANNELS --rate-per-conn $CE_RATE --duration $CE_DURATION" ;;
    churn) echo "churn --subscribers $CHURN_SUBS --channels $CHURN_CHANNELS --rate $CHURN_RATE --duration $CHURN_DURATION --churners $CHURN_WORKERS --hold-ms $CHURN_HOLD_MS" ;;
    *) echo "unknown scenario $1" >&2; return 1 ;;
  esac
}

# Scenario by scenario, every server in turn: a change of the machine's load during the run
# then touches every server's figures of a scenario alike.
for sc in $SCENARIOS; do
  [[ $sc == send-floor ]] && continue # no server involved: runs once, below
  for server in $SERVERS; do
    if [[ $server == sockudo && ! -x "$SOCKUDO_BIN" ]]; then
      log "sockudo binary missing ($SOCKUDO_BIN): skipping sockudo"
      continue
    fi
    if [[ $server == herald-base && ! -x "${BASE_HERALD_BIN:-}" ]]; then
      log "herald-base needs BASE_HERALD_BIN (an executable herald build): skipping herald-base"
      continue
    fi
    mkdir -p "$RESULTS/$server"
    log "$server: $sc"
    CALLGRIND_OUT=""
    [[ $sc == fanout && $server == herald* ]] && CALLGRIND_OUT="$RESULTS/$server/fanout.callgrind.out"
    start_server "$server" "$RESULTS/$server/$sc.server.log" || continue
    args=$(scenario_args "$sc")
    [[ $server == herald-tls ]] && args="--tls-ca $TLS_DIR/ca.pem $args"
    perf_pid=""
    if [[ "${PERF:-0}" == 1 && $sc == fanout ]] && command -v perf >/dev/null; then
      perf record -e cpu-clock -F 499 --call-graph dwarf,16384 -p "$SERVER_PID" -o "$RESULTS/$server/fanout.perf.data" >/dev/null 2>&1 &
      perf_pid=$!
    fi
    # shellcheck disable=SC2086
    run_logged "$BENCH_BIN" --port "$PORT" --server-pid "$SERVER_PID" --server-name "$server" \
      --out "$RESULTS/$server/$sc.json" $args 2>"$RESULTS/$server/$sc.bench.log" |
      tee "$RESULTS/$server/$sc.txt" || echo "herald-bench $sc failed against $server (see $RESULTS/$server/$sc.bench.log)" >&2
    if [[ -n "$perf_pid" ]]; then
      kill -INT "$perf_pid" 2>/dev/null || true
      wait "$perf_pid" 2>/dev/null || true
    fi
    stop_server
  done
done

# --- the kernel floor (no server): one send per message per socket at the fanout pattern -------
FLOOR_ARGS=()
if [[ " $SCENARIOS " == *" fanout "* || " $SCENARIOS " == *" send-floor "* ]]; then
  log "kernel floor: send-floor at the fanout pattern"
  mkdir -p "$RESULTS/floor"
  run_logged "$BENCH_BIN" --out "$RESULTS/floor/send-floor.json" send-floor --subscribers "$FANOUT_SUBS" \
    --channels "$FANOUT_CHANNELS" --rate "$FANOUT_RATE" --duration "$FANOUT_DURATION" \
    2>"$RESULTS/floor/send-floor.bench.log" | tee "$RESULTS/floor/send-floor.txt" &&
    FLOOR_ARGS=(--floor "$RESULTS/floor/send-floor.json") || echo "send-floor failed (see $RESULTS/floor)" >&2
fi

# --- table ------------------------------------------------------------------------------------
TABLE="$RESULTS/table.md"
# The pairs to compare: herald against each other server that ran (sockudo, herald-base); one
# server alone is compared with itself (ratios 1.00) so its figures still print.
PAIRS=()
for other in sockudo herald-base; do
  [[ -d "$RESULTS/herald" && -d "$RESULTS/$other" ]] && PAIRS+=("herald:$other")
done
# TLS against plain: ratios herald-tls / herald; the SQL app store against [[apps]]: herald-sql / herald.
[[ -d "$RESULTS/herald" && -d "$RESULTS/herald-tls" ]] && PAIRS+=("herald-tls:herald")
[[ -d "$RESULTS/herald" && -d "$RESULTS/herald-sql" ]] && PAIRS+=("herald-sql:herald")
if [[ ${#PAIRS[@]} -eq 0 ]]; then
  for d in herald herald-base herald-tls herald-sql sockudo; do [[ -d "$RESULTS/$d" ]] && PAIRS=("$d:$d"); done
fi
{
  echo "# herald benchmark: ${SERVERS// / vs }"
  echo
  echo '```'
  cat "$RESULTS/machine.txt"
  echo '```'
  echo
  if [[ -f "$RESULTS/floor/send-floor.txt" ]]; then
    echo "## Kernel floor (send-floor, no server)"
    echo
    echo '```'
    cat "$RESULTS/floor/send-floor.txt"
    echo '```'
    echo
  fi
  for pair in "${PAIRS[@]}"; do
    AN=${pair%%:*} BN=${pair##*:}
    A="$RESULTS/$AN" B="$RESULTS/$BN"
    echo "## Headline figures: $AN vs $BN"
    echo
    "$BENCH_BIN" compare --summary --a "$A" --b "$B" --a-name "$AN" --b-name "$BN" "${FLOOR_ARGS[@]}"
    echo
    echo "## Every figure: $AN vs $BN"
    echo
    "$BENCH_BIN" compare --a "$A" --b "$B" --a-name "$AN" --b-name "$BN" "${FLOOR_ARGS[@]}"
    echo
  done
  if [[ "${CALLGRIND:-0}" == 1 ]]; then
    echo "## User-space instructions per delivered message (callgrind, fanout)"
    echo
    echo "| server | instructions | delivered | instructions / delivered | ratio to herald |"
    echo "|---|---:|---:|---:|---:|"
    base=""
    for server in $SERVERS; do
      out="$RESULTS/$server/fanout.callgrind.out" json="$RESULTS/$server/fanout.json"
      [[ -f $out && -f $json ]] || continue
      ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$out")
      delivered=$(python3 -c 'import json,sys; m=dict(json.load(open(sys.argv[1]))["metrics"]); print(int(m["delivered"]))' "$json")
      per=$(python3 -c "print(f'{$ir/$delivered:.0f}')")
      [[ $server == herald ]] && base=$per
      ratio=""
      [[ -n $base ]] && ratio=$(python3 -c "print(f'{$per/$base:.3f}')")
      echo "| $server | $ir | $delivered | $per | $ratio |"
    done
    echo
  fi
  echo "Commands: see commands.txt in $RESULTS"
} >"$TABLE"
cat "$TABLE"
log "results in $RESULTS (table: $TABLE)"
