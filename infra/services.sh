#!/usr/bin/env bash
# Starts / stops the local Kafka (genuine Apache Kafka, KRaft), ClickHouse and
# Redis (number pools shared by several collectors) on loopback, data under
# $RINGPATH_STATE. Usage: services.sh start|stop|status|start-<svc>|stop-<svc>
# `start` is idempotent: a service already answering is left alone.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_DIR="$RINGPATH_STATE/kafka"
CH_DIR="$RINGPATH_STATE/clickhouse"
REDIS_DIR="$RINGPATH_STATE/redis"

kafka_up() { service_up kafka; }
ch_up() { service_up clickhouse; }

start_kafka() {
  if kafka_up; then log "kafka already listening on $RINGPATH_KAFKA_PORT"; return; fi
  ls "$KAFKA_LIBS"/kafka_2.13-*.jar >/dev/null 2>&1 || die "kafka jars missing in $KAFKA_LIBS: run infra/install.sh"
  mkdir -p "$KAFKA_DIR/data" "$KAFKA_DIR/logs"
  sed -e "s|@PORT@|$RINGPATH_KAFKA_PORT|g; s|@CONTROLLER_PORT@|$RINGPATH_KAFKA_CONTROLLER_PORT|g; s|@DATA@|$KAFKA_DIR/data|g" \
    "$RINGPATH_ROOT/infra/kafka/server.properties.in" >"$KAFKA_DIR/server.properties"
  local java_opts=(-Xms256m -Xmx768m -XX:+UseG1GC -Dkafka.logs.dir="$KAFKA_DIR/logs"
                   -Dlog4j2.configurationFile="$RINGPATH_ROOT/infra/kafka/log4j2.properties")
  if [ ! -f "$KAFKA_DIR/data/meta.properties" ]; then
    java "${java_opts[@]}" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format \
      -t "$(java -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)" \
      -c "$KAFKA_DIR/server.properties" >"$KAFKA_DIR/logs/format.log" 2>&1 \
      || { cat "$KAFKA_DIR/logs/format.log" >&2; die "kafka storage format failed; log: $KAFKA_DIR/logs/format.log"; }
  fi
  log "starting kafka (log: $KAFKA_DIR/logs/stdout.log, $KAFKA_DIR/logs/server.log)"
  nohup java "${java_opts[@]}" -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_DIR/server.properties" \
    >"$KAFKA_DIR/logs/stdout.log" 2>&1 &
  echo $! >"$KAFKA_DIR/pid"
  wait_for kafka 180 "kafka_up && grep -q 'Kafka Server started\|KafkaRaftServer.*started\|Transition from STARTING to STARTED' $KAFKA_DIR/logs/server.log $KAFKA_DIR/logs/stdout.log" \
    || die "kafka did not start; log: $KAFKA_DIR/logs/server.log"
}

start_clickhouse() {
  if ch_up; then log "clickhouse already answering on $RINGPATH_CLICKHOUSE_HTTP_PORT"; return; fi
  command -v clickhouse-server >/dev/null || die "clickhouse-server missing: run infra/install.sh"
  mkdir -p "$CH_DIR/data/log" "$CH_DIR/data/tmp" "$CH_DIR/conf"
  sed -e "s|@DATA@|$CH_DIR/data|g; s|@CONF@|$CH_DIR/conf|g; s|@HTTP_PORT@|$RINGPATH_CLICKHOUSE_HTTP_PORT|g; s|@TCP_PORT@|$RINGPATH_CLICKHOUSE_TCP_PORT|g" \
    "$RINGPATH_ROOT/infra/clickhouse/config.xml.in" >"$CH_DIR/conf/config.xml"
  cp "$RINGPATH_ROOT/infra/clickhouse/users.xml" "$CH_DIR/conf/users.xml"
  log "starting clickhouse (log: $CH_DIR/stdout.log, $CH_DIR/data/log/)"
  nohup clickhouse-server --config-file="$CH_DIR/conf/config.xml" >"$CH_DIR/stdout.log" 2>&1 &
  echo $! >"$CH_DIR/pid"
  wait_for clickhouse 60 ch_up || die "clickhouse did not start; log: $CH_DIR/stdout.log"
}

start_redis() {
  if service_up redis; then log "redis already answering on $RINGPATH_REDIS_PORT"; return; fi
  command -v redis-server >/dev/null || die "redis-server missing: run infra/install.sh"
  mkdir -p "$REDIS_DIR"
  log "starting redis (log: $REDIS_DIR/redis.log)"
  # Append-only file: a restart keeps the holds (a lost Redis is refilled from Kafka by ingest).
  nohup redis-server --port "$RINGPATH_REDIS_PORT" --bind 127.0.0.1 --dir "$REDIS_DIR" --appendonly yes \
    --save "" --daemonize no --logfile "$REDIS_DIR/redis.log" >/dev/null 2>&1 &
  echo $! >"$REDIS_DIR/pid"
  wait_for redis 30 "service_up redis" || die "redis did not start; log: $REDIS_DIR/redis.log"
}

stop_pidfile() {
  local name="$1" pidfile="$2"
  [ -f "$pidfile" ] || return 0
  local pid; pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

case "${1:-}" in
  start) start_clickhouse; start_kafka; start_redis ;;
  start-kafka) start_kafka ;;
  start-clickhouse) start_clickhouse ;;
  start-redis) start_redis ;;
  stop-kafka) stop_pidfile kafka "$KAFKA_DIR/pid" ;;
  stop-clickhouse) stop_pidfile clickhouse "$CH_DIR/pid" ;;
  stop-redis) stop_pidfile redis "$REDIS_DIR/pid" ;;
  stop) stop_pidfile kafka "$KAFKA_DIR/pid"; stop_pidfile clickhouse "$CH_DIR/pid"; stop_pidfile redis "$REDIS_DIR/pid" ;;
  status) for svc in kafka clickhouse redis; do service_up "$svc" && echo "$svc: up" || echo "$svc: down"; done ;;
  *) die "usage: services.sh start|stop|status|start-<kafka|clickhouse|redis>|stop-<kafka|clickhouse|redis>" ;;
esac
