#!/usr/bin/env bash
# A throwaway schema registry for tests, on loopback only, without Docker: Apicurio Registry
# 3.0.9, built from Maven Central, serving Confluent's Schema Registry API (/apis/ccompat/v7),
# run on the machine's Java 17 with in-memory storage.
#
#   scripts/registry.sh start     build once (then cached), start, wait for /health/ready
#   scripts/registry.sh stop      clean shutdown (SIGKILL after UPDRAFT_REGISTRY_STOP_TIMEOUT)
#   scripts/registry.sh status    exit 0 when running, 3 when not
#   scripts/registry.sh url       print the Confluent-compatible base URL (whether running or not)
#   scripts/registry.sh build     build (or reuse) the runnable folder without starting it
#
# What is built: Central serves the registry's application jar (io.apicurio:apicurio-registry-app
# :3.0.9) and most of its modules, but not all of what 3.0.9 was released with. The small Maven
# projects in scripts/maven/registry/ bridge the gaps, and this script builds them with `mvn`:
#   - parent/: a stand-in for the parent POM io.apicurio:apicurio-registry:3.0.9 (not on Central),
#     inheriting 3.0.7's with Quarkus 3.15.3 and a few module versions Central does have;
#   - config-definitions/, config-index-deployment/: compatibility jars for two modules Central
#     has only as 3.0.6 (3.0.6's classes, plus an enum and an annotation shape 3.0.9 needs);
#   - app/: the Quarkus Maven plugin turns the application jar into a fast-jar folder.
# The stand-in parent POM and the compatibility jars are NOT byte-for-byte what upstream shipped;
# the registry's own jars are upstream's. Maven uses scripts/maven/registry/settings.xml, which
# sends every lookup to Central (the POMs name other repositories that cannot be reached here).
#
# It lives in ${UPDRAFT_CACHE:-$HOME/.cache/updraft}/registry: app/ (the runnable folder, ~115 MB;
# app/.source holds the checksum of scripts/maven/registry/, so an unchanged folder is never
# rebuilt and a changed one is, once), build.log (the last build's Maven output), log/server.log,
# tmp/, run/server.pid. Maven's repository is the cache's maven/ folder, shared with the other
# servers' scripts. It serves http://127.0.0.1:${UPDRAFT_REGISTRY_PORT:-18081}; the data lives in
# memory (H2), so a stop forgets every schema. No authentication.
#
# Invariant: every command is idempotent and safe to run concurrently (an flock serialises them);
# every wait is bounded; nothing listens on anything but 127.0.0.1.
set -euo pipefail

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${UPDRAFT_CACHE:-$HOME/.cache/updraft}"
SERVER=registry
ROOT="$CACHE/registry"
MARKER="-Dupdraft.server=registry@$ROOT"
HOST=127.0.0.1
PORT="${UPDRAFT_REGISTRY_PORT:-18081}"
START_TIMEOUT="${UPDRAFT_REGISTRY_START_TIMEOUT:-120}"
STOP_TIMEOUT="${UPDRAFT_REGISTRY_STOP_TIMEOUT:-30}"
# A cold build downloads ~250 MB and compiles for minutes on 2 cores.
BUILD_TIMEOUT="${UPDRAFT_REGISTRY_BUILD_TIMEOUT:-1800}"
SRC="$SCRIPTS_DIR/maven/registry"
APP="$ROOT/app"
BUILD_DIR="$ROOT/build"
BUILD_LOG="$ROOT/build.log"
MAVEN_REPO="$CACHE/maven"
EMPTY_REPO="$ROOT/empty-repo"
TMP_DIR="$ROOT/tmp"
LOG_DIR="$ROOT/log"
LOG_FILE="$LOG_DIR/server.log"
PORT_FILE="$ROOT/run/port"
BASE="http://$HOST:$PORT"
URL="$BASE/apis/ccompat/v7"
# shellcheck source=scripts/lib/daemon.sh
source "$SCRIPTS_DIR/lib/daemon.sh"

# A small heap is plenty for a test registry; the serial collector keeps the RSS low.
JVM_OPTS=(
  -Xms64m -Xmx512m -XX:+UseSerialGC -XX:-OmitStackTraceInFastThrow
  -Djava.net.preferIPv4Stack=true "-Djava.io.tmpdir=$TMP_DIR"
)

# Runtime settings (system properties outrank the registry's application.properties).
registry_props() {
  REGISTRY_PROPS=(
    -Dquarkus.http.host="$HOST"
    -Dquarkus.http.port="$PORT"
    # In-memory H2 (the registry's default, said here so that it stays so).
    -Dapicurio.storage.kind=sql
    -Dapicurio.storage.sql.kind=h2
    "-Dapicurio.import.work-dir=$TMP_DIR"
    "-Dapicurio.storage.snapshot.location=$TMP_DIR"
    # Startup lines and warnings; the access log would add a line per request.
    -Dquarkus.log.level=INFO
    -Dquarkus.http.access-log.enabled=false
    "-Dquarkus.log.console.format=%d{yyyy-MM-dd HH:mm:ss} %p [%c{3.}] (%t) %m%n"
  )
}

# Checksum of the Maven projects: the runnable folder is rebuilt when any file changes.
source_sum() {
  (cd "$SRC" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) |
    sha256sum | cut -d' ' -f1
}

# mvn_run ARGS...: one Maven run in the build copy, output appended to build.log.
mvn_run() {
  if ! UPDRAFT_MAVEN_EMPTY_REPO="$EMPTY_REPO" timeout "$BUILD_TIMEOUT" \
    mvn -B -s "$BUILD_DIR/src/settings.xml" -Dmaven.repo.local="$MAVEN_REPO" \
    -f "$BUILD_DIR/src/pom.xml" "$@" >>"$BUILD_LOG" 2>&1 9>&-; then
    tail -n 40 "$BUILD_LOG" >&2
    rm -rf "$BUILD_DIR"
    die "the registry's Maven build failed (log: $BUILD_LOG)"
  fi
}

# The runnable folder, built from a copy of scripts/maven/registry (the build writes target/
# folders, which belong in the cache, not in the checkout).
ensure_built() {
  local sum started=$SECONDS
  sum=$(source_sum)
  if [[ -f $APP/quarkus-run.jar && -f $APP/.source && $(cat "$APP/.source") == "$sum" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || apt_install maven
  log "building Apicurio Registry from Maven Central into $APP (once, then cached; the first" \
    "build downloads ~250 MB and takes minutes; log: $BUILD_LOG)"
  rm -rf "$BUILD_DIR" "$APP.tmp"
  mkdir -p "$BUILD_DIR" "$EMPTY_REPO"
  cp -r "$SRC" "$BUILD_DIR/src"
  : >"$BUILD_LOG"
  # The stand-in parent POM first: every 3.0.9 module's POM names it as its parent.
  mvn_run org.apache.maven.plugins:maven-install-plugin:3.1.3:install-file \
    -Dfile="$BUILD_DIR/src/parent/pom.xml" -DpomFile="$BUILD_DIR/src/parent/pom.xml" \
    -Dpackaging=pom
  # The registry's own application.properties asks for a legacy jar; a fast-jar folder is what
  # upstream's container image runs.
  mvn_run -DskipTests -Dquarkus.package.jar.type=fast-jar install
  [[ -f $BUILD_DIR/src/app/target/quarkus-app/quarkus-run.jar ]] ||
    die "the build made no quarkus-app/quarkus-run.jar (log: $BUILD_LOG)"
  mv "$BUILD_DIR/src/app/target/quarkus-app" "$APP.tmp"
  printf '%s\n' "$sum" >"$APP.tmp/.source"
  rm -rf "$APP" "$BUILD_DIR"
  mv "$APP.tmp" "$APP"
  log "built in $((SECONDS - started))s: $APP ($(du -sh "$APP" | cut -f1))"
}

# Ready: the registry's readiness check says UP (storage initialised, nothing failing).
registry_ready() {
  curl -sf --max-time 3 "$BASE/health/ready" 2>/dev/null | grep -q '"status": *"UP"'
}

running_port() { cat "$PORT_FILE" 2>/dev/null || true; }

cmd_start() {
  local started=$SECONDS
  command -v curl >/dev/null || apt_install curl
  ensure_java
  reuse_running_daemon "$BASE/health/ready UP" registry_ready && return 0
  remove_stale_pid_file
  check_port_free "$PORT" "UPDRAFT_REGISTRY_PORT"
  ensure_built
  registry_props
  mkdir -p "$TMP_DIR"
  rotate_log "$LOG_FILE"
  log "starting on $BASE (log: $LOG_FILE)"
  start_daemon "$LOG_FILE" java "$MARKER" "${JVM_OPTS[@]}" "${REGISTRY_PROPS[@]}" \
    -jar "$APP/quarkus-run.jar"
  printf '%s\n' "$PORT" >"$PORT_FILE"
  wait_for "$START_TIMEOUT" "$BASE/health/ready UP" "$LOG_FILE" registry_ready
  log "ready in $((SECONDS - started))s: $URL"
}

cmd_stop() { stop_daemon "$STOP_TIMEOUT"; }

cmd_status() { daemon_status "http://$HOST:$(running_port)"; }

usage() {
  echo "usage: $0 start|stop|status|url|build" >&2
  exit 2
}

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  start) with_lock cmd_start ;;
  stop) with_lock cmd_stop ;;
  status) cmd_status ;;
  url) echo "$URL" ;;
  build) with_lock ensure_built ;;
  *) usage ;;
esac
