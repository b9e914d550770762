#!/usr/bin/env bash
# Runs the benchmarks against a real PostgreSQL on loopback:
#   scripts/bench.sh [updraft-bench args...]
# Starts the server like scripts/test.sh does (and stops it at the end if this run started it),
# exports UPDRAFT_BENCH_DATABASE_URL, and runs the release build of `updraft-bench`. The
# streaming scenarios (kafka_to_cassandra, kafka_to_s3) also get Kafka, Cassandra and S3:
#   scripts/bench.sh kafka_to_cassandra kafka_to_s3 [--messages=1000000]
# The SQL streaming scenarios (kafka_to_sql, sql_to_kafka) get Kafka and MariaDB, and run on
# PostgreSQL and MariaDB:
#   scripts/bench.sh kafka_to_sql sql_to_kafka [--messages=1000000]
# The assets scenario gets Kafka (for its watcher's figures):
#   scripts/bench.sh assets
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export UPDRAFT_CACHE="${UPDRAFT_CACHE:-$HOME/.cache/updraft}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$UPDRAFT_CACHE/target}"
# shellcheck source=scripts/lib/servers.sh
source scripts/lib/servers.sh

trap stop_servers EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Build first: the server need not sit idle through a release build.
cargo build --release --bin updraft-bench
start_postgres
UPDRAFT_BENCH_DATABASE_URL="$("$SCRIPTS_DIR/postgres.sh" url)"
export UPDRAFT_BENCH_DATABASE_URL
if [[ " $* " == *" kafka_to_cassandra "* || " $* " == *" kafka_to_s3 "* ]]; then
  start_kafka
  start_cassandra
  start_s3
  export UPDRAFT_BENCH_KAFKA_BROKERS="$UPDRAFT_TEST_KAFKA_BROKERS"
  export UPDRAFT_BENCH_CASSANDRA_HOST="$UPDRAFT_TEST_CASSANDRA_HOST"
  export UPDRAFT_BENCH_S3_ENDPOINT="$UPDRAFT_TEST_S3_ENDPOINT"
fi
if [[ " $* " == *" kafka_to_sql "* || " $* " == *" sql_to_kafka "* ]]; then
  start_kafka
  start_mariadb
  export UPDRAFT_BENCH_KAFKA_BROKERS="$UPDRAFT_TEST_KAFKA_BROKERS"
  export UPDRAFT_BENCH_POSTGRES_URL="$UPDRAFT_BENCH_DATABASE_URL"
  export UPDRAFT_BENCH_MYSQL_URL="$UPDRAFT_TEST_MYSQL_URL"
fi
if [[ " $* " == *" assets "* ]]; then
  start_kafka
  export UPDRAFT_BENCH_KAFKA_BROKERS="$UPDRAFT_TEST_KAFKA_BROKERS"
fi
cargo run --release --bin updraft-bench -- "$@"
