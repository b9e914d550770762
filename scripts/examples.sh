#!/usr/bin/env bash
# What the two streaming example DAGs need, on one machine and without Docker. They start paused
# (`is_paused_upon_creation: true`) because a first start has none of it:
#
#   scripts/examples.sh start   start Kafka, Cassandra and the S3 server (scripts/kafka.sh,
#                               cassandra.sh, s3.sh: downloaded into ~/.cache/updraft on the first
#                               start, seconds later on), create the lake's bucket, and store the
#                               examples' connections in Updraft's metadata database
#                               (`updraft connections add`); then unpause the two DAGs
#   scripts/examples.sh stop    stop the three servers
#
#   dags/user_ingestion.yaml    randomuser.me -> Kafka -> Cassandra
#   dags/market_data_lake.yaml  stock quotes -> Kafka -> S3 objects by date
#
# The connections go into the database of the installation in UPDRAFT_HOME (default .updraft in
# the clone, where the README's `cargo run --release -- standalone` keeps it; export the same
# UPDRAFT_HOME if yours is elsewhere). A running standalone reads them at the next try: no
# restart. The two public APIs need the internet; the servers listen on 127.0.0.1 only.
#
# Invariant: idempotent: the server scripts reuse a running server, `connections add` replaces.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SCRIPTS_DIR="$PWD/scripts"
BUCKET=market-data

# The CLI of this clone (built by `cargo run --release` already, so this takes seconds).
updraft() {
  cargo run --release --quiet -- "$@"
}

start() {
  "$SCRIPTS_DIR/kafka.sh" start
  "$SCRIPTS_DIR/cassandra.sh" start
  "$SCRIPTS_DIR/s3.sh" start
  local s3
  s3=$("$SCRIPTS_DIR/s3.sh" url)
  # moto keeps buckets in memory (a restart empties it) and needs no signature to create one.
  curl -fsS -X PUT "$s3/$BUCKET" >/dev/null
  updraft connections add kafka_default --uri "kafka://$("$SCRIPTS_DIR/kafka.sh" url)" \
    --description "scripts/kafka.sh"
  updraft connections add cassandra_default --uri "cassandra://$("$SCRIPTS_DIR/cassandra.sh" url)" \
    --description "scripts/cassandra.sh"
  # Any key and secret are accepted by moto.
  updraft connections add aws_default \
    --uri "s3://examples:examples@${s3#http://}?scheme=http&region_name=us-east-1" \
    --description "scripts/s3.sh (moto)"
  updraft connections add randomuser_api --uri https://randomuser.me \
    --description "public API of dags/user_ingestion.yaml"
  updraft connections add stock_api --uri https://financialmodelingprep.com \
    --description "public API of dags/market_data_lake.yaml (params.apikey: your key)"
  cat <<EOF

The example pipelines are ready. Unpause them in the DAG list (http://127.0.0.1:8080/), or:
  cargo run --release -- dags unpause user_ingestion
  cargo run --release -- dags unpause market_data_lake
EOF
}

stop() {
  "$SCRIPTS_DIR/s3.sh" stop
  "$SCRIPTS_DIR/cassandra.sh" stop
  "$SCRIPTS_DIR/kafka.sh" stop
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *)
    echo "usage: scripts/examples.sh start|stop" >&2
    exit 2
    ;;
esac
