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
//! | arithmetic `$((...))` | only an integer is accepted |
//! | right after `\` | its first character is the escaped one, the rest as above |
//! | inside backticks | the above, then `\` `` ` `` `$` escaped once more for the backtick layer |
//!
//! Invariants: a value never changes the lexer's state — after writing it, the escaped text is
//! fed back through the lexer and must leave the same stack of contexts, or rendering fails. A
//! spot whose state the lexer cannot know (inside `${...}`, right after `$`, a here-document
//! delimiter, a line of a here-document that a value would make its end, nested backticks, a
//! `case` inside `$(...)`) is an error naming it, never a guess. Rendering fails; it never runs
//! a command the escaper could not vouch for.

use std::collections::VecDeque;

use super::escape::Piece;

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

/// One open quoting context.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Frame {
    /// Unquoted code: the command itself.
    Top,
    /// `$(...)`, `<(...)` or `>(...)`: unquoted code, with the depth of `(` opened inside.
    Subst(u32),
    /// `` `...` ``: unquoted code read after bash's backtick unescaping.
    Backtick,
    Single,
    Double,
    /// `$'...'`.
    AnsiC,
    Comment,
    /// `${...}`, with the depth of `{` opened inside.
    Param(u32),
    /// `$((...))` or `((...))`, with the depth of `(` opened inside.
    Arith(u32),
    /// A here-document body; `expand` when its delimiter was unquoted.
    HereDoc { expand: bool },
}

impl Frame {
    fn is_code(&self) -> bool {
        matches!(self, Frame::Top | Frame::Subst(_) | Frame::Backtick)
    }
}

/// A construct that needs the next character to be known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Pending {
    #[default]
    None,
    /// `$` was read.
    Dollar,
    /// `$(` was read: a substitution, or arithmetic if `(` follows.
    DollarParen,
    /// `(` at the start of a word: a subshell, or arithmetic if `(` follows.
    Paren,
    /// `<` or `>` was read (`<(` and `>(` are process substitutions; `<<` may follow `<`).
    Redirect { less: bool },
    /// `<<` was read: a here-document (or `<<<`, a here-string).
    LessLess,
    /// Reading a here-document's delimiter word.
    Delimiter(Delimiter),
    /// `)` closing the outer level of arithmetic: the second `)` must follow.
    ArithClose,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Delimiter {
    strip_tabs: bool,
    text: String,
    started: bool,
    quoted: bool,
    quote: Option<char>,
    escape: bool,
}

/// A here-document announced on the current line; its body starts after the line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HereDoc {
    delimiter: String,
    strip_tabs: bool,
    expand: bool,
}

/// The here-document whose body is being read.
#[derive(Debug)]
struct Body {
    doc: HereDoc,
    /// The current raw line, compared with the delimiter at its end.
    line: String,
    /// Whether any of the line came from a value.
    line_has_value: bool,
    /// The stack length below the body's frame.
    depth: usize,
}

#[derive(Debug)]
struct Lexer {
    stack: Vec<Frame>,
    /// A backslash was read: the next character is quoted.
    escape: bool,
    pending: Pending,
    /// In code: the next character starts a word (so `#` starts a comment).
    word_start: bool,
    /// The current unquoted word in code (first few characters), to spot `case`.
    word: String,
    heredocs: VecDeque<HereDoc>,
    body: Option<Body>,
    /// Inside backticks: a backslash was read by the backtick layer.
    backtick_escape: bool,
    /// Why the state is no longer known; sticky.
    lost: Option<&'static str>,
}

/// Characters that end an unquoted word.
fn ends_word(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' | '(' | ')')
}

impl Lexer {
    fn new() -> Lexer {
        Lexer {
            stack: vec![Frame::Top],
            escape: false,
            pending: Pending::None,
            word_start: true,
            word: String::new(),
            heredocs: VecDeque::new(),
            body: None,
            backtick_escape: false,
            lost: None,
        }
    }

    fn top(&self) -> &Frame {
        self.stack.last().unwrap_or(&Frame::Top)
    }

    fn in_backtick(&self) -> bool {
        self.stack.contains(&Frame::Backtick)
    }

    fn lose(&mut self, why: &'static str) {
        self.lost.get_or_insert(why);
    }

    /// Feeds one character of the command; `from_value` marks characters a value wrote.
    fn feed(&mut self, c: char, from_value: bool) -> Result<(), String> {
        if self.lost.is_some() {
            return Ok(());
        }
        // A here-document ends at a line equal to its delimiter, whatever the line holds, so
        // bash checks raw lines before anything else.
        if let Some(body) = &mut self.body {
            if c == '\n' {
                let line = if body.doc.strip_tabs {
                    body.line.trim_start_matches('\t')
                } else {
                    body.line.as_str()
                };
                if line == body.doc.delimiter {
                    if body.line_has_value {
                        return Err(format!(
                            "a value would end the here-document early: it makes a line equal \
                             to its delimiter `{}`",
                            body.doc.delimiter
                        ));
                    }
                    let depth = body.depth;
                    if self.stack.len() != depth + 1 || self.escape || self.pending != Pending::None
                    {
                        self.lose("a here-document ends inside an open quote or substitution");
                        return Ok(());
                    }
                    self.stack.truncate(depth);
                    self.body = None;
                    self.word_start = true;
                    self.start_heredoc();
                    return Ok(());
                }
                body.line.clear();
                body.line_has_value = false;
            } else {
                body.line.push(c);
                body.line_has_value |= from_value;
            }
        }
        if self.in_backtick() {
            let in_double = self.backtick_in_double();
            let c = if std::mem::take(&mut self.backtick_escape) {
                // The layer unescapes `\\`, `\$`, `\`` (and `\"` directly inside `"..."`); the
                // inner text gets the character itself: `\`` is a literal backtick inside inner
                // quotes, and a nested substitution (refused) in inner code.
                if !matches!(c, '\\' | '$' | '`') && !(c == '"' && in_double) {
                    self.inner('\\', in_double)?;
                }
                c
            } else if c == '\\' {
                self.backtick_escape = true;
                return Ok(());
            } else if c == '`' {
                return self.close_backtick();
            } else {
                c
            };
            return self.inner(c, in_double);
        }
        self.step(c)
    }

    /// Whether the innermost backticks sit directly inside `"..."`.
    fn backtick_in_double(&self) -> bool {
        let mut below = self.stack.iter().rev().skip_while(|f| **f != Frame::Backtick);
        below.nth(1) == Some(&Frame::Double)
    }

    /// A character of the text inside backticks, after the backtick layer.
    fn inner(&mut self, c: char, in_double: bool) -> Result<(), String> {
        if c == '"' && in_double && self.top().is_code() {
            // Bash and POSIX shells disagree on double quotes in backticks in double quotes.
            self.lose("double quotes inside backticks inside double quotes (use `$(...)`)");
            return Ok(());
        }
        self.step(c)
    }

    fn close_backtick(&mut self) -> Result<(), String> {
        if *self.top() != Frame::Backtick || self.escape || self.pending != Pending::None {
            self.lose("backticks close inside an open quote");
            return Ok(());
        }
        self.stack.pop();
        self.word_start = false;
        Ok(())
    }

    /// One character, after the backtick layer.
    fn step(&mut self, c: char) -> Result<(), String> {
        match std::mem::take(&mut self.pending) {
            Pending::None => {}
            Pending::Dollar => return self.after_dollar(c),
            Pending::DollarParen => {
                if c == '(' {
                    self.stack.push(Frame::Arith(0));
                    return Ok(());
                }
                self.stack.push(Frame::Subst(0));
            }
            Pending::Paren => {
                if c == '(' {
                    // `((`: arithmetic, not the subshell the first `(` was counted as.
                    if let Some(Frame::Subst(d)) = self.stack.last_mut() {
                        *d = d.saturating_sub(1);
                    }
                    self.stack.push(Frame::Arith(0));
                    return Ok(());
                }
            }
            Pending::Redirect { less } => {
                if c == '(' {
                    self.stack.push(Frame::Subst(0));
                    self.word_start = true;
                    return Ok(());
                }
                if less && c == '<' {
                    self.pending = Pending::LessLess;
                    return Ok(());
                }
            }
            Pending::LessLess => match c {
                '<' => {} // `<<<`: a here-string is an ordinary word.
                '-' => {
                    let d = Delimiter { strip_tabs: true, ..Delimiter::default() };
                    self.pending = Pending::Delimiter(d);
                    return Ok(());
                }
                _ => return self.delimiter(Delimiter::default(), c),
            },
            Pending::Delimiter(d) => return self.delimiter(d, c),
            Pending::ArithClose => {
                if c == ')' {
                    self.stack.pop();
                    self.word_start = false;
                } else {
                    self.lose("`)` inside arithmetic that does not close it");
                }
                return Ok(());
            }
        }
        if self.escape {
            self.escape = false;
            if self.top().is_code() && c != '\n' {
                self.word_start = false;
            }
            return Ok(());
        }
        match self.top().clone() {
            Frame::Single => {
                if c == '\'' {
                    self.stack.pop();
                }
            }
            Frame::AnsiC => match c {
                '\\' => self.escape = true,
                '\'' => {
                    self.stack.pop();
                }
                _ => {}
            },
            Frame::Comment => {
                if c == '\n' {
                    self.stack.pop();
                    return self.step(c);
                }
            }
            Frame::Double => match c {
                '\\' => self.escape = true,
                '"' => {
                    self.stack.pop();
                }
                '$' => self.pending = Pending::Dollar,
                '`' => self.open_backtick(),
                _ => {}
            },
            Frame::HereDoc { expand: true } => match c {
                '\\' => self.escape = true,
                '$' => self.pending = Pending::Dollar,
                '`' => self.open_backtick(),
                _ => {}
            },
            Frame::HereDoc { expand: false } => {}
            Frame::Param(depth) => match c {
                '\\' => self.escape = true,
                '\'' => self.stack.push(Frame::Single),
                '"' => self.stack.push(Frame::Double),
                '$' => self.pending = Pending::Dollar,
                '`' => self.open_backtick(),
                '{' => self.set_depth(depth + 1),
                '}' if depth == 0 => {
                    self.stack.pop();
                }
                '}' => self.set_depth(depth - 1),
                _ => {}
            },
            Frame::Arith(depth) => match c {
                '\\' => self.escape = true,
                '\'' => self.stack.push(Frame::Single),
                '"' => self.stack.push(Frame::Double),
                '$' => self.pending = Pending::Dollar,
                '`' => self.open_backtick(),
                '(' => self.set_depth(depth + 1),
                ')' if depth == 0 => self.pending = Pending::ArithClose,
                ')' => self.set_depth(depth - 1),
                _ => {}
            },
            Frame::Top | Frame::Subst(_) | Frame::Backtick => self.code(c),
        }
        Ok(())
    }

    fn set_depth(&mut self, depth: u32) {
        if let Some(Frame::Param(d) | Frame::Arith(d) | Frame::Subst(d)) = self.stack.last_mut() {
            *d = depth;
        }
    }

    fn open_backtick(&mut self) {
        if self.in_backtick() {
            self.lose("nested backticks (use `$(...)`)");
        } else {
            self.stack.push(Frame::Backtick);
        }
    }

    /// A character of unquoted code.
    fn code(&mut self, c: char) {
        if ends_word(c) {
            if self.word == "case" && self.stack.iter().any(|f| matches!(f, Frame::Subst(_))) {
                // Its patterns' unbalanced `)` would end the substitution for this lexer.
                self.lose("a `case` inside `$(...)`");
                return;
            }
            self.word.clear();
        }
        let word_start = std::mem::replace(&mut self.word_start, ends_word(c));
        match c {
            '\'' => self.stack.push(Frame::Single),
            '"' => self.stack.push(Frame::Double),
            '\\' => self.escape = true,
            '$' => self.pending = Pending::Dollar,
            '`' => self.open_backtick(),
            '#' if word_start => self.stack.push(Frame::Comment),
            '(' => {
                if let Some(Frame::Subst(d)) = self.stack.last_mut() {
                    *d += 1;
                }
                if word_start {
                    self.pending = Pending::Paren;
                }
            }
            ')' => match self.stack.last_mut() {
                Some(Frame::Subst(0)) => {
                    self.stack.pop();
                    self.word_start = false;
                }
                Some(Frame::Subst(d)) => *d -= 1,
                _ => {}
            },
            '<' => self.pending = Pending::Redirect { less: true },
            '>' => self.pending = Pending::Redirect { less: false },
            '\n' => {
                if self.body.is_none() {
                    self.start_heredoc();
                }
            }
            _ if ends_word(c) => {}
            _ => {
                if self.word.len() < 8 {
                    self.word.push(c);
                }
            }
        }
    }

    /// After `$`.
    fn after_dollar(&mut self, c: char) -> Result<(), String> {
        let code = self.top().is_code();
        match c {
            '(' => self.pending = Pending::DollarParen,
            '{' => self.stack.push(Frame::Param(0)),
            '\'' if code => self.stack.push(Frame::AnsiC),
            '"' if code => self.stack.push(Frame::Double),
            _ => return self.step(c),
        }
        Ok(())
    }

    /// One character of a here-document's delimiter word (after `<<` or `<<-`).
    fn delimiter(&mut self, mut d: Delimiter, c: char) -> Result<(), String> {
        if d.escape {
            d.escape = false;
            d.text.push(c);
        } else if let Some(q) = d.quote {
            if c == q {
                d.quote = None;
            } else {
                d.text.push(c);
            }
        } else if !d.started && (c == ' ' || c == '\t') {
            // Blanks between `<<` and the word.
        } else if ends_word(c) {
            if !d.started {
                self.lose("`<<` without a delimiter word");
                return Ok(());
            }
            let expand = !d.quoted;
            if expand && !d.text.chars().all(|c| c.is_alphanumeric() || "_.-".contains(c)) {
                self.lose("an unquoted here-document delimiter with special characters");
                return Ok(());
            }
            let strip_tabs = d.strip_tabs;
            self.heredocs.push_back(HereDoc { delimiter: d.text, strip_tabs, expand });
            return self.step(c);
        } else {
            d.started = true;
            match c {
                '\'' | '"' => {
                    d.quote = Some(c);
                    d.quoted = true;
                }
                '\\' => {
                    d.escape = true;
                    d.quoted = true;
                }
                '$' | '`' => {
                    self.lose("a here-document delimiter with an expansion");
                    return Ok(());
                }
                _ => d.text.push(c),
            }
        }
        self.pending = Pending::Delimiter(d);
        Ok(())
    }

    /// Starts the body of the next here-document announced on the line just ended.
    fn start_heredoc(&mut self) {
        if let Some(doc) = self.heredocs.pop_front() {
            let depth = self.stack.len();
            self.stack.push(Frame::HereDoc { expand: doc.expand });
            self.body = Some(Body { doc, line: String::new(), line_has_value: false, depth });
        }
    }

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
            Pending::DollarParen => self.stack.push(Frame::Subst(0)),
            Pending::Dollar => {
                return Err(unknown("right after `$` (write `\\$` for a dollar sign)"));
            }
            Pending::LessLess | Pending::Delimiter(_) => {
                return Err(unknown("it would be a here-document delimiter"));
            }
            Pending::ArithClose => return Err(unknown("between the `))` closing arithmetic")),
        }
        let escaped = self.escaped(value).map_err(|why| unknown(&why))?;
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
                Frame::Top | Frame::Subst(_) | Frame::Backtick => {
                    Ok(if rest.is_empty() { first.to_string() } else { format!("{first}{}", single_word(rest)) })
                }
                Frame::Double | Frame::HereDoc { expand: true } => {
                    let specials: &[char] =
                        if *top == Frame::Double { &['$', '`', '"', '\\'] } else { &['$', '`', '\\'] };
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
                let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!(
                        "inside arithmetic `$((...))` only an integer is accepted, not {value:?}"
                    ));
                }
                value.to_string()
            }
        })
    }
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
