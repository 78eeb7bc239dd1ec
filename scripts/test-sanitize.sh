#!/usr/bin/env bash
# `make test-sanitize`: the whole suite under ASan+UBSan (all but the manifest checks),
# the "san" subset (unit, integration, e2e) under TSan, and valgrind memcheck on the unit
# tests and on one end-to-end run of each service. Time limits in tests scale with
# REQRUN_TEST_TIME_SCALE.
set -euo pipefail
jobs=$(nproc)
flags=(-DCMAKE_BUILD_TYPE=Debug -DRR_WERROR=ON -DCMAKE_C_COMPILER=clang)

echo "== ASan + UBSan"
cmake -S . -B build-asan "${flags[@]}" -DRR_SANITIZE=address >/dev/null
cmake --build build-asan -j "$jobs" >/dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
LSAN_OPTIONS=suppressions=$PWD/tests/sanitizers/lsan.supp \
REQRUN_TEST_TIME_SCALE=3 \
  ctest --test-dir build-asan --output-on-failure --no-tests=error -LE k8s

echo "== TSan"
cmake -S . -B build-tsan "${flags[@]}" -DRR_SANITIZE=thread >/dev/null
cmake --build build-tsan -j "$jobs" >/dev/null
TSAN_OPTIONS=halt_on_error=1:exitcode=66:second_deadlock_stack=1:suppressions=$PWD/tests/sanitizers/tsan.supp \
REQRUN_TEST_TIME_SCALE=5 \
  ctest --test-dir build-tsan --output-on-failure --no-tests=error -L san

echo "== valgrind (plain build)"
test -x build/bin/reqrun-ingress || { echo "run make test first (plain build)"; exit 1; }
vg="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite --suppressions=$PWD/tests/sanitizers/valgrind.supp"
for t in $(ctest --test-dir build -N -L unit | awk '/Test +#/ {print $3}'); do
  $vg "build/bin/$t" >/dev/null 2>build/valgrind-$t.log || { cat build/valgrind-$t.log; echo "valgrind: $t"; exit 1; }
done
echo "unit tests clean under valgrind"
REQRUN_TEST_SERVICE_WRAP="$vg" REQRUN_TEST_TIME_SCALE=10 REQRUN_TEST_HTTP_THREADS=16 \
  ctest --test-dir build --output-on-failure --no-tests=error -R '^test_e2e_basic$'
echo "services clean under valgrind"
