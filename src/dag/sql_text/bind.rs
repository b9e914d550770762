//! Named parameters: `:name` in a statement becomes the dialect's placeholder (`$1` in
//! PostgreSQL, `?` elsewhere) and its value is bound by the driver; `:!name` becomes the
//! identifier `name` of `identifiers:`, quoted for the dialect. A template value (`{{ ds }}`)
//! arrives here as a sentinel and becomes a placeholder too.
//!
//! Only code is rewritten: a `:` inside a string, a quoted name, a comment or a dollar-quoted
//! body is left alone, as are PostgreSQL's `::` casts and MySQL's `:=`.
//!
//! Invariant: no value is ever written into the statement text; the only text inserted is a
//! placeholder or an identifier that `quote_identifier` accepted.

use std::collections::BTreeMap;

use super::lexer::{Lexer, Tok, VALUE_CLOSE, VALUE_OPEN};
use super::{Dialect, line_of};

/// What a placeholder of the rewritten statement is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// The entry of `parameters:` with this name.
    Param(String),
    /// The n-th template value of the rendered statement (0-based).
    Value(usize),
}

/// A statement with placeholders, and what to bind to each, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    /// The statement as the driver receives it.
    pub sql: String,
    /// One entry per placeholder number (`$1` is `slots[0]`); for `?` dialects one per `?`
    /// in order, so a name used twice is listed twice.
    pub slots: Vec<Slot>,
}

/// Why a statement cannot be rewritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// `:name` with no entry in `parameters:`.
    #[error("line {line}: `:{name}` is not in `parameters:`")]
    UnknownParam {
        /// The name.
        name: String,
        /// Its line in the statement.
        line: usize,
    },
    /// `:!name` with no entry in `identifiers:`.
    #[error("line {line}: `:!{name}` is not in `identifiers:`")]
    UnknownIdentifier {
        /// The name.
        name: String,
        /// Its line in the statement.
        line: usize,
    },
    /// A template value inside a string, quoted name, comment or dollar-quoted body.
    #[error(
        "line {line}: a template value (`{{{{ ... }}}}`) inside a quoted string, a quoted name \
         or a comment; values are bound as parameters, so write it on its own (`WHERE day = \
         {{{{ ds }}}}`, or `'{{{{ ds }}}}'` as the whole literal), pass it in `parameters:`, or \
         pass a name in `identifiers:`"
    )]
    ValueInQuotes {
        /// Its line in the statement.
        line: usize,
    },
}

/// The sentinel that stands for the `n`-th template value of a rendered statement.
pub fn value_sentinel(n: usize) -> String {
    format!("{VALUE_OPEN}{n}{VALUE_CLOSE}")
}

fn sentinel_index(text: &str) -> Option<usize> {
    text.strip_prefix(VALUE_OPEN)?.strip_suffix(VALUE_CLOSE)?.parse().ok()
}

/// Rewrites one statement: `:name` (a key of `params`) into a placeholder, `:!name` into the
/// already quoted identifier `idents[name]`, template value sentinels into placeholders.
pub fn rewrite(
    text: &str,
    dialect: Dialect,
    params: &dyn Fn(&str) -> bool,
    idents: &BTreeMap<String, String>,
) -> Result<Bound, BindError> {
    let tokens: Vec<_> = Lexer::new(text, dialect).collect();
    let mut out = String::with_capacity(text.len());
    let mut slots: Vec<Slot> = Vec::new();
    let mut place = |slot: Slot, out: &mut String| match dialect {
        Dialect::Postgres => {
            let n = match slots.iter().position(|s| *s == slot) {
                Some(n) => n,
                None => {
                    slots.push(slot);
                    slots.len() - 1
                }
            };
            out.push_str(&format!("${}", n + 1));
        }
        Dialect::MySql | Dialect::Sqlite => {
            slots.push(slot);
            out.push('?');
        }
    };
    let tok_text = |i: usize| tokens.get(i).map(|t| &text[t.start..t.end]);
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i];
        let s = &text[t.start..t.end];
        match t.kind {
            Tok::Value => match sentinel_index(s) {
                Some(n) => place(Slot::Value(n), &mut out),
                None => out.push_str(s),
            },
            Tok::Str if s.len() > 2 && s.starts_with('\'') => {
                match sentinel_index(&s[1..s.len() - 1]) {
                    // `'{{ ds }}'`: the whole literal is the value.
                    Some(n) => place(Slot::Value(n), &mut out),
                    None if s.contains(VALUE_OPEN) => {
                        return Err(BindError::ValueInQuotes { line: line_of(text, t.start) });
                    }
                    None => out.push_str(s),
                }
            }
            _ if t.kind != Tok::Other && s.contains(VALUE_OPEN) => {
                return Err(BindError::ValueInQuotes { line: line_of(text, t.start) });
            }
            Tok::Other if s == ":" => {
                let prev_colon = i > 0 && tok_text(i - 1) == Some(":");
                let next = tok_text(i + 1);
                if prev_colon || next == Some(":") {
                    // `::` (a PostgreSQL cast), written as is, both colons at once.
                    out.push_str(s);
                    if next == Some(":") {
                        out.push(':');
                        i += 1;
                    }
                } else if next == Some("!") && is_name(tokens.get(i + 2), text) {
                    let name = tok_text(i + 2).unwrap_or_default();
                    let Some(q) = idents.get(name) else {
                        let line = line_of(text, t.start);
                        return Err(BindError::UnknownIdentifier { name: name.into(), line });
                    };
                    out.push_str(q);
                    i += 2;
                } else if is_name(tokens.get(i + 1), text) {
                    let name = next.unwrap_or_default();
                    if !params(name) {
                        let line = line_of(text, t.start);
                        return Err(BindError::UnknownParam { name: name.into(), line });
                    }
                    place(Slot::Param(name.to_string()), &mut out);
                    i += 1;
                } else {
                    out.push_str(s);
                }
            }
            _ => out.push_str(s),
        }
        i += 1;
    }
    Ok(Bound { sql: out, slots })
}

/// A word that can be a parameter name: starts with a letter or `_` (so `a[1:2]` and
/// `'12:30'`-like code such as `INTERVAL '1' HOUR_MINUTE` keep their colons).
fn is_name(t: Option<&super::Token>, text: &str) -> bool {
    t.is_some_and(|t| {
        t.kind == Tok::Word
            && text[t.start..t.end].chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
    })
}
