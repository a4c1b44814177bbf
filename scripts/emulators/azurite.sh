#!/usr/bin/env bash
# Installs Azurite (Azure Storage's emulator: Blob, Queue, Table) once into a
# cache outside the clone, then starts it on free loopback ports and waits
# until the queue service answers.
#
#   scripts/emulators/azurite.sh start <state-dir>         # prints the queue, blob and table URLs
#   scripts/emulators/azurite.sh start <state-dir> oauth   # HTTPS, bearer tokens too; prints cert= as well
#   scripts/emulators/azurite.sh stop <state-dir>
#
# The URLs are path-style, for the development account `devstoreaccount1`
# (requests must be SharedKey-signed with its well-known key, or, with
# `oauth`, carry a bearer token: Azurite checks its issuer, audience and
# lifetime, not its signature, and takes tokens over HTTPS only — with a
# self-signed certificate for 127.0.0.1 made in the state dir). scripts/test
# starts both for cloudfn-azure's tests.
set -euo pipefail

VERSION=3.35.0
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/cloudfn-test/azurite-$VERSION"
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

install() {
    [ -x "$CACHE/node_modules/.bin/azurite" ] && [ -f "$CACHE/.installed" ] && return
    echo "installing Azurite $VERSION into $CACHE (once)" >&2
    rm -rf "$CACHE"
    mkdir -p "$CACHE"
    npm install --prefix "$CACHE" --no-audit --no-fund --silent "azurite@$VERSION" >&2
    touch "$CACHE/.installed"
}

start() {
    local state="$1" mode="${2:-}"
    install
    mkdir -p "$state"
    local queue blob table scheme=http tls=()
    queue=$(free_port)
    blob=$(free_port)
    table=$(free_port)
    if [ "$mode" = oauth ]; then
        scheme=https
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
            -addext subjectAltName=IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE \
            -addext extendedKeyUsage=serverAuth \
            -keyout "$state/key.pem" -out "$state/cert.pem" 2>/dev/null
        tls=(--cert "$state/cert.pem" --key "$state/key.pem" --oauth basic)
    fi
    "$CACHE/node_modules/.bin/azurite" --silent --disableTelemetry --inMemoryPersistence \
        --skipApiVersionCheck "${tls[@]}" \
        --queueHost 127.0.0.1 --queuePort "$queue" \
        --blobHost 127.0.0.1 --blobPort "$blob" \
        --tableHost 127.0.0.1 --tablePort "$table" >"$state/azurite.log" 2>&1 &
    echo $! >"$state/azurite.pid"
    # Any HTTP answer (an unsigned request is refused) means it listens.
    answers() { curl -sk -o /dev/null "$scheme://127.0.0.1:$queue/devstoreaccount1?comp=list"; }
    wait_ready Azurite "$state/azurite.pid" "$state/azurite.log" 60 answers
    echo "queue=$scheme://127.0.0.1:$queue/devstoreaccount1"
    echo "blob=$scheme://127.0.0.1:$blob/devstoreaccount1"
    echo "table=$scheme://127.0.0.1:$table/devstoreaccount1"
    if [ "$mode" = oauth ]; then echo "cert=$state/cert.pem"; fi
}

stop() {
    stop_pid "$1/azurite.pid"
}

case "${1:-}" in
    install) install ;;
    start) start "${2:?state dir}" "${3:-}" ;;
    stop) stop "${2:?state dir}" ;;
    *) echo "usage: $0 install | start <state-dir> [oauth] | stop <state-dir>" >&2; exit 2 ;;
esac
