#!/usr/bin/env bash
# A throwaway Apache Cassandra node for tests, on loopback only, without Docker: the release jars
# from Maven Central (cassandra-all and its dependencies) run on the machine's Java 17.
#
#   scripts/cassandra.sh start        fetch the jars once, start, wait until CQL clients can connect
#   scripts/cassandra.sh stop         clean shutdown (drain; SIGKILL after UPDRAFT_CASSANDRA_STOP_TIMEOUT)
#   scripts/cassandra.sh status       exit 0 when running, 3 when not
#   scripts/cassandra.sh url          print host:port of the CQL port (whether running or not)
#   scripts/cassandra.sh cql [args]   cqlsh on the node (PyPI's cqlsh in a virtualenv in the cache,
#                                     made on first use), e.g. `cql -e 'describe keyspaces'`
#   scripts/cassandra.sh destroy      stop and delete the data (the jars stay cached)
#
# One node (Cassandra's version: scripts/maven/cassandra/pom.xml), SimpleSnitch, datacenter1,
# no authentication. It lives in ${UPDRAFT_CACHE:-$HOME/.cache/updraft}/cassandra: libs/ (the
# jars), data/ (data, commitlog, hints, saved caches), log/system.log, config/ (cassandra.yaml,
# logback.xml), run/server.pid. CQL on 127.0.0.1:${UPDRAFT_CASSANDRA_PORT:-19042}, the internode
# port on 127.0.0.1:${UPDRAFT_CASSANDRA_STORAGE_PORT:-19070}; no JMX. A 1 GiB heap at most.
#
# Invariant: every command is idempotent and safe to run concurrently (an flock serialises them);
# every wait is bounded; nothing listens on anything but 127.0.0.1.
set -euo pipefail

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${UPDRAFT_CACHE:-$HOME/.cache/updraft}"
SERVER=cassandra
ROOT="$CACHE/cassandra"
MARKER="-Dupdraft.server=cassandra@$ROOT"
HOST=127.0.0.1
PORT="${UPDRAFT_CASSANDRA_PORT:-19042}"
STORAGE_PORT="${UPDRAFT_CASSANDRA_STORAGE_PORT:-19070}"
START_TIMEOUT="${UPDRAFT_CASSANDRA_START_TIMEOUT:-180}"
STOP_TIMEOUT="${UPDRAFT_CASSANDRA_STOP_TIMEOUT:-60}"
POM="$SCRIPTS_DIR/maven/cassandra/pom.xml"
LIBS="$ROOT/libs"
DATA_DIR="$ROOT/data"
CONF_DIR="$ROOT/config"
LOG_DIR="$ROOT/log"
LOG_FILE="$LOG_DIR/system.log"
OUT_FILE="$LOG_DIR/stdout.log"
YAML="$CONF_DIR/cassandra.yaml"
CQLSH_VENV="$ROOT/cqlsh-venv"
# Pinned: cqlsh 6.2 is the one for Cassandra 5.0.
CQLSH_REQUIREMENTS=('cqlsh==6.2.2')
URL="$HOST:$PORT"
# shellcheck source=scripts/lib/daemon.sh
source "$SCRIPTS_DIR/lib/daemon.sh"

# Cassandra 5.0's conf/jvm-server.options and conf/jvm17-server.options, less what only matters
# for a production node (GC logs, heap dumps, NUMA, JMX), with a small heap.
jvm_opts() {
  local jamm
  jamm=$(compgen -G "$LIBS/jamm-*.jar" | head -n 1 || true)
  JVM_OPTS=(
    -Xms512m -Xmx1g -Xss256k
    -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1
    -XX:G1HeapRegionSize=16m -XX:G1RSetUpdatingPauseTimePercent=5 -XX:MaxGCPauseMillis=300
    -XX:InitiatingHeapOccupancyPercent=70
    -XX:+UseThreadPriorities -XX:+UseTLAB -XX:+ResizeTLAB -XX:+PerfDisableSharedMem
    -XX:StringTableSize=1000003 -XX:+CrashOnOutOfMemoryError -XX:-OmitStackTraceInFastThrow
    -ea -da:net.openhft...
    -Djava.net.preferIPv4Stack=true
    -Djdk.attach.allowAttachSelf=true
    --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
    --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
    --add-exports java.sql/java.sql=ALL-UNNAMED
    --add-exports java.base/java.lang.ref=ALL-UNNAMED
    --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
    --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
    --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
    --add-opens java.base/java.lang.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
    --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
    --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
    --add-opens java.base/jdk.internal.math=ALL-UNNAMED
    --add-opens java.base/jdk.internal.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
    --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
    --add-opens java.base/sun.nio.ch=ALL-UNNAMED
    --add-opens java.base/java.io=ALL-UNNAMED
    --add-opens java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
    --add-opens java.base/java.lang=ALL-UNNAMED
    --add-opens java.base/java.util=ALL-UNNAMED
    -Dio.netty.tryReflectionSetAccessible=true
    -Dio.netty.allocator.useCacheForAllThreads=true
    -Dio.netty.allocator.maxOrder=11
    -Dcassandra-foreground=yes
    "-Dcassandra.config=file://$YAML"
    "-Dcassandra.storagedir=$DATA_DIR"
    "-Dcassandra.logdir=$LOG_DIR"
    "-Dlogback.configurationFile=file://$CONF_DIR/logback.xml"
    # One node: nothing to wait for in gossip.
    -Dcassandra.skip_wait_for_gossip_to_settle=0
  )
  # jamm measures object sizes for memtable accounting; as an agent it needs no Unsafe tricks.
  [[ -z $jamm ]] || JVM_OPTS+=("-javaagent:$jamm")
}

# Rewritten on every start so a changed port takes effect.
write_config() {
  mkdir -p "$CONF_DIR" "$DATA_DIR" "$LOG_DIR"
  cat >"$YAML" <<EOF
# Written by scripts/cassandra.sh on every start; edits are lost.
cluster_name: updraft
num_tokens: 16
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
data_file_directories:
  - $DATA_DIR/data
commitlog_directory: $DATA_DIR/commitlog
saved_caches_directory: $DATA_DIR/saved_caches
hints_directory: $DATA_DIR/hints
cdc_raw_directory: $DATA_DIR/cdc_raw
commitlog_sync: periodic
commitlog_sync_period: 10000ms
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "$HOST:$STORAGE_PORT"
listen_address: $HOST
rpc_address: $HOST
storage_port: $STORAGE_PORT
native_transport_port: $PORT
start_native_transport: true
endpoint_snitch: SimpleSnitch
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
role_manager: CassandraRoleManager
# Tests drop and truncate a lot: no snapshot for each.
auto_snapshot: false
# A small machine: fewer threads and smaller caches than a production node.
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 8
concurrent_compactors: 1
key_cache_size: 16MiB
EOF
  cat >"$CONF_DIR/logback.xml" <<EOF
<!-- Written by scripts/cassandra.sh on every start; edits are lost. -->
<configuration scan="false">
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>$LOG_FILE</file>
    <append>true</append>
    <encoder>
      <pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern>
    </encoder>
  </appender>
  <root level="INFO">
    <appender-ref ref="FILE"/>
  </root>
</configuration>
EOF
}

# Ready: this run's log says the CQL port is up, and it accepts connections.
cql_ready() {
  grep -q 'listening for CQL clients' "$LOG_FILE" 2>/dev/null && port_open "$PORT"
}

running_port() { sed -nE 's/^native_transport_port: ([0-9]+)$/\1/p' "$YAML" 2>/dev/null || true; }

cmd_start() {
  local started=$SECONDS
  ensure_java
  reuse_running_daemon "CQL connections on $URL" port_open "$PORT" && return 0
  remove_stale_pid_file
  check_port_free "$PORT" "UPDRAFT_CASSANDRA_PORT"
  check_port_free "$STORAGE_PORT" "UPDRAFT_CASSANDRA_STORAGE_PORT"
  fetch_jars "$POM" "$LIBS"
  write_config
  jvm_opts
  rotate_log "$LOG_FILE"
  rotate_log "$OUT_FILE"
  log "starting on $URL (log: $LOG_FILE)"
  start_daemon "$OUT_FILE" java "$MARKER" "${JVM_OPTS[@]}" -cp "$CONF_DIR:$LIBS/*" \
    org.apache.cassandra.service.CassandraDaemon
  wait_for "$START_TIMEOUT" "CQL ready (\"listening for CQL clients\" and $URL accepting)" \
    "$LOG_FILE" cql_ready
  log "ready in $((SECONDS - started))s: $URL"
}

cmd_stop() { stop_daemon "$STOP_TIMEOUT"; }

cmd_status() { daemon_status "$HOST:$(running_port)"; }

cmd_destroy() {
  stop_daemon "$STOP_TIMEOUT"
  rm -rf "$DATA_DIR" "$LOG_DIR" "$CONF_DIR" "$ROOT/run"
  log "removed the data in $ROOT (the jars in $LIBS stay)"
}

cmd_cql() {
  running_pid >/dev/null || die "not running: scripts/cassandra.sh start"
  with_lock ensure_venv "$CQLSH_VENV" "${CQLSH_REQUIREMENTS[@]}"
  exec 9>&-
  exec "$CQLSH_VENV/bin/cqlsh" "$HOST" "$PORT" "$@"
}

usage() {
  echo "usage: $0 start|stop|status|url|cql [cqlsh args]|destroy" >&2
  exit 2
}

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  start) with_lock cmd_start ;;
  stop) with_lock cmd_stop ;;
  status) cmd_status ;;
  url) echo "$URL" ;;
  cql) cmd_cql "$@" ;;
  destroy) with_lock cmd_destroy ;;
  *) usage ;;
esac
