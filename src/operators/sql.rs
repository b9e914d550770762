//! The shared SQL layer (`sql/`) and, with it, the `sql` task type.
//!
//! Layer: [`Db`] is one session on PostgreSQL, MySQL/MariaDB or SQLite, chosen by the
//! connection's scheme (`db.rs`: connect in UTC, bound values, rows streamed as JSON,
//! transactions, cancellation on the server); `values.rs` says how values and column types
//! map to JSON; the text work — [`Dialect`], the splitter, `:name` -> placeholders, identifier
//! quoting — is `dag::sql_text`, re-exported here. Task types that talk SQL (`sql`,
//! `sql_sensor`, `kafka_to_sql`, `sql_to_kafka`) use only what this file exports.
//!
//! Invariant: user values reach a database only as bound parameters; identifiers only through
//! [`quote_identifier`].

mod connect;
pub mod db;
mod numeric;
pub(crate) mod prepare;
pub(crate) mod tables;
pub(crate) mod task;
mod values;

pub use crate::dag::sql_text::{
    Bound, Dialect, Slot, Statement, quote_identifier, rewrite, split, value_sentinel,
};
pub use db::{Db, DbError, DbRow};
pub use task::{XCOM_MAX_BYTES, XCOM_MAX_ROWS, run};
pub use values::{Cell, pg_reads_natively};
