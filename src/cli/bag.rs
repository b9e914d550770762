//! The DAGs folder as the CLI reads it: the whole bag, or one DAG with a message naming what is
//! wrong. Shared by `dags` and `tasks`, which both run DAGs from the folder.
//!
//! Invariant: the CLI reads DAG files only through `dag::loader`, never by hand.

use super::Failure;
use crate::config::Settings;
use crate::dag::{Dag, DagBag, loader};

/// Loads the DAGs folder; refuses a missing folder.
pub fn load_bag(settings: &Settings) -> Result<DagBag, Failure> {
    if !settings.dags_folder.is_dir() {
        return Err(Failure::usage(format!(
            "the DAGs folder {} does not exist (set UPDRAFT_DAGS_FOLDER)",
            settings.dags_folder.display()
        )));
    }
    Ok(loader::load_folder(&settings.dags_folder))
}

/// One DAG of the DAGs folder, or a message naming what is wrong.
pub fn find_dag(settings: &Settings, dag_id: &str) -> Result<(Dag, DagBag), Failure> {
    let mut bag = load_bag(settings)?;
    match bag.dags.remove(dag_id) {
        Some(dag) => Ok((dag, bag)),
        None => {
            let mut msg = format!("no DAG `{dag_id}` in {}", settings.dags_folder.display());
            let broken: Vec<String> =
                bag.errors.values().flatten().map(|e| e.to_string()).collect();
            if !broken.is_empty() {
                msg.push_str(&format!("; files with errors:\n  {}", broken.join("\n  ")));
            }
            Err(Failure::problem(msg))
        }
    }
}
