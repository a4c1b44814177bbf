#!/usr/bin/env bash
# Installs moto's server once into a cache outside the clone, then starts it
# on a free loopback port and waits until it answers. It stands in for
# DynamoDB (conditional writes, TTL settings): LocalStack's DynamoDB needs a
# Java download this machine cannot reach.
#
#   scripts/emulators/moto.sh start <state-dir>   # prints the endpoint URL
#   scripts/emulators/moto.sh stop <state-dir>
set -euo pipefail

VERSION=5.2.5
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/cloudfn-test/moto-$VERSION"
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

install() {
    [ -x "$CACHE/venv/bin/moto_server" ] && [ -f "$CACHE/.installed" ] && return
    echo "installing moto $VERSION into $CACHE (once)" >&2
    rm -rf "$CACHE"
    mkdir -p "$CACHE"
    python3 -m venv "$CACHE/venv"
    "$CACHE/venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$VERSION" >&2
    touch "$CACHE/.installed"
}

start() {
    local state="$1"
    install
    mkdir -p "$state"
    local port
    port=$(free_port)
    "$CACHE/venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$state/moto.log" 2>&1 &
    echo $! >"$state/moto.pid"
    local url="http://127.0.0.1:$port"
    answers() { curl -fsS "$url/moto-api/" >/dev/null 2>&1; }
    wait_ready moto "$state/moto.pid" "$state/moto.log" 60 answers
    echo "$url"
}

stop() {
    stop_pid "$1/moto.pid"
}

case "${1:-}" in
    install) install ;;
    start) start "${2:?state dir}" ;;
    stop) stop "${2:?state dir}" ;;
    *) echo "usage: $0 install | start <state-dir> | stop <state-dir>" >&2; exit 2 ;;
esac
