//! Many small rows read as a few: a read whose answer would be thousands of narrow rows (the
//! grid's cells, the DAG list's recent runs) packs the rows of each group into one text value.
//! Every row crossing from the database driver costs more than its values (a hand-off between
//! threads and a conversion per row): 5,000 grid cells take ~15 ms as rows and ~5 ms packed
//! into one row per run, on SQLite as on PostgreSQL.
//!
//! Fields are joined by the unit separator (0x1F) and records by the record separator (0x1E):
//! control characters that no id, state or number holds (run ids refuse control characters at
//! the boundary, task ids are `[A-Za-z0-9_.-]`). A NULL field is empty.

use super::{Backend, Result, StoreError};

const FIELD: char = '\u{1f}';
const RECORD: char = '\u{1e}';

/// The SQL of one record: `fields` (column expressions) as text, NULL as empty, joined by the
/// field separator.
pub(super) fn record(backend: Backend, fields: &[&str]) -> String {
    let sep = match backend {
        Backend::Sqlite => " || char(31) || ",
        Backend::Postgres => " || chr(31) || ",
    };
    let parts: Vec<String> =
        fields.iter().map(|f| format!("COALESCE(CAST({f} AS TEXT), '')")).collect();
    parts.join(sep)
}

/// The SQL aggregate packing the records (`record`) of a group into one value.
pub(super) fn aggregate(backend: Backend, record: &str) -> String {
    match backend {
        Backend::Sqlite => format!("group_concat({record}, char(30))"),
        Backend::Postgres => format!("string_agg({record}, chr(30))"),
    }
}

/// The records of a packed value, each split into exactly `N` fields; a record with another
/// count is a corrupt `column`.
pub(super) fn records<'a, const N: usize>(
    packed: &'a str,
    column: &'static str,
) -> impl Iterator<Item = Result<[&'a str; N]>> {
    packed.split(RECORD).filter(|r| !r.is_empty()).map(move |r| {
        let mut out = [""; N];
        let mut parts = r.split(FIELD);
        for slot in &mut out {
            *slot = parts.next().ok_or_else(|| corrupt(column, r, N))?;
        }
        match parts.next() {
            None => Ok(out),
            Some(_) => Err(corrupt(column, r, N)),
        }
    })
}

fn corrupt(column: &'static str, record: &str, n: usize) -> StoreError {
    let shown: String = record.chars().take(80).flat_map(char::escape_default).collect();
    StoreError::Corrupt { column, message: format!("a packed record `{shown}` has not {n} fields") }
}

/// A field holding an integer.
pub(super) fn int(field: &str, column: &'static str) -> Result<i64> {
    field.parse().map_err(|_| StoreError::Corrupt {
        column,
        message: format!("`{}` is not an integer", field.escape_default()),
    })
}

/// A field holding an integer or NULL (empty).
pub(super) fn opt_int(field: &str, column: &'static str) -> Result<Option<i64>> {
    if field.is_empty() { Ok(None) } else { int(field, column).map(Some) }
}

/// A field holding a parsed value (a state name).
pub(super) fn parsed<T: std::str::FromStr<Err = String>>(
    field: &str,
    column: &'static str,
) -> Result<T> {
    field.parse().map_err(|message| StoreError::Corrupt { column, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_split_into_exact_fields() {
        let packed = "a\u{1f}1\u{1f}\u{1e}b\u{1f}2\u{1f}x";
        let got: Vec<[&str; 3]> = records::<3>(packed, "c").collect::<Result<_>>().expect("ok");
        assert_eq!(got, vec![["a", "1", ""], ["b", "2", "x"]]);
        assert_eq!(opt_int(got[0][2], "c").expect("empty"), None);
        assert_eq!(int(got[1][1], "c").expect("int"), 2);
        let short = records::<3>("a\u{1f}1", "cells").next().expect("one");
        assert!(matches!(short, Err(StoreError::Corrupt { column: "cells", .. })), "{short:?}");
        let long = records::<2>("a\u{1f}1\u{1f}2", "cells").next().expect("one");
        assert!(long.is_err());
        assert!(int("x", "c").is_err());
        assert_eq!(records::<2>("", "c").count(), 0, "no record");
    }
}
