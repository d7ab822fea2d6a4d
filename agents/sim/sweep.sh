#!/usr/bin/env bash
# Seed sweep of the default territory (200 professionals, 4 weeks, realistic delays, a
# SIGKILL of relaisd half-way): runs relais-sim for each seed and prints one Markdown row
# per run with the figures the bounds are about. Run outside the test suite (about a
# minute a seed on a 2-core machine):
#
#     agents/sim/sweep.sh [build/ci/agents/sim/relais-sim] [first seed] [last seed] [-- options]
#
# The exit status is the number of runs that failed (relais-sim exit status non-zero).
set -u
sim=${1:-build/ci/agents/sim/relais-sim}
first=${2:-1}
last=${3:-10}
shift $(( $# < 3 ? $# : 3 ))
[ "${1:-}" = "--" ] && shift
out=$(mktemp -d "${TMPDIR:-/tmp}/relais-sweep.XXXXXX")
trap 'rm -rf "$out"' EXIT
failed=0
echo "| seed | exit | wall (s) | requests | lost | past a bound | late (desk away) | most re-dispatches | most escalations | reassigned | answered in 48 h | busiest physio share | longest loop lag (h sim.) |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for seed in $(seq "$first" "$last"); do
    start=$(date +%s.%N)
    "$sim" --quiet --seed "$seed" "$@" >"$out/r.md" 2>"$out/err"
    rc=$?
    wall=$(echo "$(date +%s.%N) - $start" | bc)
    [ "$rc" -ne 0 ] && failed=$((failed + 1))
    r="$out/r.md"
    reqs=$(grep -o 'of [0-9]*; [0-9]* requests in all' "$r" | grep -o '[0-9]* requests' | cut -d' ' -f1)
    lost=$(grep -o '\*\*lost: [0-9]*' "$r" | grep -o '[0-9]*$')
    past=$(grep -o 'requests past a bound: [0-9]*' "$r" | grep -o '[0-9]*$')
    late=$(grep -o '\*\*[0-9]* otherwise' "$r" | grep -o '[0-9]*')
    away=$(grep -o 'allows: [0-9]* because' "$r" | grep -o '[0-9]*')
    redis=$(grep -o 'most re-dispatches of one request: [0-9]*' "$r" | grep -o '[0-9]*$')
    esc=$(grep -o 'most escalations: [0-9]*' "$r" | grep -o '[0-9]*$')
    reas=$(grep -o 'coordinator reassignments: [0-9]*' "$r" | grep -o '[0-9]*$')
    in48=$(grep -o 'deadline (from the SDK.s dispatch): [0-9.]* %' "$r" | grep -o '[0-9.]* %')
    physio=$(grep '^| service:physiotherapist' "$r" | awk -F'|' '{gsub(/ /,"",$7); print $7}')
    lag=$(grep -o 'tolerance' "$r" >/dev/null && grep -o 'larger, [0-9]* ms real = [0-9.]* h' "$r" | grep -o '[0-9.]* h' | cut -d' ' -f1)
    printf '| %s | %s | %.0f | %s | %s | %s | %s (%s) | %s | %s | %s | %s | %s | %s |\n' \
        "$seed" "$rc" "$wall" "${reqs:-?}" "${lost:-?}" "${past:-?}" "${late:-?}" "${away:-?}" \
        "${redis:-?}" "${esc:-?}" "${reas:-?}" "${in48:-?}" "${physio:-?}" "${lag:-?}"
    [ "$rc" -ne 0 ] && sed 's/^/    /' "$out/err" | grep -v '^    20[0-9-]*T' | tail -3 >&2
done
exit "$failed"
