//! The sender: empties the lineage queue into the endpoint (HTTP POST of each event as JSON,
//! `Authorization: Bearer` with the API key) or the file (one event per line, appended).
//!
//! Invariants: the only code that waits on the endpoint. Each request is cut at
//! [`REQUEST_TIMEOUT`] and at most [`IN_FLIGHT`] are open at once; while they all wait, the
//! queue fills and the hooks drop (`mod.rs`), so memory stays bounded by the queue. An event is
//! sent once: a failure is counted (`lineage_failed`), never retried, as a retry would only
//! grow the backlog of a struggling endpoint. The API key is never logged.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, mpsc};

use crate::config::LineageTarget;
use crate::metrics::Metrics;

/// How long one POST may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// POSTs open at once: enough to keep up with a healthy endpoint's latency at thousands of
/// events a second, few enough to be harmless to one that struggles. Events of one run may
/// arrive out of order; their `eventTime` orders them.
const IN_FLIGHT: usize = 4;

/// Sends every event `rx` yields, until every [`super::Lineage`] handle is dropped.
pub(super) async fn run(rx: mpsc::Receiver<Value>, target: LineageTarget, metrics: Arc<Metrics>) {
    match target {
        LineageTarget::Http { url, api_key } => http(rx, url, api_key, metrics).await,
        LineageTarget::File(path) => file(rx, path, metrics).await,
    }
}

async fn http(
    mut rx: mpsc::Receiver<Value>,
    url: String,
    api_key: Option<String>,
    metrics: Arc<Metrics>,
) {
    crate::tls::install_provider();
    let client = match crate::tls::http_client().timeout(REQUEST_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "lineage: cannot build the HTTP client; events dropped");
            while rx.recv().await.is_some() {
                metrics.lineage_failed.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(event) = rx.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        let mut request = client.post(&url).json(&event);
        if let Some(key) = &api_key {
            request = request.bearer_auth(key);
        }
        let metrics = metrics.clone();
        tokio::spawn(async move {
            match request.send().await {
                Ok(answer) if answer.status().is_success() => {
                    metrics.lineage_sent.fetch_add(1, Ordering::Relaxed);
                }
                Ok(answer) => {
                    tracing::debug!(status = %answer.status(), "lineage: event refused");
                    metrics.lineage_failed.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::debug!(error = %e.without_url(), "lineage: event not sent");
                    metrics.lineage_failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(permit);
        });
    }
}

async fn file(mut rx: mpsc::Receiver<Value>, path: std::path::PathBuf, metrics: Arc<Metrics>) {
    let opened = tokio::fs::OpenOptions::new().create(true).append(true).open(&path).await;
    let mut out = match opened {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "lineage: cannot open the file; events dropped");
            while rx.recv().await.is_some() {
                metrics.lineage_failed.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
    };
    while let Some(event) = rx.recv().await {
        let mut line = event.to_string().into_bytes();
        line.push(b'\n');
        // One write per line: with O_APPEND, processes sharing the file never interleave lines.
        let written = match out.write_all(&line).await {
            Ok(()) => out.flush().await,
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => metrics.lineage_sent.fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "lineage: event not written");
                metrics.lineage_failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}
