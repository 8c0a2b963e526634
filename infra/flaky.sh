#!/usr/bin/env bash
# Runs chosen test binaries N times in a row and prints, per test, how many
# runs failed — for hunting the next flaky test. Services are started (and
# stopped again) like infra/test does; the tracker must be built.
#
#   infra/flaky.sh N BINARY [BINARY…] [-- TEST-FILTER…]
#   infra/flaky.sh 5 enrich_exactly_once ingest_ops
#   infra/flaky.sh 5 --all-e2e            # every binary in tests/tests/
#
# Output of every run is kept under .run/logs/flaky/. Exit status is non-zero
# when any run of any binary failed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$RINGPATH_ROOT"

usage() { die "usage: infra/flaky.sh N BINARY… | infra/flaky.sh N --all-e2e  [-- cargo test filter args]"; }
[ $# -ge 2 ] || usage
runs="$1"; shift
[[ "$runs" =~ ^[0-9]+$ ]] && ((runs > 0)) || usage
binaries=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  if [ "$1" = "--all-e2e" ]; then
    for f in tests/tests/*.rs; do binaries+=("$(basename "$f" .rs)"); done
  else
    binaries+=("$1")
  fi
  shift
done
[ "${1:-}" = "--" ] && shift
filter=("$@")
((${#binaries[@]})) || usage

started=()
for svc in clickhouse kafka redis; do service_up "$svc" || started+=("$svc"); done
cleanup() { for svc in "${started[@]}"; do bash infra/services.sh "stop-$svc" >/dev/null 2>&1 || true; done; }
trap cleanup EXIT
bash infra/services.sh start

targets=()
for b in "${binaries[@]}"; do targets+=(--test "$b"); done
log "building ${#binaries[@]} test binaries"
cargo test --workspace --no-run -q "${targets[@]}"

out="$RINGPATH_STATE/logs/flaky"
mkdir -p "$out"
declare -A failed_runs=()
declare -A failed_tests=()
bad=0
for b in "${binaries[@]}"; do
  failed_runs[$b]=0
  for i in $(seq 1 "$runs"); do
    logf="$out/$b.$i.log"
    t=$SECONDS
    if cargo test --workspace -q --test "$b" -- --test-threads=2 "${filter[@]}" >"$logf" 2>&1; then
      log "$b run $i/$runs: ok ($((SECONDS - t))s)"
    else
      bad=1
      failed_runs[$b]=$((failed_runs[$b] + 1))
      names=$(grep -E '^test .* \.\.\. FAILED$' "$logf" | sed -E 's/^test (.*) \.\.\. FAILED$/\1/' || true)
      [ -n "$names" ] || names="(binary failed to build or died; see $logf)"
      while IFS= read -r n; do failed_tests["$b::$n"]=$(( ${failed_tests["$b::$n"]:-0} + 1 )); done <<<"$names"
      log "$b run $i/$runs: FAILED ($((SECONDS - t))s; log: $logf)"
    fi
  done
done

echo
printf '%-32s %6s %8s\n' binary runs failed
for b in "${binaries[@]}"; do printf '%-32s %6d %8d\n' "$b" "$runs" "${failed_runs[$b]}"; done
if ((${#failed_tests[@]})); then
  echo
  echo "failures per test:"
  for k in "${!failed_tests[@]}"; do printf '  %3d/%d  %s\n' "${failed_tests[$k]}" "$runs" "$k"; done | sort -rn
fi
exit "$bad"
