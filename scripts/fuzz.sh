#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets with clang and runs each for FUZZ_SECONDS
# (default 30) from its committed seed corpus. A crash fails the run; the crashing input
# is then added to tests/fuzz/regressions/ and replayed by the unit suite.
set -euo pipefail
secs=${FUZZ_SECONDS:-30}
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DRR_FUZZ=ON >/dev/null
cmake --build build-fuzz -j "$(nproc)" >/dev/null
for target in build-fuzz/bin/fuzz_*; do
  name=$(basename "$target")
  corpus=tests/fuzz/corpus/${name#fuzz_}
  work=$(mktemp -d)
  echo "== $name (${secs}s)"
  "$target" -max_total_time="$secs" -print_final_stats=0 -artifact_prefix="build-fuzz/$name-" \
    "$work" "$corpus" 2>&1 | tail -n 3
  rm -rf "$work"
done
echo "fuzz: no crash"
