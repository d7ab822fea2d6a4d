#!/usr/bin/env bash
# Installs the Debian 12 packages Relais needs to build, test and run, but only those that
# are missing: when everything is present it changes nothing and returns at once, so the
# test and demo commands call it every time. `apt-get update` runs at most once, and only
# when something has to be installed. Uses sudo when not root and sudo exists.
#
# Usage: bash deploy/install-deps.sh
# It may also be sourced; it then defines and runs relais_install_deps without changing
# the caller's shell options.

relais_install_deps() {
    local packages=(
        build-essential cmake pkg-config
        libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libuv1-dev
        libcriterion-dev libsqlite3-dev libyaml-dev libsodium-dev
        python3-zmq python3-protobuf protobuf-compiler
        clang libclang-rt-14-dev
        python3-hl7
    )
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
    relais_install_deps
else
    relais_install_deps || return 1
fi
