#!/usr/bin/env bash
# Collector benchmark (run by hand; prints figures, asserts nothing).
#
# In one run, on loopback, with the same wrk settings:
#   1. a bare actix-web server that answers POST /v1/collect with 204 (ingest/examples/bare204.rs)
#   2. ringpath-ingest (release) producing to the real Kafka (acks=all, idempotent), 10-event
#      batches, number pools in the process: POST /v1/numbers (SESSIONS sessions picked at
#      random, a pool of as many numbers), then /v1/collect from those sessions (every beacon
#      renews a held number)
#   3. the same with the pools in the real Redis (RINGPATH_POOLS_REDIS_URL, a fresh namespace
#      and assignments topic): /v1/numbers, then /v1/collect
# and prints requests/s, events/s, p50/p99 latency, the ratios (ingest / bare, Redis /
# in-process), CPU per request (ingest, broker, Redis) and ingest's peak RSS (VmHWM).
# Every batch ingest answers 204 is in Kafka; the bench topics (PARTITIONS each) and
# Redis keys get a random suffix and are deleted at the end.
#
#   infra/bench/ingest.sh                          # 20 s per target and connection count (64, then 256), 1 wrk thread
#   DURATION=30s CONNECTIONS="128 512" infra/bench/ingest.sh
#   RINGPATH_KAFKA_LINGER_MS=1 infra/bench/ingest.sh   # producer linger (default 5)
#   RINGPATH_KAFKA_COMPRESSION=none infra/bench/ingest.sh   # producer compression (default lz4)
#   SESSIONS=5000 infra/bench/ingest.sh                # sessions (and pool numbers); default 2000
#
# Needs: wrk, redis-cli, the shared Kafka and Redis (infra/services.sh start), cargo.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$ROOT/infra/lib.sh"
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-64 256}
THREADS=${THREADS:-1}
WARMUP=${WARMUP:-3s}
BROKERS=${RINGPATH_KAFKA_BROKERS:-127.0.0.1:19092}
BARE_PORT=${BARE_PORT:-18099}
INGEST_PORT=${INGEST_PORT:-18098}
METRICS_PORT=${METRICS_PORT:-18097}
SUFFIX=bench$(date +%s)$$
DIR=$(mktemp -d /tmp/rp-ingest-bench-XXXXXX)
PARTITIONS=${PARTITIONS:-4}
SESSIONS=${SESSIONS:-2000}
REDIS_PORT=${RINGPATH_REDIS_PORT:-16379}
REDIS_NS=$SUFFIX
TOPICS=(ringpath.events.$SUFFIX ringpath.calls.$SUFFIX ringpath.assignments.$SUFFIX ringpath.assignments.$SUFFIX.redis ringpath.dlq.$SUFFIX)
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "${TOPICS_CREATED:-}" ]; then "$ROOT/target/release/examples/bench_topics" delete "$BROKERS" "${TOPICS[@]}" || true; fi
  redis-cli -p "$REDIS_PORT" --scan --pattern "$REDIS_NS:*" 2>/dev/null | xargs -r redis-cli -p "$REDIS_PORT" del >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

command -v wrk >/dev/null || die "wrk missing (apt-get install wrk)"
(exec 3<>/dev/tcp/127.0.0.1/"${BROKERS##*:}") 2>/dev/null || die "Kafka not reachable at $BROKERS: infra/services.sh start"
[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] || die "Redis not reachable on 127.0.0.1:$REDIS_PORT: infra/services.sh start"

log "building release binaries (ringpath-ingest, examples bare204 and bench_topics)"
(cd "$ROOT" && cargo build --release -q -p ringpath-ingest --bin ringpath-ingest --example bare204 --example bench_topics)
"$ROOT/target/release/examples/bench_topics" create "$BROKERS" "$PARTITIONS" "${TOPICS[@]}"
TOPICS_CREATED=1
BIN="$ROOT/target/release/ringpath-ingest"
BARE="$ROOT/target/release/examples/bare204"

TOKEN_SHA=$(printf %s bench-token | sha256sum | cut -d' ' -f1)
cat >"$DIR/ringpath.toml" <<EOF
[[account]]
id = "acc_bench"
token_sha256 = "$TOKEN_SHA"
allowed_origins = []

[account.dni]
site_numbers = ["+15550100000"]
hold_minutes = 30

[[account.dni.pool]]
id = "bench"
when = { medium = "cpc" }
numbers = [$(seq -f '"+1555%07g"' 1 $((SESSIONS + 1)) | paste -sd,)]   # one more for the readiness check's session
EOF

# One 10-event batch, as the tracker sends it (sent_at now; event ids repeat across requests, which ingest allows).
NOW_MS=$(( $(date +%s) * 1000 ))
EVENTS=""
for i in $(seq 0 9); do
  [ -n "$EVENTS" ] && EVENTS="$EVENTS,"
  EVENTS="$EVENTS{\"id\":\"ev-$i\",\"type\":\"pageview\",\"ts\":$((NOW_MS - 1000 + i)),\"url\":\"https://bench.example/landing?utm_source=google&utm_medium=cpc&gclid=abc$i\",\"referrer\":\"https://www.google.com/\",\"title\":\"Landing page $i\",\"props\":{}}"
done
# @S@ is the session: session-1 … session-$SESSIONS (its visitor visitor-…), picked at random per request.
BODY="{\"v\":1,\"account\":\"acc_bench\",\"sent_at\":$NOW_MS,\"consent\":\"granted\",\"visitor_id\":\"visitor-@S@\",\"session_id\":\"session-@S@\",\"screen\":\"1920x1080\",\"lang\":\"en-US\",\"tz\":\"Europe/Berlin\",\"events\":[$EVENTS]}"
printf %s "${BODY//@S@/1}" >"$DIR/body.json"
printf %s "$BODY" >"$DIR/collect.tmpl"
printf %s '{"account":"acc_bench","session_id":"session-@S@","visitor_id":"visitor-@S@","url":"https://bench.example/landing?utm_source=google&utm_medium=cpc&gclid=abc","referrer":"https://www.google.com/"}' >"$DIR/numbers.tmpl"
# post.lua TEMPLATE CONTENT_TYPE -> a wrk script posting TEMPLATE with a random session
wrk_script() {
  cat <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "$2"
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
local f = io.open("$1", "rb")
local body = f:read("*a")
f:close()
local pre, mid, post = body:match("^(.-)@S@(.-)@S@(.*)$")
math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0))
request = function()
  local s = tostring(math.random(1, $SESSIONS))
  return wrk.format(nil, nil, nil, pre .. s .. mid .. s .. post)
end
done = function(summary, latency, requests)
  io.write(string.format("SUMMARY rps=%.1f p50_ms=%.2f p99_ms=%.2f requests=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
EOF
}
wrk_script "$DIR/collect.tmpl" "text/plain;charset=UTF-8" >"$DIR/collect.lua"
wrk_script "$DIR/numbers.tmpl" "application/json" >"$DIR/numbers.lua"

# CPU time (user+system, clock ticks) a process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)
# The shared broker's and Redis's pids, to charge their CPU to the run (empty if not found).
listener_pid() { ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1; }
BROKER_PID=$(listener_pid "${BROKERS##*:}")
REDIS_PID=$(listener_pid "$REDIS_PORT")

# run_wrk URL LABEL PID CONNS SCRIPT -> prints wrk's SUMMARY line plus cpu ticks of PID, the broker and Redis during the measured run
run_wrk() {
  wrk -t"$THREADS" -c"$4" -d"$WARMUP" -s "$5" "$1" >/dev/null 2>&1 || true
  local p0 b0 r0 p1 b1 r1
  p0=$(ticks "$3"); b0=$(ticks "${BROKER_PID:-0}"); r0=$(ticks "${REDIS_PID:-0}")
  wrk -t"$THREADS" -c"$4" -d"$DURATION" --latency -s "$5" "$1" >"$DIR/$2.out" 2>&1
  p1=$(ticks "$3"); b1=$(ticks "${BROKER_PID:-0}"); r1=$(ticks "${REDIS_PID:-0}")
  local summary
  summary=$(grep '^SUMMARY' "$DIR/$2.out") || { cat "$DIR/$2.out" >&2; die "wrk on $2 printed no summary"; }
  echo "$summary cpu_ticks=$((p1 - p0)) broker_ticks=$((b1 - b0)) redis_ticks=$((r1 - r0))"
}
# µs of CPU per request: us_per_req TICKS REQUESTS
us_per_req() { echo "$1 * 1000000 / $HZ / $2" | bc -l; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

# 1. bare handler, at each connection count
"$BARE" "127.0.0.1:$BARE_PORT" >"$DIR/bare.log" 2>&1 &
PIDS+=($!); BARE_PID=$!
wait_for bare204 20 "curl -sf -o /dev/null -X POST --data x http://127.0.0.1:$BARE_PORT/v1/collect"
declare -A SUM
for c in $CONNECTIONS; do
  log "bare handler: $c connections, $DURATION"
  SUM[bare-$c]=$(run_wrk "http://127.0.0.1:$BARE_PORT/v1/collect" "bare-$c" "$BARE_PID" "$c" "$DIR/collect.lua")
done
kill "$BARE_PID"; wait "$BARE_PID" 2>/dev/null || true

# start_ingest STORE: ingest on the real broker, pools in the process (memory) or in Redis (redis)
start_ingest() {
  local assignments=ringpath.assignments.$SUFFIX redis=()
  if [ "$1" = redis ]; then
    assignments=ringpath.assignments.$SUFFIX.redis
    redis=(RINGPATH_POOLS_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/" RINGPATH_POOLS_REDIS_NAMESPACE="$REDIS_NS")
  fi
  env RINGPATH_CONFIG="$DIR/ringpath.toml" RINGPATH_INGEST_LISTEN="127.0.0.1:$INGEST_PORT" RINGPATH_INGEST_METRICS_LISTEN="127.0.0.1:$METRICS_PORT" RINGPATH_KAFKA_BROKERS="$BROKERS" \
    RINGPATH_TOPIC_EVENTS="ringpath.events.$SUFFIX" RINGPATH_TOPIC_CALLS="ringpath.calls.$SUFFIX" \
    RINGPATH_TOPIC_ASSIGNMENTS="$assignments" RINGPATH_TOPIC_DLQ="ringpath.dlq.$SUFFIX" \
    RINGPATH_RATE_PER_CLIENT=1000000000 RINGPATH_RATE_BURST=1000000000 RINGPATH_POOL_HOLDS_PER_CLIENT=1000000000 \
    RINGPATH_KAFKA_LINGER_MS="${RINGPATH_KAFKA_LINGER_MS:-5}" RINGPATH_KAFKA_COMPRESSION="${RINGPATH_KAFKA_COMPRESSION:-lz4}" \
    ${RINGPATH_KAFKA_BATCH_MESSAGES:+RINGPATH_KAFKA_BATCH_MESSAGES=$RINGPATH_KAFKA_BATCH_MESSAGES} "${redis[@]}" \
    RINGPATH_ASSETS_DIR="$ROOT/tracker-wasm/pkg" RINGPATH_LOG=warn "$BIN" >"$DIR/ingest-$1.log" 2>&1 &
  PIDS+=($!); INGEST_PID=$!
  # Wait for a real 204 (the producer has found the broker and the topic) and a pool number (the store is ready).
  wait_for "ingest ($1 pools)" 60 "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: text/plain' --data-binary @$DIR/body.json http://127.0.0.1:$INGEST_PORT/v1/collect)\" = 204 ]"
  wait_for "a pool number ($1 pools)" 60 "curl -s -A 'Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0' -H 'Content-Type: application/json' --data-binary '{\"account\":\"acc_bench\",\"session_id\":\"session-warm\",\"url\":\"https://bench.example/?utm_medium=cpc\"}' http://127.0.0.1:$INGEST_PORT/v1/numbers | grep -q '\"kind\":\"session\"'"
}

# stop_ingest STORE: records its metrics and peak RSS, then stops it
declare -A HWM_KB METRICS
stop_ingest() {
  HWM_KB[$1]=$(awk '/VmHWM/ {print $2}' "/proc/$INGEST_PID/status")
  METRICS[$1]=$(curl -s "http://127.0.0.1:$METRICS_PORT/metrics")
  kill "$INGEST_PID"; wait "$INGEST_PID" 2>/dev/null || true
}

for store in memory redis; do
  start_ingest "$store"
  for c in $CONNECTIONS; do
    log "ingest ($store pools): /v1/numbers, $c connections, $DURATION, $SESSIONS sessions"
    SUM[numbers-$store-$c]=$(run_wrk "http://127.0.0.1:$INGEST_PORT/v1/numbers" "numbers-$store-$c" "$INGEST_PID" "$c" "$DIR/numbers.lua")
  done
  for c in $CONNECTIONS; do
    log "ingest ($store pools): /v1/collect, $c connections, $DURATION, 10-event batches to Kafka at $BROKERS"
    SUM[collect-$store-$c]=$(run_wrk "http://127.0.0.1:$INGEST_PORT/v1/collect" "collect-$store-$c" "$INGEST_PID" "$c" "$DIR/collect.lua")
  done
  stop_ingest "$store"
done

metric() { awk -v m="$1" 'index($0, m) == 1 {s += $NF} END {print s + 0}' <<<"$2"; }

echo
echo "ringpath ingest benchmark — $(nproc) cores, wrk -t$THREADS -d$DURATION, 10-event batches ($(wc -c <"$DIR/body.json") bytes), $SESSIONS sessions and pool numbers, linger ${RINGPATH_KAFKA_LINGER_MS:-5} ms, batch.num.messages ${RINGPATH_KAFKA_BATCH_MESSAGES:-default}, ${RINGPATH_KAFKA_COMPRESSION:-lz4}"
printf '%-6s %-34s %12s %14s %10s %10s %8s %12s %12s %12s\n' conns target 'requests/s' 'events/s' 'p50 ms' 'p99 ms' errors 'µs/req ing' 'µs/req kafka' 'µs/req redis'
row() { # row CONNS LABEL SUMMARY EVENTS_PER_REQ
  local rps events
  rps=$(field rps "$3")
  if [ "$4" = 0 ]; then events='-'; else events=$(printf '%.0f' "$(echo "$rps * $4" | bc -l)"); fi
  printf '%-6s %-34s %12.0f %14s %10.2f %10.2f %8d %12.1f %12.1f %12.1f\n' "$1" "$2" "$rps" "$events" "$(field p50_ms "$3")" "$(field p99_ms "$3")" "$(field errors "$3")" \
    "$(us_per_req "$(field cpu_ticks "$3")" "$(field requests "$3")")" "$(us_per_req "$(field broker_ticks "$3")" "$(field requests "$3")")" \
    "$(us_per_req "$(field redis_ticks "$3")" "$(field requests "$3")")"
}
for c in $CONNECTIONS; do
  row "$c" 'bare actix-web 204' "${SUM[bare-$c]}" 0
  row "$c" '/v1/collect, pools in process' "${SUM[collect-memory-$c]}" 10
  row "$c" '/v1/collect, pools in Redis' "${SUM[collect-redis-$c]}" 10
  row "$c" '/v1/numbers, pools in process' "${SUM[numbers-memory-$c]}" 0
  row "$c" '/v1/numbers, pools in Redis' "${SUM[numbers-redis-$c]}" 0
  B=$(field rps "${SUM[bare-$c]}"); M=$(field rps "${SUM[collect-memory-$c]}"); R=$(field rps "${SUM[collect-redis-$c]}")
  NM=$(field rps "${SUM[numbers-memory-$c]}"); NR=$(field rps "${SUM[numbers-redis-$c]}")
  printf '%-6s collect: in-process / bare %.2f; Redis / in-process %.2f. numbers: Redis / in-process %.2f\n' "$c" \
    "$(echo "$M / $B" | bc -l)" "$(echo "$R / $M" | bc -l)" "$(echo "$NR / $NM" | bc -l)"
done
for store in memory redis; do
  m=${METRICS[$store]}
  printf 'pools %-6s: peak RSS %.1f MiB; events acknowledged by Kafka %s; non-2xx answers %s; pool numbers shared %s; numbers without a pool %s; renewals coalesced %s, dropped %s\n' "$store" \
    "$(echo "${HWM_KB[$store]} / 1024" | bc -l)" "$(metric 'ringpath_ingest_events_accepted_total{kind="event"}' "$m")" \
    "$(awk '/^ringpath_ingest_requests_total/ && !/status="20[04]"/ {s += $2} END {print s + 0}' <<<"$m")" \
    "$(metric ringpath_ingest_pool_exhausted_total "$m")" "$(metric ringpath_ingest_numbers_without_pool_total "$m")" \
    "$(metric ringpath_ingest_renewals_coalesced_total "$m")" "$(metric ringpath_ingest_renewals_dropped_total "$m")"
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine competes for the same cores)"
