#!/usr/bin/env bash
# The package installed for real, as docs/OPERATIONS.md tells an administrator, on a copy
# of this machine: dpkg runs inside a private mount namespace on an overlay of / whose
# writes land in a temporary directory, so nothing of the host changes.
#
# Checks: dpkg -i relais creates the relais system user, /etc/relais (0750 root:relais),
# /var/lib/relais (0700 relais) and the conffile; the programs answer --version; the
# documented first configuration (keygen, a production directory, agent add) gives a broker
# that runs as the relais user on the shipped relaisd.yaml, and an enrolled nurse agent
# connects to it; reinstalling keeps an edited conffile; relais-dev answers pkg-config;
# purging keeps /etc/relais, /var/lib/relais and the account.
#
# Needs root, unshare and overlayfs; without them it exits 77, which ctest reports as
# skipped. Usage: test_install.sh BUILD_DIR VERSION
set -euo pipefail

build=$1
version=$2
if [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null || ! command -v setpriv >/dev/null; then
    echo "test_install: needs root, unshare and setpriv: skipped"
    exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/relais-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$build" && cpack -G DEB -B "$work/debs" >"$work/cpack.log" 2>&1) ||
    { cat "$work/cpack.log" >&2; echo "FAIL: cpack" >&2; exit 1; }
mkdir -p "$work/up" "$work/ovl" "$work/merged"

export work version
status=0
unshare --mount --fork bash -s <<'INNER' || status=$?
set -euo pipefail
M=$work/merged
if ! mount -t overlay overlay -o "lowerdir=/,upperdir=$work/up,workdir=$work/ovl" "$M" 2>/dev/null; then
    echo "test_install: no overlayfs here: skipped"
    exit 77
fi
mount --bind /proc "$M/proc"
mount --bind /dev "$M/dev"
mkdir -p "$M/root/relais-test"
cp "$work"/debs/*.deb "$M/root/relais-test/"
in_root() { chroot "$M" /bin/bash -c "$1"; }
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

if in_root 'getent passwd relais >/dev/null'; then
    echo "test_install: this machine already has a relais user: skipped"
    exit 77
fi
in_root "dpkg -i /root/relais-test/relais_${version}_amd64.deb" >"$work/dpkg.log" 2>&1 ||
    { cat "$work/dpkg.log" >&2; echo "FAIL: dpkg -i relais" >&2; exit 1; }
in_root 'getent passwd relais' | grep -q ':/var/lib/relais:/usr/sbin/nologin$' ||
    fail "no relais system user with home /var/lib/relais"
perms=$(in_root 'stat -c "%n %a %U:%G" /var/lib/relais /etc/relais')
grep -qx '/var/lib/relais 700 relais:relais' <<<"$perms" || fail "/var/lib/relais: $perms"
grep -qx '/etc/relais 750 root:relais' <<<"$perms" || fail "/etc/relais: $perms"
in_root 'test -f /etc/relais/relaisd.yaml && test -f /lib/systemd/system/relaisd.service' ||
    fail "the conffile or the unit is missing"
for p in relaisd relaisctl relais-nurse relais-assistant; do
    [ "$(in_root "$p --version")" = "$p $version" ] || fail "$p --version"
done

# docs/OPERATIONS.md, "Install": the first configuration.
in_root 'set -e; cd /etc/relais
relaisctl keygen broker >/dev/null
chown relais:relais broker.key
printf "territory: cpts-rennes-nord\nproduction: true\nagents: []\n" >territory.yaml
chgrp relais territory.yaml && chmod 0640 territory.yaml
cd /root/relais-test && relaisctl keygen nurse >/dev/null
relaisctl agent add --address rpps:10103456785 --role nurse --key /root/relais-test/nurse.pub \
    /etc/relais/territory.yaml >/dev/null' || fail "the documented first configuration failed"

# The broker as the unit runs it (User=relais, --config), on a free port instead of 7400.
mkfifo "$M/root/relais-test/ready"
chroot "$M" setpriv --reuid=relais --regid=relais --init-groups relaisd --config /etc/relais/relaisd.yaml \
    --bind tcp://127.0.0.1:0 >"$M/root/relais-test/ready" 2>"$work/relaisd.log" &
broker=$!
line=""
read -r -t 20 line <"$M/root/relais-test/ready" || true
endpoint=$(sed -n 's/^relaisd ready endpoint=\([^ ]*\).*/\1/p' <<<"$line")
if [ -z "$endpoint" ]; then
    cat "$work/relaisd.log" >&2
    fail "relaisd did not start as relais on the shipped configuration"
else
    : >"$work/nurse.log"
    chroot "$M" relais-nurse --endpoint "$endpoint" --address rpps:10103456785 \
        --key /root/relais-test/nurse.key --server-key /etc/relais/broker.pub \
        --state /root/relais-test/nurse.db --log-level debug 2>"$work/nurse.log" &
    nurse=$!
    timeout 20 grep -m1 -q 'state=ready' <(tail -n +1 -f "$work/nurse.log") ||
        { cat "$work/nurse.log" "$work/relaisd.log" >&2; fail "the enrolled nurse did not connect"; }
    kill -TERM "$nurse" 2>/dev/null || true
    wait "$nurse" || true
fi
kill -TERM "$broker" 2>/dev/null || true
wait "$broker" || fail "relaisd did not exit 0 on SIGTERM"
in_root 'test -f /var/lib/relais/relais.db && test -f /var/lib/relais/audit.log' ||
    fail "no database or journal in /var/lib/relais"

# An upgrade (here a reinstall) keeps the administrator's edit of the conffile.
in_root 'echo "log_level: info   # edited by the administrator" >>/etc/relais/relaisd.yaml'
in_root "dpkg -i --force-confold /root/relais-test/relais_${version}_amd64.deb" >"$work/dpkg2.log" 2>&1 ||
    { cat "$work/dpkg2.log" >&2; fail "reinstalling relais failed"; }
in_root 'grep -q "edited by the administrator" /etc/relais/relaisd.yaml' ||
    fail "the reinstall lost the edited conffile"

in_root "dpkg -i /root/relais-test/relais-dev_${version}_amd64.deb" >"$work/dpkg3.log" 2>&1 ||
    { cat "$work/dpkg3.log" >&2; fail "dpkg -i relais-dev failed"; }
[ "$(in_root 'pkg-config --modversion relais')" = "$version" ] || fail "pkg-config relais"

in_root 'dpkg --purge relais-dev relais' >"$work/purge.log" 2>&1 ||
    { cat "$work/purge.log" >&2; fail "purge failed"; }
in_root 'test ! -e /usr/sbin/relaisd && test -f /etc/relais/broker.key &&
    test -f /var/lib/relais/relais.db && getent passwd relais >/dev/null' ||
    fail "purge removed the territory's records or the account (or left relaisd)"
[ "$fails" -eq 0 ] || exit 1
INNER
if [ "$status" -eq 0 ]; then
    echo "install: dpkg -i, first configuration, broker as relais, nurse enrolled and connected, reinstall, -dev, purge: pass"
fi
exit "$status"
