#!/usr/bin/env bash
# RUSTC_WRAPPER for build.sh: makes rp.wasm independent of the checkout path.
#
# Cargo hashes the absolute path of a path dependency outside the workspace
# (../types) into `-C metadata`, rustc derives each crate's id from it, and
# the ids order the code LLVM emits: the same source built in two
# directories gave two different rp.wasm (4 bytes apart). Here the metadata
# of our own two crates is their name; std's (from rust-src, one fixed path)
# is left as cargo computed it. Everything else passes through unchanged.
set -euo pipefail
rustc="$1"
shift
args=("$@")
crate=""
for ((i = 0; i + 1 < ${#args[@]}; i++)); do
  if [ "${args[i]}" = --crate-name ]; then crate="${args[i + 1]}"; fi
done
case "$crate" in
  ringpath_types | ringpath_tracker)
    for ((i = 0; i < ${#args[@]}; i++)); do
      case "${args[i]}" in metadata=*) args[i]="metadata=$crate" ;; esac
    done
    ;;
esac
exec "$rustc" "${args[@]}"
