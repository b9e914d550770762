# shellcheck shell=bash
# Sourced by scripts/test.sh and scripts/bench.sh: starts the real servers the suite talks to and
# stops, at exit, only the ones this run started (a server you started yourself keeps running).
#
# Which servers: PostgreSQL always (UPDRAFT_TEST_DATABASE_URL); the others only when
# UPDRAFT_SERVERS (a comma list; scripts/test.sh defaults it to `all`, this file to `postgres`)
# names them, or `all`:
#   kafka       scripts/kafka.sh      UPDRAFT_TEST_KAFKA_BROKERS    127.0.0.1:19092
#   cassandra   scripts/cassandra.sh  UPDRAFT_TEST_CASSANDRA_HOST   127.0.0.1:19042
#   s3          scripts/s3.sh         UPDRAFT_TEST_S3_ENDPOINT      http://127.0.0.1:19000
#   registry    scripts/registry.sh   UPDRAFT_TEST_SCHEMA_REGISTRY_URL
#                                     http://127.0.0.1:18081/apis/ccompat/v7
#   mariadb     scripts/mariadb.sh    UPDRAFT_TEST_MYSQL_URL        mysql://updraft:updraft@127.0.0.1:13306/updraft
#   smtp        scripts/smtp.sh       UPDRAFT_TEST_SMTP_HOST        127.0.0.1:11025
#                                     UPDRAFT_TEST_SMTP_MAILDIR     $UPDRAFT_CACHE/smtp/mail (each
#                                     message as NAME.eml, raw, and NAME.json, its envelope)
# e.g. UPDRAFT_SERVERS=postgres,kafka,s3 scripts/test.sh. An unknown name fails the run.
#
# Adding a server:
#   1. write scripts/<name>.sh with start|stop|status|url, like scripts/kafka.sh (helpers for a
#      one-process server in scripts/lib/daemon.sh);
#   2. add a start_<name> function below that calls start_server and exports the variable the
#      tests read (UPDRAFT_TEST_<NAME>_..., documented in the README);
#   3. add the name to KNOWN_SERVERS.
#
# Invariant: after start_servers returns, UPDRAFT_TEST_DATABASE_URL is set, and so is the
# variable of every server UPDRAFT_SERVERS names; a server that cannot start fails the run. Tests
# of a server skip when its variable is unset (it was not asked for), and fail when CI is set.

# Names of the servers this run started, in start order; stop_servers stops them in reverse.
STARTED_SERVERS=()
# "NAME URL" lines for the summary.
SERVER_URLS=()

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# start_server NAME: runs scripts/NAME.sh start, remembering whether it was already running.
start_server() {
  local name="$1" script="$SCRIPTS_DIR/$1.sh" was_running=0
  "$script" status >/dev/null 2>&1 && was_running=1
  "$script" start
  ((was_running)) || STARTED_SERVERS+=("$name")
  SERVER_URLS+=("$name $("$script" url)")
}

start_postgres() {
  start_server postgres
  # Each PostgreSQL test creates its own database: drop what earlier runs left behind.
  "$SCRIPTS_DIR/postgres.sh" clean-test-dbs
  UPDRAFT_TEST_DATABASE_URL="$("$SCRIPTS_DIR/postgres.sh" url)"
  export UPDRAFT_TEST_DATABASE_URL
}

start_kafka() {
  start_server kafka
  UPDRAFT_TEST_KAFKA_BROKERS="$("$SCRIPTS_DIR/kafka.sh" url)"
  export UPDRAFT_TEST_KAFKA_BROKERS
}

start_cassandra() {
  start_server cassandra
  UPDRAFT_TEST_CASSANDRA_HOST="$("$SCRIPTS_DIR/cassandra.sh" url)"
  export UPDRAFT_TEST_CASSANDRA_HOST
}

start_s3() {
  start_server s3
  UPDRAFT_TEST_S3_ENDPOINT="$("$SCRIPTS_DIR/s3.sh" url)"
  export UPDRAFT_TEST_S3_ENDPOINT
}

# The Confluent-compatible schema registry (Apicurio's /apis/ccompat/v7), for the Avro tests.
start_registry() {
  start_server registry
  UPDRAFT_TEST_SCHEMA_REGISTRY_URL="$("$SCRIPTS_DIR/registry.sh" url)"
  export UPDRAFT_TEST_SCHEMA_REGISTRY_URL
}

start_mariadb() {
  start_server mariadb
  UPDRAFT_TEST_MYSQL_URL="$("$SCRIPTS_DIR/mariadb.sh" url)"
  export UPDRAFT_TEST_MYSQL_URL
}

# A plain-SMTP server (aiosmtpd; AUTH PLAIN/LOGIN with any user and password, no TLS) that
# saves every message it receives in a folder: the tests read the address and the folder.
start_smtp() {
  start_server smtp
  UPDRAFT_TEST_SMTP_HOST="$("$SCRIPTS_DIR/smtp.sh" url)"
  UPDRAFT_TEST_SMTP_MAILDIR="$("$SCRIPTS_DIR/smtp.sh" maildir)"
  export UPDRAFT_TEST_SMTP_HOST UPDRAFT_TEST_SMTP_MAILDIR
}

# The servers UPDRAFT_SERVERS may name, in start order (`all` means every one).
KNOWN_SERVERS=(postgres kafka cassandra s3 registry mariadb smtp)

# The one place that decides which servers the test suite gets: PostgreSQL always, the others
# when UPDRAFT_SERVERS names them.
start_servers() {
  local name known wanted=" postgres "
  local -a names
  IFS=, read -ra names <<<"${UPDRAFT_SERVERS:-postgres}"
  for name in "${names[@]}"; do
    name="${name//[[:space:]]/}"
    [[ -n $name ]] || continue
    if [[ $name == all ]]; then
      wanted=" ${KNOWN_SERVERS[*]} "
      continue
    fi
    if [[ " ${KNOWN_SERVERS[*]} " != *" $name "* ]]; then
      echo "UPDRAFT_SERVERS: unknown server '$name' (known: ${KNOWN_SERVERS[*]}, all)" >&2
      return 1
    fi
    wanted+="$name "
  done
  for known in "${KNOWN_SERVERS[@]}"; do
    if [[ $wanted == *" $known "* ]]; then
      "start_$known"
    fi
  done
}

# Stops what this run started, unless UPDRAFT_KEEP_SERVERS=1. Never fails the run by itself.
stop_servers() {
  local i name
  if [[ ${UPDRAFT_KEEP_SERVERS:-0} == 1 ]]; then
    ((${#STARTED_SERVERS[@]} == 0)) || echo "keeping servers running: ${STARTED_SERVERS[*]}" >&2
    return 0
  fi
  for ((i = ${#STARTED_SERVERS[@]} - 1; i >= 0; i--)); do
    name="${STARTED_SERVERS[i]}"
    "$SCRIPTS_DIR/$name.sh" stop || echo "warning: could not stop $name" >&2
  done
  STARTED_SERVERS=()
}
