//! The tables a try's statements read and write, for its OpenLineage datasets: each prepared
//! statement (placeholders in, identifiers quoted) parsed by `sqlparser` in the connection's
//! dialect. Written: the target of `INSERT`, `UPDATE`, `DELETE`, `MERGE`, `TRUNCATE` and
//! `CREATE TABLE` (with or without `AS SELECT`); read: every other table a statement names,
//! less the names of its `WITH` queries.
//!
//! Invariant: never fails a try. A statement the parser does not understand (a dialect
//! extension, a procedure call) names nothing; names are as the statement writes them, an
//! unquoted PostgreSQL name folded to lower case as the server folds it.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    FromTable, ObjectName, ObjectNamePart, Query, SetExpr, Statement, TableFactor, TableObject,
    Visit, Visitor,
};
use sqlparser::dialect::{self, Dialect as SqlDialect};
use sqlparser::parser::Parser;

use super::Dialect;
use crate::operators::Tables;

/// What `statements` (prepared for `dialect`) read and write, each name once, in order.
pub(crate) fn tables<'a>(
    statements: impl IntoIterator<Item = &'a str>,
    dialect: Dialect,
) -> Tables {
    let parser: Box<dyn SqlDialect> = match dialect {
        Dialect::Postgres => Box::new(dialect::PostgreSqlDialect {}),
        Dialect::MySql => Box::new(dialect::MySqlDialect {}),
        Dialect::Sqlite => Box::new(dialect::SQLiteDialect {}),
    };
    let fold = dialect == Dialect::Postgres;
    let (mut reads, mut writes) = (Vec::new(), Vec::new());
    for sql in statements {
        let Ok(parsed) = Parser::parse_sql(parser.as_ref(), sql) else { continue };
        for stmt in &parsed {
            let written: Vec<String> = targets(stmt).iter().map(|n| name(n, fold)).collect();
            let mut names = Names { fold, ctes: BTreeSet::new(), seen: Vec::new() };
            let _ = stmt.visit(&mut names);
            for n in names.seen {
                if !written.contains(&n) && !names.ctes.contains(&n) {
                    push(&mut reads, n);
                }
            }
            for n in written {
                push(&mut writes, n);
            }
        }
    }
    Tables { reads, writes }
}

fn push(list: &mut Vec<String>, name: String) {
    if !list.contains(&name) {
        list.push(name);
    }
}

/// The name of a plain table factor.
fn factor(f: &TableFactor) -> Option<&ObjectName> {
    match f {
        TableFactor::Table { name, .. } => Some(name),
        _ => None,
    }
}

/// The tables a statement writes.
fn targets(stmt: &Statement) -> Vec<&ObjectName> {
    match stmt {
        Statement::Insert(i) => match &i.table {
            TableObject::TableName(n) => vec![n],
            _ => Vec::new(),
        },
        Statement::Update(u) => factor(&u.table.relation).into_iter().collect(),
        Statement::Delete(d) if !d.tables.is_empty() => d.tables.iter().collect(),
        Statement::Delete(d) => match &d.from {
            FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => {
                t.iter().filter_map(|t| factor(&t.relation)).collect()
            }
        },
        Statement::Merge(m) => factor(&m.table).into_iter().collect(),
        Statement::Truncate(t) => t.table_names.iter().map(|t| &t.name).collect(),
        Statement::CreateTable(c) => vec![&c.name],
        // `WITH ... INSERT` (PostgreSQL): the write is the query's body.
        Statement::Query(q) => match q.body.as_ref() {
            SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) | SetExpr::Merge(s) => {
                targets(s)
            }
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// `schema.table` as written, without quotes; unquoted parts folded when `fold`.
fn name(n: &ObjectName, fold: bool) -> String {
    let parts: Vec<String> =
        n.0.iter()
            .map(|p| match p {
                ObjectNamePart::Identifier(i) if fold && i.quote_style.is_none() => {
                    i.value.to_lowercase()
                }
                ObjectNamePart::Identifier(i) => i.value.clone(),
                other => other.to_string(),
            })
            .collect();
    parts.join(".")
}

/// Every relation a statement names, and the names its `WITH` clauses define.
struct Names {
    fold: bool,
    ctes: BTreeSet<String>,
    seen: Vec<String>,
}

impl Visitor for Names {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                let n = &cte.alias.name;
                let n = if self.fold && n.quote_style.is_none() {
                    n.value.to_lowercase()
                } else {
                    n.value.clone()
                };
                self.ctes.insert(n);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        push(&mut self.seen, name(relation, self.fold));
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(sql: &[&str], d: Dialect) -> (Vec<String>, Vec<String>) {
        let t = tables(sql.iter().copied(), d);
        (t.reads, t.writes)
    }

    fn v(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_mart_refresh_reads_its_source_and_writes_its_targets() {
        let script = [
            "DELETE FROM top_destinations WHERE day = ?",
            "INSERT INTO top_destinations (day, airport, `rank`) SELECT flight_date, arrival_iata, \
             RANK() OVER (ORDER BY COUNT(*) DESC) FROM flights f JOIN airports a ON a.iata = \
             f.arrival_iata WHERE flight_date = ? GROUP BY 1, 2",
        ];
        let (reads, writes) = of(&script, Dialect::MySql);
        assert_eq!(writes, v(&["top_destinations"]));
        assert_eq!(reads, v(&["flights", "airports"]), "the target is no input of its own write");
    }

    #[test]
    fn ctes_schemas_quotes_and_folding() {
        let sql = [r#"WITH recent AS (SELECT * FROM Sales.Orders WHERE ts > $1)
            INSERT INTO mart."Daily" SELECT day, sum(x) FROM recent JOIN dim_day USING (day) GROUP BY day"#];
        let (reads, writes) = of(&sql, Dialect::Postgres);
        assert_eq!(writes, v(&["mart.Daily"]), "a quoted name keeps its case");
        assert_eq!(reads, v(&["sales.orders", "dim_day"]), "no CTE, unquoted names folded");
        let sql = [
            "CREATE TABLE IF NOT EXISTS t2 AS SELECT * FROM t1",
            "UPDATE t3 SET a = 1 WHERE b IN (SELECT b FROM t4)",
            "TRUNCATE TABLE t5",
        ];
        let (reads, writes) = of(&sql, Dialect::Sqlite);
        assert_eq!(writes, v(&["t2", "t3", "t5"]));
        assert_eq!(reads, v(&["t1", "t4"]));
    }

    #[test]
    fn what_does_not_parse_names_nothing() {
        let (reads, writes) =
            of(&["CALL refresh_all()", "this is not sql", "SELECT 1"], Dialect::Postgres);
        assert!(reads.is_empty() && writes.is_empty(), "{reads:?} {writes:?}");
    }
}
