//! `updraft dags ...`: list, validate, trigger, test, pause, unpause, backfill, show.
//!
//! Invariant: runs are created and DAGs paused only through `crate::actions` (the run-id and
//! conf checks the web applies, and the audit entry).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Subcommand;
use serde_json::json;

use super::bag::{find_dag, load_bag};
use super::{CmdResult, Failure, engine, parse_conf, parse_when};
use crate::actions::{self, ActionError, ConfInput, TriggerRequest};
use crate::config::Settings;
use crate::dag::{Dag, DagBag, DagCache, lint, loader, parse_dag};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum DagsCommand {
    /// Lists the DAGs of the DAGs folder.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Checks DAG files (a file or a folder; the DAGs folder by default). Exits 1 on errors.
    Validate {
        /// File or folder to check.
        path: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Creates a manual run; a running scheduler executes it.
    Trigger {
        /// The DAG.
        dag_id: String,
        /// Params for the run, as a JSON object.
        #[arg(long)]
        conf: Option<String>,
        /// Run id (default `manual__<now>`).
        #[arg(long)]
        run_id: Option<String>,
        /// Logical date (default now).
        #[arg(long)]
        logical_date: Option<String>,
    },
    /// Runs one DAG run in this process, without a scheduler, and prints every task's state.
    Test {
        /// The DAG.
        dag_id: String,
        /// Logical date of the run (default now).
        logical_date: Option<String>,
        /// Params for the run, as a JSON object.
        #[arg(long)]
        conf: Option<String>,
        /// Print the final states as JSON instead of the logs.
        #[arg(long)]
        json: bool,
    },
    /// Pauses a DAG: no new scheduled runs, nothing of it is queued.
    Pause {
        /// The DAG.
        dag_id: String,
    },
    /// Unpauses a DAG.
    Unpause {
        /// The DAG.
        dag_id: String,
    },
    /// Creates one run per schedule interval between two dates; a running scheduler executes them.
    Backfill {
        /// The DAG.
        dag_id: String,
        /// First logical date (inclusive).
        #[arg(long)]
        start_date: String,
        /// Last logical date (inclusive).
        #[arg(long)]
        end_date: String,
        /// Params for every run, as a JSON object.
        #[arg(long)]
        conf: Option<String>,
        /// Only print the runs that would be created.
        #[arg(long)]
        dry_run: bool,
    },
    /// Prints the task graph.
    Show {
        /// The DAG.
        dag_id: String,
        /// Print Graphviz dot.
        #[arg(long)]
        dot: bool,
    },
}

pub async fn run(cmd: DagsCommand, settings: Settings) -> CmdResult {
    match cmd {
        DagsCommand::List { json } => list(&settings, json).await,
        DagsCommand::Validate { path, json } => validate(&settings, path, json).await,
        DagsCommand::Trigger { dag_id, conf, run_id, logical_date } => {
            trigger(&settings, &dag_id, conf, run_id, logical_date).await
        }
        DagsCommand::Test { dag_id, logical_date, conf, json } => {
            super::tasks::test_dag(settings, &dag_id, logical_date, conf, json).await
        }
        DagsCommand::Pause { dag_id } => set_paused(&settings, &dag_id, true).await,
        DagsCommand::Unpause { dag_id } => set_paused(&settings, &dag_id, false).await,
        DagsCommand::Backfill { dag_id, start_date, end_date, conf, dry_run } => {
            backfill(&settings, &dag_id, &start_date, &end_date, conf, dry_run).await
        }
        DagsCommand::Show { dag_id, dot } => show(&settings, &dag_id, dot),
    }
}

async fn list(settings: &Settings, as_json: bool) -> CmdResult {
    let bag = load_bag(settings)?;
    let store = engine::open_store(settings).await?;
    let records: HashMap<String, _> =
        store.list_dags().await?.into_iter().map(|r| (r.dag_id.clone(), r)).collect();
    let rows: Vec<serde_json::Value> = bag
        .dags
        .values()
        .map(|d| {
            let rec = records.get(&d.dag_id);
            json!({
                "dag_id": d.dag_id,
                "fileloc": d.fileloc.display().to_string(),
                "schedule": d.schedule_text(),
                "owner": d.owner,
                "tags": d.tags,
                "tasks": d.tasks.len(),
                "is_paused": rec.map(|r| r.is_paused).unwrap_or(d.is_paused_upon_creation),
                "next_dagrun": rec.and_then(|r| r.next_dagrun).map(|t| t.to_rfc3339()),
            })
        })
        .collect();
    if as_json {
        println!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default());
    } else {
        println!(
            "{:<32} {:<14} {:<8} {:<6} {:<12} FILE",
            "DAG", "SCHEDULE", "PAUSED", "TASKS", "OWNER"
        );
        for r in &rows {
            println!(
                "{:<32} {:<14} {:<8} {:<6} {:<12} {}",
                r["dag_id"].as_str().unwrap_or(""),
                r["schedule"].as_str().unwrap_or("manual"),
                r["is_paused"].as_bool().unwrap_or(false),
                r["tasks"].as_u64().unwrap_or(0),
                r["owner"].as_str().unwrap_or(""),
                r["fileloc"].as_str().unwrap_or(""),
            );
        }
        if !bag.errors.is_empty() {
            println!("\n{} file(s) with errors: run `updraft dags validate`", bag.errors.len());
        }
    }
    store.close().await;
    Ok(())
}

async fn validate(settings: &Settings, path: Option<PathBuf>, as_json: bool) -> CmdResult {
    let path = path.unwrap_or_else(|| settings.dags_folder.clone());
    let bag = if path.is_dir() {
        loader::load_folder(&path)
    } else if path.is_file() {
        let mut bag = DagBag::default();
        let display = Path::new(path.file_name().unwrap_or(path.as_os_str())).to_path_buf();
        match parse_dag(&path, &display) {
            Ok(dag) => {
                bag.dags.insert(dag.dag_id.clone(), dag);
            }
            Err(errors) => {
                bag.errors.insert(display, errors);
            }
        }
        bag
    } else {
        return Err(Failure::usage(format!("{} is neither a file nor a folder", path.display())));
    };
    // Notifiers must name existing connections: the environment's, and the stored ones when the
    // database answers (a DAG repository's CI may have none: only the environment is known).
    let mut bag = bag;
    let mut known: Vec<String> = settings.connections.keys().cloned().collect();
    let sqlite_missing = settings
        .database_url
        .strip_prefix("sqlite://")
        .is_some_and(|p| !Path::new(p.split('?').next().unwrap_or(p)).exists());
    let stored = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        if sqlite_missing {
            return None;
        }
        let store = crate::store::Store::connect(&settings.database_url).await.ok()?;
        let rows = store.list_connections().await.ok();
        store.close().await;
        rows
    });
    if let Ok(Some(rows)) = stored.await {
        known.extend(rows.into_iter().map(|c| c.conn_id));
    }
    let broken: Vec<String> = bag.dags.keys().cloned().collect();
    for dag_id in broken {
        let errors = crate::dag::check::unknown_notifiers(&bag.dags[&dag_id], &known);
        if !errors.is_empty()
            && let Some(dag) = bag.dags.remove(&dag_id)
        {
            bag.errors.entry(dag.fileloc.clone()).or_default().extend(errors);
        }
    }
    let errors: Vec<_> = bag.errors.values().flatten().collect();
    // Warnings (each `| raw` in a bash command, an asset schedule nothing here produces) are
    // listed but never fail the command.
    let mut warnings: Vec<_> = bag.dags.values().flat_map(lint::warnings).collect();
    warnings.extend(lint::asset_warnings(bag.dags.values()));
    if as_json {
        let out = json!({
            "valid": bag.dags.keys().collect::<Vec<_>>(),
            "errors": errors.iter().map(|e| json!({
                "file": e.file.display().to_string(), "line": e.line, "column": e.column,
                "message": e.message,
            })).collect::<Vec<_>>(),
            "warnings": warnings,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        for e in &errors {
            println!("{e}");
        }
        for w in &warnings {
            println!("{w}");
        }
        println!(
            "{} DAG(s) valid, {} file(s) with {} error(s), {} warning(s)",
            bag.dags.len(),
            bag.errors.len(),
            errors.len(),
            warnings.len()
        );
    }
    if errors.is_empty() { Ok(()) } else { Err(Failure::problem("")) }
}

/// The DAG to act on: as the scheduler recorded it, or, when no scheduler has seen it yet,
/// from its file in the DAGs folder.
async fn dag_for(settings: &Settings, store: &Store, dag_id: &str) -> Result<Dag, Failure> {
    // A command reads one DAG once: a cache of its own is enough.
    match actions::active_dag(store, &DagCache::new(), dag_id).await {
        Ok(dag) => Ok(Arc::unwrap_or_clone(dag)),
        Err(ActionError::NotFound(_)) => Ok(find_dag(settings, dag_id)?.0),
        Err(e) => Err(e.into()),
    }
}

async fn trigger(
    settings: &Settings,
    dag_id: &str,
    conf: Option<String>,
    run_id: Option<String>,
    logical_date: Option<String>,
) -> CmdResult {
    let conf = parse_conf(conf.as_deref())?;
    let logical_date = logical_date.as_deref().map(parse_when).transpose()?;
    let store = engine::open_store(settings).await?;
    let result = async {
        let dag = dag_for(settings, &store, dag_id).await?;
        let req = TriggerRequest { conf: ConfInput::Json(conf), run_id, logical_date };
        Ok::<_, Failure>(actions::trigger(&store, &super::actor(), &dag, req).await?)
    }
    .await;
    store.close().await;
    let row = result?;
    println!("Created run {} of {} (queued; a running scheduler starts it)", row.run_id, dag_id);
    Ok(())
}

async fn set_paused(settings: &Settings, dag_id: &str, paused: bool) -> CmdResult {
    let store = engine::open_store(settings).await?;
    let result = actions::set_paused(&store, &super::actor(), dag_id, paused).await;
    store.close().await;
    result?;
    println!("DAG {dag_id} {}", if paused { "paused" } else { "unpaused" });
    Ok(())
}

async fn backfill(
    settings: &Settings,
    dag_id: &str,
    start: &str,
    end: &str,
    conf: Option<String>,
    dry_run: bool,
) -> CmdResult {
    let (from, to) = (parse_when(start)?, parse_when(end)?);
    let conf = parse_conf(conf.as_deref())?;
    if dry_run {
        let (dag, _) = find_dag(settings, dag_id)?;
        let conf = crate::dag::params::check_conf(&dag.param_specs, conf)
            .map_err(|e| Failure::problem(e.to_string()))?;
        let intervals = dag.schedule.intervals_between(from, to);
        for i in &intervals {
            println!("{} -> {}", i.start.to_rfc3339(), i.end.to_rfc3339());
        }
        println!("{} run(s) would be created with conf {}", intervals.len(), json!(conf));
        return Ok(());
    }
    let store = engine::open_store(settings).await?;
    let result = async {
        let dag = dag_for(settings, &store, dag_id).await?;
        let dags = crate::dag::DagCache::default();
        let actor = super::actor();
        Ok::<_, Failure>(actions::backfill(&store, &dags, &actor, &dag, from, to, conf).await?)
    }
    .await;
    store.close().await;
    let (created, existing) = result?;
    println!(
        "{created} backfill run(s) queued, {existing} already existed; a running scheduler executes them"
    );
    Ok(())
}

fn show(settings: &Settings, dag_id: &str, dot: bool) -> CmdResult {
    let (dag, _) = find_dag(settings, dag_id)?;
    let dag = Arc::new(dag);
    if dot {
        println!("digraph \"{}\" {{\n  rankdir=LR;", dag.dag_id);
        for t in dag.tasks.values() {
            println!("  \"{}\" [label=\"{}\\n{}\"];", t.task_id, t.task_id, t.kind.type_name());
            for up in &t.depends_on {
                println!("  \"{up}\" -> \"{}\";", t.task_id);
            }
        }
        println!("}}");
        return Ok(());
    }
    println!("{} ({} tasks, schedule {})", dag.dag_id, dag.tasks.len(), dag.schedule);
    // Depth = longest path from a root, so each line's upstream tasks are printed above it.
    let mut depth: HashMap<&str, usize> = HashMap::new();
    for id in dag.graph.topo_order() {
        let d = dag
            .graph
            .upstream(id)
            .iter()
            .filter_map(|u| depth.get(u.as_str()))
            .max()
            .map_or(0, |d| d + 1);
        depth.insert(id.as_str(), d);
    }
    for id in dag.graph.topo_order() {
        let task = &dag.tasks[id];
        let ups = dag.graph.upstream(id);
        let indent = "  ".repeat(depth[id.as_str()]);
        let mut line = format!("{indent}{id} [{}]", task.kind.type_name());
        if task.foreach.is_some() {
            line.push_str(" (mapped)");
        }
        if !ups.is_empty() {
            line.push_str(&format!(" <- {}", ups.join(", ")));
        }
        if task.trigger_rule != Default::default() {
            line.push_str(&format!(" ({})", task.trigger_rule.as_str()));
        }
        println!("{line}");
    }
    Ok(())
}
