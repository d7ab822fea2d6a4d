#!/usr/bin/env bash
# Installs the Debian 12 packages Relais needs, but only those that are missing: when
# everything is present it changes nothing and returns at once, so the test and demo
# commands call it every time. `apt-get update` runs at most once, and only when something
# has to be installed. Uses sudo when not root and sudo exists.
#
# Two sets, kept apart because a production server gets no compiler:
#   runtime  what relaisd, relaisctl and the reference agents need to run: the shared
#            libraries the .deb depends on (dpkg-shlibdeps computes the same list when the
#            package is built; tests/package checks it names no -dev package).
#   build    everything to build, test, fuzz and package Relais: compilers, headers,
#            Criterion, the Python interop client, lintian and dpkg-dev for the package.
#
# Usage: bash deploy/install-deps.sh [--runtime]   (default: build, which includes runtime)
# It may also be sourced; it then defines and runs relais_install_deps without changing
# the caller's shell options.

RELAIS_RUNTIME_PACKAGES=(
    libzmq5 libprotobuf-c1 libuv1 libsqlite3-0 libyaml-0-2 libsodium23 adduser
)
RELAIS_BUILD_PACKAGES=(
    build-essential cmake pkg-config
    libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libuv1-dev
    libcriterion-dev libsqlite3-dev libyaml-dev libsodium-dev
    python3-zmq python3-protobuf protobuf-compiler
    clang libclang-rt-14-dev
    dpkg-dev lintian
    chromium
    python3-hl7
)

relais_install_deps() {
    local packages=("${RELAIS_RUNTIME_PACKAGES[@]}")
    if [ "${1:-}" != "--runtime" ]; then
        packages+=("${RELAIS_BUILD_PACKAGES[@]}")
    fi
    local missing=() p status
    for p in "${packages[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) || status=""
        if [ "$status" != "installed" ]; then
            missing+=("$p")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi

    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            echo "install-deps: missing packages: ${missing[*]}" >&2
            echo "install-deps: not root and no sudo: install them by hand and re-run" >&2
            return 1
        fi
    fi

    # DEBIAN_FRONTEND goes through env so that it survives sudo's environment reset.
    local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get
               -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)
    echo "install-deps: installing ${missing[*]}"
    "${apt[@]}" update -qq || return 1
    "${apt[@]}" install -y -qq "${missing[@]}" >/dev/null || return 1
    echo "install-deps: done"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    case "${1:-}" in
        ""|--runtime) relais_install_deps "$@" ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install-deps: unknown option: $1 (--runtime or nothing)" >&2; exit 2 ;;
    esac
else
    relais_install_deps || return 1
fi
