#!/usr/bin/env bash
# relaisd's start-up as systemd sees it: every configuration error exits 78 (EX_CONFIG, the
# unit's RestartPreventExitStatus) with a line that names the problem, and leaves nothing
# behind — no data directory, so no database created or migrated, no journal. Then a good
# configuration starts, and SIGTERM stops it with status 0.
#
# Usage: test_startup.sh RELAISD RELAISCTL
set -euo pipefail

relaisd=$1
ctl=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/relais-startup.XXXXXX")
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
fails=0
fail() {
    echo "FAIL: $*" >&2
    fails=$((fails + 1))
}
cd "$work"
"$ctl" keygen broker >/dev/null
"$ctl" keygen nurse >/dev/null
cat >territory.yaml <<YAML
territory: cpts-test
production: true
agents:
  - address: rpps:10103456785
    role: nurse
    public_key: "$(cat nurse.pub)"
YAML
sed 's/role: nurse/role: doctor/' territory.yaml >bad-role.yaml
cp broker.key loose.key
chmod 0644 loose.key

# config_error WHAT PATTERN ARGS…: relaisd ARGS must exit 78, print PATTERN, create no data.
config_error() {
    local what=$1 pattern=$2 rc=0
    shift 2
    rm -rf data
    "$relaisd" "$@" >out.txt 2>err.txt </dev/null || rc=$?
    [ "$rc" -eq 78 ] || fail "$what: exit status $rc, not 78 ($(cat err.txt))"
    grep -q -- "$pattern" err.txt || fail "$what: stderr '$(cat err.txt)' lacks '$pattern'"
    [ ! -e data ] || fail "$what: the data directory was created ($(ls -A data | tr '\n' ' '))"
    [ ! -s out.txt ] || fail "$what: printed a ready line: $(cat out.txt)"
}
good=(--data data --directory territory.yaml --curve-key broker.key)
config_error "host:port without tcp://" "did you mean tcp://127.0.0.1:7400?" \
    --bind 127.0.0.1:7400 "${good[@]}"
config_error "an invalid directory" "bad-role.yaml:5: .*unknown role 'doctor'" \
    --bind tcp://127.0.0.1:0 --data data --directory bad-role.yaml --curve-key broker.key
config_error "a missing key file" "curve-key" \
    --bind tcp://127.0.0.1:0 --data data --directory territory.yaml --curve-key missing.key
config_error "a key file others can read" "curve-key" \
    --bind tcp://127.0.0.1:0 --data data --directory territory.yaml --curve-key loose.key
config_error "--insecure with a production directory" "refusing --insecure" \
    --bind tcp://127.0.0.1:0 --data data --directory territory.yaml --insecure
config_error "an unknown option" "unrecognized option" --bind tcp://127.0.0.1:0 "${good[@]}" --colour
config_error "a malformed number" "heartbeat-ms wants a number" \
    --bind tcp://127.0.0.1:0 "${good[@]}" --heartbeat-ms soon
config_error "a data directory whose parent is missing" "parent directory" \
    --bind tcp://127.0.0.1:0 --data nowhere/data --directory territory.yaml --curve-key broker.key
config_error "no --directory" "are required" --bind tcp://127.0.0.1:0 --data data \
    --curve-key broker.key
[ ! -e nowhere ] || fail "the missing parent was created"

version=$("$relaisd" --version) || fail "--version exits non-zero"
[[ "$version" == "relaisd "[0-9]*.[0-9]*.[0-9]* ]] || fail "--version printed '$version'"

# The same configuration, corrected, starts and stops cleanly.
rm -rf data
mkfifo ready
"$relaisd" --bind tcp://127.0.0.1:0 "${good[@]}" >ready 2>relaisd.log &
pid=$!
line=""
read -r -t 20 line <ready || true
[[ "$line" == "relaisd ready endpoint=tcp://127.0.0.1:"* ]] ||
    { cat relaisd.log >&2; fail "a good configuration did not start: '$line'"; }
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
[ "$status" -eq 0 ] || fail "relaisd exited $status on SIGTERM"
[ -f data/relais.db ] || fail "the good start made no database"

if [ "$fails" -ne 0 ]; then
    echo "startup: $fails check(s) failed" >&2
    exit 1
fi
echo "startup: 9 configuration errors exit 78 and create nothing; a good start runs and stops"
