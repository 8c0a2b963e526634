#!/usr/bin/env bash
# Dashboard API benchmark (run by hand; prints figures, asserts nothing).
#
# Starts a PRIVATE ClickHouse (own ports and data dir under /tmp, so the shared
# one other tests use is not slowed), loads EVENTS synthetic events and CALLS
# calls over the 30 days before a fixed end with `ringpath-dashboard-api
# generate`, serves the API with the read-only user, and prints p50/p95 of:
#   - the 30-day attribution report, per dimension x model
#   - the calls list (first page, and following cursors)
#   - the daily timeseries
#   - a calling visitor's journey and export
# and, for ERASURES visitors (default 3) one after the other, the time until
# `DELETE …/visitors/{id}` answers 202 and until its status says done.
#
#   infra/bench/dashboard.sh                      # 10M events, 100k calls, 20 runs each
#   EVENTS=1000000 CALLS=10000 REPS=10 infra/bench/dashboard.sh
#   KEEP=1 BENCH_DIR=/tmp/rp-bench infra/bench/dashboard.sh   # keep data; a rerun skips loading
#   LOAD_ONLY=1 KEEP=1 BENCH_DIR=/tmp/rp-bench infra/bench/dashboard.sh  # load (and settle) now, measure in a later run
# Binaries are looked for in $CARGO_TARGET_DIR (default target/ here).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
EVENTS=${EVENTS:-10000000}
CALLS=${CALLS:-100000}
REPS=${REPS:-20}
PROFILE=${PROFILE:-release}
KEEP=${KEEP:-0}
LOAD_ONLY=${LOAD_ONLY:-0}
ERASURES=${ERASURES:-3}
DIR=${BENCH_DIR:-$(mktemp -d /tmp/rp-bench-XXXXXX)}
END_MS=${END_MS:-1795996800000} # 2026-11-30T00:00:00Z: fixed, so reruns query the same window
FROM_MS=$((END_MS - 30 * 86400000))
ACCOUNT=acc_demo
TOKEN=bench-token
DB=ringpath

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
log() { printf '[bench] %s\n' "$*" >&2; }

mkdir -p "$DIR/ch/data/log" "$DIR/ch/data/tmp" "$DIR/ch/conf"
HTTP_PORT=$(free_port); TCP_PORT=$(free_port); API_PORT=$(free_port)
sed -e "s|@DATA@|$DIR/ch/data|g; s|@CONF@|$DIR/ch/conf|g; s|@HTTP_PORT@|$HTTP_PORT|g; s|@TCP_PORT@|$TCP_PORT|g" \
  "$ROOT/infra/clickhouse/config.xml.in" >"$DIR/ch/conf/config.xml"
cp "$ROOT/infra/clickhouse/users.xml" "$DIR/ch/conf/users.xml"

CH_PID=""; API_PID=""
cleanup() {
  [ -n "$API_PID" ] && kill "$API_PID" 2>/dev/null || true
  [ -n "$CH_PID" ] && kill "$CH_PID" 2>/dev/null || true
  [ -n "$CH_PID" ] && for _ in $(seq 1 100); do kill -0 "$CH_PID" 2>/dev/null || break; sleep 0.1; done
  if [ "$KEEP" != 1 ]; then rm -rf "$DIR"; else log "data kept in $DIR"; fi
}
trap cleanup EXIT

clickhouse-server --config-file="$DIR/ch/conf/config.xml" >"$DIR/ch/stdout.log" 2>&1 &
CH_PID=$!
CH="http://127.0.0.1:$HTTP_PORT"
for _ in $(seq 1 100); do curl -sf "$CH/ping" >/dev/null && break; sleep 0.1; done
curl -sf "$CH/ping" >/dev/null || { log "private clickhouse did not start: $DIR/ch/stdout.log"; exit 1; }
chq() { curl -sf "$CH/?database=$DB" --data-binary "$1"; }

cat >"$DIR/ringpath.toml" <<EOF
[[account]]
id = "$ACCOUNT"
token_sha256 = "$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)"
timezone = "America/Chicago"

[account.dni]
site_numbers = ["+15550100000"]

[[account.dni.pool]]
id = "paid_search"
when = { medium = "cpc" }
numbers = ["+15550109001", "+15550109002", "+15550109003", "+15550109004", "+15550109005", "+15550109006"]

[[account.dni.source]]
when = { channel = "organic_social" }
number = "+15550108001"

[[account.dni.source]]
when = { channel = "email" }
number = "+15550108002"
EOF

log "building ringpath-dashboard-api ($PROFILE)"
(cd "$ROOT" && cargo build -q --profile "$PROFILE" -p ringpath-dashboard-api && cargo build -q --profile "$PROFILE" -p ringpath-tests --bin generate)
TARGET_SUBDIR=$PROFILE; [ "$PROFILE" = dev ] && TARGET_SUBDIR=debug
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN="$TARGET_DIR/$TARGET_SUBDIR/ringpath-dashboard-api"
GENERATE="$TARGET_DIR/$TARGET_SUBDIR/generate"

export RINGPATH_CONFIG="$DIR/ringpath.toml" RINGPATH_CLICKHOUSE_URL="$CH" RINGPATH_CLICKHOUSE_DATABASE="$DB" RINGPATH_LOG=warn
# A marker, not a row count: an erasure in an earlier run leaves fewer rows.
if [ ! -f "$DIR/loaded-$EVENTS-$CALLS" ]; then
  log "loading $EVENTS events and $CALLS calls into the private ClickHouse"
  t0=$(date +%s.%N)
  "$GENERATE" --migrate --events "$EVENTS" --calls "$CALLS" --days 30 --end "$END_MS" --seed 42 2>/dev/null
  t1=$(date +%s.%N)
  echo "load: $(python3 -c "print(f'{$t1-$t0:.1f}')") s"
  log "letting merges settle (OPTIMIZE … FINAL)"
  t2=$(date +%s.%N)
  for t in events visitor_events calls assignments sessions event_stats attribution_stats attribution_daily; do chq "OPTIMIZE TABLE $t FINAL" || true; done
  echo "settle (OPTIMIZE … FINAL): $(python3 -c "print(f'{$(date +%s.%N)-$t2:.1f}')") s"
  touch "$DIR/loaded-$EVENTS-$CALLS"
else
  log "data already loaded in $DIR; applying any new migrations (backfills included)"
  t0=$(date +%s.%N)
  "$GENERATE" --migrate --events 0 --calls 0 2>/dev/null
  echo "migrations: $(python3 -c "print(f'{$(date +%s.%N)-$t0:.1f}')") s"
  for t in visitor_events event_stats attribution_stats attribution_daily; do chq "OPTIMIZE TABLE $t FINAL" || true; done
fi
echo "rows: events=$(chq 'SELECT count() FROM events') visitor_events=$(chq 'SELECT count() FROM visitor_events') calls=$(chq 'SELECT count() FROM calls') assignments=$(chq 'SELECT count() FROM assignments')"
echo "disk: $(chq "SELECT formatReadableSize(sum(bytes_on_disk)) FROM system.parts WHERE active AND database = '$DB'")"
echo "disk by table: $(chq "SELECT arrayStringConcat(groupArray(concat(table, ' ', size)), ', ') FROM (SELECT table, formatReadableSize(sum(bytes_on_disk)) AS size FROM system.parts WHERE active AND database = '$DB' GROUP BY table ORDER BY sum(bytes_on_disk) DESC)")"
if [ "$LOAD_ONLY" = 1 ]; then log "loaded; LOAD_ONLY=1, so no figures"; exit 0; fi

RINGPATH_DASHBOARD_LISTEN="127.0.0.1:$API_PORT" RINGPATH_DASHBOARD_CLICKHOUSE_USER=ringpath_ro RINGPATH_DASHBOARD_CLICKHOUSE_PASSWORD=ringpath_ro \
  "$BIN" >"$DIR/api.log" 2>&1 &
API_PID=$!
API="http://127.0.0.1:$API_PORT"
for _ in $(seq 1 100); do curl -sf "$API/healthz" >/dev/null && break; sleep 0.1; done

# CPU time (clock ticks) the private ClickHouse has used so far: unlike wall
# time, it does not grow when other work on the machine competes for the cores.
ch_ticks() { awk '{print $14 + $15}' "/proc/$CH_PID/stat"; }
TICK_MS=$((1000 / $(getconf CLK_TCK)))

# p50/p95 (ms) of REPS timed GETs, and ClickHouse CPU ms per request; fails loudly on a non-200.
measure() {
  local label="$1" url="$2" times=() code t ticks0
  curl -s -o /dev/null -u "$ACCOUNT:$TOKEN" "$API$url" # warm-up (marks, caches)
  ticks0=$(ch_ticks)
  for _ in $(seq 1 "$REPS"); do
    read -r code t < <(curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -u "$ACCOUNT:$TOKEN" "$API$url")
    [ "$code" = 200 ] || { echo "$label: HTTP $code for $url" >&2; curl -s -u "$ACCOUNT:$TOKEN" "$API$url" >&2; exit 1; }
    times+=("$t")
  done
  local cpu_ms=$(( ($(ch_ticks) - ticks0) * TICK_MS / REPS ))
  python3 - "$label" "$cpu_ms" "${times[@]}" <<'PY'
import sys
label, cpu, xs = sys.argv[1], sys.argv[2], sorted(float(x) * 1000 for x in sys.argv[3:])
pick = lambda q: xs[min(len(xs) - 1, max(0, round(q * len(xs) + 0.5) - 1))]
print(f"{label:<44} p50 {pick(0.50):7.1f} ms   p95 {pick(0.95):7.1f} ms   max {xs[-1]:7.1f} ms   ClickHouse CPU {cpu:>5} ms/request")
PY
}

# The figures are wall-clock and CPU-bound: say how busy the machine was.
load() { echo "(load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores)"; }
echo "== 30-day attribution ($REPS runs each) $(load) =="
for model in last_touch first_touch linear; do
  for dim in channel source medium campaign landing_page referrer_host; do
    measure "attribution $dim/$model" "/v1/accounts/$ACCOUNT/attribution?from=$FROM_MS&to=$END_MS&dimension=$dim&model=$model"
  done
done

echo "== 30-day attribution, range not on whole hours (ragged ends read from events) =="
for dim in channel landing_page; do
  measure "attribution $dim/last_touch (ragged)" "/v1/accounts/$ACCOUNT/attribution?from=$((FROM_MS + 1234567))&to=$((END_MS - 1234567))&dimension=$dim&model=last_touch"
done

echo "== calls list $(load) =="
measure "calls first page (limit=100)" "/v1/accounts/$ACCOUNT/calls?from=$FROM_MS&to=$END_MS&limit=100"
next_cursor() { curl -s -u "$ACCOUNT:$TOKEN" "$API/v1/accounts/$ACCOUNT/calls?from=$FROM_MS&to=$END_MS&limit=100$1" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("next_cursor") or "")'; }
cursor=$(next_cursor "")
pages=1
while [ "$pages" -lt 51 ]; do
  next=$(next_cursor "&cursor=$cursor"); [ -n "$next" ] || break
  cursor=$next; pages=$((pages + 1))
done
measure "calls page $((pages + 1)) (cursor)" "/v1/accounts/$ACCOUNT/calls?from=$FROM_MS&to=$END_MS&limit=100&cursor=$cursor"
measure "calls (limit=1000)" "/v1/accounts/$ACCOUNT/calls?from=$FROM_MS&to=$END_MS&limit=1000"

echo "== timeseries =="
measure "timeseries sessions/day (30 days, tz)" "/v1/accounts/$ACCOUNT/timeseries?from=$FROM_MS&to=$END_MS&interval=day&metric=sessions"
measure "timeseries pageviews/hour (7 days, tz)" "/v1/accounts/$ACCOUNT/timeseries?from=$((END_MS - 7 * 86400000))&to=$END_MS&interval=hour&metric=pageviews"

echo "== visitor =="
VISITOR=$(chq "SELECT visitor_id FROM calls WHERE account_id = '$ACCOUNT' AND visitor_id != '' ORDER BY call_id LIMIT 1")
measure "journey of a calling visitor" "/v1/accounts/$ACCOUNT/visitors/$VISITOR"
measure "export of a calling visitor" "/v1/accounts/$ACCOUNT/visitors/$VISITOR/export"

echo "== erasure, $ERASURES calling visitors one after the other $(load) =="
for VISITOR in $(chq "SELECT visitor_id FROM calls WHERE account_id = '$ACCOUNT' AND visitor_id != '' GROUP BY visitor_id ORDER BY min(call_id) LIMIT $ERASURES"); do
  t0=$(date +%s.%N)
  code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -u "$ACCOUNT:$TOKEN" "$API/v1/accounts/$ACCOUNT/visitors/$VISITOR")
  t1=$(date +%s.%N)
  [ "$code" = 202 ] || { echo "erasure: HTTP $code" >&2; exit 1; }
  polls=0
  until curl -s -u "$ACCOUNT:$TOKEN" "$API/v1/accounts/$ACCOUNT/visitors/$VISITOR/erasure" | grep -q '"status":"done"'; do
    polls=$((polls + 1)); [ "$polls" -lt 6000 ] || { echo "erasure not done after 10 min" >&2; exit 1; }
    sleep 0.1
  done
  t2=$(date +%s.%N)
  left=$(chq "SELECT (SELECT count() FROM events WHERE visitor_id = '$VISITOR') + (SELECT count() FROM visitor_events WHERE visitor_id = '$VISITOR') + (SELECT count() FROM calls WHERE visitor_id = '$VISITOR') + (SELECT count() FROM assignments WHERE visitor_id = '$VISITOR') + (SELECT count() FROM sessions WHERE visitor_id = '$VISITOR') + (SELECT count() FROM erasure_jobs WHERE visitor_id = '$VISITOR')")
  python3 -c "print(f'erasure: DELETE answered 202 in {($t1-$t0)*1000:.0f} ms; done (status=done) after {$t2-$t0:.1f} s; rows left naming the visitor: $left')"
done
load
