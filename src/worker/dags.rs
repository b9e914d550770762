//! Where a try's DAG comes from: the folder's DAG when this process's scheduler scanned it,
//! else the source the store recorded, parsed through the process's `dag::DagCache`.
//!
//! Invariant: a DAG read from the store is the version recorded now (the record is read on
//! every call; only the parse is cached, by source), never an older one kept by id.

use std::path::Path;
use std::sync::Arc;

use crate::dag::{Dag, DagCache};
use crate::operators::TaskLog;
use crate::store::Store;

/// The DAG `dag_id` a try runs from.
pub(super) async fn dag_for(
    store: &Store,
    dags: &DagCache,
    dag_id: &str,
    log: &TaskLog,
) -> Result<Arc<Dag>, String> {
    if let Some(dag) = dags.cached(dag_id) {
        return Ok(dag);
    }
    let record =
        super::stop::retrying(log, || store.get_dag(dag_id)).await.map_err(|e| e.to_string())?;
    dags.parse(dag_id, Path::new(&record.fileloc), &record.source).map_err(|errors| {
        let first = errors.first().map(|e| e.to_string()).unwrap_or_default();
        format!("DAG `{dag_id}` no longer parses: {first}")
    })
}
