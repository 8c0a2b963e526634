#!/usr/bin/env bash
# Builds the tracker: rp.wasm (Rust → wasm32, std rebuilt with Debian's
# rustc-web, INFRA.md §1; plain exports, no wasm-bindgen) and rp.js (js/*.js,
# one function, so window.ringpath is the only global). rp.js carries the
# sha384 of the rp.wasm it loads, so an `integrity` on the script tag pins
# both. Writes exactly pkg/rp.js and pkg/rp.wasm, prints their compressed
# sizes, the version (what ingest serves under /v/{version}/) and the
# script tag. Idempotent and reproducible: the same source and toolchain give
# the same bytes in any checkout directory.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS="${RINGPATH_CACHE:-$HOME/.cache/ringpath}/tools"
WASM_OPT="${WASM_OPT:-$TOOLS/npm/node_modules/.bin/wasm-opt}"
TERSER_VERSION="5.39.0"
TERSER="$TOOLS/npm-terser/node_modules/.bin/terser"
export CARGO_TARGET_DIR="$HERE/target"

if ! "$TERSER" --version 2>/dev/null | grep -q "$TERSER_VERSION"; then
  mkdir -p "$TOOLS/npm-terser"
  (cd "$TOOLS/npm-terser" && npm install --no-audit --no-fund --silent "terser@$TERSER_VERSION") >&2
fi

for tool in "$WASM_OPT" /usr/bin/rustc /usr/bin/cargo; do
  [ -x "$tool" ] || { echo "build.sh: missing $tool (run infra/install.sh)" >&2; exit 1; }
done

# /usr/bin first: rustup's cargo/rustc cannot build the 1.96 std source.
# panic=immediate-abort drops the panic-message machinery (a wasm trap is all
# a panic can do in the browser anyway). -Zinline-mir=yes turns on the MIR
# inliner that every opt-level 2/3 build runs but "z" skips, and
# -Zcross-crate-inline-threshold=always lets it (and LLVM) specialise std's
# string and Vec code at our call sites: −1.7 KB gzip of rp.wasm together.
# LLVM's inline threshold at 25 (measured: 0 → +47 B, 10 → −31, 20 → −27,
# 25 → −57, 40 → +285 B gzip against LLVM's own choice). None of these
# changes semantics; `cargo test` checks the built rp.wasm against the native
# code (tests/wasm_agrees.rs).
# rustc-pin-ids.sh keeps the checkout path out of rp.wasm (see there). Cargo
# does not notice a new wrapper, but it does notice new RUSTFLAGS:
# -Cmetadata=pinned-ids (a constant mixed into every crate's id) rebuilds a
# target dir built before the wrapper; change it if the wrapper changes.
PATH=/usr/bin:$PATH RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 RUSTC_WRAPPER="$HERE/rustc-pin-ids.sh" \
  RUSTFLAGS="${RUSTFLAGS:--Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=none -Zinline-mir=yes -Zcross-crate-inline-threshold=always -Cllvm-args=-inline-threshold=25 -Cmetadata=pinned-ids}" \
  cargo build --manifest-path "$HERE/Cargo.toml" --release --target wasm32-unknown-unknown \
  -Z build-std=std,panic_abort

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The linker's __heap_base/__data_end exports are not used by rp.js (−36 B gzip).
"$WASM_OPT" --remove-exports --pass-arg='remove-exports@__*' -Oz --strip-debug --strip-producers --strip-target-features --enable-bulk-memory \
  --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/ringpath_tracker.wasm" -o "$work/rp.wasm"

# sha384 in Subresource-Integrity form ("sha384-" + base64), and a hex sha256.
digest() { node -e 'process.stdout.write(require("crypto").createHash(process.argv[1]).update(require("fs").readFileSync(process.argv[2])).digest(process.argv[3]))' "$@"; }
sri() { printf 'sha384-%s' "$(digest sha384 "$1" base64)"; }

mkdir -p "$HERE/pkg"
# rp.js fetches rp.wasm with {integrity: …}: the hash of exactly this rp.wasm.
wasm_sri="$(sri "$work/rp.wasm")"
sed "s|__RP_WASM_SRI__|$wasm_sri|" "$HERE/js/rp.js" >"$work/rp.full.js"
grep -qF "$wasm_sri" "$work/rp.full.js" || { echo "build.sh: js/rp.js has no __RP_WASM_SRI__ placeholder" >&2; exit 1; }
# The outer function keeps every name local, so terser may mangle all of them.
# ES2015 output (every browser with WebAssembly has it): callbacks that use
# neither `this` nor `arguments` become arrows (none is called with `new`),
# and call arguments lose the parentheses terser adds around functions
# (−20 B gzip).
"$TERSER" "$work/rp.full.js" --compress passes=2,ecma=2015,unsafe_arrows=true --mangle --ecma 2015 \
  --format wrap_func_args=false --comments '/^!/' -o "$work/rp.min.js"
# Replace both outputs in one step each; pkg/ holds these two files and v/,
# the archive of every build made here (below).
find "$HERE/pkg" -mindepth 1 -maxdepth 1 ! -name rp.js ! -name rp.wasm ! -name v -exec rm -rf {} +
mv "$work/rp.min.js" "$HERE/pkg/rp.js"
mv "$work/rp.wasm" "$HERE/pkg/rp.wasm"

# The budget is enforced by size-report.sh on its own (CI); a build over
# budget still leaves working files behind.
"$HERE/size-report.sh" || echo "build.sh: over the size budget (see above)" >&2

# The version is content-addressed (ingest computes the same from pkg/rp.js):
# a new rp.wasm changes rp.js through its hash, so both are covered.
version="$(digest sha256 "$HERE/pkg/rp.js" hex | cut -c1-10)"
integrity="$(sri "$HERE/pkg/rp.js")"
# Every build stays servable under /v/{version}/ after the next one: pages
# pinned to it keep working until their tag is updated (ingest loads pkg/v/*/).
mkdir -p "$HERE/pkg/v/$version"
cp "$HERE/pkg/rp.js" "$HERE/pkg/rp.wasm" "$HERE/pkg/v/$version/"
cat <<TAG

version    $version
integrity  $integrity
tag        <script async src="https://COLLECTOR/v/$version/rp.js" integrity="$integrity" crossorigin="anonymous" data-account="ACCOUNT"></script>
           (ringpath-ingest snippet --account ID --origin https://COLLECTOR prints it for you)
TAG
