#!/usr/bin/env bash
# Start private containerd + dockerd instances for the end-to-end tests.
#
# Usage: scripts/start-daemons.sh RUN_DIR
#
# Everything (state, sockets, logs, pid files) lives under RUN_DIR, so this
# never touches a system-wide Docker or containerd. When both daemons answer,
# the script writes RUN_DIR/env, which exports:
#   DOCKER_HOST, DOCKER_CONFIG, DOCKER_BIN, CONTAINERD_ADDRESS,
#   CONTAINERD_SNAPSHOTTER, DOCKER_STORAGE_DRIVER
# Source that file to use the daemons; stop them with scripts/stop-daemons.sh.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 RUN_DIR" >&2
    exit 2
fi

mkdir -p "$1"
RUN_DIR="$(cd "$1" && pwd)"
READY_TIMEOUT="${DAEMON_READY_TIMEOUT:-60}"

DOCKERD_BIN="${DOCKERD_BIN:-$(command -v /usr/bin/dockerd || command -v /usr/sbin/dockerd || true)}"
DOCKER_BIN="${DOCKER_BIN:-/usr/bin/docker}"
CONTAINERD_BIN="${CONTAINERD_BIN:-/usr/bin/containerd}"
CTR_BIN="${CTR_BIN:-/usr/bin/ctr}"

for bin in "$DOCKERD_BIN" "$DOCKER_BIN" "$CONTAINERD_BIN" "$CTR_BIN"; do
    if [ -z "$bin" ] || [ ! -x "$bin" ]; then
        echo "start-daemons: required binary '$bin' not found (is docker.io/containerd installed?)" >&2
        exit 1
    fi
done

log() { echo "start-daemons: $*" >&2; }

# Poll a command until it succeeds or the deadline passes.
# wait_for DESCRIPTION PIDFILE CMD...
wait_for() {
    local what="$1" pidfile="$2"
    shift 2
    local deadline=$((SECONDS + READY_TIMEOUT))
    while ! "$@" >/dev/null 2>&1; do
        if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            log "$what exited during startup"
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "$what not ready after ${READY_TIMEOUT}s"
            return 1
        fi
        sleep 0.2
    done
}

# Does an overlay mount work on the file system holding RUN_DIR?
overlay_works() {
    local d="$RUN_DIR/overlay-probe"
    mkdir -p "$d/lower" "$d/upper" "$d/work" "$d/merged"
    local ok=1
    if mount -t overlay overlay \
        -o "lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work" "$d/merged" 2>/dev/null; then
        umount "$d/merged" && ok=0
    fi
    rm -rf "$d"
    return $ok
}

if overlay_works; then
    SNAPSHOTTER=overlayfs
    STORAGE_DRIVER=overlay2
else
    log "overlayfs unavailable, falling back to native/vfs"
    SNAPSHOTTER=native
    STORAGE_DRIVER=vfs
fi

# ---------------------------------------------------------------- containerd
CTRD_SOCK="$RUN_DIR/containerd.sock"
mkdir -p "$RUN_DIR/containerd-root" "$RUN_DIR/containerd-state"
cat >"$RUN_DIR/containerd.toml" <<EOF
version = 2
root = "$RUN_DIR/containerd-root"
state = "$RUN_DIR/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$CTRD_SOCK"

[ttrpc]
  address = "$CTRD_SOCK.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""
EOF

log "starting containerd (snapshotter $SNAPSHOTTER)"
setsid "$CONTAINERD_BIN" --config "$RUN_DIR/containerd.toml" \
    --root "$RUN_DIR/containerd-root" --state "$RUN_DIR/containerd-state" \
    --address "$CTRD_SOCK" \
    </dev/null >"$RUN_DIR/containerd.log" 2>&1 &
echo $! >"$RUN_DIR/containerd.pid"
if ! wait_for containerd "$RUN_DIR/containerd.pid" "$CTR_BIN" --address "$CTRD_SOCK" version; then
    tail -n 50 "$RUN_DIR/containerd.log" >&2 || true
    exit 1
fi

# ------------------------------------------------------------------- dockerd
DOCKER_SOCK="$RUN_DIR/docker.sock"
mkdir -p "$RUN_DIR/docker-data" "$RUN_DIR/docker-exec" "$RUN_DIR/docker-config"
[ -f "$RUN_DIR/docker-config/config.json" ] || echo '{}' >"$RUN_DIR/docker-config/config.json"
echo '{}' >"$RUN_DIR/daemon.json"

start_dockerd() {
    local driver="$1"
    log "starting dockerd (storage driver $driver)"
    setsid "$DOCKERD_BIN" \
        --config-file "$RUN_DIR/daemon.json" \
        --data-root "$RUN_DIR/docker-data" \
        --exec-root "$RUN_DIR/docker-exec" \
        --pidfile "$RUN_DIR/docker.pid" \
        -H "unix://$DOCKER_SOCK" \
        --containerd "$CTRD_SOCK" \
        --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false \
        --bridge=none \
        --storage-driver "$driver" \
        </dev/null >"$RUN_DIR/dockerd.log" 2>&1 &
    echo $! >"$RUN_DIR/dockerd.pid"
    wait_for dockerd "$RUN_DIR/dockerd.pid" \
        env DOCKER_HOST="unix://$DOCKER_SOCK" DOCKER_CONFIG="$RUN_DIR/docker-config" \
        "$DOCKER_BIN" version
}

if ! start_dockerd "$STORAGE_DRIVER"; then
    tail -n 50 "$RUN_DIR/dockerd.log" >&2 || true
    if [ "$STORAGE_DRIVER" = vfs ]; then
        exit 1
    fi
    kill "$(cat "$RUN_DIR/dockerd.pid")" 2>/dev/null || true
    deadline=$((SECONDS + 30))
    while kill -0 "$(cat "$RUN_DIR/dockerd.pid")" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.2
    done
    STORAGE_DRIVER=vfs
    if ! start_dockerd vfs; then
        tail -n 50 "$RUN_DIR/dockerd.log" >&2 || true
        exit 1
    fi
fi

cat >"$RUN_DIR/env" <<EOF
export DOCKER_HOST="unix://$DOCKER_SOCK"
export DOCKER_CONFIG="$RUN_DIR/docker-config"
export DOCKER_BIN="$DOCKER_BIN"
export DOCKER_STORAGE_DRIVER="$STORAGE_DRIVER"
export CONTAINERD_ADDRESS="$CTRD_SOCK"
export CONTAINERD_SNAPSHOTTER="$SNAPSHOTTER"
EOF
log "daemons ready; environment in $RUN_DIR/env"
