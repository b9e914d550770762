#!/usr/bin/env bash
# The project's test command (the README's, and CI's through .ci/run):
#   cargo fmt --check -> build the tests -> cargo clippy (warnings are errors)
#   -> start the real servers (PostgreSQL, ...) -> cargo test --all-targets -> stop the servers.
# A step that runs long prints a line every UPDRAFT_HEARTBEAT seconds (60) with its elapsed time.
#
#   scripts/test.sh                        everything
#   scripts/test.sh --test it scheduler::  extra args go to `cargo test`; --all-targets is added
#                                          unless they pick targets themselves (--test, --lib, ...)
#   scripts/test.sh claim -- --nocapture   a test-name filter, and args for the test binaries
#
# Environment:
#   CARGO_TARGET_DIR       default ~/.cache/updraft/target: outside the clone, so a fresh clone
#                          (CI's) reuses the previous build
#   UPDRAFT_CACHE          default ~/.cache/updraft: servers' data, logs, the last test output
#   UPDRAFT_PG_PORT        default 54329
#   UPDRAFT_SERVERS        comma list of the servers to start, default `all` (the streaming tests
#                          need Kafka, Cassandra and S3); PostgreSQL is always started. Name fewer
#                          while iterating, e.g. UPDRAFT_SERVERS=postgres (tests of the servers
#                          left out then skip, with a note; in CI they fail). Each runs natively on
#                          127.0.0.1 from the cache (scripts/kafka.sh, cassandra.sh, s3.sh,
#                          registry.sh; the first start downloads, later ones take seconds). Ports:
#                          UPDRAFT_KAFKA_PORT (19092), UPDRAFT_CASSANDRA_PORT (19042),
#                          UPDRAFT_S3_PORT (19000), UPDRAFT_REGISTRY_PORT (18081)
#   UPDRAFT_KEEP_SERVERS=1 leave the servers this run started running
#   UPDRAFT_SKIP_LINT=1    skip fmt and clippy while iterating
#   UPDRAFT_HEARTBEAT      seconds between the "still running" lines of a long step (60)
#   UPDRAFT_PG_DIR         where root's PostgreSQL cluster lives (scripts/postgres.sh)
#   UPDRAFT_MARIADB_PORT   default 13306: MariaDB (`mariadb` in UPDRAFT_SERVERS; Debian's
#                          mariadb-server, scripts/mariadb.sh), read by the SQL tests through
#                          UPDRAFT_TEST_MYSQL_URL; UPDRAFT_MARIADB_DIR: root's data folder
#   UPDRAFT_SMTP_PORT      default 11025: an SMTP server (`smtp` in UPDRAFT_SERVERS; PyPI's
#                          aiosmtpd in a venv in $UPDRAFT_CACHE/smtp, scripts/smtp.sh), read by
#                          the mail tests through UPDRAFT_TEST_SMTP_HOST and
#                          UPDRAFT_TEST_SMTP_MAILDIR (scripts/smtp.sh's header: the file format)
#
# The browser test (tests/it/browser.rs) gets chromium and playwright-core from scripts/browser.sh
# (UPDRAFT_TEST_NODE_PATH); its screenshots land in $UPDRAFT_CACHE/screenshots. The schemathesis
# test (tests/it/api_schemathesis.rs) gets the tool from scripts/schemathesis.sh (PyPI, a venv in
# $UPDRAFT_CACHE/schemathesis; UPDRAFT_TEST_SCHEMATHESIS). The Avro wire-format tests
# (tests/it/streaming_avro.rs) check against fastavro from scripts/fastavro.sh (PyPI, a venv in
# $UPDRAFT_CACHE/fastavro; UPDRAFT_TEST_FASTAVRO). The OpenLineage tests validate events with
# Python's jsonschema from scripts/jsonschema.sh (PyPI, a venv in $UPDRAFT_CACHE/jsonschema;
# UPDRAFT_TEST_JSONSCHEMA) against the schemas in tests/data/openlineage.
#
# Tests read UPDRAFT_TEST_DATABASE_URL, which this script always sets, and, for the servers
# UPDRAFT_SERVERS names, UPDRAFT_TEST_KAFKA_BROKERS, UPDRAFT_TEST_CASSANDRA_HOST (host:port),
# UPDRAFT_TEST_S3_ENDPOINT and UPDRAFT_TEST_SCHEMA_REGISTRY_URL (URLs; the registry's is its
# Confluent-compatible base, .../apis/ccompat/v7), UPDRAFT_TEST_MYSQL_URL, UPDRAFT_TEST_SMTP_HOST
# (host:port) and UPDRAFT_TEST_SMTP_MAILDIR (the folder the SMTP server saves messages in); a test
# of a server that was not asked for skips (fails in CI).
#
# Build tools: rdkafka builds its bundled librdkafka (C: cc, make, pkg-config, zlib headers) and
# libsqlite3-sys and ring build C with cc; missing ones are installed with apt-get.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export UPDRAFT_CACHE="${UPDRAFT_CACHE:-$HOME/.cache/updraft}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$UPDRAFT_CACHE/target}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"
export UPDRAFT_SERVERS="${UPDRAFT_SERVERS:-all}"
# shellcheck source=scripts/lib/servers.sh
source scripts/lib/servers.sh

# Args before `--` are cargo's, the rest (with the `--`) the test binaries'.
cargo_args=()
while (($# > 0)) && [[ $1 != -- ]]; do
  cargo_args+=("$1")
  shift
done
harness_args=("$@")
target_args=(--all-targets)
for arg in "${cargo_args[@]}"; do
  case "$arg" in
    --lib | --bins | --bin | --bin=* | --tests | --test | --test=* | --examples | --example | \
      --example=* | --benches | --bench | --bench=* | --all-targets | --doc)
      target_args=()
      ;;
  esac
done

TEST_LOG="$UPDRAFT_CACHE/logs/test.log"
rm -f "$TEST_LOG"
RUN_START=$SECONDS
STEPS=()
CURRENT_STEP=""
STEP_START=0

# Runs one step in the main shell (so errexit and exported variables work as usual); a failure
# exits through on_exit, which records the step that was running.
step() {
  CURRENT_STEP="$1"
  STEP_START=$SECONDS
  shift
  printf '\n==> %s\n' "$CURRENT_STEP"
  start_heartbeat "$CURRENT_STEP"
  "$@"
  stop_heartbeat
  STEPS+=("$(printf '  %-7s %5ss  %s' ok $((SECONDS - STEP_START)) "$CURRENT_STEP")")
  CURRENT_STEP=""
}

# While a step runs, a line every UPDRAFT_HEARTBEAT seconds says which step and for how long: a
# cold build is quiet for minutes at a time on two cores.
HEARTBEAT_PID=""
start_heartbeat() {
  local name="$1" every="${UPDRAFT_HEARTBEAT:-60}" started
  started=$(date +%s)
  (
    trap - EXIT
    trap 'kill "$nap" 2>/dev/null; exit 0' TERM
    while true; do
      sleep "$every" &
      nap=$!
      wait "$nap"
      printf '... %s: still running after %ss\n' "$name" $(($(date +%s) - started))
    done
  ) &
  HEARTBEAT_PID=$!
}

stop_heartbeat() {
  [[ -n $HEARTBEAT_PID ]] || return 0
  kill "$HEARTBEAT_PID" 2>/dev/null || true
  wait "$HEARTBEAT_PID" 2>/dev/null || true
  HEARTBEAT_PID=""
}

# Sums cargo's per-binary "test result:" lines into one total.
test_totals() {
  [[ -f $TEST_LOG ]] || return 0
  awk '/^test result:/ {
         for (i = 1; i <= NF; i++) {
           if ($(i) ~ /^passed;?$/) p += $(i - 1)
           if ($(i) ~ /^failed;?$/) f += $(i - 1)
           if ($(i) ~ /^ignored;?$/) s += $(i - 1)
         }
         n++
       }
       END { if (n) printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$TEST_LOG"
}

on_exit() {
  local rc=$? entry
  set +e
  stop_heartbeat
  if [[ -n $CURRENT_STEP ]]; then
    STEPS+=("$(printf '  %-7s %5ss  %s' FAILED $((SECONDS - STEP_START)) "$CURRENT_STEP")")
  fi
  stop_servers
  echo
  echo "==================== updraft test summary ===================="
  for entry in "${STEPS[@]}"; do echo "$entry"; done
  for entry in "${SERVER_URLS[@]}"; do echo "  server  ${entry/ /: }"; done
  [[ ! -f $TEST_LOG ]] || echo "  full test output: $TEST_LOG"
  test_totals
  if ((rc == 0)); then
    echo "result: ok in $((SECONDS - RUN_START))s"
  else
    echo "result: FAILED (exit $rc${CURRENT_STEP:+ in \"$CURRENT_STEP\"}) after $((SECONDS - RUN_START))s"
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

run_tests() {
  mkdir -p "$(dirname "$TEST_LOG")"
  # --no-fail-fast: one failing test binary must not hide the others' failures.
  cargo test --no-fail-fast "${target_args[@]}" "${cargo_args[@]}" "${harness_args[@]}" 2>&1 |
    tee "$TEST_LOG"
}

# Installs the C build tools the native dependencies need, when one is missing.
build_tools() {
  local missing=()
  command -v cc >/dev/null || missing+=(gcc)
  command -v c++ >/dev/null || missing+=(g++)
  command -v make >/dev/null || missing+=(make)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  [[ -f /usr/include/zlib.h ]] || missing+=(zlib1g-dev)
  ((${#missing[@]} == 0)) && return 0
  echo "installing build tools: ${missing[*]}"
  local sudo=()
  ((EUID == 0)) || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}"
}

echo "updraft tests: $(cargo --version), target dir $CARGO_TARGET_DIR"
step "build tools" build_tools
if [[ ${UPDRAFT_SKIP_LINT:-0} != 1 ]]; then
  step "cargo fmt --check" cargo fmt --all -- --check
fi
# The test build first: it compiles what clippy would otherwise compile first as well (the C
# libraries, build scripts, proc macros, shared by the two), so the clippy after it only checks.
step "build tests" cargo test --no-run "${target_args[@]}" "${cargo_args[@]}"
if [[ ${UPDRAFT_SKIP_LINT:-0} != 1 ]]; then
  step "cargo clippy -D warnings" cargo clippy --all-targets -- -D warnings
fi
step "start servers" start_servers
# The end-to-end browser test needs Debian's chromium and playwright-core (cached).
step "browser tools" scripts/browser.sh install
UPDRAFT_TEST_NODE_PATH="$(scripts/browser.sh path)"
export UPDRAFT_TEST_NODE_PATH
# The API's schemathesis run (tests/it/api_schemathesis.rs) needs the tool, from PyPI into a venv.
step "schemathesis" scripts/schemathesis.sh install
UPDRAFT_TEST_SCHEMATHESIS="$(scripts/schemathesis.sh path)"
export UPDRAFT_TEST_SCHEMATHESIS
# The Avro tests' independent client (tests/it/streaming_avro.rs), from PyPI into a venv.
step "fastavro" scripts/fastavro.sh install
UPDRAFT_TEST_FASTAVRO="$(scripts/fastavro.sh path)"
export UPDRAFT_TEST_FASTAVRO
# The OpenLineage events' check against the OpenLineage schemas (tests/it/lineage.rs and the
# pipeline tests), with PyPI's jsonschema in a venv.
step "jsonschema" scripts/jsonschema.sh install
UPDRAFT_TEST_JSONSCHEMA="$(scripts/jsonschema.sh path)"
export UPDRAFT_TEST_JSONSCHEMA
step "cargo test" run_tests
