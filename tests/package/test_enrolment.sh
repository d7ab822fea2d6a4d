#!/usr/bin/env bash
# Enrolment end to end, as a CPTS administrator does it: relaisctl keygen on the member's
# side, relaisctl agent add on the broker's, a real relaisd loading the directory, a real
# reference agent (relais-nurse) connecting with the enrolled key; then agent revoke and
# SIGHUP closing its session. Also the refusals of agent add — the same address twice, a
# key already enrolled, the broker's own key, a secret .key file, an RPPS number with a
# wrong check digit — each leaving the directory byte for byte as it was.
#
# Every wait is on a line of output (tail -f | grep -m1) with a timeout, never a sleep.
#
# Usage: test_enrolment.sh RELAISCTL RELAISD RELAIS_NURSE
set -euo pipefail

ctl=$1
relaisd=$2
nurse=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/relais-enrol.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
fails=0
fail() {
    echo "FAIL: $*" >&2
    fails=$((fails + 1))
}
# wait_for FILE PATTERN: waits up to 20 s for a line matching PATTERN in FILE.
# The file is created first: a background job's redirection opens it only once forked.
wait_for() {
    touch "$1"
    timeout 20 grep -m1 -q -- "$2" <(tail -n +1 -f "$1") 2>/dev/null
}
cd "$work"

nurse_addr=rpps:10103456785 # a made-up RPPS number with a right Luhn key
"$ctl" keygen broker >/dev/null
"$ctl" keygen --address "$nurse_addr" --role nurse nurse >"$work/keygen.out"
pub=$(cat nurse.pub)
grep -qF "public_key: \"$pub\"" keygen.out || fail "keygen's entry does not hold the key it made"
grep -qF "relaisctl agent add --address $nurse_addr --role nurse --key nurse.pub" keygen.out ||
    fail "keygen does not print the agent add command"
if "$ctl" keygen --address rpps:10103456789 --role nurse wrong >/dev/null 2>&1; then
    fail "keygen accepted an RPPS number with a wrong check digit"
fi
[ ! -e wrong.key ] || fail "keygen made a key for a refused address"

cat >territory.yaml <<'YAML'
# Test territory: the comments must survive enrolments.
territory: cpts-test
production: true
agents: []
YAML
"$ctl" agent add --address "$nurse_addr" --role nurse --name "Test Nurse" --key nurse.pub \
    --pool service:nurse@cpts-test territory.yaml >add.out ||
    { cat add.out >&2; fail "agent add refused a valid enrolment"; }
grep -q '^# Test territory: the comments must survive enrolments.$' territory.yaml ||
    fail "agent add lost the file's comment"
cp territory.yaml before.yaml

# refuse NAME ARGS…: agent add must exit 1, say why (matching NAME's pattern), change nothing.
refuse() {
    local pattern=$1 out rc=0
    shift
    out=$("$ctl" agent add "$@" territory.yaml 2>&1) || rc=$?
    [ "$rc" -eq 1 ] || fail "agent add $* exited $rc, not 1: $out"
    grep -q -- "$pattern" <<<"$out" || fail "agent add $*: reason '$out' lacks '$pattern'"
    cmp -s before.yaml territory.yaml || fail "agent add $* changed the directory"
}
"$ctl" keygen other >/dev/null
refuse "already enrolled" --address "$nurse_addr" --role nurse --key other.pub
refuse "already enrolled for $nurse_addr" --address rpps:10102345674 --role physiotherapist \
    --key nurse.pub
refuse "the broker's own public key" --address rpps:10102345674 --role physiotherapist \
    --key broker.pub
refuse "holds a secret key" --address rpps:10102345674 --role physiotherapist --key other.key
refuse "check digit is wrong" --address rpps:10102345678 --role physiotherapist --key other.pub
refuse "check digit is wrong" --address finess:350000015 --role hospital --key other.pub
refuse "unknown role" --address rpps:10102345674 --role doctor --key other.pub

"$ctl" agent list territory.yaml >list.out
line=$(grep -F "$nurse_addr " list.out || true)
grep -qF -- "$pub" <<<"$line" && grep -q ' nurse .* Test Nurse pools=service:nurse@cpts-test$' <<<"$line" ||
    { cat list.out >&2; fail "agent list does not show the nurse"; }

# The broker loads the directory; the enrolled nurse connects with her key.
: >relaisd.out
: >relaisd.log
"$relaisd" --bind tcp://127.0.0.1:0 --data "$work/data" --directory territory.yaml \
    --curve-key broker.key >relaisd.out 2>relaisd.log &
pids+=($!)
relaisd_pid=$!
wait_for relaisd.out '^relaisd ready' || { cat relaisd.log >&2; echo "FAIL: relaisd" >&2; exit 1; }
endpoint=$(sed -n 's/^relaisd ready endpoint=\([^ ]*\).*/\1/p' relaisd.out)
: >nurse.log
"$nurse" --endpoint "$endpoint" --address "$nurse_addr" --key nurse.key --server-key broker.pub \
    --state nurse.db --log-level debug >nurse.out 2>nurse.log &
pids+=($!)
wait_for nurse.log 'state=ready' || { cat nurse.log relaisd.log >&2; fail "the enrolled nurse did not connect"; }

# Revocation: the entry goes, SIGHUP, the broker closes her session.
"$ctl" agent revoke --address "$nurse_addr" territory.yaml >revoke.out ||
    { cat revoke.out >&2; fail "agent revoke failed"; }
grep -q "$nurse_addr" territory.yaml && fail "agent revoke left the entry"
grep -q '^# Test territory: the comments must survive enrolments.$' territory.yaml ||
    fail "agent revoke lost the file's comment"
kill -HUP "$relaisd_pid"
wait_for relaisd.log "closed agent=$nurse_addr" ||
    { cat relaisd.log >&2; fail "the revoked nurse's session was not closed"; }
if "$ctl" agent revoke --address "$nurse_addr" territory.yaml >/dev/null 2>&1; then
    fail "revoking an agent twice succeeded"
fi

if [ "$fails" -ne 0 ]; then
    echo "enrolment: $fails check(s) failed" >&2
    exit 1
fi
echo "enrolment: keygen, agent add (and its 7 refusals), list, a real connection, revoke: pass"
