//! Helpers of the table source and sink tests (`sql_to_kafka`, `kafka_to_sql`): a fresh
//! database per test on the test PostgreSQL and MariaDB servers, the tests' own sqlx client to
//! set up and read tables, and Kafka without the other streaming servers.
#![allow(dead_code)]

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Connection};

use super::common::fresh_postgres_url;
use super::streaming::{Servers, unique};

/// A database of its own on one of the test servers.
pub struct TestDb {
    /// `postgres`, `mysql` or `sqlite`.
    pub kind: &'static str,
    /// Its URL, for `UPDRAFT_CONN_DB`.
    pub url: String,
    /// The test's own connection.
    pub pool: AnyPool,
}

impl TestDb {
    /// A fresh PostgreSQL database, or None when the test command started none.
    pub async fn postgres() -> Option<TestDb> {
        let url = fresh_postgres_url().await?;
        Some(TestDb::open("postgres", url).await)
    }

    /// A fresh MariaDB/MySQL database on `UPDRAFT_TEST_MYSQL_URL`, or None (with a note) when
    /// the test command did not start the server.
    pub async fn mysql() -> Option<TestDb> {
        let Some(base) = std::env::var("UPDRAFT_TEST_MYSQL_URL").ok().filter(|v| !v.is_empty())
        else {
            assert!(std::env::var_os("CI").is_none(), "UPDRAFT_TEST_MYSQL_URL must be set in CI");
            eprintln!("UPDRAFT_TEST_MYSQL_URL is not set: MariaDB part SKIPPED");
            return None;
        };
        sqlx::any::install_default_drivers();
        let name = unique("t");
        let mut conn = sqlx::AnyConnection::connect(&base).await.expect("connect to MariaDB");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create");
        let _ = conn.close().await;
        let cut = base.rfind('/').expect("database URL has a path");
        Some(TestDb::open("mysql", format!("{}/{name}", &base[..cut])).await)
    }

    /// A new SQLite database file in `dir`.
    pub async fn sqlite(dir: &std::path::Path) -> TestDb {
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}/user.db", dir.display());
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&format!("{url}?mode=rwc"))
            .await
            .expect("create the SQLite database");
        TestDb { kind: "sqlite", url, pool }
    }

    async fn open(kind: &'static str, url: String) -> TestDb {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    let utc = if kind == "postgres" {
                        "SET TIME ZONE 'UTC'"
                    } else {
                        "SET time_zone = '+00:00'"
                    };
                    sqlx::Executor::execute(conn, utc).await.map(|_| ())
                })
            })
            .connect(&url)
            .await
            .expect("connect to the test database");
        TestDb { kind, url, pool }
    }

    /// Runs a statement.
    pub async fn exec(&self, sql: &str) {
        sqlx::query(sql).execute(&self.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The first column of every row, as i64.
    pub async fn ints(&self, sql: &str) -> Vec<i64> {
        let rows = sqlx::query_scalar::<_, i64>(sql).fetch_all(&self.pool).await;
        rows.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// One `i64`.
    pub async fn int(&self, sql: &str) -> i64 {
        let v = sqlx::query_scalar::<_, i64>(sql).fetch_one(&self.pool).await;
        v.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// `(a BIGINT, b TEXT)` rows.
    pub async fn pairs(&self, sql: &str) -> Vec<(i64, Option<String>)> {
        let rows = sqlx::query_as::<_, (i64, Option<String>)>(sql).fetch_all(&self.pool).await;
        rows.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The type of a text column in this dialect.
    pub fn text(&self) -> &'static str {
        if self.kind == "postgres" { "TEXT" } else { "VARCHAR(200)" }
    }

    /// The type of a microsecond timestamp column.
    pub fn timestamp(&self) -> &'static str {
        if self.kind == "postgres" { "TIMESTAMPTZ" } else { "DATETIME(6)" }
    }

    /// The database's clock minus `secs` seconds, as an SQL expression.
    pub fn ago(&self, secs: f64) -> String {
        let us = (secs * 1e6) as i64;
        if self.kind == "postgres" {
            format!("CURRENT_TIMESTAMP - INTERVAL '{us} microseconds'")
        } else {
            format!("CURRENT_TIMESTAMP(6) - INTERVAL {us} MICROSECOND")
        }
    }
}

/// Kafka alone (the Cassandra and S3 addresses are not needed by these tests), or None with a
/// note when the test command did not start it.
pub fn kafka() -> Option<Servers> {
    let Some(kafka) = std::env::var("UPDRAFT_TEST_KAFKA_BROKERS").ok().filter(|v| !v.is_empty())
    else {
        assert!(std::env::var_os("CI").is_none(), "UPDRAFT_TEST_KAFKA_BROKERS must be set in CI");
        eprintln!("UPDRAFT_TEST_KAFKA_BROKERS is not set: test SKIPPED");
        return None;
    };
    Some(Servers { kafka, cassandra: String::new(), s3: String::new() })
}

/// Produces a tombstone (a key without a payload) and waits for its acknowledgement.
pub async fn produce_tombstone(k: &Servers, topic: &str, key: &str) {
    let producer = k.producer();
    let record: rdkafka::producer::FutureRecord<'_, str, [u8]> =
        rdkafka::producer::FutureRecord::to(topic).key(key);
    producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| e).expect("tombstone");
}

/// The connection settings of a test: Kafka as `kafka_default`, the database as `db`.
pub fn conns(kafka: &Servers, db: &TestDb) -> Vec<(String, String)> {
    vec![
        ("UPDRAFT_CONN_KAFKA_DEFAULT".into(), format!("kafka://{}", kafka.kafka)),
        ("UPDRAFT_CONN_DB".into(), db.url.clone()),
    ]
}
