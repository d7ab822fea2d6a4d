#!/usr/bin/env bash
# The test command of Relais: installs what is missing, then builds and tests three times.
#   1. build/ci   : RelWithDebInfo, warnings as errors, the whole ctest suite.
#   2. build/asan : Debug with AddressSanitizer + UndefinedBehaviorSanitizer, the suite again,
#                   with leaks detected and the first sanitizer report fatal.
#   3. build/fuzz : clang, the libFuzzer targets of tests/fuzz, each for 10 s from its seed
#                   corpus (docs/FUZZING.md for longer runs).
# Runs from any directory; exits non-zero on the first failure; the last line is a summary
# in the form `relais: N passed, M failed` (tests counted over every pass).
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: bash tests/run.sh [--quick]

Installs missing Debian packages (deploy/install-deps.sh), then:
  build/ci    configure (-DRELAIS_WERROR=ON, RelWithDebInfo), build, ctest
  build/asan  configure (-DRELAIS_SANITIZE=ON -DRELAIS_WERROR=ON, Debug), build, ctest
              under ASan/UBSan with leak detection
  build/fuzz  configure with clang (-DRELAIS_FUZZ=ON -DRELAIS_WERROR=ON, Debug), build,
              run each libFuzzer target for 10 s (ctest -R '^fuzz_')

Options:
  --quick     skip the sanitizer and fuzz passes (for development; CI always runs all three)
  -h, --help  show this help
USAGE
}

quick=0
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown option: $arg" >&2; usage >&2; exit 2 ;;
    esac
done

root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$root"
jobs=$(nproc 2>/dev/null || echo 2)

stage="start"
passed=0
failed=0
passes=()
started=$SECONDS

section() {
    stage="$1"
    printf '\n==== %s ====\n' "$1"
}

finish() {
    local rc=$?
    local took=$((SECONDS - started))
    echo
    if [ "$rc" -eq 0 ]; then
        echo "==== tests/run.sh: OK (${passes[*]}) in ${took}s ===="
    else
        echo "==== tests/run.sh: FAILED at: ${stage} (exit ${rc}) after ${took}s ===="
        # A failure outside ctest (install, configure, build) has no test counts: say so.
        if [ "$failed" -eq 0 ]; then
            failed=1
        fi
    fi
    echo "relais: ${passed} passed, ${failed} failed"
}
trap finish EXIT

# run_ctest DIR NAME [scan [REGEX]]: runs the suite in DIR (only the tests matching REGEX
# when given), adds its counts to the totals, fails on failure. With scan, every test's
# output is kept and searched for sanitizer reports: Criterion counts a test as passed even
# when LeakSanitizer or UBSan reported in it, so the exit status alone would let a leak
# through.
run_ctest() {
    local dir="$1" name="$2" scan="${3:-}" regex="${4:-}" log rc=0 line p f
    local select=()
    if [ -n "$regex" ]; then
        select=(-R "$regex")
    fi
    log="$dir/ctest-output.log"
    if [ -n "$scan" ]; then
        ctest --test-dir "$dir" "${select[@]}" -V --no-tests=error -j2 >"$log" 2>&1 || rc=$?
        grep -E '^ *[0-9]+/[0-9]+ Test +#|tests passed|Total Test time' "$log" || true
        if grep -qE 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' "$log"; then
            echo "sanitizer reports in the test output ($log):"
            grep -nE -A12 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' "$log" | head -80
            failed=$((failed + 1))
            rc=1
        elif [ "$rc" -ne 0 ]; then
            echo "failing output ($log, last 150 lines):"
            tail -n 150 "$log"
        fi
    else
        ctest --test-dir "$dir" "${select[@]}" --output-on-failure --no-tests=error -j2 2>&1 |
            tee "$log" || rc=$?
    fi
    # "100% tests passed, 0 tests failed out of 17"
    line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
    if [ -n "$line" ]; then
        f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
        p=$(( $(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line") - f ))
        passed=$((passed + p))
        failed=$((failed + f))
    fi
    if [ "$rc" -ne 0 ]; then
        return "$rc"
    fi
    passes+=("$name")
}

section "dependencies (deploy/install-deps.sh)"
bash deploy/install-deps.sh
echo "all required Debian packages present"

section "build/ci: configure (RelWithDebInfo, -Werror)"
cmake -S . -B build/ci -DRELAIS_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo

section "build/ci: build (-j${jobs})"
cmake --build build/ci -j"$jobs"

section "build/ci: tests"
run_ctest build/ci ci

if [ "$quick" -eq 1 ]; then
    echo
    echo "--quick: sanitizer and fuzz passes skipped"
    exit 0
fi

section "build/asan: configure (Debug, ASan+UBSan, -Werror)"
cmake -S . -B build/asan -DRELAIS_SANITIZE=ON -DRELAIS_WERROR=ON -DCMAKE_BUILD_TYPE=Debug

section "build/asan: build (-j${jobs})"
cmake --build build/asan -j"$jobs"

section "build/asan: tests under ASan/UBSan"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_ctest build/asan asan scan

# The fuzzers build in their own directory: libFuzzer needs clang, the other passes use the
# default compiler. Each target fuzzes for 10 s on a copy of its committed seed corpus, two
# at a time (ctest -j2), so the pass costs about 25 s of fuzzing; a crash fails its test and
# leaves the input in build/fuzz/tests/fuzz/artifacts/ (docs/FUZZING.md: what to do next).
section "build/fuzz: configure (clang, libFuzzer + ASan/UBSan, -Werror)"
CC=clang cmake -S . -B build/fuzz -DRELAIS_FUZZ=ON -DRELAIS_WERROR=ON -DCMAKE_BUILD_TYPE=Debug

section "build/fuzz: build (-j${jobs})"
cmake --build build/fuzz -j"$jobs"

section "build/fuzz: libFuzzer targets, 10 s each"
run_ctest build/fuzz fuzz "" '^fuzz_'
