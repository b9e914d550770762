//! Where a try's DAG comes from: the version its run is pinned to (`dag_run.dag_version`) —
//! the folder's DAG when this process's scheduler scanned that very source, else the stored
//! source of that version — parsed through the process's `dag::DagCache`.
//!
//! Invariant: a try runs the version its run started with, never the file's later edits; a
//! run without a version (started before versions were recorded) runs the source recorded
//! now (the record is read on every call; only the parse is cached, by source).

use std::path::Path;
use std::sync::Arc;

use crate::dag::{Dag, DagCache};
use crate::operators::TaskLog;
use crate::store::{RunRow, Store};

/// The DAG a try of `run` runs from.
pub(super) async fn dag_for(
    store: &Store,
    dags: &DagCache,
    run: &RunRow,
    log: &TaskLog,
) -> Result<Arc<Dag>, String> {
    let dag_id = run.dag_id.as_str();
    let (fileloc, source) = match run.dag_version.as_deref() {
        Some(version) => {
            if let Some(dag) = dags.pinned(dag_id, version) {
                return Ok(dag);
            }
            let v = super::stop::retrying(log, || store.dag_version(dag_id, version))
                .await
                .map_err(|e| format!("the DAG version this run is pinned to is unreadable: {e}"))?;
            (v.fileloc, v.source)
        }
        None => {
            if let Some(dag) = dags.cached(dag_id) {
                return Ok(dag);
            }
            let r = super::stop::retrying(log, || store.get_dag(dag_id))
                .await
                .map_err(|e| e.to_string())?;
            (r.fileloc, r.source)
        }
    };
    dags.parse(dag_id, Path::new(&fileloc), &source).map_err(|errors| {
        let first = errors.first().map(|e| e.to_string()).unwrap_or_default();
        format!("DAG `{dag_id}` no longer parses: {first}")
    })
}
