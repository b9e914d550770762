//! The admin's "Test" of a connection: reach the system it names the way a task would, and
//! say what answered.
//!
//! HTTP(S) gets a GET of its base URL; a SQL database a session (the SQL tasks' own connect);
//! Kafka a metadata request; Cassandra a session; anything else a TCP connection to its host
//! and port. Bounded by [`TEST_TIMEOUT`]. The answer never repeats the URI (it holds the
//! password).

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};

use super::connection::Connection;
use super::sql::Db;

/// The longest a test may take.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Reaches `conn`: what answered and how fast, or why it did not.
pub async fn probe(conn: &Connection) -> Result<String, String> {
    let t0 = Instant::now();
    let reached = match tokio::time::timeout(TEST_TIMEOUT, reach(conn)).await {
        Ok(r) => r?,
        Err(_) => return Err(format!("no answer within {} s", TEST_TIMEOUT.as_secs())),
    };
    Ok(format!("{reached} in {} ms", t0.elapsed().as_millis()))
}

async fn reach(conn: &Connection) -> Result<String, String> {
    match conn.conn_type.as_str() {
        "http" | "https" => {
            let url = conn.base_url()?;
            let client = crate::tls::http_client()
                .timeout(TEST_TIMEOUT)
                .build()
                .map_err(|e| e.to_string())?;
            let mut req = client.get(&url);
            if let Some(login) = &conn.login {
                req = req.basic_auth(login, conn.password.as_ref());
            }
            let r =
                req.send().await.map_err(|e| format!("no HTTP answer ({})", e.without_url()))?;
            Ok(format!("HTTP {} from {}", r.status(), conn.host.as_deref().unwrap_or("")))
        }
        "kafka" => {
            let cfg = super::kafka_client::client_config(conn).map_err(|e| e.to_string())?;
            let consumer: BaseConsumer = cfg.create().map_err(|e| e.to_string())?;
            tokio::task::spawn_blocking(move || {
                let md = consumer
                    .fetch_metadata(None, TEST_TIMEOUT)
                    .map_err(|e| format!("no answer from the brokers ({e})"))?;
                Ok(format!("{} broker(s), {} topic(s)", md.brokers().len(), md.topics().len()))
            })
            .await
            .map_err(|e| e.to_string())?
        }
        "cassandra" => {
            let b = super::cassandra_client::builder(conn).map_err(|e| e.to_string())?;
            let s = b.build().await.map_err(|e| format!("cannot open a session ({e})"))?;
            let nodes = s.get_cluster_state().get_nodes_info().len();
            Ok(format!("a Cassandra session ({nodes} node(s))"))
        }
        _ if Db::dialect_of(conn).is_ok() => {
            Db::connect(conn).await.map_err(|e| e.to_string())?;
            Ok(format!("a {} session", conn.conn_type))
        }
        other => {
            let host = conn.host.as_deref().ok_or_else(|| {
                format!("a `{other}` connection without a host: nothing to reach")
            })?;
            let port = conn.port.ok_or_else(|| {
                format!("a `{other}` connection without a port: write host:port to test it")
            })?;
            tokio::net::TcpStream::connect((host, port))
                .await
                .map_err(|e| format!("cannot reach {host}:{port} ({e})"))?;
            Ok(format!("a TCP connection to {host}:{port}"))
        }
    }
}
