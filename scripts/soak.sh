#!/usr/bin/env bash
# Soak test: NODES herald nodes (1 = in-memory adapter; more = one Redis started by this script
# on its own port, never a shared one) under an hour of mixed load from `herald-bench soak`
# (connection churn, presence joins and leaves, HTTP publishes through every node, client
# events, webhooks to a receiver in herald-bench that refuses every third request). Writes the
# samples (samples.csv), the verdict and tables (summary.md), the JSON report, the node and
# bench logs and the exact commands to the results folder. Not part of the test command.
#
# Loopback only. Runnable from any directory. See docs/BENCHMARKS.md ("Soak").
#
# Environment:
#   NODES=1                      herald nodes
#   SOAK_DURATION=3600           seconds of load
#   SOAK_PORT=6201               first node's port (node i listens on SOAK_PORT+i)
#   SOAK_WEBHOOK_PORT=9201       the webhook receiver's port (inside herald-bench)
#   SOAK_REDIS_PORT=6480         port of the Redis this script starts when NODES > 1
#   SOAK_RESULTS=target/soak-results/<date>-<NODES>n   output folder
#   HERALD_BIN, BENCH_BIN        use these binaries (default: build target/release/{herald,herald-bench})
#   SOAK_WEBHOOK_BATCH_MS=1000   the app's webhooks are batched over this many ms (batch_webhooks);
#                                0 sends one request per event (see docs/BENCHMARKS.md: a target
#                                that refuses a third of the requests then delivers ~3 requests/s)
#   SOAK_ARGS="..."              extra herald-bench soak arguments (load shape: --subscribers,
#                                --churners, --hold, --rate, --client-rate, --sample-every, ...)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

NODES="${NODES:-1}"
DURATION="${SOAK_DURATION:-3600}"
PORT="${SOAK_PORT:-6201}"
HOOK_PORT="${SOAK_WEBHOOK_PORT:-9201}"
REDIS_PORT="${SOAK_REDIS_PORT:-6480}"
BATCH_MS="${SOAK_WEBHOOK_BATCH_MS:-1000}"
RESULTS="${SOAK_RESULTS:-$ROOT/target/soak-results/$(date +%Y%m%d-%H%M%S)-${NODES}n}"

mkdir -p "$RESULTS"
COMMANDS="$RESULTS/commands.txt"
: >"$COMMANDS"
log() { printf '==> %s\n' "$*" >&2; }

if [[ -z "${HERALD_BIN:-}" || -z "${BENCH_BIN:-}" ]]; then
  log "building herald and herald-bench (release)"
  echo "cargo build --release -p herald -p herald-bench" >>"$COMMANDS"
  cargo build --release -p herald -p herald-bench
fi
HERALD_BIN="${HERALD_BIN:-$ROOT/target/release/herald}"
BENCH_BIN="${BENCH_BIN:-$ROOT/target/release/herald-bench}"

ulimit -n "$(ulimit -Hn)" || true
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (dirty tree)')"
  echo "nodes: $NODES"
  echo "nproc: $(nproc)"
  echo "kernel: $(uname -sr)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "memory: $(free -h | awk '/^Mem:/ {print $2 " total, " $7 " available"}')"
  echo "open files (soft/hard): $(ulimit -n)/$(ulimit -Hn)"
  [[ $NODES -gt 1 ]] && echo "redis: $(redis-server --version)"
} >"$RESULTS/machine.txt"
cat "$RESULTS/machine.txt" >&2

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # port pid name
  for _ in $(seq 1 100); do
    port_busy "$1" && return 0
    if ! kill -0 "$2" 2>/dev/null; then
      echo "$3 exited at start" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "$3 did not listen on $1 within 10 s" >&2
  return 1
}

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

for p in $HOOK_PORT $(seq "$PORT" $((PORT + NODES - 1))); do
  if port_busy "$p"; then
    echo "port $p is already in use; choose other SOAK_PORT / SOAK_WEBHOOK_PORT" >&2
    exit 1
  fi
done

ADAPTER=""
if [[ $NODES -gt 1 ]]; then
  if port_busy "$REDIS_PORT"; then
    echo "port $REDIS_PORT is already in use; set SOAK_REDIS_PORT to a free port" >&2
    exit 1
  fi
  echo "redis-server --port $REDIS_PORT --save '' --appendonly no" >>"$COMMANDS"
  redis-server --port "$REDIS_PORT" --save '' --appendonly no --daemonize no >"$RESULTS/redis.log" 2>&1 &
  PIDS+=($!)
  wait_port "$REDIS_PORT" "$!" redis
  ADAPTER=$(printf '\n[adapter]\ndriver = "redis"\nurl = "redis://127.0.0.1:%s"\nprefix = "soak"\n' "$REDIS_PORT")
fi

NODE_PIDS=()
NODE_PORTS=()
for i in $(seq 0 $((NODES - 1))); do
  port=$((PORT + i))
  cfg="$RESULTS/herald-$i.toml"
  batch="batch_webhooks = false"
  [[ $BATCH_MS -gt 0 ]] && batch="batch_webhooks = true"
  cat >"$cfg" <<TOML
host = "127.0.0.1"
port = $port
log_level = "warn"
data_dir = "$RESULTS/herald-data-$i"
webhook_batch_ms = $(( BATCH_MS > 0 ? BATCH_MS : 50 ))

[[apps]]
id = "app-id"
key = "app-key"
secret = "app-secret"
enable_client_messages = true
$batch

[[apps.webhooks]]
url = "http://127.0.0.1:$HOOK_PORT/webhooks"
event_types = ["channel_occupied", "channel_vacated", "member_added", "member_removed", "client_event"]
$ADAPTER
TOML
  echo "$HERALD_BIN --config $cfg" >>"$COMMANDS"
  "$HERALD_BIN" --config "$cfg" >"$RESULTS/herald-$i.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_port "$port" "$pid" "herald node $i"
  NODE_PIDS+=("$pid")
  NODE_PORTS+=("$port")
done

ports=$(IFS=,; echo "${NODE_PORTS[*]}")
pids=$(IFS=,; echo "${NODE_PIDS[*]}")
# shellcheck disable=SC2206
extra=(${SOAK_ARGS:-})
cmd=("$BENCH_BIN" --server-name "herald-${NODES}n" --out "$RESULTS/soak.json" soak --ports "$ports" --pids "$pids"
  --webhook-port "$HOOK_PORT" --duration "$DURATION" --csv "$RESULTS/samples.csv" --md "$RESULTS/summary.md" "${extra[@]}")
printf '%s\n' "${cmd[*]}" >>"$COMMANDS"
log "soak: $NODES node(s) for $DURATION s; results in $RESULTS"
"${cmd[@]}" 2>"$RESULTS/bench.log" | tee "$RESULTS/soak.txt"
# The outbox and the dead letters live on disk (webhooks.redb): its size at the end.
for i in $(seq 0 $((NODES - 1))); do
  echo "node $i data_dir: $(du -sk "$RESULTS/herald-data-$i" | cut -f1) KiB" | tee -a "$RESULTS/soak.txt"
done
