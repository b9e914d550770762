//! The shell escaper: bash's quoting state at each value of a rendered `bash` command, and the
//! value written so that bash reads it back as exactly its text.
//!
//! This file owns a small lexer of bash's quoting structure (not a parser): unquoted code,
//! `'...'`, `"..."`, `$'...'`, a pending backslash, comments, `$(...)`/`<(...)`/`>(...)`,
//! backticks, `${...}`, `$((...))`/`((...))` and here-documents (`<<`, `<<-`, quoted or not). It
//! is fed the command's text in order; at each value [`Lexer::value`] chooses the form:
//!
//! | where | written as |
//! |---|---|
//! | unquoted (also inside `$(...)`, `<(...)`, backticks) | one single-quoted word, `'` as `'\''`, empty as `''` |
//! | inside `'...'` | `'` as `'\''` |
//! | inside `"..."` | `$` `` ` `` `\` `"` backslash-escaped |
//! | inside `$'...'` | `\` and `'` backslash-escaped |
//! | here-document body, unquoted delimiter | `$` `` ` `` `\` backslash-escaped |
//! | here-document body, quoted delimiter | as is |
//! | comment | newlines become spaces |
//! | arithmetic `$((...))`, `((...))`, `let`, an array subscript `a[...]` | only an integer is accepted |
//! | inside `[[ ... ]]` | as above, but a value holding `[` and `$` or `` ` `` is refused (bash evaluates `-eq`/`-lt` operands as arithmetic, where `a[$(cmd)]` runs `cmd`) |
//! | right after `\` | its first character is the escaped one, the rest as above |
//! | inside backticks | the above, then `\` `` ` `` `$` (and `"` when in `"..."`) escaped once more for the backtick layer |
//!
//! Invariants: a value never changes the lexer's state — after writing it, the escaped text is
//! fed back through the lexer and must leave the same stack of contexts, or rendering fails. A
//! spot whose state the lexer cannot know (inside `${...}`, right after `$`, a here-document
//! delimiter, a line of a here-document that a value would make its end, nested backticks, `"`
//! in backticks in `"..."`, a `case` inside `$(...)`) is an error naming it, never a guess.
//! Rendering fails; it never runs a command the escaper could not vouch for.
//!
//! Quoting is for this shell only: a value handed to something that parses it again (`eval`,
//! `bash -c`, `ssh host ...`, an awk or Python program written inside `'...'`) is that program's
//! input, and a value starting with `-` is still one argument a command may read as an option.

mod heredoc;
mod lexer;

use super::escape::Piece;
use lexer::{Frame, Lexer, Pending};

/// Escapes every value of a rendered command for the spot it lands in.
pub(super) fn escape(pieces: &[Piece<'_>]) -> Result<String, String> {
    let mut lexer = Lexer::new();
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Code(code) => {
                out.push_str(code);
                for c in code.chars() {
                    lexer.feed(c, false)?;
                }
            }
            Piece::Value(value) => lexer.value(value, &mut out)?,
        }
    }
    Ok(out)
}

impl Lexer {
    /// Writes `value` escaped for the current state into `out`, and reads it back.
    fn value(&mut self, value: &str, out: &mut String) -> Result<(), String> {
        let unknown = |why: &str| {
            format!(
                "cannot quote a value in this spot of the command: {why}. Pass the value in \
                 `env:` and use \"$NAME\", or mark it `| raw` if it is trusted shell code"
            )
        };
        if let Some(why) = self.lost {
            return Err(unknown(why));
        }
        if self.backtick_escape {
            return Err(unknown("right after `\\` inside backticks"));
        }
        match std::mem::take(&mut self.pending) {
            Pending::None | Pending::Paren | Pending::Redirect { .. } => {}
            Pending::DollarParen => self.open_subst(),
            Pending::Dollar => {
                return Err(unknown("right after `$` (write `\\$` for a dollar sign)"));
            }
            Pending::LessLess | Pending::Delimiter(_) => {
                return Err(unknown("it would be a here-document delimiter"));
            }
            Pending::ArithClose => return Err(unknown("between the `))` closing arithmetic")),
        }
        // Spots that bash evaluates as arithmetic, where a quoted `a[$(cmd)]` still runs `cmd`.
        if (self.subscript || self.let_command) && !is_integer(value) {
            let spot = if self.subscript { "an array subscript" } else { "`let`" };
            return Err(unknown(&format!("{spot} takes only an integer, not {value:?}")));
        }
        if self.conditional > 0 && value.contains('[') && value.contains(['$', '`']) {
            return Err(unknown(
                "inside `[[ ... ]]` bash may evaluate a value holding `[` and `$` or a backtick \
                 as arithmetic, which runs commands",
            ));
        }
        let escaped = if self.subscript && self.top().is_code() {
            // Quotes are not removed in a subscript; an integer needs none.
            value.to_string()
        } else {
            self.escaped(value).map_err(|why| unknown(&why))?
        };
        let escaped = if self.in_backtick() {
            backtick_layer(&escaped, self.backtick_in_double())
        } else {
            escaped
        };
        let before = self.stack.clone();
        for c in escaped.chars() {
            self.feed(c, true)?;
        }
        if self.stack != before || self.lost.is_some() || self.pending != Pending::None {
            return Err(unknown("the quoted value would change the shell's state"));
        }
        out.push_str(&escaped);
        Ok(())
    }

    /// The value's text for the innermost context (before the backtick layer).
    fn escaped(&self, value: &str) -> Result<String, String> {
        let after_backslash = self.escape;
        let top = self.top();
        if after_backslash {
            // The template's backslash quotes the value's first character.
            let mut chars = value.chars();
            let Some(first) = chars.next() else { return Ok(String::new()) };
            if first == '\n' {
                return Err("a value starting with a newline right after `\\`".to_string());
            }
            let rest = chars.as_str();
            return match top {
                Frame::Top | Frame::Subst(_) | Frame::Backtick => Ok(if rest.is_empty() {
                    first.to_string()
                } else {
                    format!("{first}{}", single_word(rest))
                }),
                Frame::Double | Frame::HereDoc { expand: true } => {
                    let specials: &[char] = if *top == Frame::Double {
                        &['$', '`', '"', '\\']
                    } else {
                        &['$', '`', '\\']
                    };
                    if specials.contains(&first) {
                        Ok(format!("{first}{}", backslashed(rest, specials)))
                    } else {
                        Ok(backslashed(value, specials))
                    }
                }
                _ => Err("right after `\\` here".to_string()),
            };
        }
        Ok(match top {
            Frame::Top | Frame::Subst(_) | Frame::Backtick => single_word(value),
            Frame::Single => value.replace('\'', "'\\''"),
            Frame::Double => backslashed(value, &['$', '`', '"', '\\']),
            Frame::AnsiC => backslashed(value, &['\\', '\'']),
            Frame::HereDoc { expand: true } => backslashed(value, &['$', '`', '\\']),
            Frame::HereDoc { expand: false } => value.to_string(),
            Frame::Comment => value.replace('\n', " "),
            Frame::Param(_) => return Err("inside `${...}`".to_string()),
            Frame::Arith(_) => {
                if !is_integer(value) {
                    return Err(format!(
                        "inside arithmetic `$((...))` only an integer is accepted, not {value:?}"
                    ));
                }
                value.to_string()
            }
        })
    }
}

/// An optionally signed decimal integer.
fn is_integer(value: &str) -> bool {
    let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// One single-quoted word: `'it'\''s'`; the empty value is `''`.
fn single_word(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// `value` with a backslash before each of `specials`.
fn backslashed(value: &str, specials: &[char]) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if specials.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text as it must be written between backticks so that bash's backtick unescaping (`\\`,
/// `` \` ``, `\$`, and `\"` when the backticks are inside `"..."`) gives it back.
fn backtick_layer(text: &str, in_double: bool) -> String {
    if in_double {
        backslashed(text, &['\\', '`', '$', '"'])
    } else {
        backslashed(text, &['\\', '`', '$'])
    }
}

#[cfg(test)]
#[path = "shell_tests.rs"]
mod tests;
