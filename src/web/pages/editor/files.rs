//! The DAGs folder as the editor sees it: which file names are allowed, where they resolve,
//! listing, reading, atomic writing and deleting.
//!
//! Invariants: a name is checked by [`check_name`] before any filesystem access, and
//! [`resolve`] only returns a path whose parent is the canonical DAGs folder and which is not a
//! symlink — so nothing here ever reads or writes outside `dags/`. A write goes to a hidden
//! temporary file in the same folder (the loader skips hidden files), is fsynced, then renamed
//! over the target: readers see the old file or the new one, never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::web::WebError;

/// The rule [`check_name`] enforces, quoted in its refusals.
pub const NAME_RULE: &str = "a DAG file name must be a plain file name in the DAGs folder: \
     letters, digits, `_`, `.` and `-`, not starting with `.` or `-`, no `/` and no `..`, \
     ending in `.yaml` or `.yml`";

/// Largest DAG file the editor opens (the form it is posted back in is capped at 1 MiB).
const MAX_FILE: u64 = 1024 * 1024;

/// Checks a file name against [`NAME_RULE`] without touching the filesystem.
pub fn check_name(name: &str) -> Result<(), WebError> {
    let refuse =
        |why: &str| Err(WebError::BadRequest(format!("file `{name}`: {why}; {NAME_RULE}")));
    if name.contains('/') || name.contains('\\') {
        return refuse("folders are not allowed");
    }
    if name.contains("..") {
        return refuse("`..` is not allowed");
    }
    let Some(first) = name.chars().next() else { return refuse("the name is empty") };
    if !(first.is_ascii_alphanumeric() || first == '_') {
        return refuse("it must start with a letter, a digit or `_`");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return refuse("it contains a character that is not allowed");
    }
    if !(name.ends_with(".yaml") || name.ends_with(".yml")) {
        return refuse("it must end in .yaml or .yml");
    }
    if name.len() > 200 {
        return refuse("it is longer than 200 characters");
    }
    Ok(())
}

/// The canonical DAGs folder.
fn canonical_folder(folder: &Path) -> Result<PathBuf, WebError> {
    folder
        .canonicalize()
        .map_err(|e| WebError::Internal(format!("DAGs folder {}: {e}", folder.display())))
}

/// The path of DAG file `name`: checked name, inside the canonical folder, not a symlink, not
/// a folder. The file itself may not exist yet.
pub fn resolve(folder: &Path, name: &str) -> Result<PathBuf, WebError> {
    check_name(name)?;
    let dir = canonical_folder(folder)?;
    let path = dir.join(name);
    if path.parent() != Some(dir.as_path()) {
        return Err(WebError::BadRequest(format!("file `{name}`: {NAME_RULE}")));
    }
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(WebError::BadRequest(format!(
            "file `{name}` is a symbolic link: the editor does not follow links; {NAME_RULE}"
        ))),
        Ok(meta) if !meta.is_file() => {
            Err(WebError::BadRequest(format!("`{name}` is not a regular file; {NAME_RULE}")))
        }
        _ => Ok(path),
    }
}

/// Whether the resolved file exists.
pub fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Reads a resolved DAG file; NotFound when it does not exist.
pub fn read(path: &Path, name: &str) -> Result<String, WebError> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|_| WebError::NotFound(format!("no DAG file `{name}`")))?;
    if meta.len() > MAX_FILE {
        return Err(WebError::BadRequest(format!(
            "file `{name}` is larger than 1 MiB: edit it outside the browser"
        )));
    }
    std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => WebError::NotFound(format!("no DAG file `{name}`")),
        std::io::ErrorKind::InvalidData => {
            WebError::BadRequest(format!("file `{name}` is not UTF-8 text"))
        }
        _ => WebError::Internal(format!("read {}: {e}", path.display())),
    })
}

/// Writes `content` to the resolved `path` atomically: temporary file in the same folder,
/// fsync, rename, fsync of the folder. On failure the temporary file is removed and the target
/// is untouched.
pub fn write_atomic(path: &Path, content: &str) -> std::io::Result<()> {
    let dir = path.parent().ok_or_else(|| std::io::Error::other("the file has no folder"))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Hidden (leading dot) so the loader and the watcher's parse ignore it; random so two
    // saves of one file never share a temporary file.
    let suffix = &crate::secrets::random_token()[..10];
    let tmp = dir.join(format!(".{name}.{suffix}.tmp"));
    let result = (|| {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&tmp)?;
        f.write_all(content.as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // The rename is durable only once the folder's entry is on disk.
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Deletes the resolved `path`; NotFound when it does not exist.
pub fn delete(path: &Path, name: &str) -> Result<(), WebError> {
    std::fs::remove_file(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => WebError::NotFound(format!("no DAG file `{name}`")),
        _ => WebError::Internal(format!("delete {}: {e}", path.display())),
    })
}

/// One YAML file at the top of the DAGs folder.
#[derive(Debug, Clone)]
pub struct FileEntry {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification.
    pub modified: Option<SystemTime>,
    /// Whether the editor may open it (a valid name, not a symlink).
    pub editable: bool,
}

/// The YAML files directly in the DAGs folder (not hidden), by name. Files in sub-folders are
/// loaded by the scheduler but are not the editor's to change.
pub fn list(folder: &Path) -> Result<Vec<FileEntry>, WebError> {
    let dir = canonical_folder(folder)?;
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| WebError::Internal(format!("read {}: {e}", dir.display())))?;
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        let Ok(link) = std::fs::symlink_metadata(entry.path()) else { continue };
        let is_link = link.file_type().is_symlink();
        let Ok(meta) = std::fs::metadata(entry.path()) else { continue };
        if !meta.is_file() {
            continue;
        }
        files.push(FileEntry {
            editable: !is_link && check_name(&name).is_ok(),
            name,
            size: meta.len(),
            modified: meta.modified().ok(),
        });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        for ok in ["etl.yaml", "a.yml", "_x-1.v2.yaml", "0.yaml"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../x.yaml",
            "sub/x.yaml",
            "x.txt",
            ".hidden.yaml",
            "-x.yaml",
            "a..yaml",
            "x.yaml/",
            "x y.yaml",
            "x\\y.yaml",
            "é.yaml",
            "x.yaml.bak",
            "/etc/x.yaml",
        ] {
            let err = check_name(bad).expect_err(bad).to_string();
            assert!(err.contains("plain file name"), "{bad}: {err}");
        }
    }

    #[test]
    fn resolve_refuses_links_and_folders_and_writes_are_atomic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("t.yaml"), "x").expect("write");
        std::os::unix::fs::symlink(outside.path().join("t.yaml"), dir.path().join("link.yaml"))
            .expect("symlink");
        std::fs::create_dir(dir.path().join("d.yaml")).expect("mkdir");
        assert!(resolve(dir.path(), "link.yaml").is_err());
        assert!(resolve(dir.path(), "d.yaml").is_err());
        let p = resolve(dir.path(), "new.yaml").expect("new file");
        write_atomic(&p, "dag_id: n\n").expect("write");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "dag_id: n\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
        let listed = list(dir.path()).expect("list");
        let link = listed.iter().find(|f| f.name == "link.yaml").expect("link listed");
        assert!(!link.editable);
        assert!(listed.iter().any(|f| f.name == "new.yaml" && f.editable));
    }
}
