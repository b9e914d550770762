//! Build script: embeds the SQL migrations (`migrations/sqlite/*.sql`, `migrations/postgres/*.sql`)
//! as `$OUT_DIR/migrations.rs`, read by `src/store/migrations.rs`.
//!
//! Why not sqlx's `migrate!` macro: it needs sqlx's `macros` feature, which compiles sqlx, its
//! SQLite and PostgreSQL drivers and SQLite's C source a second time, for the compiler's own use
//! (about a minute of a cold build on two cores).
//! Invariant: every `.sql` file of those two folders is listed, in file-name order (the version
//! prefix orders them); cargo re-runs this script when a file there is added, changed or removed.

use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    println!("cargo::rerun-if-changed=migrations");
    // Checkouts sharing one target folder share this script's output too; a run from another
    // checkout (listing its own files) is newer than this one's files, so mtimes alone would
    // leave it in place. The working directory names the checkout: a change of it re-runs.
    println!("cargo::rerun-if-env-changed=PWD");
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets it")).join("migrations.rs");
    let mut code = String::new();
    for (name, dir) in [("SQLITE", "sqlite"), ("POSTGRES", "postgres")] {
        let dir_path = root.join("migrations").join(dir);
        code.push_str(&format!(
            "/// `migrations/{dir}`: (file name, SQL), in file-name order.\n\
             pub(super) const {name}: &[(&str, &str)] = &[\n"
        ));
        for file in sql_files(&dir_path) {
            let file_name = file.file_name().map(|n| n.to_string_lossy().into_owned());
            // The path is rebuilt from CARGO_MANIFEST_DIR when the crate compiles, not written
            // out here: a target folder shared by two checkouts must never embed the other's file.
            let file_name = file_name.unwrap_or_default();
            code.push_str(&format!(
                "    ({file_name:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), {:?}))),\n",
                format!("/migrations/{dir}/{file_name}")
            ));
        }
        code.push_str("];\n");
    }
    fs::write(&out, code).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}

fn sql_files(dir: &Path) -> Vec<PathBuf> {
    let entries =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    files
}
