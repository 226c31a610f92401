#!/usr/bin/env bash
# Start a private PostgreSQL (Debian's package) for the tests.
#
# Usage: scripts/start-postgres.sh RUN_DIR
#
# Its data directory, socket and log live under RUN_DIR/postgres; it listens
# on 127.0.0.1 on a free port, as the OS user `postgres` (PostgreSQL refuses
# to run as root). Writes RUN_DIR/postgres.env, which exports
# REGISTRY_TEST_POSTGRES_URL (a superuser URL: tests create a database each).
# Stop it with scripts/stop-daemons.sh RUN_DIR (it stops this too).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 RUN_DIR" >&2
    exit 2
fi
mkdir -p "$1"
RUN_DIR="$(cd "$1" && pwd)"
PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
    echo "start-postgres: PostgreSQL binaries not found (install Debian's postgresql)" >&2
    exit 1
fi
PG_DIR="$RUN_DIR/postgres"
mkdir -p "$PG_DIR"
# The server runs as `postgres`, which must reach its directory.
chmod 755 "$RUN_DIR"
chown postgres: "$PG_DIR"
as_pg() { runuser -u postgres -- "$@"; }

PASSWORD="registry-test"
if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
    echo "$PASSWORD" >"$PG_DIR/pwfile"
    chown postgres: "$PG_DIR/pwfile"
    as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U registry --pwfile="$PG_DIR/pwfile" \
        --auth-host=scram-sha-256 --auth-local=trust -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 ||
        { cat "$PG_DIR/initdb.log" >&2; exit 1; }
fi

for attempt in 1 2 3 4 5; do
    PORT=$((20000 + RANDOM % 30000))
    if as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 start \
        -o "-p $PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" \
        >/dev/null 2>&1; then
        break
    fi
    echo "start-postgres: could not start on port $PORT (attempt $attempt)" >&2
    tail -n 5 "$PG_DIR/postgres.log" >&2 || true
    PORT=""
done
[ -n "${PORT:-}" ] || exit 1
echo "$PORT" >"$PG_DIR/port"
cat >"$RUN_DIR/postgres.env" <<ENV
export REGISTRY_TEST_POSTGRES_URL="postgres://registry:$PASSWORD@127.0.0.1:$PORT/postgres"
ENV
echo "start-postgres: PostgreSQL on 127.0.0.1:$PORT; environment in $RUN_DIR/postgres.env" >&2
