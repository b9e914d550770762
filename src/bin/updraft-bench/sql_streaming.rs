//! The SQL streaming scenarios: `kafka_to_sql` (Kafka -> table upserts) and `sql_to_kafka`
//! (table -> Kafka) on N messages, each beside a bare loop doing the same work with sqlx and
//! rdkafka alone (typed pools, no DAG, no cursor or offset bookkeeping, no dead letters).
//!
//! `kafka_to_sql`: both sides read the same topic with their own group from the beginning,
//! parse each message and upsert batches of 5,000 rows (the task's default `batch_size`) in
//! one multi-row statement per transaction. `sql_to_kafka`: both sides read the same table by
//! id in batches of 10,000 (the task's default) and produce each row as JSON keyed by its id,
//! waiting for every acknowledgement before the next batch. Each side runs twice, in the order
//! bare, updraft, updraft, bare (`--updraft-first`: the other way round), each run on a server
//! that has written out the previous run's data (`Db::settle`); the figures are the sides'
//! means. Servers come from
//! `UPDRAFT_BENCH_KAFKA_BROKERS`, `UPDRAFT_BENCH_POSTGRES_URL` and `UPDRAFT_BENCH_MYSQL_URL`;
//! a database whose variable is unset is skipped. Only loopback.

use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::{MySqlPool, PgPool, QueryBuilder};

use crate::Bench;

/// Rows per transaction on both sides of `kafka_to_sql` (the task's default `batch_size`).
const SINK_BATCH: usize = 5_000;
/// Rows per poll on both sides of `sql_to_kafka` (the task's default `batch_size`).
const SOURCE_BATCH: i64 = 10_000;

/// A database of the scenarios.
#[derive(Clone)]
pub enum Db {
    Postgres(PgPool, String),
    Mysql(MySqlPool, String),
}

impl Db {
    /// The databases whose URL is set, each connected.
    pub async fn from_env() -> Vec<Db> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut out = Vec::new();
        if let Some(url) = var("UPDRAFT_BENCH_POSTGRES_URL") {
            out.push(Db::Postgres(PgPool::connect(&url).await.expect("PostgreSQL"), url));
        }
        if let Some(url) = var("UPDRAFT_BENCH_MYSQL_URL") {
            out.push(Db::Mysql(MySqlPool::connect(&url).await.expect("MariaDB"), url));
        }
        out
    }

    pub fn name(&self) -> &'static str {
        match self {
            Db::Postgres(..) => "PostgreSQL",
            Db::Mysql(..) => "MariaDB",
        }
    }

    /// A short name for tables, topics, groups and DAGs of this database's runs.
    fn short(&self) -> &'static str {
        match self {
            Db::Postgres(..) => "pg",
            Db::Mysql(..) => "my",
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Db::Postgres(_, u) | Db::Mysql(_, u) => u,
        }
    }

    async fn exec(&self, sql: &str) {
        match self {
            Db::Postgres(p, _) => sqlx::query(sql).execute(p).await.map(|_| ()),
            Db::Mysql(p, _) => sqlx::query(sql).execute(p).await.map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Waits until the server has written out what the previous side left in memory, so that
    /// neither side pays for the other's writes: PostgreSQL runs a checkpoint; MariaDB flushes
    /// until InnoDB has (almost) no dirty pages left (at most a minute).
    async fn settle(&self) {
        let started = Instant::now();
        match self {
            Db::Postgres(p, _) => {
                if let Err(e) = sqlx::query("CHECKPOINT").execute(p).await {
                    println!("  (no checkpoint between the sides: {e})");
                }
            }
            Db::Mysql(p, _) => {
                // InnoDB flushes lazily: ask for every dirty page now, then restore the setting.
                let pct: f64 = sqlx::query_scalar("SELECT @@GLOBAL.innodb_max_dirty_pages_pct")
                    .fetch_one(p)
                    .await
                    .expect("setting");
                let set = |v: f64| format!("SET GLOBAL innodb_max_dirty_pages_pct = {v}");
                let forced = sqlx::query(&set(0.0)).execute(p).await.is_ok();
                let dirty = "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE \
                             VARIABLE_NAME = 'INNODB_BUFFER_POOL_PAGES_DIRTY'";
                while started.elapsed() < Duration::from_secs(60) {
                    let n: String = sqlx::query_scalar(dirty).fetch_one(p).await.expect("status");
                    if n.parse::<u64>().unwrap_or(0) <= 100 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                if forced {
                    sqlx::query(&set(pct)).execute(p).await.expect("restore the setting");
                }
            }
        }
    }

    async fn drop_table(&self, name: &str) {
        self.exec(&format!("DROP TABLE IF EXISTS {name}")).await;
    }

    /// Creates the quotes table `name` (dropping an old one).
    pub async fn quotes_table(&self, name: &str) {
        self.drop_table(name).await;
        let (text, double) = match self {
            Db::Postgres(..) => ("TEXT", "DOUBLE PRECISION"),
            Db::Mysql(..) => ("VARCHAR(16)", "DOUBLE"),
        };
        self.exec(&format!(
            "CREATE TABLE {name} (id BIGINT PRIMARY KEY, symbol {text}, price {double}, \
             volume BIGINT, ts BIGINT)"
        ))
        .await;
    }

    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match self {
            Db::Postgres(p, _) => sqlx::query_scalar(&sql).fetch_one(p).await,
            Db::Mysql(p, _) => sqlx::query_scalar(&sql).fetch_one(p).await,
        }
        .expect("count")
    }

    /// Upserts `rows` in one transaction, one multi-row statement.
    async fn upsert(&self, table: &str, rows: &[Quote]) {
        macro_rules! write {
            ($pool:expr, $tail:expr) => {{
                let mut qb = QueryBuilder::new(format!(
                    "INSERT INTO {table} (id, symbol, price, volume, ts) "
                ));
                qb.push_values(rows, |mut b, r| {
                    b.push_bind(r.id)
                        .push_bind(r.symbol.clone())
                        .push_bind(r.price)
                        .push_bind(r.volume)
                        .push_bind(r.ts);
                });
                qb.push($tail);
                let mut tx = $pool.begin().await.expect("begin");
                qb.build().execute(&mut *tx).await.expect("upsert");
                tx.commit().await.expect("commit");
            }};
        }
        match self {
            Db::Postgres(p, _) => write!(
                p,
                " ON CONFLICT (id) DO UPDATE SET symbol = EXCLUDED.symbol, price = \
                 EXCLUDED.price, volume = EXCLUDED.volume, ts = EXCLUDED.ts"
            ),
            Db::Mysql(p, _) => write!(
                p,
                " ON DUPLICATE KEY UPDATE symbol = VALUES(symbol), price = VALUES(price), \
                 volume = VALUES(volume), ts = VALUES(ts)"
            ),
        }
    }

    /// Fills `table` with quotes 1..=n.
    pub async fn fill(&self, table: &str, n: usize) {
        let started = Instant::now();
        let mut i = 1;
        while i <= n {
            let rows: Vec<Quote> = (i..(i + SINK_BATCH).min(n + 1)).map(Quote::nth).collect();
            i += rows.len();
            self.upsert(table, &rows).await;
        }
        println!("  filled {table} with {n} rows in {:.1} s", started.elapsed().as_secs_f64());
    }

    /// The next batch after `after`, by id.
    async fn batch(&self, table: &str, after: i64) -> Vec<Quote> {
        let sql = format!(
            "SELECT id, symbol, price, volume, ts FROM {table} WHERE id > {} ORDER BY id LIMIT \
             {SOURCE_BATCH}",
            if matches!(self, Db::Postgres(..)) { "$1" } else { "?" }
        );
        type Row = (i64, String, f64, i64, i64);
        let rows: Vec<Row> = match self {
            Db::Postgres(p, _) => sqlx::query_as(&sql).bind(after).fetch_all(p).await,
            Db::Mysql(p, _) => sqlx::query_as(&sql).bind(after).fetch_all(p).await,
        }
        .expect("select");
        rows.into_iter()
            .map(|(id, symbol, price, volume, ts)| Quote { id, symbol, price, volume, ts })
            .collect()
    }
}

/// One row / message of the scenarios (the quotes feed of the other streaming scenarios).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Quote {
    id: i64,
    symbol: String,
    price: f64,
    volume: i64,
    ts: i64,
}

impl Quote {
    fn nth(i: usize) -> Quote {
        let symbols = ["AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA", "NFLX"];
        Quote {
            id: i as i64,
            symbol: symbols[i % symbols.len()].to_string(),
            price: 100.0 + (i % 10_000) as f64 / 100.0,
            volume: 1000 + (i % 5000) as i64,
            ts: 1_767_323_045_000 + i as i64,
        }
    }
}

fn config(kafka: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", kafka);
    c
}

/// The bare rdkafka -> sqlx loop: recv, parse, collect 5,000, upsert them in one transaction.
pub async fn bare_kafka_to_sql(
    kafka: &str,
    db: &Db,
    table: &str,
    topic: &str,
    n: usize,
) -> Duration {
    let consumer: StreamConsumer = config(kafka)
        .set("group.id", format!("{topic}-bare-{table}"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let started = Instant::now();
    let mut batch = Vec::with_capacity(SINK_BATCH);
    let mut read = 0;
    while read < n {
        match consumer.recv().await {
            Ok(m) => {
                read += 1;
                let v: serde_json::Value =
                    serde_json::from_slice(m.payload().unwrap_or_default()).expect("json");
                batch.push(Quote {
                    id: v["id"].as_i64().unwrap_or(0),
                    symbol: v["symbol"].as_str().unwrap_or("").to_string(),
                    price: v["price"].as_f64().unwrap_or(0.0),
                    volume: v["volume"].as_i64().unwrap_or(0),
                    ts: v["ts"].as_i64().unwrap_or(0),
                });
                if batch.len() >= SINK_BATCH || read == n {
                    db.upsert(table, &batch).await;
                    batch.clear();
                }
            }
            Err(KafkaError::PartitionEOF(_)) => {}
            Err(e) => panic!("consume: {e}"),
        }
    }
    started.elapsed()
}

/// The bare sqlx -> rdkafka loop: select 10,000 by id, produce each as JSON keyed by its id,
/// wait for every acknowledgement, next batch.
pub async fn bare_sql_to_kafka(
    kafka: &str,
    db: &Db,
    table: &str,
    topic: &str,
) -> (Duration, usize) {
    let producer: FutureProducer = config(kafka)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let started = Instant::now();
    let (mut after, mut total) = (0, 0);
    loop {
        let rows = db.batch(table, after).await;
        let Some(last) = rows.last() else { break };
        after = last.id;
        total += rows.len();
        let p = &producer;
        let mut sends = futures::stream::iter(rows)
            .map(|r| async move {
                let key = r.id.to_string();
                let payload = serde_json::to_vec(&r).expect("json");
                let rec = FutureRecord::to(topic).payload(&payload).key(&key);
                p.send(rec, Duration::from_secs(60)).await.map(|_| ()).map_err(|(e, _)| e)
            })
            .buffer_unordered(10_000);
        while let Some(r) = sends.next().await {
            r.expect("produce");
        }
    }
    (started.elapsed(), total)
}

/// The DAG of the Updraft side of `kafka_to_sql`.
pub fn kafka_to_sql_dag(name: &str, topic: &str, table: &str) -> String {
    format!(
        "dag_id: {name}\ntasks:\n  sink:\n    type: kafka_to_sql\n    sql_connection: db\n    \
         topic: {topic}\n    group_id: {topic}-updraft-{table}\n    table: {table}\n    \
         mode: upsert\n    key_columns: [id]\n    columns: {{id: id, symbol: symbol, price: \
         price, volume: volume, ts: ts}}\n    progress_interval: 10s\n"
    )
}

/// The DAG of the Updraft side of `sql_to_kafka`.
pub fn sql_to_kafka_dag(name: &str, topic: &str, table: &str) -> String {
    format!(
        "dag_id: {name}\ntasks:\n  src:\n    type: sql_to_kafka\n    sql_connection: db\n    \
         table: {table}\n    mode: incrementing\n    incrementing_column: id\n    \
         topic: {topic}\n    progress_interval: 10s\n"
    )
}

impl Bench {
    /// This bench with the connections of the SQL scenarios: Kafka and `db`.
    fn with_db(&self, kafka: &str, db: &Db) -> Bench {
        Bench {
            postgres: self.postgres,
            dir: self.dir.clone(),
            connections: vec![
                ("kafka_default".into(), format!("kafka://{kafka}")),
                ("db".into(), db.url().to_string()),
            ],
            updraft_first: self.updraft_first,
        }
    }

    /// `kafka_to_sql` (a one-task DAG run by the engine) beside the bare loop, per database.
    pub(crate) async fn table_sink(&self, kafka: &str, dbs: &[Db], n: usize) {
        let id = Utc::now().timestamp_millis();
        let topic = format!("bench_sql_{id}");
        let feed =
            crate::streaming::Servers { kafka: kafka.into(), cassandra: "".into(), s3: "".into() };
        feed.fill_topic(&topic, n).await;
        for db in dbs {
            let bench = self.with_db(kafka, db);
            let mut times = Times::default();
            for (round, side) in self.rounds().into_iter().enumerate() {
                // Names per run: each run's table, consumer group and metadata database are its
                // own, and every run reads the whole topic.
                let table = format!("{}_{}_{id}_{round}", side.name(), db.short());
                db.quotes_table(&table).await;
                db.settle().await;
                let took = match side {
                    Side::Bare => bare_kafka_to_sql(kafka, db, &table, &topic, n).await,
                    Side::Updraft => {
                        let name = format!("to_sql_{}_{round}", db.short());
                        let dag = kafka_to_sql_dag(&name, &topic, &table);
                        let (run, _, took) = bench.run_dag(&name, &dag, 4).await;
                        assert_eq!(run.state.as_str(), "success", "the kafka_to_sql run failed");
                        took
                    }
                };
                // The feed's ids repeat no key: every message is a row.
                assert_eq!(db.count(&table).await, n as i64, "{table} has every row");
                db.drop_table(&table).await;
                times.add(side, took);
            }
            times.report(&format!("kafka_to_sql ({})", db.name()), n);
        }
    }

    /// `sql_to_kafka` beside the bare loop, per database.
    pub(crate) async fn table_source(&self, kafka: &str, dbs: &[Db], n: usize) {
        let id = Utc::now().timestamp_millis();
        for db in dbs {
            let s = db.short();
            let table = format!("quotes_{s}_{id}");
            db.quotes_table(&table).await;
            db.fill(&table, n).await;
            let bench = self.with_db(kafka, db);
            let mut times = Times::default();
            for (round, side) in self.rounds().into_iter().enumerate() {
                let topic = format!("bench_src_{}_{s}_{id}_{round}", side.name());
                db.settle().await;
                let took = match side {
                    Side::Bare => {
                        let (took, rows) = bare_sql_to_kafka(kafka, db, &table, &topic).await;
                        assert_eq!(rows, n, "the bare loop read every row");
                        took
                    }
                    Side::Updraft => {
                        let name = format!("from_sql_{s}_{round}");
                        let dag = sql_to_kafka_dag(&name, &topic, &table);
                        let (run, store, took) = bench.run_dag(&name, &dag, 4).await;
                        assert_eq!(run.state.as_str(), "success", "the sql_to_kafka run failed");
                        let xcom = store.run_xcoms(run.id).await.expect("xcom");
                        let produced = xcom.iter().find_map(|x| x.value["rows"].as_u64());
                        assert_eq!(produced, Some(n as u64), "the task produced every row");
                        took
                    }
                };
                times.add(side, took);
            }
            db.drop_table(&table).await;
            times.report(&format!("sql_to_kafka ({})", db.name()), n);
        }
    }

    /// The order of the runs, twice per side: `ABBA` cancels a drift of the machine or the
    /// server over the runs and gives each side one first and one later place.
    fn rounds(&self) -> [Side; 4] {
        use Side::{Bare, Updraft};
        if self.updraft_first {
            [Updraft, Bare, Bare, Updraft]
        } else {
            [Bare, Updraft, Updraft, Bare]
        }
    }
}

#[derive(Clone, Copy)]
enum Side {
    Bare,
    Updraft,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Bare => "bare",
            Side::Updraft => "updraft",
        }
    }
}

/// Each side's run times.
#[derive(Default)]
struct Times {
    bare: Vec<Duration>,
    updraft: Vec<Duration>,
}

impl Times {
    fn add(&mut self, side: Side, took: Duration) {
        match side {
            Side::Bare => self.bare.push(took),
            Side::Updraft => self.updraft.push(took),
        }
    }

    /// Each run, then the comparison of the sides' mean times.
    fn report(&self, what: &str, n: usize) {
        let secs = |v: &[Duration]| {
            v.iter().map(|d| format!("{:.1} s", d.as_secs_f64())).collect::<Vec<_>>().join(", ")
        };
        println!("  {what}: bare runs {}; updraft runs {}", secs(&self.bare), secs(&self.updraft));
        let mean = |v: &[Duration]| v.iter().sum::<Duration>() / v.len().max(1) as u32;
        crate::streaming::report(what, n, mean(&self.bare), mean(&self.updraft));
    }
}
