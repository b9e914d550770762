//! The dependency graph of one DAG (petgraph), with every query the scheduler needs answered in
//! advance: upstream, downstream, topological order, roots and leaves.
//!
//! This file owns graph shape only. It must not look at task settings or states, and it must not
//! allocate per query: the scheduler calls these methods in its hot loop, so every answer is a
//! slice computed once in [`DagGraph::build`].
//!
//! Edges point downstream: `b: {depends_on: [a]}` is the edge a -> b, the way Airflow writes
//! `a >> b`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use indexmap::IndexMap;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use super::Task;

/// A DAG's tasks and their dependencies, checked acyclic, with precomputed answers.
#[derive(Debug, Clone, Default)]
pub struct DagGraph {
    /// Nodes are task ids in file order (node index = file index); edges go downstream.
    graph: DiGraph<String, ()>,
    /// Task id -> node index.
    index: HashMap<String, usize>,
    /// Per node: its upstream task ids, in `depends_on` order.
    upstream: Vec<Vec<String>>,
    /// Per node: its downstream task ids, in file order.
    downstream: Vec<Vec<String>>,
    /// Every task, upstream before downstream; ties broken by file order so it is stable.
    topo: Vec<String>,
    /// Tasks without upstream, in file order.
    roots: Vec<String>,
    /// Tasks without downstream, in file order.
    leaves: Vec<String>,
}

/// The graph has cycles; each is written as task ids with the first repeated at the end, in
/// edge direction (`[a, b, a]`: b depends on a and a depends on b).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleError {
    /// One cycle per strongly connected group of tasks, ordered by the file position of its
    /// first task.
    pub cycles: Vec<Vec<String>>,
}

impl std::fmt::Display for CycleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let texts: Vec<String> = self.cycles.iter().map(|c| c.join(" -> ")).collect();
        write!(f, "cycle: {}", texts.join("; cycle: "))
    }
}

impl std::error::Error for CycleError {}

const NO_TASKS: &[String] = &[];

impl DagGraph {
    /// Builds the graph from `(task_id, depends_on)` pairs in file order. Dependencies naming no
    /// task are ignored (the parser reports them with their position); repeated ones count once.
    pub fn build<'a, I, D>(tasks: I) -> Result<DagGraph, CycleError>
    where
        I: IntoIterator<Item = (&'a str, D)>,
        D: IntoIterator<Item = &'a str>,
    {
        let tasks: Vec<(&str, Vec<&str>)> =
            tasks.into_iter().map(|(id, deps)| (id, deps.into_iter().collect())).collect();
        let mut graph = DiGraph::with_capacity(tasks.len(), tasks.len());
        let mut index = HashMap::with_capacity(tasks.len());
        for (id, _) in &tasks {
            let node = graph.add_node(id.to_string());
            index.entry(id.to_string()).or_insert(node.index());
        }
        let n = graph.node_count();
        let mut upstream = vec![Vec::new(); n];
        let mut down_idx: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (to, (_, deps)) in tasks.iter().enumerate() {
            for dep in deps {
                let Some(&from) = index.get(*dep) else { continue };
                if upstream[to].iter().any(|u: &String| u == dep) {
                    continue;
                }
                upstream[to].push(dep.to_string());
                down_idx[from].push(to);
                graph.add_edge(NodeIndex::new(from), NodeIndex::new(to), ());
            }
        }
        for d in &mut down_idx {
            d.sort_unstable();
        }
        let cycles = find_cycles(&graph, &down_idx);
        if !cycles.is_empty() {
            return Err(CycleError { cycles });
        }
        let name = |i: usize| graph[NodeIndex::new(i)].clone();
        let downstream: Vec<Vec<String>> =
            down_idx.iter().map(|d| d.iter().map(|&i| name(i)).collect()).collect();
        let topo = topo_order(&upstream, &down_idx).into_iter().map(name).collect();
        let roots = (0..n).filter(|&i| upstream[i].is_empty()).map(name).collect();
        let leaves = (0..n).filter(|&i| down_idx[i].is_empty()).map(name).collect();
        Ok(DagGraph { graph, index, upstream, downstream, topo, roots, leaves })
    }

    /// Builds the graph of parsed tasks.
    pub fn from_tasks(tasks: &IndexMap<String, Task>) -> Result<DagGraph, CycleError> {
        DagGraph::build(
            tasks.iter().map(|(id, t)| (id.as_str(), t.depends_on.iter().map(String::as_str))),
        )
    }

    /// Task ids `task_id` depends on; empty for an unknown id.
    pub fn upstream(&self, task_id: &str) -> &[String] {
        self.index.get(task_id).map_or(NO_TASKS, |&i| &self.upstream[i])
    }

    /// Task ids that depend on `task_id`; empty for an unknown id.
    pub fn downstream(&self, task_id: &str) -> &[String] {
        self.index.get(task_id).map_or(NO_TASKS, |&i| &self.downstream[i])
    }

    /// Every task reachable downstream of `task_id` (not itself), in topological order.
    pub fn all_downstream(&self, task_id: &str) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        let mut stack: Vec<&str> = self.downstream(task_id).iter().map(String::as_str).collect();
        while let Some(t) = stack.pop() {
            if seen.insert(t.to_string()) {
                stack.extend(self.downstream(t).iter().map(String::as_str));
            }
        }
        self.topo_order().iter().filter(|t| seen.contains(*t)).cloned().collect()
    }

    /// Every task, each after all its upstream tasks.
    pub fn topo_order(&self) -> &[String] {
        &self.topo
    }

    /// Tasks with no upstream.
    pub fn roots(&self) -> &[String] {
        &self.roots
    }

    /// Tasks with no downstream; their states decide the run's state.
    pub fn leaves(&self) -> &[String] {
        &self.leaves
    }

    /// Whether `task_id` is a task with no downstream.
    pub fn is_leaf(&self, task_id: &str) -> bool {
        self.index.get(task_id).is_some_and(|&i| self.downstream[i].is_empty())
    }

    /// Whether `task_id` is a task of this graph.
    pub fn contains(&self, task_id: &str) -> bool {
        self.index.contains_key(task_id)
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// True when the graph has no task.
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// The underlying petgraph graph (nodes in file order, edges downstream), for drawing.
    pub fn petgraph(&self) -> &DiGraph<String, ()> {
        &self.graph
    }
}

/// Kahn's algorithm with a min-heap on file index, so the order only changes when the file does.
fn topo_order(upstream: &[Vec<String>], down: &[Vec<usize>]) -> Vec<usize> {
    let mut waiting: Vec<usize> = upstream.iter().map(Vec::len).collect();
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..upstream.len()).filter(|&i| waiting[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(upstream.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &j in &down[i] {
            waiting[j] -= 1;
            if waiting[j] == 0 {
                ready.push(Reverse(j));
            }
        }
    }
    order
}

/// One readable cycle per strongly connected component: the shortest cycle through the
/// component's first task in file order.
fn find_cycles(graph: &DiGraph<String, ()>, down: &[Vec<usize>]) -> Vec<Vec<String>> {
    let mut cycles: Vec<(usize, Vec<String>)> = Vec::new();
    for scc in tarjan_scc(graph) {
        let members: Vec<usize> = scc.iter().map(|n| n.index()).collect();
        let start = members.iter().copied().min().unwrap_or(0);
        let self_loop = down.get(start).is_some_and(|d| d.contains(&start));
        if members.len() < 2 && !self_loop {
            continue;
        }
        let path = shortest_cycle(start, &members, down);
        let names = path.iter().map(|&i| graph[NodeIndex::new(i)].clone()).collect();
        cycles.push((start, names));
    }
    cycles.sort_by_key(|(start, _)| *start);
    cycles.into_iter().map(|(_, c)| c).collect()
}

/// Breadth-first search from `start` back to itself inside one component.
fn shortest_cycle(start: usize, members: &[usize], down: &[Vec<usize>]) -> Vec<usize> {
    let mut parent: HashMap<usize, usize> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(i) = queue.pop_front() {
        for &j in &down[i] {
            if j == start {
                // Walk the parents back from i to start, then turn the path around.
                let mut path = vec![start];
                let mut k = i;
                while k != start {
                    path.push(k);
                    k = parent.get(&k).copied().unwrap_or(start);
                }
                path.push(start);
                path.reverse();
                return path;
            }
            if members.contains(&j) && j != start && !parent.contains_key(&j) {
                parent.insert(j, i);
                queue.push_back(j);
            }
        }
    }
    vec![start, start]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(spec: &[(&'static str, &[&'static str])]) -> Result<DagGraph, CycleError> {
        DagGraph::build(spec.iter().map(|(id, deps)| (*id, deps.iter().copied())))
    }

    #[test]
    fn queries_are_precomputed() {
        let g = graph(&[
            ("load", &["transform", "create"]),
            ("extract", &[]),
            ("transform", &["extract"]),
            ("create", &[]),
            ("notify", &["load", "load"]),
        ])
        .expect("acyclic");
        assert_eq!(g.upstream("load"), ["transform", "create"]);
        assert_eq!(g.upstream("notify"), ["load"]);
        assert_eq!(g.downstream("extract"), ["transform"]);
        assert_eq!(g.downstream("create"), ["load"]);
        assert_eq!(g.topo_order(), ["extract", "transform", "create", "load", "notify"]);
        assert_eq!(g.roots(), ["extract", "create"]);
        assert_eq!(g.leaves(), ["notify"]);
        assert!(g.is_leaf("notify") && !g.is_leaf("load") && !g.is_leaf("nope"));
        assert!(g.upstream("nope").is_empty() && g.downstream("nope").is_empty());
        assert_eq!(g.len(), 5);
        assert_eq!(g.all_downstream("extract"), ["transform", "load", "notify"]);
        assert!(g.all_downstream("notify").is_empty());
    }

    #[test]
    fn unknown_dependencies_are_ignored() {
        let g = graph(&[("a", &["ghost"])]).expect("acyclic");
        assert!(g.upstream("a").is_empty());
        assert_eq!(g.roots(), ["a"]);
    }

    #[test]
    fn cycles_are_named_in_order() {
        type Spec = &'static [(&'static str, &'static [&'static str])];
        let cases: &[(Spec, &[&[&str]])] = &[
            (&[("a", &["c"]), ("b", &["a"]), ("c", &["b"])], &[&["a", "b", "c", "a"]]),
            (&[("x", &[]), ("a", &["a"])], &[&["a", "a"]]),
            (
                &[("a", &["b"]), ("b", &["a"]), ("c", &["d"]), ("d", &["c"])],
                &[&["a", "b", "a"], &["c", "d", "c"]],
            ),
            // The shortest way back is reported, not the longest.
            (&[("a", &["c", "b"]), ("b", &["a"]), ("c", &["b"])], &[&["a", "b", "a"]]),
        ];
        for (spec, want) in cases {
            let err = graph(spec).expect_err("cyclic");
            let want: Vec<Vec<String>> =
                want.iter().map(|c| c.iter().map(|s| s.to_string()).collect()).collect();
            assert_eq!(err.cycles, want, "{spec:?}");
        }
    }

    #[test]
    fn display_lists_every_cycle() {
        let err = graph(&[("a", &["b"]), ("b", &["a"])]).expect_err("cyclic");
        assert_eq!(err.to_string(), "cycle: a -> b -> a");
    }
}
