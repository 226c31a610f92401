#!/usr/bin/env bash
# Start two S3-protocol servers on loopback for the tests: moto's server mode
# (PyPI `moto[server]`, in a venv of its own) and s3s-fs (crates.io, which also
# checks request signatures). Each gets bucket `registry-test`.
#
# Usage: scripts/start-s3.sh RUN_DIR
#
# Installs what is missing (the moto venv under RUN_DIR/../ or $S3_TOOLS_DIR,
# `cargo install s3s-fs@0.14.1` into ~/.cargo/bin). Writes RUN_DIR/s3.env,
# which exports:
#   REGISTRY_TEST_S3_MOTO_URL, REGISTRY_TEST_S3_S3S_URL   the endpoints
#   REGISTRY_TEST_S3_BUCKET                               registry-test
#   MOTO_SERVER_BIN, S3S_FS_BIN    for tests that start (and stop) their own
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION  what both accept
# Stop them with scripts/stop-daemons.sh RUN_DIR (it stops these too).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 RUN_DIR" >&2
    exit 2
fi
mkdir -p "$1"
RUN_DIR="$(cd "$1" && pwd)"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${S3_TOOLS_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/s3-tools}"
MOTO_VERSION="${MOTO_VERSION:-5.2.1}"
S3S_FS_VERSION=0.14.1
BUCKET=registry-test
KEY=registry-test-key
SECRET=registry-test-secret

log() { echo "start-s3: $*" >&2; }

# ---- moto, in a venv (Debian's python refuses system-wide pip, PEP 668)
MOTO_VENV="$TOOLS/moto-venv"
if ! "$MOTO_VENV/bin/python" -c "import sys, moto; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    log "installing moto[server]==$MOTO_VERSION into $MOTO_VENV"
    rm -rf "$MOTO_VENV"
    mkdir -p "$TOOLS"
    /usr/bin/python3 -m venv "$MOTO_VENV" ||
        { log "cannot make a venv (apt-get install python3-venv)"; exit 1; }
    "$MOTO_VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" ||
        { log "pip install moto[server]==$MOTO_VERSION failed"; exit 1; }
fi
MOTO_SERVER_BIN="$MOTO_VENV/bin/moto_server"

# ---- s3s-fs (newer versions need a newer rustc than this toolchain)
S3S_FS_BIN="${S3S_FS_BIN:-$HOME/.cargo/bin/s3s-fs}"
if ! [ -x "$S3S_FS_BIN" ] || ! "$S3S_FS_BIN" --version 2>/dev/null | grep -q "$S3S_FS_VERSION"; then
    log "installing s3s-fs $S3S_FS_VERSION (cargo install, a few minutes)"
    cargo install --quiet --locked "s3s-fs@$S3S_FS_VERSION" --features binary ||
        cargo install --quiet "s3s-fs@$S3S_FS_VERSION" --features binary ||
        { log "cargo install s3s-fs@$S3S_FS_VERSION failed"; exit 1; }
    S3S_FS_BIN="$HOME/.cargo/bin/s3s-fs"
fi

# wait_port PID PORT NAME: until something answers HTTP on the port.
wait_port() {
    local pid="$1" port="$2" name="$3" deadline=$((SECONDS + 60))
    while ! curl -s -o /dev/null "http://127.0.0.1:$port/"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited during startup on port $port"
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "$name not ready on port $port after 60s"
            return 1
        fi
        sleep 0.1
    done
}

S3_DIR="$RUN_DIR/s3"
mkdir -p "$S3_DIR"

MOTO_URL=""
for attempt in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 30000))
    "$MOTO_SERVER_BIN" -H 127.0.0.1 -p "$port" >"$S3_DIR/moto.log" 2>&1 &
    pid=$!
    if wait_port "$pid" "$port" moto; then
        echo "$pid" >"$S3_DIR/moto.pid"
        MOTO_URL="http://127.0.0.1:$port"
        break
    fi
    kill "$pid" 2>/dev/null || true
done
[ -n "$MOTO_URL" ] || { tail -n 20 "$S3_DIR/moto.log" >&2; exit 1; }
# moto checks no signature: the bucket is made with a plain PUT.
curl -fsS -X PUT "$MOTO_URL/$BUCKET" -o /dev/null || { log "cannot create the moto bucket"; exit 1; }

S3S_URL=""
mkdir -p "$S3_DIR/s3s-root/$BUCKET"
for attempt in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 30000))
    "$S3S_FS_BIN" --host 127.0.0.1 --port "$port" --access-key "$KEY" --secret-key "$SECRET" \
        "$S3_DIR/s3s-root" >"$S3_DIR/s3s-fs.log" 2>&1 &
    pid=$!
    if wait_port "$pid" "$port" s3s-fs; then
        echo "$pid" >"$S3_DIR/s3s-fs.pid"
        S3S_URL="http://127.0.0.1:$port"
        break
    fi
    kill "$pid" 2>/dev/null || true
done
[ -n "$S3S_URL" ] || { tail -n 20 "$S3_DIR/s3s-fs.log" >&2; exit 1; }

cat >"$RUN_DIR/s3.env" <<ENV
export REGISTRY_TEST_S3_MOTO_URL="$MOTO_URL"
export REGISTRY_TEST_S3_S3S_URL="$S3S_URL"
export REGISTRY_TEST_S3_BUCKET="$BUCKET"
export MOTO_SERVER_BIN="$MOTO_SERVER_BIN"
export S3S_FS_BIN="$S3S_FS_BIN"
export AWS_ACCESS_KEY_ID="$KEY"
export AWS_SECRET_ACCESS_KEY="$SECRET"
export AWS_REGION="us-east-1"
ENV
log "moto on $MOTO_URL, s3s-fs on $S3S_URL; environment in $RUN_DIR/s3.env"
