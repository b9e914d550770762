//! SQL text, without a database: the [`Dialect`] a connection speaks, a lexer that knows each
//! dialect's quotes and comments, the statement splitter of `script:`, the rewriting of named
//! parameters (`:name`) into the dialect's placeholders, and identifier quoting.
//!
//! It lives in `dag` because the load-time check of a `sql:` field (exactly one statement)
//! needs the splitter and `dag` may not import `operators`; the operators of the SQL task
//! types (`operators::sql` and the Kafka <-> SQL ones) use it from here.
//!
//! Invariant: pure text work — no I/O, no database. A value never becomes SQL text here:
//! `:name` becomes a placeholder whose value is bound by the driver, and an identifier is
//! written only after [`quote_identifier`] found it to be a plain name.

mod bind;
mod ident;
mod lexer;
mod split;

#[cfg(test)]
mod tests;

pub use bind::{BindError, Bound, Slot, rewrite, value_sentinel};
pub use ident::{IdentError, quote_identifier};
pub use lexer::{Lexer, Tok, Token};
pub use split::{SplitError, Statement, split, statement_count_everywhere};

/// The SQL dialect of a connection, chosen from its URI scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// PostgreSQL: `"ident"`, `E'..'`, `$tag$..$tag$`, nested `/* */`, `::` casts.
    Postgres,
    /// MySQL and MariaDB: `` `ident` ``, `"..."` and `'...'` strings with backslash escapes,
    /// `#` comments, `-- ` comments only before a space.
    MySql,
    /// SQLite: `"ident"`, `` `ident` ``, `[ident]`, `'..'` strings without backslash escapes.
    Sqlite,
}

impl Dialect {
    /// The URI schemes of SQL connections, for messages.
    pub const SCHEMES: [&'static str; 5] = ["postgres", "postgresql", "mysql", "mariadb", "sqlite"];

    /// The dialect of a connection URI scheme (`postgres`, `postgresql`, `mysql`, `mariadb`,
    /// `sqlite`), or `None` when the scheme is not a SQL database this crate speaks.
    pub fn from_scheme(scheme: &str) -> Option<Dialect> {
        match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Some(Dialect::Postgres),
            "mysql" | "mariadb" => Some(Dialect::MySql),
            "sqlite" => Some(Dialect::Sqlite),
            _ => None,
        }
    }

    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "PostgreSQL",
            Dialect::MySql => "MySQL/MariaDB",
            Dialect::Sqlite => "SQLite",
        }
    }

    /// Every dialect, for checks that must hold whatever the connection turns out to be.
    pub const ALL: [Dialect; 3] = [Dialect::Postgres, Dialect::MySql, Dialect::Sqlite];
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    1 + text.as_bytes()[..offset.min(text.len())].iter().filter(|b| **b == b'\n').count()
}
