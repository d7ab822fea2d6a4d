#!/usr/bin/env bash
# The run command of Relais: installs what is missing, builds a Release tree in
# build/release, and runs the demo territory (relais-demo starts relaisd and five reference
# agents, plays the stories and exits 0 when every one ended as it should). Arguments are
# passed to relais-demo unchanged (`bash deploy/demo.sh --help` lists them).
# Runs from any directory.
set -euo pipefail

root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$root"
jobs=$(nproc 2>/dev/null || echo 2)

echo "==== dependencies ===="
bash deploy/install-deps.sh

echo "==== build/release: configure and build ===="
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DRELAIS_TESTS=OFF >/dev/null
# Everything, not only the relais-demo target: the demo runs the relaisd and agent programs.
cmake --build build/release -j"$jobs"

demo=build/release/agents/demo/relais-demo
if [ ! -x "$demo" ]; then
    echo "demo.sh: $demo was not built" >&2
    exit 1
fi

echo "==== relais-demo $* ===="
exec "$demo" "$@"
