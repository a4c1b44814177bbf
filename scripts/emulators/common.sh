# What the emulator scripts share: a free loopback port, waiting for a
# process to answer, and stopping it. Sourced, not run.

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_ready <name> <pid-file> <log> <seconds> <check command...>
wait_ready() {
    local name="$1" pidfile="$2" log="$3" seconds="$4"
    shift 4
    for _ in $(seq 1 $((seconds * 5))); do
        "$@" && return 0
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            echo "$name exited; its log:" >&2
            tail -n 40 "$log" >&2
            exit 1
        fi
        sleep 0.2
    done
    echo "$name did not become ready in $seconds s; its log:" >&2
    tail -n 40 "$log" >&2
    exit 1
}

# stop_pid <pid-file>: TERM, then KILL what is left after 5 s.
stop_pid() {
    local pidfile="$1"
    [ -f "$pidfile" ] || return 0
    local pid
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

# stop_group <pid-file>: TERM the process group the pid leads (an emulator
# started with setsid: a wrapper script and its JVM), then KILL what is left.
stop_group() {
    local pidfile="$1"
    [ -f "$pidfile" ] || return 0
    local pid
    pid=$(cat "$pidfile")
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

# gcloud_sdk_root: where the Google Cloud SDK's emulators are, or nothing
# when gcloud is not installed.
gcloud_sdk_root() {
    command -v gcloud >/dev/null 2>&1 || return 0
    local root
    root=$(gcloud info --format='value(installation.sdk_root)' 2>/dev/null || true)
    [ -n "$root" ] && [ -d "$root/platform" ] && echo "$root"
}
