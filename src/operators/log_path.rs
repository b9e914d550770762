//! Where task logs live: `<logs>/<dag>/<run>/<task>[/<map_index>]/<try>.log`, each id one
//! folder name.
//!
//! Invariant: whatever an id holds — `..`, `/`, `\`, NUL, a leading `.` — it becomes exactly one
//! path component inside its parent, so no id, even a bad one already stored, can reach a
//! file outside the log folder. Safe ids (letters, digits, `_ - . : + ~ @ = ,`, space and any
//! non-ASCII letter) are kept as written, so the usual folders stay readable; anything else is
//! percent-encoded, `%` included, so two ids never share a folder.

use std::path::{Path, PathBuf};

/// One id as one folder name.
pub fn component(id: &str) -> String {
    // `.` and `..` would be the folder itself and its parent; an empty name would vanish.
    match id {
        "" => return "%".to_string(),
        "." => return "%2E".to_string(),
        ".." => return "%2E%2E".to_string(),
        _ => {}
    }
    let mut out = String::with_capacity(id.len());
    for c in id.chars() {
        let safe = c.is_ascii_alphanumeric()
            || matches!(c, '_' | '-' | '.' | ':' | '+' | '~' | '@' | '=' | ',' | ' ')
            || (!c.is_ascii() && !c.is_control());
        if safe {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// The folder of one run's logs.
pub fn run_dir(log_dir: &Path, dag_id: &str, run_id: &str) -> PathBuf {
    log_dir.join(component(dag_id)).join(component(run_id))
}

/// The log file of one try of one task instance.
pub fn try_log(
    log_dir: &Path,
    (dag_id, run_id, task_id): (&str, &str, &str),
    map_index: i64,
    try_number: i64,
) -> PathBuf {
    let mut p = run_dir(log_dir, dag_id, run_id).join(component(task_id));
    if map_index >= 0 {
        p = p.join(map_index.to_string());
    }
    p.join(format!("{try_number}.log"))
}

#[cfg(test)]
mod tests {
    use std::path::Component;

    use super::*;

    #[test]
    fn every_id_stays_one_component_inside_the_log_folder() {
        let root = Path::new("/logs");
        let hostile =
            ["..", ".", "", "a/../../etc", "../x", "a\\b", "/abs", "a\0b", "x\ny", "%2E%2E"];
        let mut seen = std::collections::HashSet::new();
        for id in hostile {
            let c = component(id);
            assert!(seen.insert(c.clone()), "{id:?} shares {c:?} with another id");
            let p = try_log(root, (id, id, id), 3, 1);
            let parts: Vec<Component> = p.components().collect();
            assert_eq!(parts.len(), 7, "{id:?} -> {}", p.display());
            assert!(parts.iter().skip(1).all(|c| matches!(c, Component::Normal(_))), "{p:?}");
            assert!(p.starts_with(root));
        }
        assert_eq!(
            component("manual__2026-01-01T00:00:00+00:00"),
            "manual__2026-01-01T00:00:00+00:00"
        );
        assert_eq!(component("ü ok"), "ü ok");
        assert_eq!(component("50%"), "50%25");
        assert_eq!(try_log(root, ("d", "r", "t"), -1, 2), Path::new("/logs/d/r/t/2.log"));
    }
}
