//! Source positions of a YAML document: YAML path -> 1-based (line, column) of the key and of the
//! value, every duplicate key found in any mapping, and where a second document would start.
//!
//! This file owns one walk over yaml-rust2's event stream. It must not interpret values (that is
//! `parse`'s job, on serde_yaml's tree) and it never fails: when yaml-rust2 stops on a problem,
//! the positions seen so far are kept and serde_yaml reports the syntax error itself.
//!
//! Why a second YAML parser: serde_yaml's `Value` forgets where things were, and errors found
//! after deserializing (a cycle, an unknown dependency) still have to point at a line and column.
//!
//! Invariant: the paths indexed here are the paths of the tree `parse` reads, so aliases are
//! followed and merge keys (`<<: *defaults`) applied exactly as `parse/merge.rs` applies them: a
//! mapping's own keys win, then the merged mappings' keys in order, the first one winning. A key
//! that came from an anchor points where the anchor wrote it, because that is where a user fixes it.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// The key that merges mappings into the one holding it (YAML 1.1's merge key).
pub const MERGE_KEY: &str = "<<";
/// Aliases make a small text a huge tree. serde_yaml refuses a document whose aliases expand to
/// more than 100 events per event written; the index stops at the same ratio.
const EXPANSION_PER_NODE: usize = 100;
/// Deeper trees are not indexed further; serde_yaml refuses anything past 128 levels.
const MAX_DEPTH: usize = 256;

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
    /// Position of the value (`3` in `retries: 3`); for a block collection, its first entry;
    /// for an alias (`*defaults`), the alias.
    pub value: Pos,
}

/// A key written twice in the same mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    /// Path of the mapping holding the key, as written (`["tasks"]` for a duplicate task id).
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
    second_document: Option<Pos>,
}

impl Positions {
    /// Indexes the first document of `src` (a leading byte-order mark is skipped).
    pub fn build(src: &str) -> Positions {
        let src = src.strip_prefix('\u{feff}').unwrap_or(src);
        let mut b = Builder { chars: src.chars().collect(), ..Builder::default() };
        // A scan error ends the walk early; what was indexed before it is still right.
        let _ = Parser::new_from_str(src).load(&mut b, true);
        // Whatever is still open (a scan error) closes as it is.
        while !b.stack.is_empty() {
            b.close();
        }
        let mut out = Positions {
            entries: HashMap::new(),
            duplicates: b.duplicates,
            second_document: b.second_document,
        };
        if let Some(root) = b.root {
            let mut budget = b.nodes.saturating_mul(EXPANSION_PER_NODE).max(1_000);
            index(&root, root.pos, &mut Vec::new(), &mut out.entries, &mut budget);
        }
        out
    }

    /// Position of exactly this path, if it is in the document.
    pub fn get<S: AsRef<str>>(&self, path: &[S]) -> Option<Located> {
        let key: Vec<String> = path.iter().map(|s| s.as_ref().to_string()).collect();
        self.entries.get(&key).copied()
    }

    /// Every indexed path with its position, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&[String], Located)> {
        self.entries.iter().map(|(path, at)| (path.as_slice(), *at))
    }

    /// Position of this path or of its closest ancestor present in the document.
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

    /// Where a second YAML document starts (after `---` or `...`), if the text has one.
    pub fn second_document(&self) -> Option<Pos> {
        self.second_document
    }
}

/// One node of the document as written; an alias shares its anchor's node.
struct Node {
    kind: Kind,
}

enum Kind {
    /// A scalar, with its text.
    Leaf(String),
    /// A mapping's entries as written (duplicates dropped, `<<` kept).
    Map(Vec<Entry>),
    Seq(Vec<Val>),
}

/// A value where it is written: `pos` is the alias for `*name`, the node's own place otherwise.
#[derive(Clone)]
struct Val {
    pos: Pos,
    node: Rc<Node>,
}

#[derive(Clone)]
struct Entry {
    key: String,
    key_pos: Pos,
    value: Val,
}

/// One collection being read.
struct Open {
    /// Where yaml-rust2 marked its start: after the parent key's colon for a block collection.
    pos: Pos,
    /// A block collection's position is its first entry's, where a reader looks for it.
    block: bool,
    /// Position of its first entry, once read.
    first: Option<Pos>,
    /// yaml-rust2's anchor id (`&name`), 0 for none.
    anchor: usize,
    /// Whether opening it pushed a segment onto `Builder::path`.
    pushed: bool,
    kind: OpenKind,
}

enum OpenKind {
    /// `pending`: the key read and waiting for its value; `seen`: every key so far, first place.
    Map {
        entries: Vec<Entry>,
        seen: HashMap<String, Pos>,
        pending: Option<Pending>,
    },
    Seq(Vec<Val>),
}

struct Pending {
    key: String,
    pos: Pos,
    /// The key repeats an earlier one: its value is dropped (the first occurrence wins).
    dup: bool,
}

#[derive(Default)]
struct Builder {
    /// The source, to tell flow collections (`[`, `{`) from block ones; marks index chars.
    chars: Vec<char>,
    /// Path of the innermost open collection, as written.
    path: Vec<String>,
    stack: Vec<Open>,
    anchors: HashMap<usize, Rc<Node>>,
    root: Option<Val>,
    duplicates: Vec<DuplicateKey>,
    /// Nodes read, the base of the alias expansion budget.
    nodes: usize,
    documents: usize,
    second_document: Option<Pos>,
    /// A second document began without `---` (after `...`): it is placed at its first node.
    implicit_second: bool,
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        // yaml-rust2 lines are 1-based but its columns are 0-based.
        let pos = Pos { line: mark.line(), column: mark.col() + 1 };
        if self.implicit_second && matches!(ev, Event::Scalar(..) | Event::Alias(_)) {
            self.implicit_second = false;
            self.second_document = Some(pos);
        }
        if self.second_document.is_some() {
            return; // later documents are not part of the DAG file
        }
        if matches!(
            ev,
            Event::Scalar(..)
                | Event::Alias(_)
                | Event::MappingStart(..)
                | Event::SequenceStart(..)
        ) && let Some(top) = self.stack.last_mut()
            && top.first.is_none()
        {
            top.first = Some(pos);
        }
        match ev {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents == 2 {
                    let explicit =
                        self.chars.get(mark.index()..mark.index() + 3) == Some(&['-'; 3]);
                    self.implicit_second = !explicit;
                    self.second_document = Some(pos);
                }
            }
            Event::Scalar(text, _, anchor, _) => {
                let node = Rc::new(Node { kind: Kind::Leaf(text) });
                self.anchor(anchor, &node);
                self.attach(Val { pos, node });
            }
            Event::Alias(id) => {
                let node = match self.anchors.get(&id) {
                    Some(node) => node.clone(),
                    None => Rc::new(Node { kind: Kind::Leaf(String::new()) }),
                };
                self.attach(Val { pos, node });
            }
            Event::MappingStart(anchor, _) => {
                let kind =
                    OpenKind::Map { entries: Vec::new(), seen: HashMap::new(), pending: None };
                self.open(pos, mark.index(), anchor, kind);
            }
            Event::SequenceStart(anchor, _) => {
                self.open(pos, mark.index(), anchor, OpenKind::Seq(Vec::new()));
            }
            Event::MappingEnd | Event::SequenceEnd => self.close(),
            _ => {}
        }
    }
}

impl Builder {
    fn anchor(&mut self, id: usize, node: &Rc<Node>) {
        self.nodes += 1;
        if id != 0 {
            self.anchors.insert(id, node.clone());
        }
    }

    /// Opens a collection that starts at `pos`, character `at` of the source.
    fn open(&mut self, pos: Pos, at: usize, anchor: usize, kind: OpenKind) {
        let block = !matches!(self.chars.get(at), Some('[' | '{'));
        // The path segment this collection is reached by; a complex key has none.
        let segment = match self.stack.last().map(|o| &o.kind) {
            Some(OpenKind::Map { pending: Some(p), .. }) => Some(p.key.clone()),
            Some(OpenKind::Seq(items)) => Some(items.len().to_string()),
            _ => None,
        };
        let pushed = segment.is_some();
        if let Some(segment) = segment {
            self.path.push(segment);
        }
        self.stack.push(Open { pos, block, first: None, anchor, pushed, kind });
    }

    fn close(&mut self) {
        let Some(open) = self.stack.pop() else { return };
        if open.pushed {
            self.path.pop();
        }
        let pos = if open.block { open.first.unwrap_or(open.pos) } else { open.pos };
        let kind = match open.kind {
            OpenKind::Map { entries, .. } => Kind::Map(entries),
            OpenKind::Seq(items) => Kind::Seq(items),
        };
        let node = Rc::new(Node { kind });
        self.anchor(open.anchor, &node);
        self.attach(Val { pos, node });
    }

    /// Puts a finished node where it belongs: the root, a list item, a key or a key's value.
    fn attach(&mut self, val: Val) {
        let Some(top) = self.stack.last_mut() else {
            self.root.get_or_insert(val);
            return;
        };
        match &mut top.kind {
            OpenKind::Seq(items) => items.push(val),
            OpenKind::Map { entries, seen, pending } => match pending.take() {
                Some(p) if p.dup => {}
                Some(p) => entries.push(Entry { key: p.key, key_pos: p.pos, value: val }),
                None => {
                    // This node is a key.
                    let key = match &val.node.kind {
                        Kind::Leaf(text) => text.clone(),
                        _ => "<complex key>".to_string(),
                    };
                    let dup = match seen.get(&key) {
                        Some(first) => {
                            self.duplicates.push(DuplicateKey {
                                parent: self.path.clone(),
                                key: key.clone(),
                                first: *first,
                                second: val.pos,
                            });
                            true
                        }
                        None => {
                            seen.insert(key.clone(), val.pos);
                            false
                        }
                    };
                    *pending = Some(Pending { key, pos: val.pos, dup });
                }
            },
        }
    }
}

/// Records `val` at `path` and everything under it, merge keys applied.
fn index(
    val: &Val,
    key: Pos,
    path: &mut Vec<String>,
    out: &mut HashMap<Vec<String>, Located>,
    budget: &mut usize,
) {
    if *budget == 0 || path.len() > MAX_DEPTH {
        return;
    }
    *budget -= 1;
    out.insert(path.clone(), Located { key, value: val.pos });
    let children: Vec<(String, Pos, Val)> = match &val.node.kind {
        Kind::Leaf(_) => return,
        Kind::Seq(items) => {
            items.iter().enumerate().map(|(i, v)| (i.to_string(), v.pos, v.clone())).collect()
        }
        Kind::Map(_) => {
            merged(&val.node, 0).into_iter().map(|e| (e.key, e.key_pos, e.value)).collect()
        }
    };
    for (segment, key, child) in children {
        path.push(segment);
        index(&child, key, path, out, budget);
        path.pop();
    }
}

/// A mapping's entries with its merge key applied: its own keys, then each merged mapping's
/// (itself merged first) that are not there yet. A `<<` that is not a mapping or a list of
/// mappings merges nothing here; `parse/merge.rs` reports it.
fn merged(node: &Node, depth: usize) -> Vec<Entry> {
    let Kind::Map(entries) = &node.kind else { return Vec::new() };
    if !entries.iter().any(|e| e.key == MERGE_KEY) || depth > MAX_DEPTH {
        return entries.clone();
    }
    // The mapping's own keys win wherever they are written; then the first merged one.
    let mut keys: HashSet<String> =
        entries.iter().filter(|e| e.key != MERGE_KEY).map(|e| e.key.clone()).collect();
    let mut out: Vec<Entry> = Vec::with_capacity(entries.len());
    for e in entries {
        // `<<` itself stays indexed, so an error about what it merges can point at it.
        out.push(e.clone());
        if e.key != MERGE_KEY {
            continue;
        }
        let sources: Vec<&Rc<Node>> = match &e.value.node.kind {
            Kind::Map(_) => vec![&e.value.node],
            Kind::Seq(items) => items.iter().map(|v| &v.node).collect(),
            Kind::Leaf(_) => Vec::new(),
        };
        for source in sources {
            for m in merged(source, depth + 1) {
                if m.key != MERGE_KEY && keys.insert(m.key.clone()) {
                    out.push(m);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
