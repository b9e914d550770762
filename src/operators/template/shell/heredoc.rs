//! Here-documents: reading the delimiter word after `<<`/`<<-`, and the body's raw lines until
//! the delimiter line.
//!
//! Invariant: bash ends a body at the first line equal to its delimiter, whatever quoting the
//! line seems to hold, so lines are checked raw, before any other lexing; a line made equal to
//! the delimiter by a value's text is an error, and an unquoted delimiter must be a plain word
//! (its body is lexed like `"..."`, and a word with expansions in it could not be compared).

use super::lexer::{Frame, Lexer, Pending, ends_word};
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Delimiter {
    pub(super) strip_tabs: bool,
    pub(super) text: String,
    pub(super) started: bool,
    pub(super) quoted: bool,
    pub(super) quote: Option<char>,
    pub(super) escape: bool,
}

/// A here-document announced on the current line; its body starts after the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HereDoc {
    pub(super) delimiter: String,
    pub(super) strip_tabs: bool,
    pub(super) expand: bool,
}

/// The here-document whose body is being read.
#[derive(Debug)]
pub(super) struct Body {
    pub(super) doc: HereDoc,
    /// The current raw line, compared with the delimiter at its end.
    pub(super) line: String,
    /// Whether any of the line came from a value.
    pub(super) line_has_value: bool,
    /// The stack length below the body's frame.
    pub(super) depth: usize,
}

impl Lexer {
    /// Tracks the raw lines of the here-document being read: at a line equal to its delimiter
    /// the body ends (true: the newline is consumed). A value must not be what makes that line.
    pub(super) fn body_line(&mut self, c: char, from_value: bool) -> Result<bool, String> {
        let Some(body) = &mut self.body else { return Ok(false) };
        if c != '\n' {
            body.line.push(c);
            body.line_has_value |= from_value;
            return Ok(false);
        }
        let backslashes = body.line.len() - body.line.trim_end_matches('\\').len();
        if body.doc.expand && backslashes % 2 == 1 {
            // With an unquoted delimiter `\<newline>` joins two lines before bash compares
            // them with the delimiter: `x\` then `EOF` is the line `xEOF`.
            body.line.pop();
            return Ok(false);
        }
        let line = if body.doc.strip_tabs {
            body.line.trim_start_matches('\t')
        } else {
            body.line.as_str()
        };
        if line != body.doc.delimiter {
            body.line.clear();
            body.line_has_value = false;
            return Ok(false);
        }
        if body.line_has_value {
            return Err(format!(
                "a value would end the here-document early: it makes a line equal to its \
                 delimiter `{}`",
                body.doc.delimiter
            ));
        }
        let depth = body.depth;
        if self.stack.len() != depth + 1 || self.escape || self.pending != Pending::None {
            self.lose("a here-document ends inside an open quote or substitution");
            return Ok(true);
        }
        self.stack.truncate(depth);
        self.body = None;
        self.word_start = true;
        self.start_heredoc();
        Ok(true)
    }

    /// One character of a here-document's delimiter word (after `<<` or `<<-`).
    pub(super) fn delimiter(&mut self, mut d: Delimiter, c: char) -> Result<(), String> {
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
    pub(super) fn start_heredoc(&mut self) {
        if let Some(doc) = self.heredocs.pop_front() {
            let depth = self.stack.len();
            self.stack.push(Frame::HereDoc { expand: doc.expand });
            self.body = Some(Body { doc, line: String::new(), line_has_value: false, depth });
        }
    }
}
