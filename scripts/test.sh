#!/usr/bin/env bash
# scripts/test.sh — everything CI checks (.ci/run calls it):
#   1. deps (scripts/deps.sh; no apt when all packages are there)
#   2. build/      RelWithDebInfo, -Werror; ctest (unit tests in parallel,
#                  integration tests one at a time through RESOURCE_LOCK)
#   3. build-asan/ AddressSanitizer + UndefinedBehaviorSanitizer, leaks
#                  checked; ctest again
# Prints both ctest summaries; exits non-zero when a build or a test fails.
# JOBS (default 2) sets build and ctest parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=${JOBS:-2}
export PATH=$PATH:/usr/sbin:/sbin

stamp() { printf '\n=== [%s] %s\n' "$(date +%T)" "$*"; }
START=$(date +%s)

stamp "dependencies"
bash scripts/deps.sh

declare -A RESULT
run_ctest() { # NAME BUILD_DIR
    local name=$1 dir=$2 rc=0
    stamp "$name: ctest -j$JOBS"
    (cd "$ROOT/$dir" && ctest --output-on-failure --no-tests=error -j"$JOBS" 2>&1 |
        tee "$ROOT/$dir/ctest.out") || rc=$?
    RESULT[$name]=$rc
}

stamp "build/ (RelWithDebInfo, -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRETRY_WERROR=ON
cmake --build build -j"$JOBS"
run_ctest release build

stamp "build-asan/ (address + undefined sanitizers)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DRETRY_WERROR=ON -DRETRY_SANITIZE=ON \
    -DRETRY_BUILD_BENCH=OFF
cmake --build build-asan -j"$JOBS"
export ASAN_OPTIONS=detect_leaks=1:check_initialization_order=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
if [[ -s tests/lsan.supp ]]; then
    export LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp:print_suppressions=0
fi
run_ctest asan build-asan

stamp "summary ($(($(date +%s) - START)) s)"
status=0
for name in release asan; do
    dir=build; [[ $name == asan ]] && dir=build-asan
    printf '%-8s ' "$name:"
    grep -E 'tests passed|tests failed' "$ROOT/$dir/ctest.out" | tail -n1 || echo "no ctest summary"
    if [[ ${RESULT[$name]} -ne 0 ]]; then
        status=1
        sed -n '/The following tests FAILED/,$p' "$ROOT/$dir/ctest.out" || true
    fi
done
exit $status
