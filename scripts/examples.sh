#!/usr/bin/env bash
# What the streaming example DAGs need, on one machine and without Docker. They start paused
# (`is_paused_upon_creation: true`) because a first start has none of it:
#
#   scripts/examples.sh start   start Kafka, Cassandra, the S3 server, the schema registry,
#                               MariaDB and PostgreSQL (scripts/<name>.sh: downloaded or
#                               installed into ~/.cache/updraft on the first start, seconds later
#                               on), create the lake's bucket and the transit example's stations
#                               table, and store the examples' connections in Updraft's metadata
#                               database (`updraft connections add`); then unpause the DAGs
#   scripts/examples.sh stop    stop the servers
#
#   dags/user_ingestion.yaml    randomuser.me -> Kafka -> Cassandra
#   dags/market_data_lake.yaml  stock quotes -> Kafka -> S3 objects by date
#   dags/flight_board.yaml      a flights API -> Kafka (transformed) -> MariaDB mart -> aggregates
#   dags/transit_status.yaml    PostgreSQL stations + simulated events -> Kafka (Avro) -> PostgreSQL
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

  "$SCRIPTS_DIR/registry.sh" start
  "$SCRIPTS_DIR/mariadb.sh" start
  "$SCRIPTS_DIR/postgres.sh" start
  updraft connections add schema_registry_default --uri "$("$SCRIPTS_DIR/registry.sh" url)" \
    --description "scripts/registry.sh (Apicurio, Confluent-compatible API)"
  updraft connections add mart --uri "$("$SCRIPTS_DIR/mariadb.sh" url)" \
    --description "scripts/mariadb.sh: the flight board's mart"
  updraft connections add transit_db --uri "$("$SCRIPTS_DIR/postgres.sh" url)" \
    --description "scripts/postgres.sh: the transit example's stations and dashboard tables"
  updraft connections add flights_api --uri "https://api.aviationstack.com" \
    --description "AviationStack-shaped flights API of dags/flight_board.yaml (add ?access_key=YOUR_KEY)"
  updraft connections add weather_api --uri "http://127.0.0.1:8089" \
    --description "weather endpoint of dags/transit_status.yaml (GET /weather/current)"
  # The transit example reads the operator's stations table: create it and load the sample.
  "$SCRIPTS_DIR/postgres.sh" psql -q -f dags/transit_status/stations.sql
  "$SCRIPTS_DIR/postgres.sh" psql -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE TEMP TABLE s (station_id int, stop_name text, station_name text, line text,
  direction_id text, line_order int, ridership int);
\copy s FROM 'tests/fixtures/recorded/cta_stations.csv' CSV HEADER
INSERT INTO stations (station_id, stop_name, station_name, direction_id, line_order, red, blue,
  green, avg_hourly_entries)
SELECT station_id, stop_name, station_name, direction_id, line_order, line = 'red',
  line = 'blue', line = 'green', ridership
FROM s ON CONFLICT (station_id) DO NOTHING;
SQL
  cat <<EOF

The example pipelines are ready. Unpause them in the DAG list (http://127.0.0.1:8080/), or:
  cargo run --release -- dags unpause user_ingestion
  cargo run --release -- dags unpause market_data_lake
  cargo run --release -- dags unpause flight_board
  cargo run --release -- dags unpause transit_status
EOF
}

stop() {
  "$SCRIPTS_DIR/mariadb.sh" stop
  "$SCRIPTS_DIR/registry.sh" stop
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
