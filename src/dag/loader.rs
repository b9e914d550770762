//! The DAGs folder: walking it, re-parsing only the files that changed, and watching it.
//!
//! This is the only filesystem code of the `dag` module. It must not let one file hide another:
//! an unreadable or invalid file becomes errors in the [`DagBag`] and every other file still
//! loads. Nothing here runs on a timer; callers call [`DagFolder::refresh`] when [`watch`] says
//! something changed (debouncing is theirs).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

#[cfg(test)]
mod tests;

use super::positions::{Pos, Positions};
use super::{DagBag, LoadError, ParseResult, parse_dag};

/// Parsing threads: the scheduler shares the machine with the executor and the web server, and
/// parsing 1,000 files takes well under a second with two.
const PARSE_THREADS: usize = 2;
/// Below this many changed files, starting threads costs more than it saves.
const PARALLEL_MIN_FILES: usize = 32;
/// Sub-folders deeper than this are not walked, so a symlink loop cannot hang the loader.
const MAX_DEPTH: usize = 32;

/// A DAGs folder and the last parse of each file in it.
#[derive(Debug)]
pub struct DagFolder {
    dir: PathBuf,
    /// Relative path -> what the file looked like when parsed, and the result.
    cache: HashMap<PathBuf, Cached>,
}

#[derive(Debug)]
struct Cached {
    /// Modification time and size when parsed; a file is re-parsed when either differs.
    stamp: (Option<SystemTime>, u64),
    result: ParseResult,
}

/// One DAG file found by the walk.
struct Found {
    rel: PathBuf,
    abs: PathBuf,
    stamp: (Option<SystemTime>, u64),
}

impl DagFolder {
    /// A folder not yet read; the first [`refresh`](Self::refresh) parses every file.
    pub fn new(dir: impl Into<PathBuf>) -> DagFolder {
        DagFolder { dir: dir.into(), cache: HashMap::new() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Walks the folder, re-parses the files added or changed since the last call, and returns
    /// every DAG and error, plus whether anything changed (a file added, changed or removed).
    pub fn refresh(&mut self) -> (DagBag, bool) {
        let mut found = Vec::new();
        let mut walk_errors = Vec::new();
        walk(&self.dir, Path::new(""), 0, &mut found, &mut walk_errors);
        found.sort_by(|a, b| a.rel.cmp(&b.rel));

        let stale: Vec<&Found> = found
            .iter()
            .filter(|f| self.cache.get(&f.rel).is_none_or(|c| c.stamp != f.stamp))
            .collect();
        let changed_files = !stale.is_empty();
        for (f, result) in parse_all(&stale) {
            self.cache.insert(f.rel.clone(), Cached { stamp: f.stamp, result });
        }
        let present: HashSet<&PathBuf> = found.iter().map(|f| &f.rel).collect();
        let removed = self.cache.keys().any(|rel| !present.contains(rel));
        self.cache.retain(|rel, _| present.contains(rel));
        let changed = changed_files || removed;

        let mut bag = DagBag::default();
        for e in walk_errors {
            bag.errors.entry(e.file.clone()).or_default().push(e);
        }
        // Where each dag_id was first defined, in path order.
        let mut owner: HashMap<String, PathBuf> = HashMap::new();
        for f in &found {
            let Some(cached) = self.cache.get(&f.rel) else { continue };
            match &cached.result {
                Err(errors) => {
                    bag.errors.insert(f.rel.clone(), errors.clone());
                }
                Ok(dag) => match owner.get(&dag.dag_id) {
                    Some(first) => {
                        let error = duplicate_dag_id(dag, first);
                        bag.errors.insert(f.rel.clone(), vec![error]);
                    }
                    None => {
                        owner.insert(dag.dag_id.clone(), f.rel.clone());
                        bag.dags.insert(dag.dag_id.clone(), dag.clone());
                    }
                },
            }
        }
        (bag, changed)
    }
}

/// The error for the second file defining a dag_id, at its `dag_id:` line when written (the
/// editor reports the same error, from here).
pub fn duplicate_dag_id(dag: &super::Dag, first: &Path) -> LoadError {
    // Without a `dag_id:` line the id came from the file name: the whole file is the place.
    let at = Positions::build(&dag.source).get(&["dag_id"]).map_or(Pos::START, |l| l.value);
    LoadError {
        file: dag.fileloc.clone(),
        line: at.line,
        column: at.column,
        message: format!(
            "dag_id `{}` is already defined in `{}`; dag ids must be unique",
            dag.dag_id,
            first.display()
        ),
    }
}

/// Parses `files`, on [`PARSE_THREADS`] threads when there are many.
fn parse_all<'f>(files: &[&'f Found]) -> Vec<(&'f Found, ParseResult)> {
    // A parser panic is a bug, but one odd file must not take the scheduler down with it.
    let parse = |f: &&'f Found| {
        let result = std::panic::catch_unwind(|| parse_dag(&f.abs, &f.rel));
        (*f, result.unwrap_or_else(|_| panicked(f)))
    };
    if files.len() < PARALLEL_MIN_FILES {
        return files.iter().map(parse).collect();
    }
    let chunk = files.len().div_ceil(PARSE_THREADS);
    std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(parse).collect::<Vec<_>>()))
            .collect();
        let mut out = Vec::with_capacity(files.len());
        for (h, part) in handles.into_iter().zip(files.chunks(chunk)) {
            match h.join() {
                Ok(results) => out.extend(results),
                // Panics are caught per file above; this only guards against the unforeseen.
                Err(_) => out.extend(part.iter().map(|f| (*f, panicked(f)))),
            }
        }
        out
    })
}

fn panicked(f: &Found) -> ParseResult {
    Err(vec![LoadError {
        file: f.rel.clone(),
        line: Pos::START.line,
        column: Pos::START.column,
        message: "internal error: the parser panicked on this file; please report it".into(),
    }])
}

/// Whether the walk skips this name: hidden files and folders (`.git`, editor swap files,
/// Kubernetes' `..data`).
fn hidden(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().starts_with('.')
}

fn is_dag_file(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

/// Collects DAG files under `abs` (whose path relative to the DAGs folder is `rel`).
fn walk(abs: &Path, rel: &Path, depth: usize, found: &mut Vec<Found>, errors: &mut Vec<LoadError>) {
    let fail = |what: &str, e: std::io::Error| LoadError {
        file: if rel.as_os_str().is_empty() { abs.to_path_buf() } else { rel.to_path_buf() },
        line: Pos::START.line,
        column: Pos::START.column,
        message: format!("cannot read {what}: {e}"),
    };
    let entries = match std::fs::read_dir(abs) {
        Ok(entries) => entries,
        Err(e) => return errors.push(fail("the folder", e)),
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if hidden(&name) {
            continue;
        }
        let (abs, rel) = (entry.path(), rel.join(&name));
        // `metadata` follows symlinks: Kubernetes mounts DAG files as links.
        let meta = match std::fs::metadata(&abs) {
            Ok(m) => m,
            Err(e) => {
                errors.push(LoadError { file: rel.clone(), ..fail("the file", e) });
                continue;
            }
        };
        if meta.is_dir() {
            if depth < MAX_DEPTH {
                walk(&abs, &rel, depth + 1, found, errors);
            }
        } else if meta.is_file() && is_dag_file(&rel) {
            let stamp = (meta.modified().ok(), meta.len());
            found.push(Found { rel, abs, stamp });
        }
    }
}

/// Loads every DAG file under `dir` once.
pub fn load_folder(dir: impl Into<PathBuf>) -> DagBag {
    DagFolder::new(dir).refresh().0
}

/// Watches `dir` and its sub-folders, calling `on_change` when a YAML file (or a folder that may
/// hold some) is created, modified or removed. The callback runs on notify's thread: keep it
/// short (send on a channel) and debounce on the receiving side, since one save can produce
/// several events. Drop the returned watcher to stop.
pub fn watch(
    dir: &Path,
    on_change: impl Fn() + Send + 'static,
) -> notify::Result<RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        match res {
            Ok(event) if relevant(&event) => on_change(),
            Ok(_) => {}
            // Events may have been lost (e.g. the kernel queue overflowed): let the caller
            // re-scan rather than miss a change.
            Err(_) => on_change(),
        }
    })?;
    watcher.watch(dir, RecursiveMode::Recursive)?;
    Ok(watcher)
}

/// Creation, modification or removal of a YAML file, or of something without an extension
/// (a folder moved in or out takes its files with it) or Kubernetes' hidden `..data` swap.
fn relevant(event: &notify::Event) -> bool {
    let kind =
        matches!(event.kind, EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_));
    kind && event.paths.iter().any(|p| {
        let name = p.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        is_dag_file(p) || p.extension().is_none() || name.starts_with("..")
    })
}
