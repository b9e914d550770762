//! `type: cql`: statements on Cassandra, run in order.
//!
//! Schema only: statements are templates rendered at run time; an empty list is refused in
//! `parse/kind.rs`.

use serde::Deserialize;

use super::cassandra_default;

/// `type: cql`: statements on Cassandra, run in order.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CqlTask {
    /// Cassandra connection.
    #[serde(default = "cassandra_default")]
    pub connection: String,
    /// Statements (each templated), run one after the other; rows of the last one (a SELECT)
    /// become the XCom, at most `max_rows` of them.
    pub statements: Vec<String>,
    /// Bound on the rows returned as XCom.
    #[serde(default = "max_rows")]
    pub max_rows: usize,
}

fn max_rows() -> usize {
    1000
}
