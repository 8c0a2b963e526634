# Shared helpers for ringpath's infra scripts: logging, timed idempotent steps,
# readiness waits. Sourced, never run. It starts nothing by itself.
set -euo pipefail

RINGPATH_ROOT="${RINGPATH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
# Downloads and built tools survive between runs (the CI machine may be reused).
RINGPATH_CACHE="${RINGPATH_CACHE:-$HOME/.cache/ringpath}"
# Runtime state of the local stack: data dirs, logs, pid files.
RINGPATH_STATE="${RINGPATH_STATE:-$RINGPATH_ROOT/.run}"
mkdir -p "$RINGPATH_CACHE" "$RINGPATH_STATE/logs"

log() { printf '[ringpath %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# step NAME CHECK_CMD DO_CMD — runs DO_CMD unless CHECK_CMD succeeds; logs time
# and, on failure, where the output went.
step() {
  local name="$1" check="$2" action="$3"
  if eval "$check" >/dev/null 2>&1; then
    log "step '$name': already done"
    return 0
  fi
  local logf="$RINGPATH_STATE/logs/step-${name}.log" t0=$SECONDS
  log "step '$name': running (log: $logf)"
  if ! eval "$action" >"$logf" 2>&1; then
    tail -n 30 "$logf" >&2 || true
    die "step '$name' failed after $((SECONDS - t0))s; full log: $logf"
  fi
  eval "$check" >/dev/null 2>&1 || { tail -n 30 "$logf" >&2; die "step '$name' ran but its check still fails; log: $logf"; }
  log "step '$name': done in $((SECONDS - t0))s"
}

# wait_for NAME SECONDS CMD — polls CMD until it succeeds.
wait_for() {
  local name="$1" limit="$2" cmd="$3" t0=$SECONDS
  until eval "$cmd" >/dev/null 2>&1; do
    if (( SECONDS - t0 >= limit )); then die "$name not ready after ${limit}s"; fi
    sleep 0.2
  done
  log "$name ready in $((SECONDS - t0))s"
}

# Ports of the local stack; every one can be moved with RINGPATH_* env.
export RINGPATH_KAFKA_PORT="${RINGPATH_KAFKA_PORT:-19092}"
export RINGPATH_KAFKA_CONTROLLER_PORT="${RINGPATH_KAFKA_CONTROLLER_PORT:-19093}"
export RINGPATH_CLICKHOUSE_HTTP_PORT="${RINGPATH_CLICKHOUSE_HTTP_PORT:-18123}"
export RINGPATH_CLICKHOUSE_TCP_PORT="${RINGPATH_CLICKHOUSE_TCP_PORT:-19000}"
export RINGPATH_REDIS_PORT="${RINGPATH_REDIS_PORT:-16379}"
export RINGPATH_KAFKA_BROKERS="${RINGPATH_KAFKA_BROKERS:-127.0.0.1:$RINGPATH_KAFKA_PORT}"
export RINGPATH_CLICKHOUSE_URL="${RINGPATH_CLICKHOUSE_URL:-http://127.0.0.1:$RINGPATH_CLICKHOUSE_HTTP_PORT}"

KAFKA_LIBS="$RINGPATH_CACHE/kafka-libs"

# service_up NAME — true when the local service answers. No pipes: under
# pipefail, `services.sh status | grep -q` reads a running service as down
# (grep exits at its match and the writer dies of SIGPIPE).
service_up() {
  case "$1" in
    kafka) (exec 3<>/dev/tcp/127.0.0.1/"$RINGPATH_KAFKA_PORT") 2>/dev/null ;;
    clickhouse) curl -sf "http://127.0.0.1:$RINGPATH_CLICKHOUSE_HTTP_PORT/ping" >/dev/null 2>&1 ;;
    redis) [ "$(redis-cli -p "$RINGPATH_REDIS_PORT" ping 2>/dev/null)" = PONG ] ;;
    *) die "service_up: unknown service $1" ;;
  esac
}
TOOLS_DIR="$RINGPATH_CACHE/tools"
BINARYEN_VERSION="132.0.0"       # Debian's binaryen 108 corrupts the externref table
