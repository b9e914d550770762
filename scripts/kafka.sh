#!/usr/bin/env bash
# A throwaway Apache Kafka broker for tests, on loopback only, without Docker: the release jars
# from Maven Central run on the machine's Java 17.
#
#   scripts/kafka.sh start            fetch the jars once, format the storage once, start, wait
#   scripts/kafka.sh stop             clean shutdown (SIGKILL after UPDRAFT_KAFKA_STOP_TIMEOUT)
#   scripts/kafka.sh status           exit 0 when running, 3 when not
#   scripts/kafka.sh url              print the bootstrap servers (whether running or not)
#   scripts/kafka.sh topics [args]    kafka-topics (TopicCommand), e.g. `topics --list`
#   scripts/kafka.sh produce TOPIC    console producer: one message per stdin line
#   scripts/kafka.sh consume TOPIC [args]   console consumer from the beginning, e.g.
#                                     `consume t --max-messages 3 --timeout-ms 10000`
#   scripts/kafka.sh destroy          stop and delete the data (the jars stay cached)
#
# One node in KRaft mode, broker and controller in one JVM (Kafka's version: scripts/maven/kafka/
# pom.xml, the same as docker-compose.yaml's). It lives in ${UPDRAFT_CACHE:-$HOME/.cache/updraft}/
# kafka: libs/ (the jars), data/ (the log dirs), log/server.log, config/, run/server.pid.
# Clients connect to 127.0.0.1:${UPDRAFT_KAFKA_PORT:-19092}; the controller listens on
# 127.0.0.1:${UPDRAFT_KAFKA_CONTROLLER_PORT:-19093}. Topics are created on first use with 3
# partitions; every replication factor is 1.
#
# Invariant: every command is idempotent and safe to run concurrently (an flock serialises them);
# every wait is bounded; nothing listens on anything but 127.0.0.1.
set -euo pipefail

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${UPDRAFT_CACHE:-$HOME/.cache/updraft}"
SERVER=kafka
ROOT="$CACHE/kafka"
MARKER="-Dupdraft.server=kafka@$ROOT"
HOST=127.0.0.1
PORT="${UPDRAFT_KAFKA_PORT:-19092}"
CONTROLLER_PORT="${UPDRAFT_KAFKA_CONTROLLER_PORT:-19093}"
START_TIMEOUT="${UPDRAFT_KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${UPDRAFT_KAFKA_STOP_TIMEOUT:-60}"
POM="$SCRIPTS_DIR/maven/kafka/pom.xml"
LIBS="$ROOT/libs"
DATA_DIR="$ROOT/data"
CONF_DIR="$ROOT/config"
LOG_DIR="$ROOT/log"
LOG_FILE="$LOG_DIR/server.log"
OUT_FILE="$LOG_DIR/stdout.log"
PROPS="$CONF_DIR/server.properties"
URL="$HOST:$PORT"
# shellcheck source=scripts/lib/daemon.sh
source "$SCRIPTS_DIR/lib/daemon.sh"

JVM_OPTS=(
  -Xms256m -Xmx512m
  -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
  -XX:+ExplicitGCInvokesConcurrent -XX:-OmitStackTraceInFastThrow
  -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true
  "-Dlog4j.configuration=file:$CONF_DIR/log4j.properties"
  "-Dkafka.logs.dir=$LOG_DIR"
)

# A tool run in a short-lived JVM: no log file, warnings to stderr.
tool_java() {
  java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.net.preferIPv4Stack=true \
    "-Dlog4j.configuration=file:$CONF_DIR/tools-log4j.properties" -cp "$LIBS/*" "$@"
}

# Rewritten on every start so a changed port takes effect.
write_config() {
  mkdir -p "$CONF_DIR" "$DATA_DIR" "$LOG_DIR"
  cat >"$PROPS" <<EOF
# Written by scripts/kafka.sh on every start; edits are lost.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA_DIR
num.partitions=3
auto.create.topics.enable=true
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Test speed: consumers join a group at once, and the first one does not wait for 50 partitions.
group.initial.rebalance.delay.ms=0
offsets.topic.num.partitions=10
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
log.segment.bytes=67108864
EOF
  cat >"$CONF_DIR/log4j.properties" <<EOF
# Written by scripts/kafka.sh on every start; edits are lost.
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$LOG_FILE
log4j.appender.file.Append=true
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.controller=WARN
log4j.logger.org.apache.kafka.raft=WARN
log4j.logger.org.apache.kafka.storage.internals.log=WARN
log4j.logger.kafka.log=WARN
EOF
  cat >"$CONF_DIR/tools-log4j.properties" <<'EOF'
# Written by scripts/kafka.sh on every start; edits are lost.
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
}

# KRaft needs its storage formatted with a cluster id once. A data dir without meta.properties
# (new, or a format that died half way) is formatted from empty.
ensure_formatted() {
  local cluster_id
  [[ -f $DATA_DIR/meta.properties ]] && return 0
  find "$DATA_DIR" -mindepth 1 -delete
  # A Kafka Uuid: 16 random bytes, base64url without padding (22 characters), not starting
  # with '-' (it would read as an option).
  cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  [[ $cluster_id != -* ]] || cluster_id="A${cluster_id:1}"
  log "formatting $DATA_DIR (cluster id $cluster_id)"
  if ! timeout 120 java -Xmx256m -cp "$LIBS/*" \
    "-Dlog4j.configuration=file:$CONF_DIR/tools-log4j.properties" \
    kafka.tools.StorageTool format --ignore-formatted -t "$cluster_id" -c "$PROPS" \
    >"$LOG_DIR/format.log" 2>&1 9>&-; then
    cat "$LOG_DIR/format.log" >&2
    die "kafka.tools.StorageTool format failed"
  fi
}

# Ready: the broker's log says it started (this run's log only), and it accepts connections.
broker_ready() {
  grep -q 'Kafka Server started' "$LOG_FILE" 2>/dev/null && port_open "$PORT"
}

running_port() { sed -nE 's/^listeners=PLAINTEXT:\/\/[^:]+:([0-9]+),.*/\1/p' "$PROPS" 2>/dev/null || true; }

cmd_start() {
  local started=$SECONDS
  ensure_java
  reuse_running_daemon "connections on $URL" port_open "$PORT" && return 0
  remove_stale_pid_file
  check_port_free "$PORT" "UPDRAFT_KAFKA_PORT"
  check_port_free "$CONTROLLER_PORT" "UPDRAFT_KAFKA_CONTROLLER_PORT"
  fetch_jars "$POM" "$LIBS"
  write_config
  ensure_formatted
  rotate_log "$LOG_FILE"
  rotate_log "$OUT_FILE"
  log "starting on $URL (log: $LOG_FILE)"
  start_daemon "$OUT_FILE" java "$MARKER" "${JVM_OPTS[@]}" -cp "$LIBS/*" kafka.Kafka "$PROPS"
  wait_for "$START_TIMEOUT" "broker ready (\"Kafka Server started\" and $URL accepting)" \
    "$LOG_FILE" broker_ready
  log "ready in $((SECONDS - started))s: $URL"
}

cmd_stop() { stop_daemon "$STOP_TIMEOUT"; }

cmd_status() { daemon_status "$HOST:$(running_port)"; }

cmd_destroy() {
  stop_daemon "$STOP_TIMEOUT"
  rm -rf "$DATA_DIR" "$LOG_DIR" "$CONF_DIR" "$ROOT/run"
  log "removed the data in $ROOT (the jars in $LIBS stay)"
}

need_running() {
  running_pid >/dev/null || die "not running: scripts/kafka.sh start"
}

usage() {
  echo "usage: $0 start|stop|status|url|topics [args]|produce TOPIC|consume TOPIC [args]|destroy" >&2
  exit 2
}

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  start) with_lock cmd_start ;;
  stop) with_lock cmd_stop ;;
  status) cmd_status ;;
  url) echo "$URL" ;;
  topics)
    need_running
    tool_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$URL" "$@"
    ;;
  produce)
    [[ $# -ge 1 ]] || usage
    need_running
    topic="$1"
    shift
    tool_java kafka.tools.ConsoleProducer --bootstrap-server "$URL" --topic "$topic" "$@"
    ;;
  consume)
    [[ $# -ge 1 ]] || usage
    need_running
    topic="$1"
    shift
    tool_java org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$URL" \
      --topic "$topic" --from-beginning "$@"
    ;;
  destroy) with_lock cmd_destroy ;;
  *) usage ;;
esac
