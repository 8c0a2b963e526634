#!/bin/bash
# Run once by the clickhouse/clickhouse-server image on an empty data volume
# (infra/compose.yaml): the read-only user dashboard-api reads as. readonly = 2
# allows SET, so the dashboard can send max_execution_time per query.
set -euo pipefail
clickhouse client --user "$CLICKHOUSE_USER" --password "$CLICKHOUSE_PASSWORD" --multiquery <<SQL
CREATE DATABASE IF NOT EXISTS ringpath;
CREATE USER IF NOT EXISTS ringpath_reader IDENTIFIED WITH sha256_password BY '${RINGPATH_DASHBOARD_CLICKHOUSE_PASSWORD}' SETTINGS readonly = 2;
GRANT SELECT ON ringpath.* TO ringpath_reader;
SQL
