#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs the Debian packages a target needs, and only the missing ones, so a second run does
# nothing. Usage: install-deps.sh build|test|bench
set -eu

build_pkgs="gcc make pkg-config liburing-dev libwolfssl-dev zlib1g-dev libsystemd-dev libseccomp-dev openssl"
test_pkgs="$build_pkgs libcmocka-dev python3 python3-websockets python3-prometheus-client nodejs npm procps iproute2 util-linux openssl chromium clang-14 libclang-rt-14-dev man-db groff-base"
bench_pkgs="$build_pkgs websocketd libwebsockets-dev gnuplot-nox python3-websockets nodejs npm util-linux"

case "${1:-build}" in
build) want=$build_pkgs ;;
test) want=$test_pkgs ;;
bench) want=$bench_pkgs ;;
*) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    # node and npm may come from outside Debian (a machine image's own Node.js): accept a
    # working command in place of the package.
    case $p in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
    esac
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
    exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
