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

# The configuration file: the same checks, with the file's line in the message.
printf 'bind: tcp://127.0.0.1:0\ndata: data\nhartbeat_ms: 2000\n' >typo.yaml
config_error "an unknown key in the file" "typo.yaml:3: unknown key 'hartbeat_ms'" --config typo.yaml
printf 'bind: tcp://127.0.0.1:0\ndata: data\nheartbeat_ms: soon\n' >value.yaml
config_error "a malformed value in the file" "value.yaml:3: --heartbeat-ms wants a number" \
    --config value.yaml
printf 'bind: tcp://127.0.0.1:0\ndata: data\ninsecure: yes\n' >bool.yaml
config_error "a boolean that is not true or false" "bool.yaml:3: insecure: wants true or false" \
    --config bool.yaml
printf 'bind: tcp://127.0.0.1:0\ndata: data\nbind: tcp://127.0.0.1:1\n' >twice.yaml
config_error "a key given twice" "twice.yaml:3: bind: given twice" --config twice.yaml
printf 'bind: 127.0.0.1:7400\ndata: data\ndirectory: territory.yaml\ncurve_key: broker.key\n' >hint.yaml
config_error "host:port in the file" "did you mean tcp://127.0.0.1:7400?" --config hint.yaml
config_error "a missing configuration file" "missing.yaml" --config missing.yaml

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

# The same broker from a configuration file alone, then with a flag overriding the file.
cat >relaisd.yaml <<YAML
# a comment, as administrators write them
bind: tcp://127.0.0.1:0
data: data
directory: territory.yaml
curve_key: broker.key
broker_id: from-the-file
log_json: false
YAML
for variant in file flag; do
    extra=()
    want=from-the-file
    if [ "$variant" = flag ]; then extra=(--broker-id from-the-flag); want=from-the-flag; fi
    rm -f ready && mkfifo ready
    "$relaisd" --config relaisd.yaml "${extra[@]}" >ready 2>relaisd.log &
    pid=$!
    line=""
    read -r -t 20 line <ready || true
    [[ "$line" == *" broker_id=$want "* ]] ||
        { cat relaisd.log >&2; fail "--config ($variant): ready line '$line' lacks broker_id=$want"; }
    kill -TERM "$pid"
    status=0
    wait "$pid" || status=$?
    pid=""
    [ "$status" -eq 0 ] || fail "--config ($variant): exited $status on SIGTERM"
done

if [ "$fails" -ne 0 ]; then
    echo "startup: $fails check(s) failed" >&2
    exit 1
fi
echo "startup: 15 configuration errors exit 78 and create nothing; good starts, from flags and from relaisd.yaml, run and stop"
