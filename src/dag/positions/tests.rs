//! Positions of keys and values, duplicates, and the agreement with serde_yaml's tree on
//! aliases and merge keys.

use super::*;

const DOC: &str = "\
dag_id: demo
schedule: \"@daily\"
tasks:
  extract:
    type: bash
    retries: 3
  load:
    depends_on: [extract, other]
    deps2:
      - a
      - b
";

type LineCol = (usize, usize);

fn at(p: &Positions, path: &[&str]) -> (LineCol, LineCol) {
    let got = p.get(path).unwrap_or_else(|| panic!("{path:?} not indexed"));
    ((got.key.line, got.key.column), (got.value.line, got.value.column))
}

#[test]
fn keys_and_values_are_located() {
    let p = Positions::build(DOC);
    let cases: &[(&[&str], LineCol, LineCol)] = &[
        (&["dag_id"], (1, 1), (1, 9)),
        (&["schedule"], (2, 1), (2, 11)),
        (&["tasks"], (3, 1), (4, 3)),
        (&["tasks", "extract"], (4, 3), (5, 5)),
        (&["tasks", "extract", "retries"], (6, 5), (6, 14)),
        (&["tasks", "load", "depends_on"], (8, 5), (8, 17)),
        (&["tasks", "load", "depends_on", "1"], (8, 27), (8, 27)),
        (&["tasks", "load", "deps2", "1"], (11, 9), (11, 9)),
    ];
    for (path, key, value) in cases {
        assert_eq!(at(&p, path), (*key, *value), "{path:?}");
    }
}

#[test]
fn nearest_falls_back_to_ancestors() {
    let p = Positions::build(DOC);
    let got = p.nearest(&["tasks", "extract", "nope", "deeper"]);
    assert_eq!(got.key, Pos { line: 4, column: 3 });
    assert_eq!(Positions::build("").nearest(&["x"]).key, Pos::START);
}

#[test]
fn duplicates_are_reported_and_first_occurrence_kept() {
    let src = "tasks:\n  a:\n    type: bash\n  b: {}\n  a:\n    type: empty\n    x: 1\n";
    let p = Positions::build(src);
    assert_eq!(
        p.duplicates(),
        &[DuplicateKey {
            parent: vec!["tasks".into()],
            key: "a".into(),
            first: Pos { line: 2, column: 3 },
            second: Pos { line: 5, column: 3 },
        }]
    );
    assert_eq!(p.get(&["tasks", "a", "type"]).map(|l| l.value.line), Some(3));
    assert!(p.get(&["tasks", "a", "x"]).is_none());
}

#[test]
fn broken_yaml_keeps_what_came_before() {
    let p = Positions::build("a: 1\nb: [\n");
    assert_eq!(p.get(&["a"]).map(|l| l.value), Some(Pos { line: 1, column: 4 }));
}

#[test]
fn only_the_first_document_counts_and_the_second_is_located() {
    let p = Positions::build("a: 1\n---\nb: 2\n");
    assert!(p.get(&["a"]).is_some());
    assert!(p.get(&["b"]).is_none());
    assert_eq!(p.second_document(), Some(Pos { line: 2, column: 1 }));
    assert_eq!(Positions::build("---\na: 1\n").second_document(), None);
    assert_eq!(Positions::build("a: 1\n...\n").second_document(), None);
}

#[test]
fn a_byte_order_mark_does_not_shift_columns() {
    let p = Positions::build("\u{feff}a: 1\nb: 2\n");
    assert_eq!(at(&p, &["a"]), ((1, 1), (1, 4)));
    assert_eq!(at(&p, &["b"]), ((2, 1), (2, 4)));
}

#[test]
fn aliases_point_into_their_anchor() {
    let src = "x-t: &t\n  type: bash\n  env: {A: '1'}\ntasks:\n  a: *t\n  b: [*t]\n";
    let p = Positions::build(src);
    // The alias itself is where the value is written; what it brings, where the anchor wrote it.
    assert_eq!(at(&p, &["tasks", "a"]), ((5, 3), (5, 6)));
    assert_eq!(at(&p, &["tasks", "a", "type"]), ((2, 3), (2, 9)));
    assert_eq!(at(&p, &["tasks", "a", "env", "A"]), ((3, 9), (3, 12)));
    assert_eq!(at(&p, &["tasks", "b", "0", "env"]), ((3, 3), (3, 8)));
}

#[test]
fn merge_keys_bring_their_keys_and_own_keys_win() {
    let src = "\
x-base: &base
  retries: 1
  pool: p1
x-more: &more
  <<: *base
  retry_delay: 5s
tasks:
  a:
    pool: mine
    <<: [*more, {retries: 9, queue: q}]
    type: bash
";
    let p = Positions::build(src);
    let line = |path: &[&str]| p.get(path).map(|l| l.key.line);
    assert_eq!(line(&["tasks", "a", "pool"]), Some(9), "the task's own key wins");
    assert_eq!(line(&["tasks", "a", "retries"]), Some(2), "the first merged mapping wins");
    assert_eq!(line(&["tasks", "a", "retry_delay"]), Some(6));
    assert_eq!(line(&["tasks", "a", "queue"]), Some(10));
    assert_eq!(line(&["tasks", "a", "type"]), Some(11));
    assert_eq!(line(&["tasks", "a", "<<"]), Some(10), "the merge key stays findable");
    assert!(p.duplicates().is_empty(), "a merged key is no duplicate: {:?}", p.duplicates());
}

#[test]
fn aliases_cannot_blow_up_the_index() {
    let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = format!("*a{}", i - 1);
        let items = [prev.as_str(); 10].join(", ");
        src.push_str(&format!("a{i}: &a{i} [{items}]\n"));
    }
    let p = Positions::build(&src);
    assert!(p.entries.len() <= 100 * 200, "{} entries", p.entries.len());
    assert!(p.get(&["a0", "9"]).is_some());
}
