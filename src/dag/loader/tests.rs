//! Loader tests on temporary folders: caching, walking rules, duplicate ids, watching.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use super::{DagFolder, load_folder, watch};

fn dag(id: &str, tasks: usize) -> String {
    let mut s = format!("dag_id: {id}\nschedule: \"@daily\"\ntasks:\n");
    for i in 0..tasks {
        s.push_str(&format!("  t{i}:\n    type: bash\n    command: echo {i}\n"));
        if i > 0 {
            s.push_str(&format!("    depends_on: [t{}]\n", i - 1));
        }
    }
    s
}

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(&path, text).expect("write");
    path
}

#[test]
fn walks_sub_folders_and_skips_hidden_and_other_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("a.yaml", true),
        ("sub/b.yml", true),
        ("sub/deeper/c.yaml", true),
        (".hidden.yaml", false),
        (".git/d.yaml", false),
        ("sub/.cache/e.yaml", false),
        ("notes.txt", false),
        ("f.yaml.bak", false),
    ];
    for (rel, _) in cases {
        let id = rel.replace(['/', '.'], "_");
        write(tmp.path(), rel, &dag(&id, 1));
    }
    let bag = load_folder(tmp.path());
    assert!(bag.errors.is_empty(), "{:?}", bag.errors);
    for (rel, loaded) in cases {
        let id = rel.replace(['/', '.'], "_");
        assert_eq!(bag.dags.contains_key(&id), loaded, "{rel}");
    }
    assert_eq!(bag.dags["sub_b_yml"].fileloc, Path::new("sub/b.yml"));
}

#[test]
fn refresh_reparses_only_changed_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = write(tmp.path(), "a.yaml", &dag("alpha", 2));
    write(tmp.path(), "b.yaml", &dag("beta", 2));
    let mut folder = DagFolder::new(tmp.path());
    let (bag, changed) = folder.refresh();
    assert!(changed);
    assert_eq!(bag.dags.keys().collect::<Vec<_>>(), ["alpha", "beta"]);
    let (_, changed) = folder.refresh();
    assert!(!changed, "nothing changed");

    // Same size and same modified time: the cached result is kept, proving no re-parse.
    let stamp = fs::metadata(&a).and_then(|m| m.modified()).expect("mtime");
    fs::write(&a, dag("gamma", 2)).expect("write");
    fs::File::options().write(true).open(&a).and_then(|f| f.set_modified(stamp)).expect("touch");
    let (bag, changed) = folder.refresh();
    assert!(!changed);
    assert!(bag.dags.contains_key("alpha"));

    // A new modified time: re-parsed.
    let later = SystemTime::now() + Duration::from_secs(5);
    fs::File::options().write(true).open(&a).and_then(|f| f.set_modified(later)).expect("touch");
    let (bag, changed) = folder.refresh();
    assert!(changed);
    assert_eq!(bag.dags.keys().collect::<Vec<_>>(), ["beta", "gamma"]);

    fs::remove_file(&a).expect("rm");
    let (bag, changed) = folder.refresh();
    assert!(changed, "a removed file is a change");
    assert_eq!(bag.dags.keys().collect::<Vec<_>>(), ["beta"]);
}

#[test]
fn one_bad_file_does_not_hide_the_others() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(tmp.path(), "good.yaml", &dag("good", 1));
    write(tmp.path(), "bad.yaml", "tasks: [\n");
    let bag = load_folder(tmp.path());
    assert!(bag.dags.contains_key("good"));
    let errors = &bag.errors[Path::new("bad.yaml")];
    assert!(errors[0].to_string().starts_with("bad.yaml:2:1: YAML syntax error"), "{errors:?}");
}

#[test]
fn a_dag_id_defined_twice_is_an_error_in_the_second_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(tmp.path(), "a_first.yaml", &dag("same", 1));
    write(tmp.path(), "b_second.yaml", &format!("# comment\n{}", dag("same", 1)));
    let bag = load_folder(tmp.path());
    assert_eq!(bag.dags["same"].fileloc, Path::new("a_first.yaml"));
    let errors = &bag.errors[Path::new("b_second.yaml")];
    assert_eq!(
        errors[0].to_string(),
        "b_second.yaml:2:9: dag_id `same` is already defined in `a_first.yaml`; dag ids must be \
         unique"
    );
}

#[test]
fn a_missing_folder_is_an_error_not_a_panic() {
    let bag = load_folder("/nonexistent/updraft/dags");
    assert!(bag.dags.is_empty());
    assert_eq!(bag.errors.len(), 1);
}

#[test]
fn a_thousand_files_load_in_parallel() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for i in 0..1000 {
        write(
            tmp.path(),
            &format!("d{}/dag_{i:04}.yaml", i % 10),
            &dag(&format!("dag_{i:04}"), 10),
        );
    }
    let started = Instant::now();
    let mut folder = DagFolder::new(tmp.path());
    let (bag, _) = folder.refresh();
    let first = started.elapsed();
    assert_eq!(bag.dags.len(), 1000);
    assert!(bag.errors.is_empty());
    assert_eq!(bag.dags["dag_0999"].graph.topo_order().len(), 10);
    let started = Instant::now();
    let (_, changed) = folder.refresh();
    assert!(!changed);
    // The bound is loose on purpose (debug build, shared machine); release takes far less.
    eprintln!("1000 files: first load {first:?}, unchanged refresh {:?}", started.elapsed());
    assert!(first < Duration::from_secs(20), "{first:?}");
}

#[test]
fn watch_reports_yaml_changes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (tx, rx) = mpsc::channel();
    let _watcher = watch(tmp.path(), move || {
        let _ = tx.send(());
    })
    .expect("watch");
    write(tmp.path(), "new.yaml", &dag("new", 1));
    assert!(rx.recv_timeout(Duration::from_secs(10)).is_ok(), "no event for a new file");
}
