//! `lineage`: what OpenLineage costs a run. The 50-task chain of `handoff`, run with lineage
//! off, to a healthy endpoint (a local HTTP server answering 200 at once) and to one that
//! never answers (each request hangs until the transport's timeout), alternating, three rounds
//! each; per round the chain's wall time, the hand-off median and p95, and the events sent,
//! failed and dropped. The queue is 64 events, so the hanging endpoint overflows it (4 requests
//! in flight, 64 waiting, of the run's 102 events).

use std::time::Duration;

use axum::Router;
use axum::routing::post;
use updraft::config::{LineageSettings, LineageTarget};

use super::{Bench, chain_yaml, handoffs, percentile};

/// Serves `app` on a free port of 127.0.0.1; its URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/api/v1/lineage")
}

pub async fn run(bench: &Bench) {
    let healthy = serve(Router::new().route("/api/v1/lineage", post(|| async { "ok" }))).await;
    let hanging = serve(Router::new().route(
        "/api/v1/lineage",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            "late"
        }),
    ))
    .await;
    let target = |url: &str| LineageSettings {
        target: Some(LineageTarget::Http { url: url.to_string(), api_key: None }),
        namespace: "bench".into(),
        queue: 64,
    };
    let modes = [
        ("off", LineageSettings::default()),
        ("healthy endpoint", target(&healthy)),
        ("endpoint that never answers", target(&hanging)),
    ];
    println!("lineage: 50-task chain of `bash: true`, OpenLineage queue 64 events");
    for round in 1..=3 {
        for (i, (mode, settings)) in modes.iter().enumerate() {
            let name = format!("lineage{round}x{i}");
            let yaml = chain_yaml(&name, 50);
            let (run, store, wall, metrics) =
                bench.run_dag_with(&name, &yaml, 16, settings.clone()).await;
            let h = handoffs(&store, &run).await;
            let n = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
            println!(
                "lineage round {round}, {mode}: run {} in {:.3} s; hand-off median {:.2} ms, p95 {:.2} ms; events sent {}, failed {}, dropped {}",
                run.state,
                wall.as_secs_f64(),
                percentile(&h.handoff, 0.5),
                percentile(&h.handoff, 0.95),
                n(&metrics.lineage_sent),
                n(&metrics.lineage_failed),
                n(&metrics.lineage_dropped),
            );
        }
    }
}
