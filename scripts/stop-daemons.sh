#!/usr/bin/env bash
# Stop the daemons started by scripts/start-daemons.sh, start-s3.sh and
# start-postgres.sh in RUN_DIR, and unmount
# anything they left mounted under RUN_DIR. Safe to call more than once.
#
# Usage: scripts/stop-daemons.sh RUN_DIR [--remove]
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 RUN_DIR [--remove]" >&2
    exit 2
fi
[ -d "$1" ] || exit 0
RUN_DIR="$(cd "$1" && pwd)"

log() { echo "stop-daemons: $*" >&2; }

# stop_pid NAME PIDFILE: SIGTERM, poll for exit with a deadline, then SIGKILL.
stop_pid() {
    local name="$1" pidfile="$2" pid
    [ -f "$pidfile" ] || return 0
    pid="$(cat "$pidfile")"
    rm -f "$pidfile"
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "$name (pid $pid) did not stop after SIGTERM; killing"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
}

stop_pid dockerd "$RUN_DIR/dockerd.pid"
# dockerd's own pid file (it removes it on clean exit)
stop_pid dockerd "$RUN_DIR/docker.pid"
stop_pid containerd "$RUN_DIR/containerd.pid"
# scripts/start-s3.sh
stop_pid moto "$RUN_DIR/s3/moto.pid"
stop_pid s3s-fs "$RUN_DIR/s3/s3s-fs.pid"
# scripts/start-postgres.sh
if [ -f "$RUN_DIR/postgres/data/postmaster.pid" ]; then
    PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$RUN_DIR/postgres/data" -m fast -w stop >/dev/null 2>&1 ||
        log "could not stop PostgreSQL in $RUN_DIR/postgres"
fi

# containerd shims are reparented away from containerd; end the ones that
# belong to this RUN_DIR (matched on their exact -address argument).
for pid in $(pgrep -f -- "-address $RUN_DIR/containerd.sock" 2>/dev/null || true); do
    kill -TERM "$pid" 2>/dev/null || true
done

# Unmount leftovers (deepest first).
if [ -r /proc/self/mounts ]; then
    awk -v root="$RUN_DIR/" 'index($2, root) == 1 { print $2 }' /proc/self/mounts |
        sort -r | while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
fi

if [ "${2:-}" = "--remove" ]; then
    rm -rf "$RUN_DIR" || log "could not remove $RUN_DIR"
fi
