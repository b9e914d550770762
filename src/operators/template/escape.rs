//! Escaping by context: where a rendered value lands decides how it is written.
//!
//! This file owns the [`Escaping`] contexts, the formatter that keeps values apart from the
//! template's own text while minijinja renders, the `| raw` opt-out, and the split of the
//! rendered text back into code and values for the context's escaper (`shell.rs` for bash).
//!
//! How: in an escaping context the formatter does not write a value's text. It writes a
//! marker, `U+FDD0 <render key> <hex of the text> U+FDD1`, and the literal template text around
//! it passes through untouched. Rendering therefore yields exactly the text the target language
//! will parse, in output order, with each value's spot marked; control flow (`{% for %}`,
//! `{% if %}`, macros) has already run, so the escaper needs no knowledge of the template
//! language. It then walks the text once, tracking the target's lexical state, and replaces each
//! marker with the value escaped for the state at that spot. Computing the state over the output
//! instead of the template source is what makes loops and branches work: the output before an
//! expression is exactly what the shell will have read when it reaches the value.
//!
//! Invariants: a value's text is never pasted where it could be read as code: it is hex-encoded
//! until the escaper decides its form, so no value can close a marker. The render key (random
//! per render, never printed) means text that merely looks like a marker, in a value or in the
//! template, is not one: values come out exactly as they went in. Only the template's own text
//! and `| raw` values reach the target verbatim.

use std::cell::Cell;
use std::fmt::{self, Write};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use minijinja::value::{Object, ObjectRepr};
use minijinja::{Error, ErrorKind, Output, State, Value};

/// How the values of one template are written into its output.
///
/// The seam for the `sql` task type: a `Sql` context will replace each marker by a bound
/// parameter (the value goes into the parameter list) and quote identifiers per dialect, using
/// the same formatter and [`pieces`] split; only its escaper is new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escaping {
    /// Values are written as they print (every field but a bash command).
    Text,
    /// A `bash` command: each value is quoted for the shell quoting state where it lands.
    Shell,
    /// A SQL statement: each value becomes a bound parameter (`Renderer::render_sql`).
    Sql,
}

impl Escaping {
    /// The template name that selects the context inside the formatter. The formatter keys on
    /// the name rather than on minijinja's auto-escape flag so that `{% autoescape false %}` in
    /// a command cannot switch escaping off unnoticed; `| raw` is the only opt-out.
    pub(super) fn template_name(self) -> &'static str {
        match self {
            Escaping::Text => "<template>",
            Escaping::Shell => "<bash command>",
            Escaping::Sql => "<sql statement>",
        }
    }

    fn of_template(name: &str) -> Escaping {
        match name {
            n if n == Escaping::Shell.template_name() => Escaping::Shell,
            n if n == Escaping::Sql.template_name() => Escaping::Sql,
            _ => Escaping::Text,
        }
    }
}

/// Unicode noncharacters: never meaningful to a shell or a database, rare in real text.
const OPEN: char = '\u{FDD0}';
const CLOSE: char = '\u{FDD1}';

/// The key of one render, written in every marker as 16 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Key(u64);

thread_local! {
    /// The key of the render running on this thread: rendering is synchronous, and the
    /// formatter has no other way to receive it.
    static KEY: Cell<Option<Key>> = const { Cell::new(None) };
}

impl Key {
    /// Renders `f` under a fresh key (from std's randomly seeded SipHash keys).
    pub(super) fn with_fresh<T>(f: impl FnOnce() -> T) -> (Key, T) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(std::time::SystemTime::UNIX_EPOCH.elapsed().map_or(0, |d| d.as_nanos()));
        let key = Key(h.finish());
        struct Reset(Option<Key>);
        impl Drop for Reset {
            fn drop(&mut self) {
                KEY.with(|k| k.set(self.0));
            }
        }
        let _reset = Reset(KEY.with(|k| k.replace(Some(key))));
        (key, f())
    }

    fn current() -> Option<Key> {
        KEY.with(Cell::get)
    }

    fn hex(self) -> String {
        format!("{:016x}", self.0)
    }
}

/// A value marked by `| raw`: pasted verbatim, as template text is.
#[derive(Debug)]
pub(super) struct Raw(String);

impl Object for Raw {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `| raw`: the value is written as it prints, unescaped. Inside a captured block (`{% set %}`,
/// a macro's output) the values printed by inner expressions keep their markers, so they are
/// still escaped for the spot where the block's text lands.
pub(super) fn raw(value: Value) -> Value {
    if let Some(raw) = value.downcast_object_ref::<Raw>() {
        return Value::from_object(Raw(raw.0.clone()));
    }
    Value::from_object(Raw(value.to_string()))
}

/// The environment's formatter: in [`Escaping::Text`] minijinja's own; in an escaping context a
/// marker around the hex of the value's text, or the text itself for a `| raw` value.
pub(super) fn formatter(out: &mut Output, state: &State, value: &Value) -> Result<(), Error> {
    if Escaping::of_template(state.name()) == Escaping::Text {
        return minijinja::escape_formatter(out, state, value);
    }
    if let Some(raw) = value.downcast_object_ref::<Raw>() {
        return out.write_str(&raw.0).map_err(Error::from);
    }
    let Some(key) = Key::current() else {
        return Err(Error::new(ErrorKind::InvalidOperation, "escaping outside of a render"));
    };
    // A value built from captured output (`{% set x %}..{{ y }}..{% endset %}{{ x }}`) holds
    // markers: as a whole it is one value, so its inner values become plain text again.
    let text = value.to_string();
    let text = if text.contains(OPEN) { unmark(key, &text) } else { text };
    let mut marked = String::with_capacity(text.len() * 2 + 24);
    marked.push(OPEN);
    marked.push_str(&key.hex());
    for b in text.bytes() {
        let _ = write!(marked, "{b:02x}");
    }
    marked.push(CLOSE);
    out.write_str(&marked).map_err(Error::from)
}

/// One part of a rendered template: text of the target language, or a value to escape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Piece<'a> {
    /// Template text (or a `| raw` value), parsed by the target as written.
    Code(&'a str),
    /// A value, to be written so the target reads it as data.
    Value(String),
}

/// Splits rendered text into code and values. Only markers with this render's key are values;
/// one of them that does not decode means a filter changed captured output in a way that cut
/// through a value (say `| truncate` over a block).
pub(super) fn pieces(key: Key, rendered: &str) -> Result<Vec<Piece<'_>>, String> {
    let prefix = format!("{OPEN}{}", key.hex());
    let mut out = Vec::new();
    let mut code_start = 0;
    let mut at = 0;
    while let Some(found) = rendered[at..].find(OPEN) {
        let start = at + found;
        let after = &rendered[start..];
        let ours = after.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(&prefix));
        if !ours {
            at = start + OPEN.len_utf8();
            continue;
        }
        let body = &after[prefix.len()..];
        let Some((value, len)) =
            body.find(CLOSE).and_then(|end| Some((decode(&body[..end])?, end)))
        else {
            return Err("a filter applied to a captured block cut through one of its values; \
                 apply the filter to the values inside the block instead"
                .to_string());
        };
        if start > code_start {
            out.push(Piece::Code(&rendered[code_start..start]));
        }
        out.push(Piece::Value(value));
        at = start + prefix.len() + len + CLOSE.len_utf8();
        code_start = at;
    }
    if code_start < rendered.len() {
        out.push(Piece::Code(&rendered[code_start..]));
    }
    Ok(out)
}

/// Replaces each marker of this render by its value's text; anything else is kept as it is.
fn unmark(key: Key, text: &str) -> String {
    match pieces(key, text) {
        Ok(pieces) => pieces
            .into_iter()
            .map(|p| match p {
                Piece::Code(c) => c.to_string(),
                Piece::Value(v) => v,
            })
            .collect(),
        Err(_) => text.to_string(),
    }
}

/// Hex (either case, as `| upper` over a block may leave it) back to the UTF-8 text it encodes.
fn decode(hex: &str) -> Option<String> {
    let digits = hex.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// A rendered template in an escaping context, escaped: the text the target receives.
pub(super) fn finish(escaping: Escaping, key: Key, rendered: &str) -> Result<String, Error> {
    let fail = |msg: String| Error::new(ErrorKind::InvalidOperation, msg);
    let pieces = pieces(key, rendered).map_err(fail)?;
    match escaping {
        Escaping::Text => Ok(rendered.to_string()),
        Escaping::Shell => super::shell::escape(&pieces).map_err(fail),
        // A statement's values are not text: they leave through `sql_values`.
        Escaping::Sql => Err(fail("SQL is rendered with its values apart".to_string())),
    }
}

/// A rendered SQL template: the text with each value replaced by its sentinel
/// (`dag::sql_text::value_sentinel(n)`), and the values in order. The SQL layer turns each
/// sentinel into a bound parameter.
pub(super) fn sql_values(key: Key, rendered: &str) -> Result<(String, Vec<String>), Error> {
    let fail = |msg: String| Error::new(ErrorKind::InvalidOperation, msg);
    let mut text = String::with_capacity(rendered.len());
    let mut values = Vec::new();
    for piece in pieces(key, rendered).map_err(fail)? {
        match piece {
            Piece::Code(c) => text.push_str(c),
            Piece::Value(v) => {
                text.push_str(&crate::dag::sql_text::value_sentinel(values.len()));
                values.push(v);
            }
        }
    }
    Ok((text, values))
}
