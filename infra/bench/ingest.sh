#!/usr/bin/env bash
# Collector benchmark (run by hand; prints figures, asserts nothing).
#
# In one run, on loopback, with the same wrk settings:
#   1. a bare actix-web server that answers POST /v1/collect with 204 (ingest/examples/bare204.rs)
#   2. ringpath-ingest (release) producing to the real Kafka (acks=all, idempotent), 10-event batches
# and prints requests/s, events/s, p50/p99 latency for both, the ratio, and
# ingest's peak RSS (VmHWM) under that load. Every batch ingest answers 204
# is in Kafka; the bench topics (PARTITIONS each) get a random suffix and are deleted at the end.
#
#   infra/bench/ingest.sh                          # 20 s per target and connection count (64, then 256), 1 wrk thread
#   DURATION=30s CONNECTIONS="128 512" infra/bench/ingest.sh
#   RINGPATH_KAFKA_LINGER_MS=1 infra/bench/ingest.sh   # producer linger (default 5)
#   RINGPATH_KAFKA_COMPRESSION=none infra/bench/ingest.sh   # producer compression (default lz4)
#
# Needs: wrk, the shared Kafka (infra/services.sh start), cargo.
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
SUFFIX=bench$(date +%s)$$
DIR=$(mktemp -d /tmp/rp-ingest-bench-XXXXXX)
PARTITIONS=${PARTITIONS:-4}
TOPICS=(ringpath.events.$SUFFIX ringpath.calls.$SUFFIX ringpath.assignments.$SUFFIX ringpath.dlq.$SUFFIX)
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "${TOPICS_CREATED:-}" ]; then "$ROOT/target/release/examples/bench_topics" delete "$BROKERS" "${TOPICS[@]}" || true; fi
  rm -rf "$DIR"
}
trap cleanup EXIT

command -v wrk >/dev/null || die "wrk missing (apt-get install wrk)"
(exec 3<>/dev/tcp/127.0.0.1/"${BROKERS##*:}") 2>/dev/null || die "Kafka not reachable at $BROKERS: infra/services.sh start"

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
EOF

# One 10-event batch, as the tracker sends it (sent_at now; event ids repeat across requests, which ingest allows).
NOW_MS=$(( $(date +%s) * 1000 ))
EVENTS=""
for i in $(seq 0 9); do
  [ -n "$EVENTS" ] && EVENTS="$EVENTS,"
  EVENTS="$EVENTS{\"id\":\"ev-$i\",\"type\":\"pageview\",\"ts\":$((NOW_MS - 1000 + i)),\"url\":\"https://bench.example/landing?utm_source=google&utm_medium=cpc&gclid=abc$i\",\"referrer\":\"https://www.google.com/\",\"title\":\"Landing page $i\",\"props\":{}}"
done
BODY="{\"v\":1,\"account\":\"acc_bench\",\"sent_at\":$NOW_MS,\"consent\":\"granted\",\"visitor_id\":\"bench-visitor-0001\",\"session_id\":\"bench-session-0001\",\"screen\":\"1920x1080\",\"lang\":\"en-US\",\"tz\":\"Europe/Berlin\",\"events\":[$EVENTS]}"
printf %s "$BODY" >"$DIR/body.json"
cat >"$DIR/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
local f = io.open("$DIR/body.json", "rb")
wrk.body = f:read("*a")
f:close()
local statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  io.write(string.format("SUMMARY rps=%.1f p50_ms=%.2f p99_ms=%.2f requests=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
EOF

# CPU time (user+system, clock ticks) a process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)
# The shared broker's pid, to charge its CPU to the run (empty if not found).
BROKER_PID=$(ss -Hltnp "sport = :${BROKERS##*:}" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)

# run_wrk URL LABEL PID CONNS -> prints wrk's SUMMARY line plus cpu ticks of PID and the broker during the measured run
run_wrk() {
  wrk -t"$THREADS" -c"$4" -d"$WARMUP" -s "$DIR/post.lua" "$1" >/dev/null 2>&1 || true
  local p0 b0 p1 b1
  p0=$(ticks "$3"); b0=$(ticks "${BROKER_PID:-0}")
  wrk -t"$THREADS" -c"$4" -d"$DURATION" --latency -s "$DIR/post.lua" "$1" >"$DIR/$2.out" 2>&1
  p1=$(ticks "$3"); b1=$(ticks "${BROKER_PID:-0}")
  local summary
  summary=$(grep '^SUMMARY' "$DIR/$2.out") || { cat "$DIR/$2.out" >&2; die "wrk on $2 printed no summary"; }
  echo "$summary cpu_ticks=$((p1 - p0)) broker_ticks=$((b1 - b0))"
}
# µs of CPU per request: us_per_req TICKS REQUESTS
us_per_req() { echo "$1 * 1000000 / $HZ / $2" | bc -l; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

# 1. bare handler, at each connection count
"$BARE" "127.0.0.1:$BARE_PORT" >"$DIR/bare.log" 2>&1 &
PIDS+=($!); BARE_PID=$!
wait_for bare204 20 "curl -sf -o /dev/null -X POST --data x http://127.0.0.1:$BARE_PORT/v1/collect"
declare -A BARE_SUM INGEST_SUM
for c in $CONNECTIONS; do
  log "bare handler: $c connections, $DURATION"
  BARE_SUM[$c]=$(run_wrk "http://127.0.0.1:$BARE_PORT/v1/collect" "bare-$c" "$BARE_PID" "$c")
done
kill "$BARE_PID"; wait "$BARE_PID" 2>/dev/null || true

# 2. ingest on the real broker, at each connection count
env RINGPATH_CONFIG="$DIR/ringpath.toml" RINGPATH_INGEST_LISTEN="127.0.0.1:$INGEST_PORT" RINGPATH_KAFKA_BROKERS="$BROKERS" \
  RINGPATH_TOPIC_EVENTS="ringpath.events.$SUFFIX" RINGPATH_TOPIC_CALLS="ringpath.calls.$SUFFIX" \
  RINGPATH_TOPIC_ASSIGNMENTS="ringpath.assignments.$SUFFIX" RINGPATH_TOPIC_DLQ="ringpath.dlq.$SUFFIX" \
  RINGPATH_RATE_PER_CLIENT=1000000000 RINGPATH_RATE_BURST=1000000000 RINGPATH_RESTORE_HOLDS=false \
  RINGPATH_KAFKA_LINGER_MS="${RINGPATH_KAFKA_LINGER_MS:-5}" RINGPATH_KAFKA_COMPRESSION="${RINGPATH_KAFKA_COMPRESSION:-lz4}" \
  ${RINGPATH_KAFKA_BATCH_MESSAGES:+RINGPATH_KAFKA_BATCH_MESSAGES=$RINGPATH_KAFKA_BATCH_MESSAGES} RINGPATH_ASSETS_DIR="$ROOT/tracker-wasm/pkg" RINGPATH_LOG=warn "$BIN" >"$DIR/ingest.log" 2>&1 &
PIDS+=($!); INGEST_PID=$!
# Wait for a real 204 (the producer has found the broker and the topic).
wait_for ingest 60 "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: text/plain' --data-binary @$DIR/body.json http://127.0.0.1:$INGEST_PORT/v1/collect)\" = 204 ]"
for c in $CONNECTIONS; do
  log "ingest: $c connections, $DURATION, 10-event batches to Kafka at $BROKERS"
  INGEST_SUM[$c]=$(run_wrk "http://127.0.0.1:$INGEST_PORT/v1/collect" "ingest-$c" "$INGEST_PID" "$c")
done
HWM_KB=$(awk '/VmHWM/ {print $2}' "/proc/$INGEST_PID/status")
RSS_KB=$(awk '/VmRSS/ {print $2}' "/proc/$INGEST_PID/status")
METRICS=$(curl -s "http://127.0.0.1:$INGEST_PORT/metrics")
ACCEPTED=$(awk '/^ringpath_ingest_events_accepted_total\{kind="event"\}/ {print $2}' <<<"$METRICS")
NON204=$(awk '/^ringpath_ingest_requests_total/ && !/status="204"/ {s += $2} END {print s + 0}' <<<"$METRICS")

echo
echo "ringpath ingest benchmark — $(nproc) cores, wrk -t$THREADS -d$DURATION, 10-event batches ($(wc -c <"$DIR/body.json") bytes), linger ${RINGPATH_KAFKA_LINGER_MS:-5} ms, batch.num.messages ${RINGPATH_KAFKA_BATCH_MESSAGES:-default}, ${RINGPATH_KAFKA_COMPRESSION:-lz4}"
printf '%-6s %-28s %12s %14s %10s %10s %8s %14s\n' conns target 'requests/s' 'events/s' 'p50 ms' 'p99 ms' errors 'CPU µs/req'
for c in $CONNECTIONS; do
  b=${BARE_SUM[$c]}; i=${INGEST_SUM[$c]}
  B_RPS=$(field rps "$b"); I_RPS=$(field rps "$i")
  printf '%-6s %-28s %12.0f %14s %10.2f %10.2f %8d %14.1f\n' "$c" 'bare actix-web 204' "$B_RPS" '-' "$(field p50_ms "$b")" "$(field p99_ms "$b")" "$(field errors "$b")" \
    "$(us_per_req "$(field cpu_ticks "$b")" "$(field requests "$b")")"
  printf '%-6s %-28s %12.0f %14.0f %10.2f %10.2f %8d %14.1f\n' "$c" 'ingest -> Kafka (acks=all)' "$I_RPS" "$(echo "$I_RPS * 10" | bc -l)" "$(field p50_ms "$i")" "$(field p99_ms "$i")" "$(field errors "$i")" \
    "$(us_per_req "$(field cpu_ticks "$i")" "$(field requests "$i")")"
  printf '%-6s %-28s %12s %14s %10s %10s %8s %14.1f\n' "$c" '  Kafka broker, same run' '' '' '' '' '' "$(us_per_req "$(field broker_ticks "$i")" "$(field requests "$i")")"
  printf '%-6s ingest / bare (requests/s): %.2f\n' "$c" "$(echo "$I_RPS / $B_RPS" | bc -l)"
done
printf 'ingest peak RSS (VmHWM): %.1f MiB (VmRSS after the runs: %.1f MiB)\n' "$(echo "$HWM_KB / 1024" | bc -l)" "$(echo "$RSS_KB / 1024" | bc -l)"
echo "events acknowledged by Kafka (ingest metric): ${ACCEPTED:-?}; non-204 answers: $NON204"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine competes for the same cores)"
