#!/usr/bin/env bash
# Prints gzip (-9) and brotli (-q 11) sizes of pkg/rp.js and pkg/rp.wasm and
# fails when the gzip total exceeds the budget (SPEC: size is a feature).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUDGET_GZIP="${BUDGET_GZIP:-15360}"

gz() { gzip -9 -c "$1" | wc -c; }
br() { if command -v brotli >/dev/null; then brotli -q 11 -c "$1" | wc -c; else echo "n/a"; fi; }

total_raw=0 total_gz=0 total_br=0
printf '%-8s %8s %8s %8s\n' file raw gzip brotli
for f in rp.js rp.wasm; do
  path="$HERE/pkg/$f"
  [ -f "$path" ] || { echo "size-report: $path missing (run build.sh)" >&2; exit 1; }
  raw=$(wc -c <"$path"); g=$(gz "$path"); b=$(br "$path")
  printf '%-8s %8d %8d %8s\n' "$f" "$raw" "$g" "$b"
  total_raw=$((total_raw + raw)); total_gz=$((total_gz + g))
  [ "$b" = n/a ] || total_br=$((total_br + b))
done
printf '%-8s %8d %8d %8d\n' total "$total_raw" "$total_gz" "$total_br"
if (( total_gz > BUDGET_GZIP )); then
  echo "size-report: gzip total $total_gz B is over the budget of $BUDGET_GZIP B" >&2
  exit 1
fi
