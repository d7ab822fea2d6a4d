#!/usr/bin/env bash
# The agent SDK as a vendor meets it: installed with `cmake --install` (components runtime
# and dev) into an empty prefix, then used with pkg-config alone.
#
# Checks: the public headers, the generated message headers and relais.pc are installed and
# no internal header is; librelais-agent.so has the SONAME librelais-agent.so.<major> and
# exports only relais_* symbols; sdk_hello.c compiles with -Wall -Werror from nothing but
# `pkg-config --cflags --libs relais`, links the shared library (not a static copy), and,
# run against a real relaisd of this build, connects and is welcomed.
#
# Usage: test_sdk_link.sh BUILD_DIR VERSION RELAISD SOURCE_DIR
set -euo pipefail

build=$1
version=$2
relaisd=$3
src=$4
major=${version%%.*}
work=$(mktemp -d "${TMPDIR:-/tmp}/relais-sdk.XXXXXX")
relaisd_pid=""
cleanup() {
    if [ -n "$relaisd_pid" ]; then kill "$relaisd_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
fails=0
fail() {
    echo "FAIL: $*" >&2
    fails=$((fails + 1))
}

prefix="$work/prefix"
for component in runtime dev; do
    cmake --install "$build" --prefix "$prefix" --component "$component" >"$work/install.log" ||
        { cat "$work/install.log" >&2; echo "FAIL: cmake --install $component" >&2; exit 1; }
done
if [ -e "$prefix/lib/systemd" ]; then
    fail "the runtime or dev component installs the systemd unit"
fi

pc=$(find "$prefix" -name relais.pc | head -n 1)
[ -n "$pc" ] || { echo "FAIL: relais.pc not installed" >&2; exit 1; }
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
unset CPATH C_INCLUDE_PATH LIBRARY_PATH
[ "$(pkg-config --modversion relais)" = "$version" ] || fail "relais.pc says $(pkg-config --modversion relais)"
includedir=$(pkg-config --variable=includedir relais)
libdir=$(pkg-config --variable=libdir relais)

for h in agent.h codec.h conversation.h errors.h keys.h log.h version.h v1/relais.pb-c.h \
    v1/care.pb-c.h; do
    [ -f "$includedir/relais/$h" ] || fail "header relais/$h not installed in $includedir"
done
extra=$(cd "$includedir/relais" && find . -type f | sed 's|^\./||' |
    grep -vxE 'agent\.h|codec\.h|conversation\.h|errors\.h|keys\.h|log\.h|version\.h|v1/(relais|care)\.pb-c\.h' || true)
[ -z "$extra" ] || fail "headers installed that are not public: $extra"

so="$libdir/librelais-agent.so.$version"
[ -f "$so" ] || { echo "FAIL: $so not installed" >&2; exit 1; }
soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "librelais-agent.so.$major" ] || fail "SONAME is '$soname'"
[ -L "$libdir/librelais-agent.so.$major" ] || fail "librelais-agent.so.$major symlink missing"
exported=$(nm -D --defined-only "$so" | awk '$2 != "A" {print $3}' | sed 's/@.*//')
count=$(wc -l <<<"$exported")
leaked=$(grep -v '^relais_' <<<"$exported" || true)
[ -z "$leaked" ] || fail "symbols exported beyond relais_*: $(head -5 <<<"$leaked" | tr '\n' ' ')"
grep -qx relais_version <<<"$exported" || fail "relais_version is not exported"
grep -qx relais_agent_new <<<"$exported" || fail "relais_agent_new is not exported"
echo "librelais-agent: SONAME $soname, $count exported symbols, all relais_*"

# shellcheck disable=SC2046 # pkg-config's output is a list of flags
cc -std=c11 -Wall -Wextra -Werror -o "$work/sdk_hello" "$src/tests/package/sdk_hello.c" \
    $(pkg-config --cflags --libs relais) 2>"$work/cc.log" ||
    { cat "$work/cc.log" >&2; echo "FAIL: sdk_hello does not build with pkg-config" >&2; exit 1; }
readelf -d "$work/sdk_hello" | grep -q "NEEDED.*\[librelais-agent.so.$major\]" ||
    fail "sdk_hello does not link librelais-agent.so.$major dynamically"

mkfifo "$work/ready"
"$relaisd" --bind tcp://127.0.0.1:0 --data "$work/data" --insecure >"$work/ready" \
    2>"$work/relaisd.log" &
relaisd_pid=$!
line=""
read -r -t 20 line <"$work/ready" || true
endpoint=$(sed -n 's/^relaisd ready endpoint=\([^ ]*\).*/\1/p' <<<"$line")
if [ -z "$endpoint" ]; then
    cat "$work/relaisd.log" >&2
    echo "FAIL: relaisd did not start (got '$line')" >&2
    exit 1
fi
if out=$(LD_LIBRARY_PATH="$libdir" "$work/sdk_hello" "$endpoint" app:sdk-hello 2>&1); then
    echo "$out"
    grep -q "with librelais-agent $version" <<<"$out" || fail "sdk_hello ran with another library: $out"
else
    echo "$out" >&2
    fail "sdk_hello failed against relaisd"
fi
kill -TERM "$relaisd_pid"
wait "$relaisd_pid" || fail "relaisd exited non-zero on SIGTERM"
relaisd_pid=""

if [ "$fails" -ne 0 ]; then
    echo "sdk: $fails check(s) failed" >&2
    exit 1
fi
echo "sdk: installed SDK builds and runs a vendor program with pkg-config only"
