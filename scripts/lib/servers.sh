# shellcheck shell=bash
# Sourced by scripts/test.sh and scripts/bench.sh: starts the real servers the suite talks to and
# stops, at exit, only the ones this run started (a server you started yourself keeps running).
#
# Adding a server (Kafka, Cassandra, S3, MySQL/MariaDB):
#   1. write scripts/<name>.sh with start|stop|status|url, like scripts/postgres.sh;
#   2. add a start_<name> function below that calls start_server and exports the URL variable
#      the tests read (UPDRAFT_TEST_<NAME>_URL, documented in the README);
#   3. add start_<name> to start_servers.
#
# Invariant: after start_servers returns, every URL variable the tests read is set; a server that
# cannot start fails the run (tests skip only when a variable is unset, which never happens here).

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
  UPDRAFT_TEST_DATABASE_URL="$("$SCRIPTS_DIR/postgres.sh" url)"
  export UPDRAFT_TEST_DATABASE_URL
}

# The one place that lists the servers the test suite needs.
start_servers() {
  start_postgres
  # start_kafka
  # start_cassandra
  # start_s3
  # start_mysql
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
