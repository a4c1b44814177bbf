#!/usr/bin/env bash
# Installs LocalStack once into a cache outside the clone, then starts it on a
# free loopback port and waits until SQS answers.
#
#   scripts/emulators/localstack.sh start <state-dir>   # prints the endpoint URL
#   scripts/emulators/localstack.sh stop <state-dir>
#
# No Docker: LocalStack's Python runtime serves SQS, SNS, EventBridge and Step
# Functions in-process. Step Functions runs state machines in LocalStack's own
# ASL interpreter, so SQS/SNS/Wait/Choice/Fail states need nothing more (a
# Lambda task would: LocalStack runs functions in Docker). Services load on
# their first request (the first Step Functions call takes a few seconds more).
set -euo pipefail

VERSION=2026.3.0
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/cloudfn-test/localstack-$VERSION"
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

python_313() {
    local root
    if command -v pyenv >/dev/null 2>&1; then
        root="$(pyenv root)/versions/3.13.0/bin/python3"
        [ -x "$root" ] && { echo "$root"; return; }
    fi
    for candidate in python3.13 python3.12; do
        command -v "$candidate" >/dev/null 2>&1 && { command -v "$candidate"; return; }
    done
    echo "LocalStack $VERSION needs Python >= 3.12 (pyenv 3.13.0 or python3.13 on PATH)" >&2
    exit 1
}

install() {
    [ -x "$CACHE/venv/bin/python" ] && [ -f "$CACHE/.installed" ] && return
    echo "installing LocalStack $VERSION into $CACHE (once)" >&2
    rm -rf "$CACHE"
    mkdir -p "$CACHE"
    "$(python_313)" -m venv "$CACHE/venv"
    "$CACHE/venv/bin/pip" install --quiet --disable-pip-version-check \
        "localstack-core[runtime]==$VERSION" 'cbor2<6' 'pyopenssl==25.3.0' \
        'cryptography>=45.0.7,<47' service-identity >&2
    touch "$CACHE/.installed"
}

start() {
    local state="$1"
    install
    mkdir -p "$state/data"
    local port
    port=$(free_port)
    (
        cd "$state"
        GATEWAY_LISTEN="127.0.0.1:$port" GATEWAY_SERVER=hypercorn SQS_ENDPOINT_STRATEGY=path \
        DNS_ADDRESS=0 OVERRIDE_IN_DOCKER=0 DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 \
        FILESYSTEM_ROOT="$state/data" SERVICES=sqs,sns,events,sts,iam,logs,cloudformation,stepfunctions \
        LOCALSTACK_HOST="127.0.0.1:$port" \
        exec "$CACHE/venv/bin/python" -m localstack.runtime.main >"$state/localstack.log" 2>&1
    ) &
    echo $! >"$state/localstack.pid"
    local url="http://127.0.0.1:$port"
    healthy() { curl -fsS "$url/_localstack/health" 2>/dev/null | grep -q '"sqs"'; }
    wait_ready LocalStack "$state/localstack.pid" "$state/localstack.log" 60 healthy
    echo "$url"
}

stop() {
    stop_pid "$1/localstack.pid"
}

case "${1:-}" in
    install) install ;;
    start) start "${2:?state dir}" ;;
    stop) stop "${2:?state dir}" ;;
    *) echo "usage: $0 install | start <state-dir> | stop <state-dir>" >&2; exit 2 ;;
esac
