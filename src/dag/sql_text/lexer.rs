//! The SQL lexer: splits text into words, quoted runs, comments, `;` and single characters,
//! per dialect. It is deliberately small — it only has to know where code is (so that `;`,
//! `BEGIN`/`END` and `:name` are found there and nowhere else), not what the code means.
//!
//! Invariant: every byte of the input belongs to exactly one token, in order, so callers can
//! copy the text token by token and change only what they mean to.

use super::Dialect;

/// Marks a template value's spot in rendered SQL (see `bind::value_sentinel`): never part of a
/// word, so `x{{ v }}` cannot glue a value to a name.
pub(super) const VALUE_OPEN: char = '\u{FDD2}';
pub(super) const VALUE_CLOSE: char = '\u{FDD3}';

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    /// Spaces, tabs, newlines.
    Space,
    /// A name or keyword or number: letters, digits, `_`, `$` (after the first), non-ASCII.
    Word,
    /// A string literal (`'..'`, `E'..'`, MySQL `"..."`).
    Str,
    /// A quoted identifier (`"..."`, `` `...` ``, SQLite `[...]`).
    QuotedIdent,
    /// A PostgreSQL dollar-quoted string (`$$..$$`, `$tag$..$tag$`).
    Dollar,
    /// `-- ...`, `# ...` (MySQL) or `/* ... */` (nested in PostgreSQL).
    Comment,
    /// `;`.
    Semicolon,
    /// A template value's sentinel (`U+FDD2 digits U+FDD3`).
    Value,
    /// A quote or comment that is never closed: runs to the end of the text.
    Unterminated,
    /// Any other single character.
    Other,
}

/// One token: its kind and byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: Tok,
    /// First byte.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
}

/// Tokens of `text` in `dialect`, in order.
pub struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    dialect: Dialect,
}

impl<'a> Lexer<'a> {
    /// A lexer over `text`.
    pub fn new(text: &'a str, dialect: Dialect) -> Lexer<'a> {
        Lexer { text, pos: 0, dialect }
    }
}

fn is_word_char(c: char) -> bool {
    (c.is_alphanumeric() || c == '_' || c == '$' || !c.is_ascii())
        && c != VALUE_OPEN
        && c != VALUE_CLOSE
        && !c.is_whitespace()
}

impl Iterator for Lexer<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        let start = self.pos;
        let rest = &self.text[start..];
        let c = rest.chars().next()?;
        let (kind, len) = self.token_at(rest, c);
        self.pos = start + len.max(c.len_utf8());
        Some(Token { kind, start, end: self.pos })
    }
}

impl Lexer<'_> {
    /// The token starting `rest` (whose first character is `c`) and its length in bytes.
    fn token_at(&self, rest: &str, c: char) -> (Tok, usize) {
        let d = self.dialect;
        let b = rest.as_bytes();
        let next = b.get(1).copied();
        match c {
            c if c.is_whitespace() => {
                (Tok::Space, rest.find(|c: char| !c.is_whitespace()).unwrap_or(rest.len()))
            }
            '-' if next == Some(b'-') => {
                // MySQL reads `--` as a comment only before a space or control character
                // (`1--1` is arithmetic there).
                let after = b.get(2).copied();
                if d == Dialect::MySql && after.is_some_and(|a| a > b' ') {
                    (Tok::Other, 1)
                } else {
                    (Tok::Comment, line_end(rest))
                }
            }
            '#' if d == Dialect::MySql => (Tok::Comment, line_end(rest)),
            '/' if next == Some(b'*') => block_comment(rest, d == Dialect::Postgres),
            '\'' => quoted(rest, '\'', self.backslashes(d)),
            '"' if d == Dialect::MySql => quoted(rest, '"', true),
            '"' => ident(rest, '"', '"'),
            '`' if d != Dialect::Postgres => ident(rest, '`', '`'),
            '[' if d == Dialect::Sqlite => ident(rest, '[', ']'),
            '$' if d == Dialect::Postgres && !self.after_word() => match dollar_tag(rest) {
                Some(tag) => match rest[tag.len()..].find(tag) {
                    Some(at) => (Tok::Dollar, tag.len() + at + tag.len()),
                    None => (Tok::Unterminated, rest.len()),
                },
                None => (Tok::Other, 1),
            },
            ';' => (Tok::Semicolon, 1),
            VALUE_OPEN => match rest.find(VALUE_CLOSE) {
                Some(at) => (Tok::Value, at + VALUE_CLOSE.len_utf8()),
                None => (Tok::Other, c.len_utf8()),
            },
            c if is_word_char(c) => {
                (Tok::Word, rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len()))
            }
            c => (Tok::Other, c.len_utf8()),
        }
    }

    /// Whether a `'` string at the current position takes backslash escapes: always in MySQL
    /// (its default mode), in PostgreSQL only as `E'...'`.
    fn backslashes(&self, d: Dialect) -> bool {
        match d {
            Dialect::MySql => true,
            Dialect::Sqlite => false,
            Dialect::Postgres => {
                let before = &self.text[..self.pos];
                let mut chars = before.chars().rev();
                matches!(chars.next(), Some('e' | 'E')) && !chars.next().is_some_and(is_word_char)
            }
        }
    }

    /// Whether the character before the current one belongs to a word (`a$1$` is no quote).
    fn after_word(&self) -> bool {
        self.text[..self.pos].chars().next_back().is_some_and(is_word_char)
    }
}

fn line_end(rest: &str) -> usize {
    rest.find('\n').unwrap_or(rest.len())
}

fn block_comment(rest: &str, nested: bool) -> (Tok, usize) {
    let b = rest.as_bytes();
    let (mut depth, mut i) = (1usize, 2usize);
    while i + 1 < b.len() {
        if b[i] == b'*' && b[i + 1] == b'/' {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return (Tok::Comment, i);
            }
        } else if nested && b[i] == b'/' && b[i + 1] == b'*' {
            depth += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    (Tok::Unterminated, rest.len())
}

/// A string literal quoted by `q`, a doubled `q` standing for one, and `\x` escapes when
/// `backslashes`.
fn quoted(rest: &str, q: char, backslashes: bool) -> (Tok, usize) {
    let b = rest.as_bytes();
    let q = q as u8;
    let mut i = 1;
    while i < b.len() {
        if backslashes && b[i] == b'\\' {
            i += 2;
        } else if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
            } else {
                return (Tok::Str, i + 1);
            }
        } else {
            i += 1;
        }
    }
    (Tok::Unterminated, rest.len())
}

/// A quoted identifier from `open` to `close`, a doubled `close` standing for one.
fn ident(rest: &str, open: char, close: char) -> (Tok, usize) {
    let b = rest.as_bytes();
    let close = close as u8;
    let mut i = open.len_utf8();
    while i < b.len() {
        if b[i] == close {
            if open as u8 == close && b.get(i + 1) == Some(&close) {
                i += 2;
            } else {
                return (Tok::QuotedIdent, i + 1);
            }
        } else {
            i += 1;
        }
    }
    (Tok::Unterminated, rest.len())
}

/// `$$` or `$tag$` at the start of `rest` (a tag is a name that does not start with a digit).
fn dollar_tag(rest: &str) -> Option<&str> {
    let body = &rest[1..];
    let end = body.find('$')?;
    let tag = &body[..end];
    let ok = tag.chars().enumerate().all(|(i, c)| {
        c == '_' || c.is_alphabetic() || (i > 0 && c.is_ascii_digit()) || (!c.is_ascii() && i > 0)
    });
    ok.then(|| &rest[..end + 2])
}
