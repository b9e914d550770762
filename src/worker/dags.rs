//! The DAG definitions a process runs tasks from.
//!
//! A scheduler fills the cache from its DAG folder; a process without the folder (a remote
//! worker, the web server) parses the source stored in the `dag` table, once per version.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::dag::{Dag, parse_dag_str};
use crate::store::Store;

/// DAGs by id, shared between the scheduler and the workers of a process.
pub struct DagCache {
    store: Store,
    dags: RwLock<HashMap<String, Arc<Dag>>>,
}

impl DagCache {
    /// An empty cache that falls back to the store.
    pub fn new(store: Store) -> DagCache {
        DagCache { store, dags: RwLock::new(HashMap::new()) }
    }

    /// Replaces the whole content (after a scan of the DAG folder).
    pub fn replace_all(&self, dags: impl IntoIterator<Item = Dag>) {
        let map = dags.into_iter().map(|d| (d.dag_id.clone(), Arc::new(d))).collect();
        if let Ok(mut guard) = self.dags.write() {
            *guard = map;
        }
    }

    /// A DAG known to the cache, without asking the store.
    pub fn cached(&self, dag_id: &str) -> Option<Arc<Dag>> {
        self.dags.read().ok()?.get(dag_id).cloned()
    }

    /// Every cached DAG.
    pub fn all(&self) -> Vec<Arc<Dag>> {
        self.dags.read().map(|m| m.values().cloned().collect()).unwrap_or_default()
    }

    /// The DAG, from the cache or parsed from the store's copy of its file.
    pub async fn get(&self, dag_id: &str) -> Result<Arc<Dag>, String> {
        if let Some(dag) = self.cached(dag_id) {
            return Ok(dag);
        }
        let record = self.store.get_dag(dag_id).await.map_err(|e| e.to_string())?;
        let dag = parse_dag_str(&record.source, Path::new(&record.fileloc)).map_err(|errors| {
            let first = errors.first().map(|e| e.to_string()).unwrap_or_default();
            format!("DAG `{dag_id}` no longer parses: {first}")
        })?;
        let dag = Arc::new(dag);
        if let Ok(mut guard) = self.dags.write() {
            guard.insert(dag_id.to_string(), dag.clone());
        }
        Ok(dag)
    }
}
