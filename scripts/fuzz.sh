#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets with clang and runs each for FUZZ_SECONDS
# (default 30) from its committed seed corpus and past regressions (with its dictionary
# when tests/fuzz/<name>.dict exists). A crash, a broken invariant, a leak or an input
# slower than 10 s fails the run and prints the report; the crashing input is then added
# to tests/fuzz/regressions/<name>/ and replayed by the unit suite (test_fuzz_<name>).
set -euo pipefail
secs=${FUZZ_SECONDS:-30}
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DRR_FUZZ=ON >/dev/null
cmake --build build-fuzz -j "$(nproc)" >/dev/null
for target in build-fuzz/bin/fuzz_*; do
  name=$(basename "$target")
  short=${name#fuzz_}
  args=(-max_total_time="$secs" -timeout=10 -print_final_stats=0
        -artifact_prefix="build-fuzz/$name-")
  if [ -f "tests/fuzz/$short.dict" ]; then
    args+=(-dict="tests/fuzz/$short.dict")
  fi
  work=$(mktemp -d)
  log=build-fuzz/$name.log
  echo "== $name (${secs}s)"
  # New inputs go to the first directory only: the committed ones stay untouched.
  if ! "$target" "${args[@]}" "$work" "tests/fuzz/corpus/$short" \
      "tests/fuzz/regressions/$short" >"$log" 2>&1; then
    rm -rf "$work"
    tail -n 40 "$log"
    grep -m1 -E 'invariant broken|ERROR: [A-Za-z]+Sanitizer|runtime error|ERROR: libFuzzer' \
      "$log" || true
    echo "fuzz: $name failed (full log: $log). Add the input written above to"
    echo "tests/fuzz/regressions/$short/ with the fix, so test_fuzz_$short replays it."
    exit 1
  fi
  rm -rf "$work"
  grep -E '^#[0-9]+[[:space:]]+DONE' "$log" || tail -n 3 "$log"
done
echo "fuzz: no crash"
