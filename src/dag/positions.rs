//! Source positions of a YAML document: YAML path -> 1-based (line, column) of the key and of the
//! value, plus every duplicate key found in any mapping.
//!
//! This file owns one walk over yaml-rust2's event stream. It must not interpret values (that is
//! `parse`'s job, on serde_yaml's tree) and it never fails: when yaml-rust2 stops on a problem,
//! the positions seen so far are kept and serde_yaml reports the syntax error itself.
//!
//! Why a second YAML parser: serde_yaml's `Value` forgets where things were, and errors found
//! after deserializing (a cycle, an unknown dependency) still have to point at a line and column.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl Pos {
    /// The first character of the file, used when nothing better is known.
    pub const START: Pos = Pos { line: 1, column: 1 };
}

/// Where one node sits. For list items and the root, `key` is the value's own position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located {
    /// Position of the mapping key (`retries` in `retries: 3`).
    pub key: Pos,
    /// Position of the value (`3` in `retries: 3`); for a block collection, its first entry.
    pub value: Pos,
}

/// A key written twice in the same mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    /// Path of the mapping holding the key (`["tasks"]` for a duplicate task id).
    pub parent: Vec<String>,
    /// The repeated key.
    pub key: String,
    /// Where the key first appears; that occurrence is the one kept.
    pub first: Pos,
    /// Where it appears again.
    pub second: Pos,
}

/// Index from YAML path to position. List indexes are path segments written in decimal, so the
/// first dependency of task `load` is `["tasks", "load", "depends_on", "0"]`.
#[derive(Debug, Clone, Default)]
pub struct Positions {
    entries: HashMap<Vec<String>, Located>,
    duplicates: Vec<DuplicateKey>,
}

impl Positions {
    /// Indexes the first document of `src`.
    pub fn build(src: &str) -> Positions {
        let mut walker = Walker { chars: src.chars().collect(), ..Walker::default() };
        let mut parser = Parser::new_from_str(src);
        // A scan error ends the walk early; what was indexed before it is still right.
        let _ = parser.load(&mut walker, false);
        walker.out
    }

    /// Position of exactly this path, if it is in the document.
    pub fn get<S: AsRef<str>>(&self, path: &[S]) -> Option<Located> {
        let key: Vec<String> = path.iter().map(|s| s.as_ref().to_string()).collect();
        self.entries.get(&key).copied()
    }

    /// Position of this path or of its closest ancestor present in the document. Content brought
    /// in by a merge key (`<<: *defaults`) has no path of its own, so errors in it land on the
    /// mapping that merged it.
    pub fn nearest<S: AsRef<str>>(&self, path: &[S]) -> Located {
        (0..=path.len())
            .rev()
            .find_map(|n| self.get(&path[..n]))
            .unwrap_or(Located { key: Pos::START, value: Pos::START })
    }

    /// Keys written twice in one mapping, in document order.
    pub fn duplicates(&self) -> &[DuplicateKey] {
        &self.duplicates
    }
}

/// One open collection while walking the events.
enum Frame {
    /// A mapping: `pending` is the key read and waiting for its value (`dup` when it repeats an
    /// earlier key); `seen` is every key read so far, with its position.
    Map { pending: Option<PendingKey>, seen: HashMap<String, Pos> },
    /// A list, with the index the next item gets.
    Seq { next: usize },
    /// A subtree whose positions are not recorded: a complex key or the value of a duplicate key
    /// (the first occurrence wins, as in the parsed tree).
    Skip,
}

struct PendingKey {
    text: String,
    pos: Pos,
    dup: bool,
}

/// One open collection and its bookkeeping.
struct Open {
    frame: Frame,
    /// Whether opening it pushed a segment onto `Walker::path`.
    pushed: bool,
    /// Whether its value position still waits for its first entry: yaml-rust2 marks the start of
    /// a block collection after the parent key's colon, where nobody would look for it.
    fix: bool,
}

#[derive(Default)]
struct Walker {
    /// The source, to tell flow collections (`[`, `{`) from block ones; marks index chars.
    chars: Vec<char>,
    /// Path of the innermost open collection.
    path: Vec<String>,
    /// Open collections, innermost last.
    stack: Vec<Open>,
    /// Set after the first document: later documents are not part of the DAG file.
    done: bool,
    out: Positions,
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.done {
            return;
        }
        // yaml-rust2 lines are 1-based but its columns are 0-based.
        let pos = Pos { line: mark.line(), column: mark.col() + 1 };
        let block = !matches!(self.chars.get(mark.index()), Some('[' | '{'));
        match ev {
            Event::Scalar(text, ..) => self.node(Some(text), pos, None),
            Event::Alias(_) => self.node(Some("*alias".to_string()), pos, None),
            Event::MappingStart(..) => {
                let frame = Frame::Map { pending: None, seen: HashMap::new() };
                self.node(None, pos, Some((frame, block)));
            }
            Event::SequenceStart(..) => self.node(None, pos, Some((Frame::Seq { next: 0 }, block))),
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some(open) = self.stack.pop()
                    && open.pushed
                {
                    self.path.pop();
                }
            }
            Event::DocumentEnd => self.done = true,
            _ => {}
        }
    }
}

impl Walker {
    /// Handles one node: a scalar (`scalar` is its text) or the start of a collection (`open`,
    /// with whether it is a block collection).
    fn node(&mut self, scalar: Option<String>, pos: Pos, open: Option<(Frame, bool)>) {
        let skip = Open { frame: Frame::Skip, pushed: false, fix: false };
        if let Some(top) = self.stack.last_mut()
            && top.fix
        {
            top.fix = false;
            if let Some(entry) = self.out.entries.get_mut(&self.path) {
                entry.value = pos;
            }
        }
        // What the node is depends on the innermost open collection.
        let (segment, key_pos) = match self.stack.last_mut().map(|o| &mut o.frame) {
            None => {
                self.out.entries.insert(Vec::new(), Located { key: pos, value: pos });
                if let Some((frame, fix)) = open {
                    self.stack.push(Open { frame, pushed: false, fix });
                }
                return;
            }
            Some(Frame::Skip) => {
                if open.is_some() {
                    self.stack.push(skip);
                }
                return;
            }
            Some(Frame::Seq { next }) => {
                let index = *next;
                *next += 1;
                (index.to_string(), pos)
            }
            Some(Frame::Map { pending, seen }) => match pending.take() {
                None => {
                    // This node is a key.
                    let text = scalar.unwrap_or_else(|| "<complex key>".to_string());
                    let dup = match seen.get(&text) {
                        Some(first) => {
                            self.out.duplicates.push(DuplicateKey {
                                parent: self.path.clone(),
                                key: text.clone(),
                                first: *first,
                                second: pos,
                            });
                            true
                        }
                        None => {
                            seen.insert(text.clone(), pos);
                            false
                        }
                    };
                    *pending = Some(PendingKey { text, pos, dup });
                    if open.is_some() {
                        self.stack.push(skip);
                    }
                    return;
                }
                Some(key) if key.dup => {
                    if open.is_some() {
                        self.stack.push(skip);
                    }
                    return;
                }
                Some(key) => (key.text, key.pos),
            },
        };
        let mut path = self.path.clone();
        path.push(segment.clone());
        self.out.entries.insert(path, Located { key: key_pos, value: pos });
        if let Some((frame, fix)) = open {
            self.path.push(segment);
            self.stack.push(Open { frame, pushed: true, fix });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
dag_id: demo
schedule: \"@daily\"
tasks:
  extract:
    type: bash
    retries: 3
  load:
    depends_on: [extract, other]
    deps2:
      - a
      - b
";

    #[test]
    fn keys_and_values_are_located() {
        let p = Positions::build(DOC);
        type LineCol = (usize, usize);
        let cases: &[(&[&str], LineCol, LineCol)] = &[
            (&["dag_id"], (1, 1), (1, 9)),
            (&["schedule"], (2, 1), (2, 11)),
            (&["tasks"], (3, 1), (4, 3)),
            (&["tasks", "extract"], (4, 3), (5, 5)),
            (&["tasks", "extract", "retries"], (6, 5), (6, 14)),
            (&["tasks", "load", "depends_on"], (8, 5), (8, 17)),
            (&["tasks", "load", "depends_on", "1"], (8, 27), (8, 27)),
            (&["tasks", "load", "deps2", "1"], (11, 9), (11, 9)),
        ];
        for (path, key, value) in cases {
            let got = p.get(path).unwrap_or_else(|| panic!("{path:?} not indexed"));
            assert_eq!((got.key.line, got.key.column), *key, "key of {path:?}");
            assert_eq!((got.value.line, got.value.column), *value, "value of {path:?}");
        }
    }

    #[test]
    fn nearest_falls_back_to_ancestors() {
        let p = Positions::build(DOC);
        let got = p.nearest(&["tasks", "extract", "nope", "deeper"]);
        assert_eq!(got.key, Pos { line: 4, column: 3 });
        assert_eq!(Positions::build("").nearest(&["x"]).key, Pos::START);
    }

    #[test]
    fn duplicates_are_reported_and_first_occurrence_kept() {
        let src = "tasks:\n  a:\n    type: bash\n  b: {}\n  a:\n    type: empty\n    x: 1\n";
        let p = Positions::build(src);
        assert_eq!(
            p.duplicates(),
            &[DuplicateKey {
                parent: vec!["tasks".into()],
                key: "a".into(),
                first: Pos { line: 2, column: 3 },
                second: Pos { line: 5, column: 3 },
            }]
        );
        assert_eq!(p.get(&["tasks", "a", "type"]).map(|l| l.value.line), Some(3));
        assert!(p.get(&["tasks", "a", "x"]).is_none());
    }

    #[test]
    fn broken_yaml_keeps_what_came_before() {
        let p = Positions::build("a: 1\nb: [\n");
        assert_eq!(p.get(&["a"]).map(|l| l.value), Some(Pos { line: 1, column: 4 }));
    }

    #[test]
    fn only_the_first_document_counts() {
        let p = Positions::build("a: 1\n---\nb: 2\n");
        assert!(p.get(&["a"]).is_some());
        assert!(p.get(&["b"]).is_none());
    }
}
