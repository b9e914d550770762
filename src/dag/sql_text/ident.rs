//! Identifier quoting: a name from `identifiers:` (often a template, so user data) is written
//! into a statement only when it is a plain name — letters, digits and `_`, not starting with
//! a digit, at most 63 characters, optionally `schema.name` — and then always quoted for the
//! dialect, so a keyword (`order`) works and nothing else can be smuggled in.
//!
//! Invariant: anything but a plain name is refused, never escaped: no quoting trick to reason
//! about.

use super::Dialect;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a plain identifier: use letters, digits and `_` (not starting with a digit, at \
     most 63 characters), optionally as `schema.name`"
)]
pub struct IdentError(pub String);

/// PostgreSQL's limit (NAMEDATALEN - 1); MySQL allows 64, SQLite more.
const MAX_LEN: usize = 63;

fn plain(part: &str) -> bool {
    let mut chars = part.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && part.len() <= MAX_LEN
}

/// `name` (or `schema.name`) quoted for `dialect`: `"a"."b"` or `` `a`.`b` ``. The case is
/// kept as written: PostgreSQL folds unquoted names to lower case, so pass names as the
/// table was created (usually lower case).
pub fn quote_identifier(name: &str, dialect: Dialect) -> Result<String, IdentError> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 2 || !parts.iter().all(|p| plain(p)) {
        return Err(IdentError(name.to_string()));
    }
    let q = if dialect == Dialect::MySql { '`' } else { '"' };
    Ok(parts.iter().map(|p| format!("{q}{p}{q}")).collect::<Vec<_>>().join("."))
}
