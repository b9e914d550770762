//! `updraft worker`: claims and runs queued tasks from PostgreSQL (the distributed executor).

use std::sync::Arc;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::{CmdResult, Failure, engine};
use crate::config::Settings;
use crate::store::Store;
use crate::worker::remote::{self, WorkerOptions};

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// A queue to take tasks of (a task's `queue:`, `default` unless it names one); repeat for
    /// several.
    #[arg(long = "queue", value_name = "NAME")]
    queues: Vec<String>,
    /// Tasks run at once.
    #[arg(long, default_value_t = 16)]
    slots: usize,
    /// The name shown in the UI (default: the host name).
    #[arg(long)]
    name: Option<String>,
    /// At SIGTERM, how long running tasks may go on before they are cancelled (a second
    /// SIGTERM cancels them at once), e.g. 60s or 5m.
    #[arg(long, default_value = "60s")]
    grace: String,
}

pub async fn run(args: WorkerArgs, settings: Settings) -> CmdResult {
    let grace = humantime::parse_duration(&args.grace)
        .map_err(|e| Failure::usage(format!("--grace `{}`: {e}", args.grace)))?;
    if args.slots == 0 {
        return Err(Failure::usage("--slots must be at least 1"));
    }
    let queues = if args.queues.is_empty() { vec!["default".to_string()] } else { args.queues };
    if let Some(bad) = queues.iter().find(|q| q.is_empty() || q.contains(',')) {
        return Err(Failure::usage(format!(
            "--queue `{bad}`: a queue name is not empty and has no comma"
        )));
    }
    let name =
        args.name.unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned());
    if name.is_empty() || name.contains(':') {
        return Err(Failure::usage(format!(
            "--name `{name}`: a worker name is not empty and has no `:`"
        )));
    }
    if !settings.database_url.starts_with("postgres") {
        return Err(Failure::usage(
            "updraft worker needs PostgreSQL, the database the scheduler queues in: set UPDRAFT_DATABASE_URL=postgres://USER:PASS@HOST/DB (and UPDRAFT_EXECUTOR=distributed for the scheduler)",
        ));
    }
    let settings = Arc::new(settings);
    settings.prepare_home().map_err(|e| {
        Failure::usage(format!("cannot create UPDRAFT_HOME {}: {e}", settings.home.display()))
    })?;
    let store = Store::connect(&settings.database_url).await.map_err(|e| {
        Failure::usage(format!("{e} ({})", engine::redact_url(&settings.database_url)))
    })?;
    store.check_schema().await?;
    let (shutdown, kill) = (CancellationToken::new(), CancellationToken::new());
    let (first, second) = (shutdown.clone(), kill.clone());
    tokio::spawn(async move {
        engine::wait_for_signal().await;
        tracing::info!(
            "shutting down: no more claims; running tasks may finish (signal again to cancel them)"
        );
        first.cancel();
        engine::wait_for_signal().await;
        tracing::warn!("second signal: cancelling running tasks");
        second.cancel();
    });
    println!(
        "Updraft worker `{name}` running: queues {}, {} slots, database {}, task logs in {}. Ctrl-C stops.",
        queues.join(", "),
        args.slots,
        engine::redact_url(&settings.database_url),
        settings.log_dir().display(),
    );
    let opts = WorkerOptions { name, queues, slots: args.slots, grace };
    let result = remote::serve(settings, store.clone(), opts, shutdown, kill).await;
    store.close().await;
    result.map_err(|e| Failure::problem(e.to_string()))?;
    Ok(())
}
