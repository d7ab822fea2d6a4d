#!/usr/bin/env bash
# Running a territory by hand, as README.md shows it, in one script: the same commands in
# the same order, so that the README's steps are proved to work (the test suite runs this
# script: tests/package, test `quickstart`).
#
#   1. keys: the broker's and one per agent (relaisctl keygen)
#   2. the territory directory: a production directory, each agent enrolled with
#      relaisctl agent add, then relaisctl directory check
#   3. the broker, relaisd, on that directory and key
#   4. the agents: a GP's medical assistant, a nurse, a physiotherapist, a cardiologist and
#      a hospital, each with its key, the broker's public key and a state file
#   5. something happening: the assistant asks the nurse for an appointment (and the nurse
#      confirms one), and the hospital notifies the GP's assistant of a discharge, whose
#      follow-up plan the assistant turns into requests to the nurse, the physiotherapist
#      and the cardiologist
#   6. checking it arrived, from the agents' logs; then everything is stopped with SIGTERM
#
# Usage: bash deploy/quickstart.sh [--build DIR] [--dir DIR] [--port N] [--keep]
#   --build DIR  the build tree holding broker/ and agents/ (default build/release, built
#                as README.md says when missing)
#   --dir DIR    where keys, directory, data and logs go (default: a new temporary
#                directory, removed at the end unless --keep)
#   --port N     the broker's TCP port on 127.0.0.1 (default 7400; 0 picks a free one)
# Exit status 0 when every step happened, 1 otherwise (the logs are printed).
set -euo pipefail

root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
build="$root/build/release"
dir=""
port=7400
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --build) build=$(readlink -f "$2"); shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "quickstart: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [ ! -x "$build/broker/relaisd" ]; then
    echo "==== building $build (README: 'Build once') ===="
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRELAIS_TESTS=OFF >/dev/null
    cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
fi
if [ -z "$dir" ]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/relais-quickstart.XXXXXX")
else
    mkdir -p "$dir"
fi
cd "$dir"

R=$build
pids=()
ok=0
finish() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ "$ok" -ne 1 ]; then
        for f in relaisd.log *.log; do
            [ -f "$f" ] && { echo "---- $f"; tail -n 40 "$f"; }
        done
        echo "quickstart: FAILED (files in $dir)" >&2
    fi
    if [ "$keep" -eq 0 ] && [ "$ok" -eq 1 ]; then rm -rf "$dir"; fi
}
trap finish EXIT

# wait_for FILE PATTERN WHAT: the line that proves WHAT, within 30 s (never a sleep).
wait_for() {
    touch "$1"
    if timeout 30 grep -m1 -q -- "$2" <(tail -n +1 -f "$1") 2>/dev/null; then
        echo "  ok: $3"
    else
        echo "  MISSING: $3 (no line matching '$2' in $1)" >&2
        exit 1
    fi
}

GP=rpps:10101234564                        # Dr Jeanne Martin
ASSISTANT=staff:claire.martin@cabinet-dupont
NURSE=rpps:10103456785
PHYSIO=rpps:10102345674
CARDIO=rpps:10104567895
HOSPITAL=finess:350000014
T=cpts-rennes-nord

echo "==== 1. keys ===="
# On each member's machine; here, all in one directory.
$R/broker/relaisctl keygen broker >/dev/null      # broker.key (secret, 0600) + broker.pub
for who in gp claire nurse physio cardio hospital; do
    $R/broker/relaisctl keygen "$who" >/dev/null
done
ls ./*.pub

echo "==== 2. the territory directory ===="
cat >territory.yaml <<EOF
# The territory of the quickstart (README.md, "Running a territory by hand").
territory: $T
production: true   # relaisd refuses --insecure; every agent needs a key
agents: []
EOF
$R/broker/relaisctl agent add --address $GP --role gp --name "Dr Jeanne Martin" \
    --key gp.pub --pool service:gp@$T territory.yaml >/dev/null
$R/broker/relaisctl agent add --address $ASSISTANT --role medical_assistant \
    --name "Claire Martin" --key claire.pub --acts-for $GP territory.yaml >/dev/null
$R/broker/relaisctl agent add --address $NURSE --role nurse --name "Yann Le Goff" \
    --key nurse.pub --pool service:nurse@$T territory.yaml >/dev/null
$R/broker/relaisctl agent add --address $PHYSIO --role physiotherapist --name "Sophie Lemoine" \
    --key physio.pub --pool service:physiotherapist@$T territory.yaml >/dev/null
$R/broker/relaisctl agent add --address $CARDIO --role specialist --specialty cardiology \
    --name "Dr Karim Benali" --key cardio.pub --pool service:specialist@$T territory.yaml >/dev/null
$R/broker/relaisctl agent add --address $HOSPITAL --role hospital \
    --name "Centre hospitalier de Rennes-Nord" --key hospital.pub territory.yaml >/dev/null
$R/broker/relaisctl directory check territory.yaml | sed 's/^/  /'

echo "==== 3. the broker ===="
: >relaisd.out
$R/broker/relaisd --bind tcp://127.0.0.1:$port --data ./data \
    --directory territory.yaml --curve-key broker.key >relaisd.out 2>relaisd.log &
pids+=($!)
wait_for relaisd.out '^relaisd ready' "relaisd is ready"
B=$(sed -n 's/^relaisd ready endpoint=\([^ ]*\).*/\1/p' relaisd.out)
echo "  $(head -n 1 relaisd.out)"

echo "==== 4. the agents ===="
A=$R/agents/reference
K="--server-key broker.pub"
$A/relais-nurse           --endpoint $B --address $NURSE --key nurse.key $K \
                          --home-visits --state nurse.db 2>nurse.log &
pids+=($!)
$A/relais-physiotherapist --endpoint $B --address $PHYSIO --key physio.key $K \
                          --state physio.db 2>physio.log &
pids+=($!)
$A/relais-specialist      --endpoint $B --address $CARDIO --key cardio.key $K \
                          --specialty cardiology --state cardio.db 2>cardio.log &
pids+=($!)
wait_for relaisd.log "opened agent=$NURSE" "the nurse is connected"
wait_for relaisd.log "opened agent=$PHYSIO" "the physiotherapist is connected"
wait_for relaisd.log "opened agent=$CARDIO" "the cardiologist is connected"

echo "==== 5. a request and a discharge ===="
# The assistant asks the nurse for an appointment as soon as she is connected; her
# follow-up items go to the nurse, the physiotherapist and the cardiologist.
$A/relais-assistant       --endpoint $B --address $ASSISTANT --key claire.key $K \
                          --gp $GP --nurse $NURSE --physiotherapist $PHYSIO \
                          --specialist $CARDIO --request-to $NURSE --request-role nurse \
                          --state assistant.db 2>assistant.log &
pids+=($!)
wait_for relaisd.log "opened agent=$ASSISTANT" "the assistant is connected"
# The hospital notifies the GP's assistant of a COPD patient's discharge.
$A/relais-hospital        --endpoint $B --address $HOSPITAL --key hospital.key $K \
                          --discharge-to $ASSISTANT --gp $GP --programme copd \
                          --state hospital.db 2>hospital.log &
pids+=($!)

echo "==== 6. did it arrive? ===="
wait_for nurse.log "received type=AppointmentRequest from=$ASSISTANT" \
    "the nurse received the assistant's appointment request"
wait_for assistant.log "received type=AppointmentConfirm from=$NURSE" \
    "the nurse confirmed an appointment to the assistant"
wait_for assistant.log "received type=DischargeNotification from=$HOSPITAL" \
    "the assistant received the hospital's discharge notification"
wait_for nurse.log "received type=CareTaskRequest from=$ASSISTANT" \
    "the nurse received the discharge plan's care task"
wait_for assistant.log "received type=CareTaskUpdate from=$NURSE" \
    "the nurse accepted the care task"
wait_for physio.log "received type=AppointmentRequest from=$ASSISTANT" \
    "the physiotherapist received the discharge plan's rehabilitation request"
wait_for assistant.log "received type=AppointmentConfirm from=$PHYSIO" \
    "the physiotherapist confirmed an appointment"
if grep -q 'WARN' assistant.log; then
    echo "  warnings in the assistant's log:"
    grep 'WARN' assistant.log | sed 's/^/    /'
fi

echo "==== stopping (SIGTERM) ===="
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
status=0
for p in "${pids[@]}"; do wait "$p" || status=$?; done
pids=()
if [ "$status" -ne 0 ]; then
    echo "quickstart: a program exited $status on SIGTERM" >&2
    exit 1
fi
ok=1
echo "quickstart: OK — keys, directory, broker, five agents, a request and a discharge delivered"
