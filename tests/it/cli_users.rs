//! `updraft users` and `updraft connections` as a user runs them: create, list, token; add,
//! list masked, delete; errors that name what is wrong.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn updraft_with(args: &[&str], home: &Path, stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_updraft"))
        .args(args)
        .env("UPDRAFT_HOME", home)
        .env("UPDRAFT_DAGS_FOLDER", home.join("dags"))
        .env("UPDRAFT_LOG", "warn")
        .env_remove("UPDRAFT_DATABASE_URL")
        .env_remove("UPDRAFT_SECRET_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run updraft");
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(stdin.unwrap_or("").as_bytes()).expect("stdin");
    }
    child.wait_with_output().expect("wait")
}

fn updraft(args: &[&str], home: &Path) -> Output {
    updraft_with(args, home, None)
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn users_create_list_and_token() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let out = updraft(&["users", "create", "--username", "ann", "--role", "admin"], h);
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    let generated = t.lines().find_map(|l| l.strip_prefix("Password: ")).expect("password shown");
    assert!(generated.len() >= 16, "{t}");

    let args = ["users", "create", "--username", "bob", "--role", "viewer", "--role", "operator"];
    let out = updraft_with(
        &[&args[..], &["--password-stdin", "--email", "b@x.org"]].concat(),
        h,
        Some("bobpass123\n"),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("Password:"), "{}", text(&out));

    // Errors name what is wrong.
    let out = updraft(&["users", "create", "--username", "bob", "--role", "viewer"], h);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("`bob` is taken"), "{}", text(&out));
    let out = updraft(&["users", "create", "--username", "cy", "--role", "root"], h);
    assert!(!out.status.success() && text(&out).contains("unknown role `root`"), "{}", text(&out));
    let out =
        updraft(&["users", "create", "--username", "cy", "--role", "viewer", "--password", "x"], h);
    assert!(!out.status.success() && text(&out).contains("8 characters"), "{}", text(&out));

    let out = updraft(&["users", "list", "--json"], h);
    assert!(out.status.success(), "{}", text(&out));
    let users: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let names: Vec<_> = users.as_array().unwrap().iter().map(|u| u["username"].clone()).collect();
    assert_eq!(names, vec!["ann", "bob"]);
    assert_eq!(users[1]["roles"], serde_json::json!(["operator", "viewer"]));
    assert_eq!(users[1]["email"], "b@x.org");
    let out = updraft(&["users", "list"], h);
    assert!(text(&out).contains("operator,viewer"), "{}", text(&out));

    let out = updraft(&["users", "token", "bob", "--name", "ci"], h);
    assert!(out.status.success(), "{}", text(&out));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(token.starts_with("updraft_") && !token.contains(' '), "{token}");
    let out = updraft(&["users", "token", "nobody", "--name", "ci"], h);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no user `nobody`"), "{}", text(&out));

    let out = updraft(&["users", "password", "bob", "--password", "another123"], h);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn connections_add_list_masked_and_delete() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let uri = "postgres://etl:Sup3rSecretPw@db.internal:5432/warehouse";
    let out =
        updraft(&["connections", "add", "warehouse", "--uri", uri, "--description", "main"], h);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("Sup3rSecretPw"));

    let out = updraft(&["connections", "add", "bad", "--uri", "no scheme Sup3rSecretPw"], h);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("invalid URI") && !text(&out).contains("Sup3rSecretPw"));

    let out = updraft(&["connections", "list"], h);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("postgres://etl:***@db.internal:5432/warehouse") && t.contains("main"),
        "{t}"
    );
    assert!(!t.contains("Sup3rSecretPw"), "{t}");
    let out = updraft(&["connections", "list", "--json"], h);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(rows[0]["conn_id"], "warehouse");
    assert_eq!(rows[0]["conn_type"], "postgres");
    assert_eq!(rows[0]["uri"], "postgres://etl:***@db.internal:5432/warehouse");

    // At rest, the database file holds only ciphertext.
    for file in ["updraft.db", "updraft.db-wal"] {
        let db = std::fs::read(h.join(file)).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&db).contains("Sup3rSecretPw"), "{file}");
    }

    let out = updraft(&["connections", "delete", "warehouse"], h);
    assert!(out.status.success(), "{}", text(&out));
    let out = updraft(&["connections", "delete", "warehouse"], h);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no connection `warehouse`"));
}

#[test]
fn connections_add_reads_the_password_from_stdin_not_the_command_line() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let args =
        ["connections", "add", "wh", "--uri", "postgres://etl@db.internal/w", "--password-stdin"];
    let out = updraft_with(&args, h, Some("Pa ss/w@rd:1\n"));
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("Pa ss"), "{}", text(&out));
    let out = updraft(&["connections", "list"], h);
    assert!(text(&out).contains("postgres://etl:***@db.internal/w"), "{}", text(&out));
    // The stored URI carries the password, percent-encoded, exactly as typed.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let settings = updraft::config::Settings::for_home(h, &h.join("dags"));
        let store = updraft::store::Store::open(&settings.database_url).await.expect("store");
        let secrets = updraft::secrets::SecretBox::for_settings(&settings).expect("key");
        let row = store.list_connections().await.expect("rows").remove(0);
        let uri = secrets.decrypt(&row.uri_encrypted).expect("decrypt");
        let conn = updraft::operators::connection::Connection::parse("wh", &uri).expect("parse");
        assert_eq!(conn.password.as_deref(), Some("Pa ss/w@rd:1"));
        let audit = store.list_audit(None, None, 5).await.expect("audit");
        assert!(
            audit.iter().any(|a| a.event == "connection_saved" && a.username.starts_with("cli:"))
        );
    });
    // A URI that already has a password, or an empty one read: refused, nothing echoed.
    let args = ["connections", "add", "x", "--uri", "postgres://u:Secret9@h/d", "--password-stdin"];
    let out = updraft_with(&args, h, Some("other\n"));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("already holds a password") && !text(&out).contains("Secret9"));
    let args = ["connections", "add", "y", "--uri", "postgres://u@h/d", "--password-stdin"];
    assert_eq!(updraft_with(&args, h, Some("\n")).status.code(), Some(2));
}
