//! The lexer of bash's quoting structure: which context (code, quotes, substitution, comment,
//! here-document...) the next character of a command is read in.
//!
//! This file owns the frames and the per-character transitions; here-documents are in
//! `heredoc.rs`, and what a value becomes in each context in `../shell.rs`. Invariant: it only
//! ever moves to a state it models; on anything else it records why it lost track (`lost`),
//! which is sticky, and every later value is refused.

use std::collections::VecDeque;

use super::heredoc::{Body, Delimiter, HereDoc};

/// One open quoting context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Frame {
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
    HereDoc {
        expand: bool,
    },
}

impl Frame {
    pub(super) fn is_code(&self) -> bool {
        matches!(self, Frame::Top | Frame::Subst(_) | Frame::Backtick)
    }
}

/// A construct that needs the next character to be known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) enum Pending {
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

#[derive(Debug)]
pub(super) struct Lexer {
    pub(super) stack: Vec<Frame>,
    /// A backslash was read: the next character is quoted.
    pub(super) escape: bool,
    pub(super) pending: Pending,
    /// In code: the next character starts a word (so `#` starts a comment).
    pub(super) word_start: bool,
    /// The current unquoted word in code (its first 64 bytes), to spot keywords.
    pub(super) word: String,
    /// Inside `[[ ... ]]` (nesting depth): bash evaluates the operands of `-eq`, `-lt`, ... as
    /// arithmetic, where `a[$(cmd)]` runs `cmd` even from a quoted string.
    pub(super) conditional: u32,
    /// Inside `name[` of the current word: an array subscript, evaluated as arithmetic.
    pub(super) subscript: bool,
    /// In the arguments of `let`, which are arithmetic.
    pub(super) let_command: bool,
    pub(super) heredocs: VecDeque<HereDoc>,
    pub(super) body: Option<Body>,
    /// Inside backticks: a backslash was read by the backtick layer.
    pub(super) backtick_escape: bool,
    /// Why the state is no longer known; sticky.
    pub(super) lost: Option<&'static str>,
}

/// A shell variable name.
fn is_name(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Characters that end an unquoted word.
pub(super) fn ends_word(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' | '(' | ')')
}

impl Lexer {
    pub(super) fn new() -> Lexer {
        Lexer {
            stack: vec![Frame::Top],
            escape: false,
            pending: Pending::None,
            word_start: true,
            word: String::new(),
            conditional: 0,
            subscript: false,
            let_command: false,
            heredocs: VecDeque::new(),
            body: None,
            backtick_escape: false,
            lost: None,
        }
    }

    pub(super) fn top(&self) -> &Frame {
        self.stack.last().unwrap_or(&Frame::Top)
    }

    pub(super) fn in_backtick(&self) -> bool {
        self.stack.contains(&Frame::Backtick)
    }

    pub(super) fn lose(&mut self, why: &'static str) {
        self.lost.get_or_insert(why);
    }

    /// Feeds one character of the command; `from_value` marks characters a value wrote.
    pub(super) fn feed(&mut self, c: char, from_value: bool) -> Result<(), String> {
        if self.lost.is_some() {
            return Ok(());
        }
        // A here-document ends at a line equal to its delimiter, whatever the line holds, so
        // bash checks raw lines before anything else.
        if self.body.is_some() && self.body_line(c, from_value)? {
            return Ok(());
        }
        if self.in_backtick() {
            let in_double = self.backtick_in_double();
            let c = if std::mem::take(&mut self.backtick_escape) {
                // The layer unescapes `\\`, `\$`, `\`` (and `\"` directly inside `"..."`); the
                // inner text gets the character itself: `\`` is a literal backtick inside inner
                // quotes, and a nested substitution (refused) in inner code.
                let unescaped = matches!(c, '\\' | '$' | '`') || (c == '"' && in_double);
                if !unescaped {
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
    pub(super) fn backtick_in_double(&self) -> bool {
        let mut below = self.stack.iter().rev().skip_while(|f| **f != Frame::Backtick);
        below.nth(1) == Some(&Frame::Double)
    }

    /// A character of the text inside backticks, after the backtick layer.
    pub(super) fn inner(&mut self, c: char, in_double: bool) -> Result<(), String> {
        if c == '"' && in_double && self.top().is_code() {
            // Bash and POSIX shells disagree on double quotes in backticks in double quotes.
            self.lose("double quotes inside backticks inside double quotes (use `$(...)`)");
            return Ok(());
        }
        self.step(c)
    }

    pub(super) fn close_backtick(&mut self) -> Result<(), String> {
        if *self.top() != Frame::Backtick || self.escape || self.pending != Pending::None {
            self.lose("backticks close inside an open quote");
            return Ok(());
        }
        self.stack.pop();
        self.word_start = false;
        Ok(())
    }

    /// One character, after the backtick layer.
    pub(super) fn step(&mut self, c: char) -> Result<(), String> {
        match std::mem::take(&mut self.pending) {
            Pending::None => {}
            Pending::Dollar => return self.after_dollar(c),
            Pending::DollarParen => {
                if c == '(' {
                    self.stack.push(Frame::Arith(0));
                    return Ok(());
                }
                self.open_subst();
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
                    self.open_subst();
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

    pub(super) fn set_depth(&mut self, depth: u32) {
        if let Some(Frame::Param(d) | Frame::Arith(d) | Frame::Subst(d)) = self.stack.last_mut() {
            *d = depth;
        }
    }

    pub(super) fn open_backtick(&mut self) {
        if self.in_backtick() {
            self.lose("nested backticks (use `$(...)`)");
        } else {
            self.stack.push(Frame::Backtick);
            self.start_command();
        }
    }

    /// `$(`, `<(` or `>(`.
    pub(super) fn open_subst(&mut self) {
        self.stack.push(Frame::Subst(0));
        self.start_command();
    }

    /// A substitution starts a new command: a `#` there starts a comment.
    fn start_command(&mut self) {
        self.word_start = true;
        self.word.clear();
    }

    /// A character of unquoted code.
    pub(super) fn code(&mut self, c: char) {
        if ends_word(c) {
            if self.word == "case" && self.stack.iter().any(|f| matches!(f, Frame::Subst(_))) {
                // Its patterns' unbalanced `)` would end the substitution for this lexer.
                self.lose("a `case` inside `$(...)`");
                return;
            }
            match self.word.as_str() {
                "[[" => self.conditional += 1,
                "]]" => self.conditional = self.conditional.saturating_sub(1),
                "let" => self.let_command = true,
                _ => {}
            }
            if matches!(c, ';' | '&' | '|' | '\n') {
                self.let_command = false;
            }
            self.word.clear();
            self.subscript = false;
        }
        if c == '\\' {
            // Leaves `word_start` alone: `\<newline>` joins lines, so `a \<newline>#b` is a
            // comment; any other escaped character clears it when it is read.
            self.escape = true;
            return;
        }
        let word_start = std::mem::replace(&mut self.word_start, ends_word(c));
        match c {
            '\'' => self.stack.push(Frame::Single),
            '"' => self.stack.push(Frame::Double),
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
                if c == '[' && is_name(&self.word) {
                    self.subscript = true;
                } else if c == ']' {
                    self.subscript = false;
                }
                if self.word.len() < 64 {
                    self.word.push(c);
                }
            }
        }
    }

    /// After `$`.
    pub(super) fn after_dollar(&mut self, c: char) -> Result<(), String> {
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
}
