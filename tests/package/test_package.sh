#!/usr/bin/env bash
# The Debian packages, checked as an administrator would receive them.
#
# Builds relais_<version>_amd64.deb and relais-dev_<version>_amd64.deb from the build tree
# with cpack, then checks: the files each package must hold; that relais depends on runtime
# libraries only (no compiler, no -dev package); the maintainer scripts and the unit
# (the relais user, /var/lib/relais 0700, RestartPreventExitStatus=78); lintian reports no
# error; and the programs of the package, extracted with dpkg-deb -x, run: each answers
# --version with this version, and relaisd starts, prints its ready line and stops on
# SIGTERM with status 0.
#
# Usage: test_package.sh BUILD_DIR VERSION
set -euo pipefail

build=$1
version=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/relais-package.XXXXXX")
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

# cpack stages and writes under -B, so the build tree's own _CPack_Packages is untouched.
(cd "$build" && cpack -G DEB -B "$work/out" >"$work/cpack.log" 2>&1) || {
    cat "$work/cpack.log" >&2
    echo "FAIL: cpack" >&2
    exit 1
}
deb="$work/out/relais_${version}_amd64.deb"
dev="$work/out/relais-dev_${version}_amd64.deb"
for f in "$deb" "$dev"; do
    [ -f "$f" ] || { echo "FAIL: $f not produced; cpack made: $(ls "$work/out")" >&2; exit 1; }
done

# ---- contents ---------------------------------------------------------------------------
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./||' >"$work/relais.list"
dpkg-deb -c "$dev" | awk '{print $6}' | sed 's|^\./||' >"$work/dev.list"
programs=(usr/sbin/relaisd usr/bin/relaisctl)
for role in assistant nurse physiotherapist specialist hospital coordinator facility; do
    programs+=("usr/bin/relais-$role")
done
for f in "${programs[@]}" lib/systemd/system/relaisd.service etc/relais/relaisd.yaml \
    usr/share/doc/relais/copyright usr/share/doc/relais/changelog.gz \
    usr/share/doc/relais/README.md usr/share/doc/relais/OPERATIONS.md \
    usr/share/doc/relais/examples/territory/cpts-demo.yaml \
    usr/share/doc/relais/examples/agents/nurse.yaml \
    "usr/lib/librelais-agent.so.${version%%.*}" "usr/lib/librelais-agent.so.$version"; do
    grep -qxF "$f" "$work/relais.list" || fail "relais lacks $f"
done
for f in usr/share/doc/relais-dev/copyright usr/include/relais/agent.h \
    usr/include/relais/version.h usr/include/relais/v1/relais.pb-c.h \
    usr/include/relais/v1/care.pb-c.h usr/lib/librelais-agent.so usr/lib/pkgconfig/relais.pc; do
    grep -qxF "$f" "$work/dev.list" || fail "relais-dev lacks $f"
done
# Headers and the link-time symlink belong to relais-dev alone.
if grep -qE '^usr/include/|\.pc$|\.so$' "$work/relais.list"; then
    fail "relais ships development files: $(grep -E '^usr/include/|\.pc$' "$work/relais.list" | head -3)"
fi

# ---- control: runtime dependencies only -------------------------------------------------
depends=$(dpkg-deb -f "$deb" Depends)
echo "relais Depends: $depends"
for lib in libzmq5 libprotobuf-c1 libuv1 libsqlite3-0 libsodium23 libyaml-0-2 adduser; do
    grep -qE "(^|, )$lib( |,|$)" <<<"$depends" || fail "relais does not depend on $lib"
done
if grep -qE -- '-dev( |,|$)|(^|, )(gcc|g\+\+|clang|cmake|build-essential|protobuf-c-compiler)( |,|$)' <<<"$depends"; then
    fail "relais depends on a build tool or -dev package: $depends"
fi
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "relais Version is not $version"

# ---- maintainer scripts and the unit ------------------------------------------------------
dpkg-deb -e "$deb" "$work/control"
for s in postinst prerm postrm; do
    [ -x "$work/control/$s" ] || fail "maintainer script $s missing or not executable"
    sh -n "$work/control/$s" || fail "maintainer script $s is not valid sh"
done
grep -q 'adduser --system --group' "$work/control/postinst" &&
    grep -q '^ *--shell /usr/sbin/nologin --gecos "Relais broker" relais$' "$work/control/postinst" ||
    fail "postinst does not create the relais system user"
grep -qF 'install -d -m 0700 -o relais -g relais /var/lib/relais' "$work/control/postinst" ||
    fail "postinst does not make /var/lib/relais 0700 for relais"
grep -qF 'install -d -m 0750 -o root -g relais /etc/relais' "$work/control/postinst" ||
    fail "postinst does not make /etc/relais"
grep -qx '/etc/relais/relaisd.yaml' "$work/control/conffiles" ||
    fail "/etc/relais/relaisd.yaml is not a conffile"
dpkg-deb -x "$deb" "$work/root"
unit="$work/root/lib/systemd/system/relaisd.service"
grep -qx 'RestartPreventExitStatus=78' "$unit" || fail "the unit lacks RestartPreventExitStatus=78"
grep -qx 'User=relais' "$unit" || fail "the unit does not run as relais"
exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
[ -x "$work/root$exe" ] || fail "the unit starts $exe, which the package does not install"
if command -v systemd-analyze >/dev/null 2>&1; then
    # verify resolves ExecStart and ExecReload on this machine's root, so it runs on a copy
    # that points into the extracted tree.
    ctl=$(sed -n 's/^ExecReload=\([^ ]*\).*/\1/p' "$unit")
    [ -z "$ctl" ] || [ -x "$work/root$ctl" ] || fail "the unit reloads with $ctl, which the package does not install"
    sed -e "s|^ExecStart=$exe|ExecStart=$work/root$exe|" \
        -e "s|^ExecReload=$ctl|ExecReload=$work/root$ctl|" "$unit" >"$work/relaisd.service"
    systemd-analyze verify "$work/relaisd.service" 2>"$work/verify.log" ||
        { cat "$work/verify.log" >&2; fail "systemd-analyze verify rejects the unit"; }
fi

# ---- lintian ------------------------------------------------------------------------------
if ! lintian --fail-on error --suppress-tags no-manual-page "$deb" "$dev" >"$work/lintian.log" 2>&1; then
    cat "$work/lintian.log" >&2
    fail "lintian reports errors"
else
    grep -E '^[EW]:' "$work/lintian.log" || true
fi

# ---- the extracted programs run ------------------------------------------------------------
for p in "${programs[@]}"; do
    name=${p##*/}
    out=$("$work/root/$p" --version 2>&1) || fail "$p --version exits non-zero: $out"
    [ "$out" = "$name $version" ] || fail "$p --version printed '$out', not '$name $version'"
done

mkfifo "$work/ready"
"$work/root/usr/sbin/relaisd" --bind tcp://127.0.0.1:0 --data "$work/data" --insecure \
    >"$work/ready" 2>"$work/relaisd.log" &
relaisd_pid=$!
line=""
if read -r -t 20 line <"$work/ready" && [[ "$line" == "relaisd ready endpoint=tcp://127.0.0.1:"* ]]; then
    echo "extracted relaisd: $line"
else
    cat "$work/relaisd.log" >&2
    fail "the extracted relaisd did not print its ready line (got '$line')"
fi
kill -TERM "$relaisd_pid"
status=0
wait "$relaisd_pid" || status=$?
relaisd_pid=""
[ "$status" -eq 0 ] || fail "the extracted relaisd exited $status on SIGTERM"

# The shipped configuration is read by the shipped broker (its paths overridden by flags,
# as a drop-in would): a key it does not know would stop it with exit status 78.
"$work/root/usr/bin/relaisctl" keygen "$work/broker" >/dev/null
printf 'territory: cpts-test\nproduction: true\nagents: []\n' >"$work/territory.yaml"
rm -f "$work/ready" && mkfifo "$work/ready"
"$work/root/usr/sbin/relaisd" --config "$work/root/etc/relais/relaisd.yaml" \
    --bind tcp://127.0.0.1:0 --data "$work/data2" --directory "$work/territory.yaml" \
    --curve-key "$work/broker.key" >"$work/ready" 2>"$work/relaisd2.log" &
relaisd_pid=$!
line=""
if ! read -r -t 20 line <"$work/ready" || [[ "$line" != "relaisd ready endpoint=tcp://127.0.0.1:"* ]]; then
    cat "$work/relaisd2.log" >&2
    fail "the extracted relaisd did not start with the shipped relaisd.yaml (got '$line')"
fi
kill -TERM "$relaisd_pid"
status=0
wait "$relaisd_pid" || status=$?
relaisd_pid=""
[ "$status" -eq 0 ] || fail "the extracted relaisd exited $status on SIGTERM"

# relais-dev over relais in the same tree is what a vendor's build machine has: a program
# builds against it with pkg-config alone and links the packaged library.
dpkg-deb -x "$dev" "$work/root"
src=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if PKG_CONFIG_PATH="$work/root/usr/lib/pkgconfig" cc -std=c11 -Wall -Werror \
    -o "$work/sdk_hello" "$src/sdk_hello.c" \
    $(PKG_CONFIG_PATH="$work/root/usr/lib/pkgconfig" pkg-config --cflags --libs relais) \
    2>"$work/cc.log"; then
    out=$(LD_LIBRARY_PATH="$work/root/usr/lib" "$work/sdk_hello" 2>&1 || true)
    grep -q '^usage: sdk_hello' <<<"$out" || fail "sdk_hello built on relais-dev does not run: $out"
else
    cat "$work/cc.log" >&2
    fail "a program does not build against the extracted relais-dev with pkg-config"
fi

if [ "$fails" -ne 0 ]; then
    echo "package: $fails check(s) failed" >&2
    exit 1
fi
echo "package: relais_${version}_amd64.deb and relais-dev_${version}_amd64.deb pass"
