#!/usr/bin/env bash
# The HL7 demo: a hospital discharge sent as HL7 v2 over MLLP with Debian's mllp_send
# (python3-hl7, another project's client) becomes follow-up work in the territory.
#
# On this machine it starts relaisd (CURVE), the GP's medical assistant and the nurse
# (reference agents), and relais-hl7 with one channel for the fictitious CHU; sends
# deploy/hl7/samples/a03-lf.hl7 (an ADT^A03, heart failure, written with LF line ends);
# prints the ACK, then what each party logged: the gateway's one line for the message, the
# assistant turning the follow-up plan into requests, the nurse getting her care task.
# Exits 0 when all of it happened. Runs from any directory; everything it writes is in a
# temporary directory, removed at the end (kept with --keep). RELAIS_BIN=BUILD_DIR uses the
# programs of that build instead of building build/release.
set -euo pipefail

root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
keep=0
[ "${1:-}" = "--keep" ] && keep=1
jobs=$(nproc 2>/dev/null || echo 2)

if [ -n "${RELAIS_BIN:-}" ]; then
    # The suite runs this demo on the build it made (tests/integration: demo_hl7).
    bin=$RELAIS_BIN
else
    echo "==== dependencies ===="
    bash "$root/deploy/install-deps.sh"
    echo "==== build/release ===="
    cmake -S "$root" -B "$root/build/release" -DCMAKE_BUILD_TYPE=Release -DRELAIS_TESTS=OFF >/dev/null
    cmake --build "$root/build/release" -j"$jobs" --target relaisd relaisctl relais-hl7 \
        relais-assistant relais-nurse >/dev/null
    bin=$root/build/release
fi

work=$(mktemp -d /tmp/relais-demo-hl7-XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "$keep" -eq 1 ]; then echo "kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
cd "$work"

# wait_for FILE TEXT SECONDS: until FILE holds TEXT (a demo's patience, not a test's).
wait_for() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "demo-hl7: '$2' never appeared in $1" >&2
    return 1
}

echo "==== keys and territory ===="
for n in broker chu assistant gp nurse coordination; do "$bin/broker/relaisctl" keygen "$n" >/dev/null; done
pub() { tr -d '\n' < "$1.pub"; }
cat > territory.yaml <<YAML
territory: cpts-demo-hl7
production: false
agents:
  - {address: "rpps:10101234567", role: gp, public_key: "$(pub gp)"}
  - {address: "staff:claire.martin@cabinet-dupont", role: medical_assistant,
     public_key: "$(pub assistant)", acts_for: ["rpps:10101234567"]}
  - {address: "rpps:10103456789", role: nurse, public_key: "$(pub nurse)",
     pools: ["service:nurse@cpts-demo-hl7"]}
  - {address: "finess:350000014", role: hospital, public_key: "$(pub chu)"}
  - {address: "staff:coordination@cpts-demo-hl7", role: coordinator,
     public_key: "$(pub coordination)"}
YAML
"$bin/broker/relaisctl" directory check territory.yaml | tail -1

echo "==== relaisd ===="
"$bin/broker/relaisd" --bind tcp://127.0.0.1:0 --data data --directory territory.yaml \
    --curve-key broker.key > relaisd.out 2> relaisd.log &
pids+=($!)
wait_for relaisd.out "relaisd ready" 15
endpoint=$(sed -n 's/.*relaisd ready endpoint=\([^ ]*\).*/\1/p' relaisd.out)
echo "broker at $endpoint"

common=(--endpoint "$endpoint" --server-key broker.pub)
"$bin/agents/reference/relais-nurse" "${common[@]}" --address rpps:10103456789 \
    --key nurse.key --state nurse.state 2> nurse.log &
pids+=($!)
"$bin/agents/reference/relais-assistant" "${common[@]}" \
    --address staff:claire.martin@cabinet-dupont --key assistant.key --state assistant.state \
    --gp rpps:10101234567 --nurse rpps:10103456789 2> assistant.log &
pids+=($!)

echo "==== relais-hl7 ===="
cat > relais-hl7.yaml <<YAML
broker: {endpoint: "$endpoint", server_key: broker.pub}
directory: territory.yaml
state_dir: .
channels:
  - name: chu-demo
    listen: 127.0.0.1:0
    address: finess:350000014
    key: chu.key
    applications: [DXCARE]
    dispositions: [{pv1_36: "01", disposition: HOME}]
    diagnoses: [{icd10: I50, programme: heart-failure}, {icd10: J44, programme: copd}]
YAML
"$bin/agents/hl7/relais-hl7" --config relais-hl7.yaml > hl7.out 2> hl7.log &
pids+=($!)
wait_for hl7.out "relais-hl7 ready" 15
port=$(sed -n 's/.*listen=127.0.0.1:\([0-9]*\).*/\1/p' hl7.out)
wait_for hl7.log "state=ready" 15
wait_for assistant.log "ready" 15
wait_for nurse.log "ready" 15

echo "==== mllp_send --loose -f a03-lf.hl7 -p $port 127.0.0.1 ===="
mllp_send --loose -f "$root/deploy/hl7/samples/a03-lf.hl7" -p "$port" 127.0.0.1 \
    | tr '\r\013\034' '\n  ' | sed '/^ *$/d'

echo "==== what the territory did ===="
wait_for hl7.log "ack=AA" 15
wait_for nurse.log "CareTaskUpdate" 20
echo "-- relais-hl7:"
grep "message channel" hl7.log
echo "-- the GP's assistant:"
grep -E "relais-assistant: (received|accepted|notice)" assistant.log | head -8
echo "-- the nurse:"
grep -E "relais-nurse: (received|accepted)" nurse.log | head -4
echo "==== demo-hl7: OK ===="
