#!/usr/bin/env bash
# The single test command: install prerequisites (Debian 12, as root), start
# private containerd + dockerd, PostgreSQL and two S3 servers (moto, s3s-fs), build, check formatting and lints, run unit and
# end-to-end tests, then run the conformance runner against a fresh registry
# (no MUST failure allowed) and against Debian's CNCF registry (exactly its
# known MUST violations, listed below and in the README).
# Exits non-zero if any step fails; daemons and registries are stopped on exit.
#
# Environment knobs:
#   SKIP_INSTALL=1   do not check/install apt packages or the Rust toolchain
#   KEEP_RUN_DIR=1   keep the run directory (daemon state and logs) on exit
#   RUN_DIR=DIR      use DIR (kept afterwards) instead of a fresh /tmp/regtest-XXXXXX
#   CARGO_TEST_ARGS  extra arguments for `cargo test` (after --workspace); a
#                    filter makes the closing summary fail (CI sets none)
# Refused: REGISTRY_TEST_SQLITE_ONLY (the storage suite on one backend pair).
# The summary at the end says how many tests ran per crate, how many were
# ignored or filtered out, and on how many backend pairs each storage test
# ran (scripts/test-summary.py); it fails if a filter was set.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TEST_TIMEOUT="${TEST_TIMEOUT:-1200}"
CONFORMANCE_TIMEOUT="${CONFORMANCE_TIMEOUT:-600}"

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'test-all: %s\n' "$*" >&2; exit 1; }

# The storage suite would drop to SQLite on local disk without a word (and
# the tests about PostgreSQL or S3 would run on nothing): never in this run.
if [ -n "${REGISTRY_TEST_SQLITE_ONLY+set}" ]; then
    die "REGISTRY_TEST_SQLITE_ONLY is set: this run tests the storage suite on all four backend pairs; unset it"
fi

# ------------------------------------------------------------ prerequisites
APT_PACKAGES=(
    docker.io containerd runc skopeo busybox-static docker-registry apache2-utils
    chromium chromium-driver postgresql nginx-light prometheus
    python3 python3-venv
    curl ca-certificates build-essential pkg-config
)

install_packages() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        log "dpkg not found: not a Debian system, skipping package installation"
        return
    fi
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return
    fi
    [ "$(id -u)" -eq 0 ] || die "must run as root to install: ${missing[*]}"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_rust() {
    if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    # The toolchain itself comes with the machine image (rustup); it is not
    # something this script can fetch.
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install a Rust toolchain with rustup first"
    if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
        command -v rustup >/dev/null 2>&1 || die "cargo fmt/clippy missing and rustup not available"
        rustup component add rustfmt clippy
    fi
}

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
    install_packages
    install_rust
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found"

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

# ------------------------------------------------------------------ run dir
if [ -n "${RUN_DIR:-}" ]; then
    mkdir -p "$RUN_DIR"
    RUN_DIR="$(cd "$RUN_DIR" && pwd)"
    KEEP_RUN_DIR=1 # never delete a directory we were given
else
    RUN_DIR="$(mktemp -d /tmp/regtest-XXXXXX)"
fi
CONF_PID=""
CNCF_PID=""

cleanup() {
    local rc=$?
    if [ -n "$CONF_PID" ] && kill -0 "$CONF_PID" 2>/dev/null; then
        stop_registry "$CONF_PID"
    fi
    if [ -n "$CNCF_PID" ] && kill -0 "$CNCF_PID" 2>/dev/null; then
        stop_registry "$CNCF_PID"
    fi
    if [ "${KEEP_RUN_DIR:-0}" = 1 ]; then
        "$ROOT/scripts/stop-daemons.sh" "$RUN_DIR" || true
        log "run directory kept: $RUN_DIR"
    else
        "$ROOT/scripts/stop-daemons.sh" "$RUN_DIR" --remove || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------ step tracking
declare -a RESULTS=()
FAILED=0
LAST_RC=0

# step NAME CMD...: run, record PASS/FAIL and duration, keep going.
step() {
    local name="$1" start=$SECONDS rc=0
    shift
    log "$name"
    "$@" || rc=$?
    local dur=$((SECONDS - start))
    LAST_RC=$rc
    if [ "$rc" -eq 0 ]; then
        RESULTS+=("PASS  $name (${dur}s)")
    else
        RESULTS+=("FAIL  $name (${dur}s, exit $rc)")
        FAILED=1
    fi
    return 0
}

summary() {
    log "summary"
    printf '  %s\n' "${RESULTS[@]}" >&2
    if [ -f "$RUN_DIR/test-summary.txt" ]; then
        sed 's/^/  /' "$RUN_DIR/test-summary.txt" >&2
    fi
}

# --------------------------------------------------------- registry helpers
stop_registry() {
    local pid="$1" deadline=$((SECONDS + 20))
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    wait "$pid" 2>/dev/null || true
}

# start_registry DATA_DIR LOG: starts on a free port, sets REG_PID/REG_PORT.
start_registry() {
    local data="$1" logf="$2" attempt port deadline
    for attempt in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 30000))
        REGISTRY_SHUTDOWN_DRAIN_SECS=0 "$TARGET_DIR/debug/registry" serve --listen "127.0.0.1:$port" \
            --data-dir "$data" --log-format json </dev/null >>"$logf" 2>&1 &
        REG_PID=$!
        deadline=$((SECONDS + 30))
        while :; do
            if curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null; then
                REG_PORT=$port
                return 0
            fi
            if ! kill -0 "$REG_PID" 2>/dev/null; then
                wait "$REG_PID" 2>/dev/null || true
                echo "registry exited during startup on port $port (attempt $attempt)" >&2
                break
            fi
            if [ "$SECONDS" -ge "$deadline" ]; then
                echo "registry not ready on port $port after 30s" >&2
                stop_registry "$REG_PID"
                return 1
            fi
            sleep 0.1
        done
    done
    return 1
}

run_conformance() {
    local data="$RUN_DIR/conformance-data" logf="$RUN_DIR/conformance-registry.log" rc=0
    if ! start_registry "$data" "$logf"; then
        tail -n 40 "$logf" >&2 || true
        return 1
    fi
    CONF_PID=$REG_PID
    echo "registry for conformance on 127.0.0.1:$REG_PORT (pid $CONF_PID)" >&2
    timeout "$CONFORMANCE_TIMEOUT" "$TARGET_DIR/debug/conformance" \
        --url "http://127.0.0.1:$REG_PORT" || rc=$?
    stop_registry "$CONF_PID"
    CONF_PID=""
    if [ "$rc" -ne 0 ]; then
        echo "--- last lines of $logf ---" >&2
        tail -n 40 "$logf" >&2 || true
    fi
    return "$rc"
}

# MUST checks Debian's docker-registry (CNCF distribution 2.8) fails, each a
# real violation of a spec sentence (README, "Conformance runner"): it ignores
# Content-Range on PATCH, and its tag listing is unsorted and ignores n/last.
CNCF_KNOWN_MUST_FAILURES=(
    push.chunk.out-of-order
    tags.order
    tags.n
    tags.n0
    tags.last
    tags.last-without-n
    tags.last-at-end
)

# Optional features Debian's docker-registry leaves out, each a choice a spec
# sentence allows (README, "Conformance runner"): its MUST checks of them are
# then not applicable. Anything else that keeps a MUST check from applying
# fails it. single-post: "Registries MAY support pushing blobs using a single
# POST request"; referrers: no referrers API (404), the spec's fallback;
# tag-delete: "a registry MAY implement tag deletion, while others MAY allow
# deletion only by manifest"; tags-link: no Link on tag pages ("A Link header
# MAY be included"; it ignores n, a failure listed above).
CNCF_WITHOUT=single-post,tags-link,referrers,tag-delete

# start_cncf DATA_DIR LOG: Debian's docker-registry on a free port (as the
# Debian package configures it, plus deletes); sets CNCF_PID/CNCF_PORT.
start_cncf() {
    local data="$1" logf="$2" attempt port deadline conf
    conf="$RUN_DIR/cncf-config.yml"
    for attempt in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 30000))
        printf '%s\n' "version: 0.1" "log:" "  fields:" "    service: registry" \
            "storage:" "  cache:" "    blobdescriptor: inmemory" "  filesystem:" \
            "    rootdirectory: $data" "  delete:" "    enabled: true" \
            "http:" "  addr: 127.0.0.1:$port" >"$conf"
        # It reads REGISTRY_* variables as configuration: none may leak in.
        env -i PATH="$PATH" /usr/bin/docker-registry serve "$conf" </dev/null >>"$logf" 2>&1 &
        CNCF_PID=$!
        deadline=$((SECONDS + 30))
        while :; do
            if curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null; then
                CNCF_PORT=$port
                return 0
            fi
            if ! kill -0 "$CNCF_PID" 2>/dev/null; then
                wait "$CNCF_PID" 2>/dev/null || true
                echo "docker-registry exited during startup on port $port (attempt $attempt)" >&2
                break
            fi
            if [ "$SECONDS" -ge "$deadline" ]; then
                echo "docker-registry not ready on port $port after 30s" >&2
                stop_registry "$CNCF_PID"
                return 1
            fi
            sleep 0.1
        done
    done
    return 1
}

# The runner against the CNCF registry, its permitted choices declared off:
# its MUST failures must be exactly the known ones (anything else is a wrong
# expectation in the runner, or a regression); SHOULD/MAY differences are
# only reported.
run_conformance_cncf() {
    local logf="$RUN_DIR/cncf-registry.log" out="$RUN_DIR/conformance-cncf.txt" rc=0
    if ! start_cncf "$RUN_DIR/cncf-data" "$logf"; then
        tail -n 40 "$logf" >&2 || true
        return 1
    fi
    echo "CNCF registry ($(/usr/bin/docker-registry --version)) on 127.0.0.1:$CNCF_PORT" >&2
    timeout "$CONFORMANCE_TIMEOUT" "$TARGET_DIR/debug/conformance" \
        --url "http://127.0.0.1:$CNCF_PORT" --without "$CNCF_WITHOUT" >"$out" || rc=$?
    stop_registry "$CNCF_PID"
    CNCF_PID=""
    sed -n '/^== MUST failures/,$p' "$out" >&2
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
        echo "conformance runner exited with $rc (see $out)" >&2
        return 1
    fi
    local failed unexpected="" missing="" id
    failed="$(sed -n 's/^FAIL MUST *\([^:]*\):.*/\1/p' "$out" | sort -u)"
    for id in $failed; do
        if ! printf '%s\n' "${CNCF_KNOWN_MUST_FAILURES[@]}" | grep -qx -- "$id"; then
            unexpected+=" $id"
        fi
    done
    for id in "${CNCF_KNOWN_MUST_FAILURES[@]}"; do
        if ! printf '%s\n' "$failed" | grep -qx -- "$id"; then
            missing+=" $id"
        fi
    done
    if [ -n "$missing" ]; then
        # Not a failure: tags.order can pass by chance (directory order).
        echo "note: known CNCF failures that passed this time:$missing" >&2
    fi
    if [ -n "$unexpected" ]; then
        echo "unexpected MUST failures against the CNCF registry:$unexpected (output: $out)" >&2
        return 1
    fi
}

# The oras Python package (oras-py) for the e2e tests, in a venv of its own
# (Debian 12's python3 refuses system-wide pip installs, PEP 668). The tests
# find it through ORAS_PYTHON; without it they fail, naming this step.
ORAS_VERSION="${ORAS_VERSION:-0.2.43}"
ORAS_VENV="$TARGET_DIR/oras-venv"
install_oras() {
    local py=/usr/bin/python3
    [ -x "$py" ] || py="$(command -v python3 || true)"
    [ -n "$py" ] || { echo "python3 not found (apt-get install python3 python3-venv)" >&2; return 1; }
    if ! "$ORAS_VENV/bin/python" -c "import sys, oras.version; sys.exit(oras.version.__version__ != '$ORAS_VERSION')" 2>/dev/null; then
        rm -rf "$ORAS_VENV"
        "$py" -m venv "$ORAS_VENV" ||
            { echo "cannot make a venv with $py (apt-get install python3-venv)" >&2; return 1; }
        "$ORAS_VENV/bin/pip" install --quiet --disable-pip-version-check "oras==$ORAS_VERSION" ||
            { echo "pip install oras==$ORAS_VERSION failed" >&2; return 1; }
    fi
    "$ORAS_VENV/bin/python" -c "import oras.client, oras.version; print('oras-py', oras.version.__version__)" >&2
}

# The aws CLI and boto3 (PyPI) for the ECR API's e2e tests (tests/ecr_*.rs),
# in a venv of their own under the target directory (ECR_TOOLS_VENV tells
# the tests where); pinned, so a client release cannot change a run.
AWSCLI_VERSION="${AWSCLI_VERSION:-1.46.3}"
BOTO3_VERSION="${BOTO3_VERSION:-1.44.18}"
ECR_VENV="$TARGET_DIR/ecr-venv"
install_ecr_tools() {
    local py=/usr/bin/python3
    [ -x "$py" ] || py="$(command -v python3 || true)"
    [ -n "$py" ] || { echo "python3 not found (apt-get install python3 python3-venv)" >&2; return 1; }
    if ! "$ECR_VENV/bin/python" -c "import sys, awscli, boto3; sys.exit(awscli.__version__ != '$AWSCLI_VERSION' or boto3.__version__ != '$BOTO3_VERSION')" 2>/dev/null; then
        rm -rf "$ECR_VENV"
        "$py" -m venv "$ECR_VENV" ||
            { echo "cannot make a venv with $py (apt-get install python3-venv)" >&2; return 1; }
        "$ECR_VENV/bin/pip" install --quiet --disable-pip-version-check \
            "awscli==$AWSCLI_VERSION" "boto3==$BOTO3_VERSION" ||
            { echo "pip install awscli==$AWSCLI_VERSION boto3==$BOTO3_VERSION failed" >&2; return 1; }
    fi
    "$ECR_VENV/bin/aws" --version >&2 || return 1
    "$ECR_VENV/bin/python" -c "import boto3; print('boto3', boto3.__version__)" >&2
}

# The runner with credentials against a registry with token auth on, as a
# user that an [access] rule lets pull, push and delete under the runner's
# repositories (conformance/**): no MUST failure, and the registry's log
# holds neither the password nor a token.
run_conformance_auth() {
    local data="$RUN_DIR/conformance-auth-data" logf="$RUN_DIR/conformance-auth-registry.log"
    local conf="$RUN_DIR/conformance-auth.toml" out="$RUN_DIR/conformance-auth.txt"
    local password attempt port deadline rc=0
    password="conformance-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    printf '%s\n' 'auth = "token"' '' '[[access.rules]]' \
        'description = "the conformance runner"' 'repositories = "conformance/**"' \
        'users = ["conformance"]' 'actions = ["pull", "push", "delete"]' >"$conf"
    printf '%s\n' "$password" |
        "$TARGET_DIR/debug/registry" user add conformance --config "$conf" --data-dir "$data" ||
        return 1
    REG_PORT=""
    for attempt in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 30000))
        REGISTRY_SHUTDOWN_DRAIN_SECS=0 "$TARGET_DIR/debug/registry" serve --config "$conf" --listen "127.0.0.1:$port" \
            --data-dir "$data" --log-format json </dev/null >>"$logf" 2>&1 &
        CONF_PID=$!
        deadline=$((SECONDS + 30))
        # Up when GET /v2/ answers 401 (the Bearer challenge).
        while :; do
            if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" 2>/dev/null)" = 401 ]; then
                REG_PORT=$port
                break 2
            fi
            if ! kill -0 "$CONF_PID" 2>/dev/null; then
                wait "$CONF_PID" 2>/dev/null || true
                echo "registry exited during startup on port $port (attempt $attempt)" >&2
                break
            fi
            if [ "$SECONDS" -ge "$deadline" ]; then
                echo "registry not ready on port $port after 30s" >&2
                stop_registry "$CONF_PID"
                CONF_PID=""
                tail -n 40 "$logf" >&2 || true
                return 1
            fi
            sleep 0.1
        done
    done
    if [ -z "$REG_PORT" ]; then
        CONF_PID=""
        tail -n 40 "$logf" >&2 || true
        return 1
    fi
    echo "registry with token auth for conformance on 127.0.0.1:$REG_PORT (pid $CONF_PID)" >&2
    CONFORMANCE_PASSWORD="$password" timeout "$CONFORMANCE_TIMEOUT" \
        "$TARGET_DIR/debug/conformance" --url "http://127.0.0.1:$REG_PORT" \
        --username conformance >"$out" 2>&1 || rc=$?
    stop_registry "$CONF_PID"
    CONF_PID=""
    sed -n '/^== MUST failures/,$p' "$out" >&2
    tail -n 1 "$out" >&2
    if [ "$rc" -ne 0 ]; then
        echo "conformance runner with credentials exited with $rc (output: $out)" >&2
        tail -n 40 "$logf" >&2 || true
        return "$rc"
    fi
    grep -q '^[0-9]* passed, 0 failed' "$out" ||
        { echo "no '0 failed' closing line (output: $out)" >&2; return 1; }
    # The registry logged the runner's requests under its user, and
    # neither its password nor a token.
    grep -q '"user":"conformance"' "$logf" ||
        { echo "the registry log names no request of the conformance user" >&2; return 1; }
    if grep -qF -- "$password" "$logf" "$out" ||
        grep -qE 'eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}' "$logf"; then
        echo "the password or a token reached $logf or $out" >&2
        return 1
    fi
}

start_daemons() {
    "$ROOT/scripts/start-daemons.sh" "$RUN_DIR" || {
        for f in containerd.log dockerd.log; do
            [ -f "$RUN_DIR/$f" ] && { echo "--- $f ---" >&2; tail -n 40 "$RUN_DIR/$f" >&2; }
        done
        return 1
    }
}

# Each fuzz target for FUZZ_SECONDS (default 30), with cargo fuzz on the
# nightly toolchain, from a copy of its committed corpus (fuzz/corpus/<target>,
# minimised with `cargo fuzz cmin`): what a run adds stays in the run
# directory, and the work tree is left as it was. The inputs under
# fuzz/regressions/<target> (crashes found before, kept with their fix) are
# replayed first. A crash is saved under RUN_DIR/fuzz/artifacts/<target>/ and
# printed in base64: keep it under fuzz/regressions/<target>/ with the fix.
run_fuzz() {
    local secs="${FUZZ_SECONDS:-30}" t work artifacts
    rustup toolchain list | grep -q '^nightly' ||
        { echo "cargo fuzz needs the nightly toolchain (rustup toolchain install nightly)" >&2; return 1; }
    if ! command -v cargo-fuzz >/dev/null 2>&1; then
        cargo install cargo-fuzz --locked || return 1
    fi
    (cd fuzz && cargo +nightly fuzz build) || return 1
    for t in $(cd fuzz && cargo +nightly fuzz list); do
        work="$RUN_DIR/fuzz/corpus/$t"
        artifacts="$RUN_DIR/fuzz/artifacts/$t/"
        mkdir -p "$work" "$artifacts"
        [ -d "fuzz/corpus/$t" ] && cp -r "fuzz/corpus/$t/." "$work/"
        if [ -d "fuzz/regressions/$t" ]; then
            echo "replaying the regression inputs of $t" >&2
            (cd fuzz && cargo +nightly fuzz run "$t" "$ROOT/fuzz/regressions/$t" -- \
                -runs=0 -rss_limit_mb=2048 -artifact_prefix="$artifacts") ||
                { fuzz_crash "$t" "$artifacts"; return 1; }
        fi
        echo "fuzzing $t for ${secs}s" >&2
        (cd fuzz && cargo +nightly fuzz run "$t" "$work" -- \
            -max_total_time="$secs" -rss_limit_mb=2048 -artifact_prefix="$artifacts") ||
            { fuzz_crash "$t" "$artifacts"; return 1; }
    done
}

# The crashing inputs of target $1 (in $2), printed so the log keeps them.
fuzz_crash() {
    local f
    echo "fuzz target $1 failed; keep its input under fuzz/regressions/$1/ with the fix:" >&2
    for f in "$2"*; do
        [ -f "$f" ] || continue
        echo "--- $f (base64)" >&2
        base64 "$f" >&2
    done
}

# cfn-lint, kubernetes-validate and checkov (PyPI) in a venv of their own,
# on the deployment files; checkov's skipped checks are justified in the
# files themselves.
DEPLOY_VENV="$TARGET_DIR/deploy-venv"
run_deploy_checks() {
    if ! "$DEPLOY_VENV/bin/checkov" --version >/dev/null 2>&1; then
        rm -rf "$DEPLOY_VENV"
        python3 -m venv "$DEPLOY_VENV" || return 1
        "$DEPLOY_VENV/bin/pip" install --quiet --disable-pip-version-check \
            "cfn-lint==1.58.0" "kubernetes-validate==1.37.0" "checkov==3.3.30" ||
            { echo "pip install of the deployment linters failed" >&2; return 1; }
    fi
    "$DEPLOY_VENV/bin/cfn-lint" "$ROOT/deploy/ecs/registry.yaml" || return 1
    "$DEPLOY_VENV/bin/kubernetes-validate" --quiet "$ROOT/deploy/k8s/registry.yaml" || return 1
    "$DEPLOY_VENV/bin/checkov" --quiet --compact -d "$ROOT/deploy" \
        --framework cloudformation kubernetes dockerfile 2>/dev/null
}

run_tests() {
    # shellcheck disable=SC2086
    timeout "$TEST_TIMEOUT" cargo test --workspace --no-fail-fast ${CARGO_TEST_ARGS:-} 2>&1 |
        tee "$RUN_DIR/cargo-test.log"
}

# What the tests ran: per crate, the binaries that never reported, the
# backend pairs of each storage test, the filters set (none in CI).
test_summary() {
    local exes="$RUN_DIR/test-executables.json"
    cargo test --workspace --no-run --message-format=json 2>/dev/null >"$exes" || return 1
    python3 "$ROOT/scripts/test-summary.py" "$RUN_DIR/cargo-test.log" "$exes" \
        >"$RUN_DIR/test-summary.txt"
    local rc=$?
    cat "$RUN_DIR/test-summary.txt" >&2
    return "$rc"
}

# The failed tests and why, at the very end of the output (CI shows its tail).
failed_tests() {
    local f="$RUN_DIR/cargo-test.log"
    [ -f "$f" ] || return 0
    grep -qE '^test .* FAILED$|^error: test failed' "$f" || return 0
    log "failed tests"
    grep -E '^test .* FAILED$|^error: test failed' "$f" | head -20 >&2
    # The first lines of each failure's panic message.
    grep -E -A4 "panicked at" "$f" | head -60 >&2
}

# Every crate's modules, layered: no module imports another in a circle.
check_module_cycles() {
    local c out rc=0
    for c in registry storage auth conformance tests; do
        out="$(python3 "$ROOT/scripts/module-cycles.py" "$ROOT/$c/src")" || return 1
        if ! printf '%s\n' "$out" | grep -qx '0 cycles'; then
            echo "$c:" >&2
            printf '%s\n' "$out" >&2
            rc=1
        fi
    done
    return "$rc"
}

# The run changed nothing git sees (generated files, fuzz inputs, lock
# files): what it makes belongs in the run directory or target/.
WORK_TREE_BEFORE="$(git -C "$ROOT" status --porcelain 2>/dev/null || true)"
check_work_tree() {
    local now
    now="$(git -C "$ROOT" status --porcelain 2>/dev/null || true)"
    if [ "$now" != "$WORK_TREE_BEFORE" ]; then
        echo "the run changed the work tree:" >&2
        diff <(printf '%s\n' "$WORK_TREE_BEFORE") <(printf '%s\n' "$now") >&2 || true
        return 1
    fi
}

# -------------------------------------------------------------------- steps
step "start containerd and dockerd" start_daemons
if [ "$FAILED" -ne 0 ]; then
    summary
    exit 1
fi
# shellcheck disable=SC1091
. "$RUN_DIR/env"
# The storage suite and the multi-node e2e tests run on PostgreSQL and on
# S3 (moto and s3s-fs) too; they fail, never skip, without them.
step "start PostgreSQL" "$ROOT/scripts/start-postgres.sh" "$RUN_DIR"
step "start the S3 servers (moto, s3s-fs)" "$ROOT/scripts/start-s3.sh" "$RUN_DIR"
if [ "$FAILED" -ne 0 ]; then
    summary
    exit 1
fi
# shellcheck disable=SC1091
. "$RUN_DIR/postgres.env"
# shellcheck disable=SC1091
. "$RUN_DIR/s3.env"

step "cargo fmt --check" cargo fmt --all -- --check
step "no module imported in a circle" check_module_cycles
step "documentation links" python3 "$ROOT/scripts/check-doc-links.py" "$ROOT"
# A linker killed by SIGBUS is what a full disk looks like: say how much was
# free before and after, so such a failure is not mistaken for a code one.
free_space() { mkdir -p "$TARGET_DIR" && df -h --output=avail "$TARGET_DIR" | tail -1 | tr -d ' '; }
log "free space for $TARGET_DIR before the build: $(free_space)"
step "cargo build" cargo build --workspace --all-targets
if [ "$LAST_RC" -ne 0 ]; then
    summary
    log "free space for $TARGET_DIR after the failed build: $(free_space)"
    log "FAILED: the workspace does not build"
    exit 1
fi
step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
step "oras (Python package) for the e2e tests" install_oras
export ORAS_PYTHON="$ORAS_VENV/bin/python"
step "aws CLI and boto3 (Python packages) for the ECR e2e tests" install_ecr_tools
export ECR_TOOLS_VENV="$ECR_VENV"
step "cargo test (unit + e2e)" run_tests
step "what the tests ran (per crate, filters, storage backend pairs)" test_summary
step "deployment files (cfn-lint, kubernetes-validate, checkov)" run_deploy_checks
step "conformance" run_conformance
step "conformance with token auth and credentials" run_conformance_auth
step "conformance against the CNCF registry" run_conformance_cncf
step "fuzz" run_fuzz
step "work tree as it was" check_work_tree

summary
failed_tests
if [ "$FAILED" -ne 0 ]; then
    log "FAILED"
    exit 1
fi
log "all checks passed"
