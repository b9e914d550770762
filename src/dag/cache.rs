//! Parsed DAGs kept for a process: the DAG folder's current DAGs (the scheduler's last scan)
//! and DAGs parsed from the source the store recorded (workers without the folder, the web
//! pages and the API), so that a page view or a try does not parse YAML again.
//!
//! Invariants: [`DagCache::parse`] returns a DAG only if it was parsed from exactly the text
//! it is given (looked up by a hash of file and source, then compared in full), so a changed
//! file is never served stale; the stored-source part holds at most [`STORED_CAPACITY`] DAGs,
//! the least recently used leaving first. Pure like the rest of `dag`: no I/O, no async.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use super::{Dag, LoadError, parse_dag_str};

/// Most DAGs kept from stored source. Each version of a file is one entry, so the bound is
/// what keeps a long-running web server's memory flat while files keep changing; a few
/// hundred DAGs cover a large deployment's pages without re-parsing.
pub const STORED_CAPACITY: usize = 256;

/// DAGs by id from the folder, and DAGs parsed from stored source by source hash.
#[derive(Default)]
pub struct DagCache {
    /// The folder's DAGs by id, as of the last scan.
    folder: RwLock<HashMap<String, Arc<Dag>>>,
    /// DAGs parsed from stored source.
    stored: Mutex<Stored>,
}

/// The bounded part: entries by source hash with the tick of their last use.
#[derive(Default)]
struct Stored {
    /// Source hash -> (DAG, last use).
    entries: HashMap<u64, (Arc<Dag>, u64)>,
    /// Counts uses; the entry with the smallest tick is the least recently used.
    tick: u64,
}

impl DagCache {
    /// An empty cache.
    pub fn new() -> DagCache {
        DagCache::default()
    }

    /// Replaces the folder's DAGs (after a scan of the DAG folder).
    pub fn replace_all(&self, dags: impl IntoIterator<Item = Dag>) {
        let map = dags.into_iter().map(|d| (d.dag_id.clone(), Arc::new(d))).collect();
        if let Ok(mut guard) = self.folder.write() {
            *guard = map;
        }
    }

    /// The folder's DAG `dag_id`, if the last scan found it.
    pub fn cached(&self, dag_id: &str) -> Option<Arc<Dag>> {
        self.folder.read().ok()?.get(dag_id).cloned()
    }

    /// Every DAG of the folder.
    pub fn all(&self) -> Vec<Arc<Dag>> {
        self.folder.read().map(|m| m.values().cloned().collect()).unwrap_or_default()
    }

    /// The DAG `dag_id` at `version` (a [`crate::dag::version_of`] key), if this process
    /// holds it: the folder's DAG when its source is that version, else one parsed from a
    /// stored source before. None means: read that version's source from the store and
    /// [`DagCache::parse`] it.
    pub fn pinned(&self, dag_id: &str, version: &str) -> Option<Arc<Dag>> {
        let is = |d: &Dag| d.dag_id == dag_id && d.version == version;
        if let Some(dag) = self.cached(dag_id).filter(|d| is(d)) {
            return Some(dag);
        }
        let mut stored = self.stored.lock().ok()?;
        stored.tick += 1;
        let tick = stored.tick;
        let (dag, used) = stored.entries.values_mut().find(|(d, _)| is(d))?;
        *used = tick;
        Some(dag.clone())
    }

    /// The DAG that `source` (recorded as the file `fileloc`) defines: the folder's DAG
    /// `dag_id` when it was read from this very text, else a DAG parsed from it before, else
    /// parsed now and kept.
    pub fn parse(
        &self,
        dag_id: &str,
        fileloc: &Path,
        source: &str,
    ) -> Result<Arc<Dag>, Vec<LoadError>> {
        let same = |dag: &Dag| dag.source == source && dag.fileloc == fileloc;
        if let Some(dag) = self.cached(dag_id).filter(|d| same(d)) {
            return Ok(dag);
        }
        let key = source_hash(fileloc, source);
        if let Some(dag) = self.lookup(key).filter(|d| same(d)) {
            return Ok(dag);
        }
        // Parsed outside the lock: a big file must not hold up every other page.
        let dag = Arc::new(parse_dag_str(source, fileloc)?);
        self.insert(key, dag.clone());
        Ok(dag)
    }

    /// How many DAGs parsed from stored source are kept.
    pub fn stored_len(&self) -> usize {
        self.stored.lock().map(|s| s.entries.len()).unwrap_or_default()
    }

    fn lookup(&self, key: u64) -> Option<Arc<Dag>> {
        let mut stored = self.stored.lock().ok()?;
        stored.tick += 1;
        let tick = stored.tick;
        let (dag, used) = stored.entries.get_mut(&key)?;
        *used = tick;
        Some(dag.clone())
    }

    fn insert(&self, key: u64, dag: Arc<Dag>) {
        let Ok(mut stored) = self.stored.lock() else { return };
        if stored.entries.len() >= STORED_CAPACITY && !stored.entries.contains_key(&key) {
            let oldest = stored.entries.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                stored.entries.remove(&oldest);
            }
        }
        stored.tick += 1;
        let tick = stored.tick;
        stored.entries.insert(key, (dag, tick));
    }
}

/// A hash of the file name and its text: the cache key of a stored version.
fn source_hash(fileloc: &Path, source: &str) -> u64 {
    let mut h = DefaultHasher::new();
    fileloc.hash(&mut h);
    source.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(id: &str, task: &str) -> String {
        format!("dag_id: {id}\ntasks:\n  {task}:\n    type: empty\n")
    }

    #[test]
    fn a_changed_source_is_parsed_again_and_an_unchanged_one_is_not() {
        let cache = DagCache::new();
        let file = Path::new("d.yaml");
        let first = cache.parse("d", file, &src("d", "a")).expect("parses");
        let again = cache.parse("d", file, &src("d", "a")).expect("parses");
        assert!(Arc::ptr_eq(&first, &again), "the same text is parsed once");
        let changed = cache.parse("d", file, &src("d", "b")).expect("parses");
        assert!(changed.tasks.contains_key("b"), "a new version is never served stale");
        let other_file = cache.parse("d", Path::new("e.yaml"), &src("d", "a")).expect("parses");
        assert_eq!(other_file.fileloc, Path::new("e.yaml"));
    }

    #[test]
    fn the_folder_dag_serves_its_own_text_only() {
        let cache = DagCache::new();
        let file = Path::new("d.yaml");
        let folder = parse_dag_str(&src("d", "a"), file).expect("parses");
        cache.replace_all([folder]);
        let from_folder = cache.cached("d").expect("cached");
        let same = cache.parse("d", file, &src("d", "a")).expect("parses");
        assert!(Arc::ptr_eq(&from_folder, &same));
        assert_eq!(cache.stored_len(), 0, "nothing parsed");
        let newer = cache.parse("d", file, &src("d", "b")).expect("parses");
        assert!(newer.tasks.contains_key("b"));
    }

    #[test]
    fn stored_versions_are_bounded_and_the_least_recently_used_leaves() {
        let cache = DagCache::new();
        let file = Path::new("d.yaml");
        let keep = cache.parse("d", file, &src("d", "keep")).expect("parses");
        let first = cache.parse("d", file, &src("d", "t0")).expect("parses");
        for n in 1..STORED_CAPACITY + 10 {
            cache.parse("d", file, &src("d", &format!("t{n}"))).expect("parses");
            // Used again each round: never the least recently used.
            cache.parse("d", file, &src("d", "keep")).expect("parses");
        }
        assert_eq!(cache.stored_len(), STORED_CAPACITY);
        let still = cache.parse("d", file, &src("d", "keep")).expect("parses");
        assert!(Arc::ptr_eq(&keep, &still), "a DAG in use stays");
        let again = cache.parse("d", file, &src("d", "t0")).expect("parses");
        assert!(!Arc::ptr_eq(&first, &again), "the least recently used left and is parsed again");
        assert_eq!(cache.stored_len(), STORED_CAPACITY);
    }

    #[test]
    fn a_broken_source_is_an_error_and_is_not_kept() {
        let cache = DagCache::new();
        let errors = cache.parse("d", Path::new("d.yaml"), "dag_id: d\ntasks: 3\n");
        assert!(errors.is_err());
        assert_eq!(cache.stored_len(), 0);
    }
}
