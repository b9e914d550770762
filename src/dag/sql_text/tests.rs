//! Table tests of the splitter, the parameter rewriting and identifier quoting.

use std::collections::BTreeMap;

use super::*;

fn texts(sql: &str, d: Dialect) -> Vec<String> {
    split(sql, d).unwrap_or_else(|e| panic!("{sql}: {e}")).into_iter().map(|s| s.text).collect()
}

#[test]
fn semicolons_in_quotes_and_comments_do_not_split() {
    let sql = "SELECT 'a;b', \"c;d\" -- e;f\n; /* g; /* h; */ */ SELECT 2;;";
    assert_eq!(texts(sql, Dialect::Postgres), ["SELECT 'a;b', \"c;d\"", "SELECT 2"]);
    // Not nested in MySQL and SQLite: the first `*/` ends the comment.
    assert_eq!(texts("/* a; /* b */ SELECT 1; SELECT 2", Dialect::MySql), ["SELECT 1", "SELECT 2"]);
    assert_eq!(texts("SELECT 1 # x; y\n;SELECT 2", Dialect::MySql), ["SELECT 1", "SELECT 2"]);
    // `#` is an operator in PostgreSQL.
    assert_eq!(texts("SELECT 1 # 2; SELECT 3", Dialect::Postgres), ["SELECT 1 # 2", "SELECT 3"]);
    // MySQL: backslash escapes, `--` only before a space.
    assert_eq!(
        texts(r"SELECT 'it\'s;'; SELECT 1--1;", Dialect::MySql),
        [r"SELECT 'it\'s;'", "SELECT 1--1"]
    );
    assert_eq!(texts("SELECT 'it''s;'; SELECT `a;b` FROM [c;d]", Dialect::Sqlite).len(), 2);
    assert_eq!(
        texts("SELECT E'a\\';b'; SELECT 2", Dialect::Postgres),
        ["SELECT E'a\\';b'", "SELECT 2"]
    );
}

#[test]
fn dollar_quoted_bodies_are_one_statement() {
    let sql = "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql;\n\
               DO $body$ BEGIN PERFORM 1; END $body$;\nSELECT $1, a$b$ FROM t";
    let s = split(sql, Dialect::Postgres).unwrap();
    assert_eq!(s.len(), 3, "{s:#?}");
    assert_eq!((s[1].line, s[2].line), (2, 3));
}

#[test]
fn trigger_and_procedure_bodies_are_one_statement() {
    let sqlite = "CREATE TABLE t (a);\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  \
                  UPDATE t SET a = CASE WHEN a > 1 THEN 1 ELSE 2 END;\n  DELETE FROM t;\nEND;\n\
                  INSERT INTO t VALUES (1);";
    assert_eq!(texts(sqlite, Dialect::Sqlite).len(), 3);
    let mysql = "CREATE DEFINER = CURRENT_USER PROCEDURE p() BEGIN\n DECLARE i INT DEFAULT 0;\n \
                 WHILE i < 3 DO SET i = i + 1; END WHILE;\n IF i = 3 THEN SELECT 1; END IF;\n \
                 CASE i WHEN 3 THEN SELECT 2; END CASE;\n lbl: LOOP LEAVE lbl; END LOOP;\nEND;\n\
                 CALL p();\nBEGIN;\nCOMMIT;";
    let s = texts(mysql, Dialect::MySql);
    assert_eq!(s.len(), 4, "{s:#?}");
    assert_eq!(s[1], "CALL p()");
    assert_eq!(
        texts("BEGIN NOT ATOMIC SELECT 1; SELECT 2; END; SELECT 3", Dialect::MySql).len(),
        2
    );
    // A table whose name merely contains a keyword is no routine.
    assert_eq!(texts("CREATE TABLE trigger_log (a int); SELECT 1", Dialect::MySql).len(), 2);
}

#[test]
fn delimiter_and_unclosed_quotes_are_refused() {
    let e = split("SELECT 1;\nDELIMITER //\nCREATE PROCEDURE p() BEGIN END//", Dialect::MySql);
    assert_eq!(e, Err(SplitError::Delimiter { line: 2 }));
    let e = split("SELECT 1;\nSELECT 'a", Dialect::Postgres).unwrap_err();
    assert_eq!(e, SplitError::Unterminated { what: "string", line: 2 });
    assert!(matches!(
        split("SELECT $$ x", Dialect::Postgres),
        Err(SplitError::Unterminated { what: "dollar quote", .. })
    ));
    assert!(matches!(
        split("/* x", Dialect::Sqlite),
        Err(SplitError::Unterminated { what: "comment", .. })
    ));
}

#[test]
fn load_time_count_needs_every_dialect_to_agree() {
    assert_eq!(statement_count_everywhere("SELECT 1;\n\nSELECT 2"), Some(3));
    assert_eq!(statement_count_everywhere("SELECT 1;"), None);
    // Two statements in MySQL (`$$` is no quote there), one in PostgreSQL.
    assert_eq!(statement_count_everywhere("SELECT $$a;b$$"), None);
}

fn rw(sql: &str, d: Dialect) -> Result<Bound, BindError> {
    let mut idents = BTreeMap::new();
    idents.insert("tbl".to_string(), quote_identifier("s.events", d).unwrap());
    rewrite(sql, d, &|n| ["day", "n"].contains(&n), &idents)
}

#[test]
fn named_parameters_become_placeholders_only_in_code() {
    let sql = "SELECT :day, ':day', \"x:day\", a::text, :n, :day -- :day\nFROM :!tbl";
    let b = rw(sql, Dialect::Postgres).unwrap();
    assert_eq!(
        b.sql,
        "SELECT $1, ':day', \"x:day\", a::text, $2, $1 -- :day\nFROM \"s\".\"events\""
    );
    assert_eq!(b.slots, [Slot::Param("day".into()), Slot::Param("n".into())]);
    let b = rw("SELECT :day, @v := :n, :day FROM :!tbl WHERE x = '1:2'", Dialect::MySql).unwrap();
    assert_eq!(b.sql, "SELECT ?, @v := ?, ? FROM `s`.`events` WHERE x = '1:2'");
    assert_eq!(b.slots.len(), 3);
    let b = rw("SELECT $$ :day $$, arr[1:2], :day", Dialect::Postgres).unwrap();
    assert_eq!(b.sql, "SELECT $$ :day $$, arr[1:2], $1");
    assert_eq!(
        rw("SELECT :nope", Dialect::Sqlite),
        Err(BindError::UnknownParam { name: "nope".into(), line: 1 })
    );
    assert!(matches!(
        rw("SELECT 1 FROM :!other", Dialect::Sqlite),
        Err(BindError::UnknownIdentifier { .. })
    ));
}

#[test]
fn template_values_become_placeholders_or_are_refused_in_quotes() {
    let v = value_sentinel;
    let sql = format!("SELECT {} , '{}', :day", v(0), v(1));
    let b = rw(&sql, Dialect::Postgres).unwrap();
    assert_eq!(b.sql, "SELECT $1 , $2, $3");
    assert_eq!(b.slots, [Slot::Value(0), Slot::Value(1), Slot::Param("day".into())]);
    for bad in [
        format!("SELECT 'x{}'", v(0)),
        format!("SELECT \"{}\"", v(0)),
        format!("-- {}\nSELECT 1", v(0)),
    ] {
        assert!(
            matches!(rw(&bad, Dialect::Postgres), Err(BindError::ValueInQuotes { .. })),
            "{bad}"
        );
    }
}

#[test]
fn identifiers_must_be_plain_names() {
    assert_eq!(quote_identifier("order", Dialect::Postgres).unwrap(), "\"order\"");
    assert_eq!(quote_identifier("mart.top_10", Dialect::MySql).unwrap(), "`mart`.`top_10`");
    for bad in ["my table", "a;b", "x\"y", "1abc", "", "a.b.c", "a.", "t`", "é", &"a".repeat(64)] {
        assert!(quote_identifier(bad, Dialect::Sqlite).is_err(), "{bad:?}");
    }
    assert_eq!(Dialect::from_scheme("postgresql"), Some(Dialect::Postgres));
    assert_eq!(Dialect::from_scheme("mariadb"), Some(Dialect::MySql));
    assert_eq!(Dialect::from_scheme("http"), None);
}
