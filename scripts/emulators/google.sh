#!/usr/bin/env bash
# Starts one of Google's emulators that ship with the Google Cloud SDK
# (Java) on a free loopback port and waits until it answers:
#
# - pubsub: Pub/Sub. gRPC and REST on one port; topics, subscriptions,
#   push delivery, ordering keys and dead-letter policies work (its push
#   sends no deliveryAttempt).
# - firestore: Firestore in Native mode. REST and gRPC on one port, all in
#   memory; it does not expire documents by TTL. Its first start on a
#   machine unpacks it: up to a minute.
#
#   scripts/emulators/google.sh start pubsub|firestore <state-dir>   # prints HOST:PORT, or nothing without gcloud
#   scripts/emulators/google.sh stop pubsub|firestore <state-dir>
set -euo pipefail

# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

# The emulator's command under the SDK root, and its arguments but the port.
command_of() {
    case "$1" in
        pubsub) echo "platform/pubsub-emulator/bin/cloud-pubsub-emulator --host=127.0.0.1" ;;
        firestore) echo "platform/cloud-firestore-emulator/cloud_firestore_emulator start --host=127.0.0.1 --database-mode=firestore-native" ;;
        *) echo "no emulator \`$1\`: pubsub or firestore" >&2; exit 2 ;;
    esac
}

start() {
    local which="$1" state="$2"
    local root program args
    read -r program args <<<"$(command_of "$which")"
    root=$(gcloud_sdk_root)
    if [ -z "$root" ] || [ ! -x "$root/$program" ]; then
        echo "the $which emulator is not installed (it comes with the Google Cloud SDK)" >&2
        return 0
    fi
    mkdir -p "$state"
    local port
    port=$(free_port)
    # shellcheck disable=SC2086 # the arguments are words
    setsid "$root/$program" $args --port="$port" >"$state/$which.log" 2>&1 &
    echo $! >"$state/$which.pid"
    answers() { curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1; }
    wait_ready "the $which emulator" "$state/$which.pid" "$state/$which.log" 120 answers
    echo "127.0.0.1:$port"
}

case "${1:-}" in
    start) start "${2:?pubsub or firestore}" "${3:?state dir}" ;;
    stop) stop_group "${3:?state dir}/${2:?pubsub or firestore}.pid" ;;
    *) echo "usage: $0 start|stop pubsub|firestore <state-dir>" >&2; exit 2 ;;
esac
