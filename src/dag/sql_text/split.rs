//! The statement splitter of `script:` and the one-statement check of `sql:`.
//!
//! A `;` ends a statement only in code — not in a string, a quoted name, a comment or a
//! PostgreSQL dollar-quoted body — and not inside the `BEGIN ... END` body of a trigger,
//! procedure, function or event (MySQL/MariaDB, SQLite, PostgreSQL's `BEGIN ATOMIC`), where
//! `CASE ... END` nests and `END IF` / `END LOOP` / `END WHILE` / `END REPEAT` close their own
//! constructs. `DELIMITER` is a command of the `mysql` client, not SQL, and is refused.
//!
//! Invariant: the statements, joined back with `;`, are the script minus whitespace and
//! comments between statements; nothing inside a statement is changed.

use super::lexer::{Lexer, Tok, Token};
use super::{Dialect, line_of};

/// One statement of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Its text, from its first token to its last (no surrounding whitespace or `;`).
    pub text: String,
    /// The 1-based line of the script where it starts.
    pub line: usize,
}

/// Why a script cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// A quote, dollar quote or comment is never closed.
    #[error("line {line}: this {what} is never closed")]
    Unterminated {
        /// What was opened.
        what: &'static str,
        /// Where it starts.
        line: usize,
    },
    /// A `DELIMITER` line.
    #[error(
        "line {line}: `DELIMITER` is a command of the mysql client, not SQL; end every \
         statement with `;` (trigger and procedure bodies in BEGIN ... END are recognised)"
    )]
    Delimiter {
        /// Where it is.
        line: usize,
    },
}

/// Splits `text` into its statements. Empty statements (`;;`, comments only) are dropped.
pub fn split(text: &str, dialect: Dialect) -> Result<Vec<Statement>, SplitError> {
    let tokens: Vec<Token> = Lexer::new(text, dialect).collect();
    let mut out = Vec::new();
    let mut at = 0;
    while at < tokens.len() {
        let (stmt, next) = one_statement(text, &tokens, at)?;
        if let Some(stmt) = stmt {
            out.push(stmt);
        }
        at = next;
    }
    Ok(out)
}

/// How many statements `text` holds in each dialect, when all three agree that it is more
/// than one: the line of the second statement (by PostgreSQL's reading). Used at load time,
/// when the connection (hence the dialect) is not known yet; the operator checks again with
/// the real dialect.
pub fn statement_count_everywhere(text: &str) -> Option<usize> {
    let mut second = None;
    for d in Dialect::ALL {
        match split(text, d) {
            Ok(s) if s.len() > 1 => second = second.or(Some(s[1].line)),
            _ => return None,
        }
    }
    second
}

fn word<'t>(text: &'t str, t: &Token) -> Option<&'t str> {
    (t.kind == Tok::Word).then(|| &text[t.start..t.end])
}

/// The statement starting at token `from`: it, and the index of the token after its `;`.
fn one_statement(
    text: &str,
    tokens: &[Token],
    from: usize,
) -> Result<(Option<Statement>, usize), SplitError> {
    let mut first: Option<usize> = None;
    let mut last = from;
    let mut words = 0usize;
    // `Some(false)`: a CREATE statement not (yet) known to define a routine; `Some(true)`: a
    // routine, whose BEGIN ... END body holds `;`s.
    let mut routine: Option<bool> = None;
    let mut depth = 0usize;
    let mut i = from;
    while i < tokens.len() {
        let t = &tokens[i];
        match t.kind {
            Tok::Unterminated => {
                let what = match text[t.start..].chars().next() {
                    Some('\'') => "string",
                    Some('"' | '`' | '[') => "quoted name",
                    Some('$') => "dollar quote",
                    _ => "comment",
                };
                return Err(SplitError::Unterminated { what, line: line_of(text, t.start) });
            }
            Tok::Space | Tok::Comment => {}
            Tok::Semicolon if depth == 0 => break,
            _ => {
                first.get_or_insert(i);
                last = i;
                let Some(w) = word(text, t) else {
                    i += 1;
                    continue;
                };
                words += 1;
                let is = |k: &str| w.eq_ignore_ascii_case(k);
                if words == 1 {
                    if is("delimiter") {
                        return Err(SplitError::Delimiter { line: line_of(text, t.start) });
                    }
                    if is("create") {
                        routine = Some(false);
                    } else if is("begin") && next_word_is(text, tokens, i, &["not"]) {
                        // MariaDB's anonymous block, `BEGIN NOT ATOMIC ... END`.
                        routine = Some(true);
                        depth = 1;
                    }
                } else if routine == Some(false) {
                    if words <= 8
                        && ["trigger", "procedure", "function", "event"].iter().any(|k| is(k))
                    {
                        routine = Some(true);
                    }
                } else if routine == Some(true) {
                    depth = block_step(text, tokens, &mut i, w, depth);
                    last = i;
                }
            }
        }
        i += 1;
    }
    let stmt = first.map(|f| Statement {
        text: text[tokens[f].start..tokens[last].end].to_string(),
        line: line_of(text, tokens[f].start),
    });
    Ok((stmt, i + 1))
}

/// Whether the next word after token `i` is one of `any` (case-insensitive).
fn next_word_is(text: &str, tokens: &[Token], i: usize, any: &[&str]) -> bool {
    next_word(text, tokens, i).is_some_and(|(_, w)| any.iter().any(|a| w.eq_ignore_ascii_case(a)))
}

fn next_word<'t>(text: &'t str, tokens: &[Token], i: usize) -> Option<(usize, &'t str)> {
    tokens[i + 1..]
        .iter()
        .enumerate()
        .find(|(_, t)| !matches!(t.kind, Tok::Space | Tok::Comment))
        .and_then(|(k, t)| word(text, t).map(|w| (i + 1 + k, w)))
}

/// The block depth after word `w` (token `*i`) of a routine's definition: `BEGIN` and `CASE`
/// open a block, `END` closes one, except `END IF`, `END LOOP`, `END WHILE` and `END REPEAT`,
/// which close constructs that never opened one (their second word is consumed).
fn block_step(text: &str, tokens: &[Token], i: &mut usize, w: &str, depth: usize) -> usize {
    let is = |k: &str| w.eq_ignore_ascii_case(k);
    if is("begin") || is("case") {
        return depth + 1;
    }
    if is("end") {
        if let Some((k, next)) = next_word(text, tokens, *i) {
            let own = ["if", "loop", "while", "repeat"];
            if own.iter().any(|o| next.eq_ignore_ascii_case(o)) {
                *i = k;
                return depth;
            }
            if next.eq_ignore_ascii_case("case") {
                *i = k;
            }
        }
        return depth.saturating_sub(1);
    }
    depth
}
