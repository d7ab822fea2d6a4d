#!/usr/bin/env bash
# Does scraping the admin listener cost the broker throughput or latency? Runs relais-bench
# (e2e and paced, 200 B) in interleaved pairs on this machine: once undisturbed, once while
# /metrics and /api/v1/mailboxes are fetched every second from the broker under test (the
# one bench starts listens on the default admin address 127.0.0.1:7480), and prints each
# run's table rows side by side, the baseline beside the figure, measured in the same run.
#
# Usage: bash tests/bench/admin_scrape_ab.sh [BUILD_DIR] [PAIRS]   (build/ci, 3)
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
build=${1:-$root/build/ci}
pairs=${2:-3}
bench=$build/tests/bench/relais-bench
if ss -ltn 2>/dev/null | grep -q '127.0.0.1:7480 '; then
    echo "admin_scrape_ab: 127.0.0.1:7480 is taken; the bench's broker could not listen there" >&2
    exit 1
fi

scraper() {
    # The scrape interval, not a synchronisation: one request a second, as Prometheus would.
    while :; do
        curl -s -o /dev/null --max-time 2 http://127.0.0.1:7480/metrics || true
        curl -s -o /dev/null --max-time 2 'http://127.0.0.1:7480/api/v1/mailboxes' || true
        sleep 1
    done
}

run() {
    "$bench" --only e2e,paced --size 200 --duration 5 2>&1 | grep -E '^(e2e|paced) '
}

for i in $(seq 1 "$pairs"); do
    echo "== pair $i: without scraping"
    run
    echo "== pair $i: /metrics and /api/v1/mailboxes every second"
    scraper &
    pid=$!
    run
    kill "$pid"
    wait "$pid" 2>/dev/null || true
done
