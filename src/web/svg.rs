//! The graph view's drawing: a layered (Sugiyama-style) layout of a DAG computed on the
//! server and written as SVG, left to right.
//!
//! Steps: longest-path layering over the topological order (a task sits one column right of
//! its furthest upstream task), a dummy point per column an edge crosses (so long edges route
//! between boxes instead of through them), a few barycenter sweeps to reduce crossings, then
//! coordinates. Nodes are boxes with the task id and type, coloured by the state class the
//! caller gives, each a link; edges are cubic paths with arrowheads.
//!
//! Invariant: pure — no I/O, no store; every piece of text written into the markup passes
//! through [`escape`], so a task id can never inject markup.

use std::collections::HashMap;
use std::fmt::Write;

use crate::dag::DagGraph;
use crate::web::error::escape;

/// Box width; ids longer than [`LABEL_CHARS`] are cut with an ellipsis (full id in the tooltip).
pub const NODE_W: f64 = 172.0;
/// Box height: two lines of text.
pub const NODE_H: f64 = 42.0;
/// Horizontal space between columns (room for the edge curves).
const GAP_X: f64 = 56.0;
/// Vertical space between boxes of a column.
const GAP_Y: f64 = 18.0;
/// Height a dummy point (an edge passing through a column) takes in its column.
const DUMMY_H: f64 = 10.0;
/// Margin around the drawing.
const PAD: f64 = 16.0;
/// Characters of a task id that fit in a box at 12 px.
const LABEL_CHARS: usize = 22;
/// Characters of the second line (type, mapped count, trigger rule) that fit at 11 px.
const KIND_CHARS: usize = 27;
/// Barycenter sweeps (down then up counts as two); more rarely helps on real DAGs.
const SWEEPS: usize = 4;

/// What the caller knows about one task: its type, state and link.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    /// Task type (`bash`, `http`...), the second line of the box.
    pub kind: String,
    /// State of the selected run's instance (`success`...), None when the run has none.
    pub state: Option<String>,
    /// Where clicking the box goes.
    pub href: Option<String>,
    /// Tooltip (defaults to the task id).
    pub title: Option<String>,
    /// The trigger rule when it is not the default (`all_success`), shown on the box.
    pub rule: Option<String>,
    /// Whether the box is a folded task group (drawn dashed).
    pub group: bool,
}

/// A placed box (top-left corner).
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    /// Task id.
    pub task_id: String,
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Column (longest path from a root).
    pub layer: usize,
}

/// A drawn graph: the markup and the geometry (for tests and for sizing the page).
#[derive(Debug, Clone)]
pub struct Svg {
    /// The `<svg>` element.
    pub markup: String,
    /// Width in px.
    pub width: f64,
    /// Height in px.
    pub height: f64,
    /// Every task's box.
    pub nodes: Vec<Placed>,
    /// Every edge as its polyline of points, from the upstream box's right side to the
    /// downstream box's left side.
    pub edges: Vec<Vec<(f64, f64)>>,
}

/// One point of the layered graph: a task, or a dummy standing for an edge in a column.
struct Point {
    layer: usize,
    /// Index of the task in the topological order; None for dummies.
    task: Option<usize>,
    y: f64,
}

/// Lays `g` out and draws it; `info` describes each task id.
pub fn layout(g: &DagGraph, info: impl Fn(&str) -> NodeInfo) -> Svg {
    let topo = g.topo_order();
    let idx: HashMap<&str, usize> = topo.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
    // Longest-path layering: topological order guarantees upstream layers are known.
    let mut layer = vec![0usize; topo.len()];
    for (i, t) in topo.iter().enumerate() {
        layer[i] = g
            .upstream(t)
            .iter()
            .filter_map(|u| idx.get(u.as_str()))
            .map(|&u| layer[u] + 1)
            .max()
            .unwrap_or(0);
    }
    let mut points: Vec<Point> =
        (0..topo.len()).map(|i| Point { layer: layer[i], task: Some(i), y: 0.0 }).collect();
    // Each edge becomes a chain of points, one per column it spans; segments join neighbours.
    let mut chains: Vec<Vec<usize>> = Vec::new();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); topo.len()];
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); topo.len()];
    for (v, t) in topo.iter().enumerate() {
        for u in g.upstream(t).iter().filter_map(|u| idx.get(u.as_str()).copied()) {
            let mut chain = vec![u];
            for l in layer[u] + 1..layer[v] {
                points.push(Point { layer: l, task: None, y: 0.0 });
                preds.push(Vec::new());
                succs.push(Vec::new());
                chain.push(points.len() - 1);
            }
            chain.push(v);
            for w in chain.windows(2) {
                succs[w[0]].push(w[1]);
                preds[w[1]].push(w[0]);
            }
            chains.push(chain);
        }
    }
    let layers = layer.iter().max().map_or(0, |m| m + 1);
    let mut columns: Vec<Vec<usize>> = vec![Vec::new(); layers];
    for (p, point) in points.iter().enumerate() {
        columns[point.layer].push(p);
    }
    order_columns(&mut columns, &preds, &succs, points.len());
    // Coordinates: stack each column, then centre it against the tallest one.
    let height_of = |p: &Point| if p.task.is_some() { NODE_H } else { DUMMY_H };
    let col_h: Vec<f64> = columns
        .iter()
        .map(|c| c.iter().map(|&p| height_of(&points[p]) + GAP_Y).sum::<f64>() - GAP_Y)
        .collect();
    let max_h = col_h.iter().copied().fold(0.0, f64::max);
    for (c, col) in columns.iter().enumerate() {
        let mut y = PAD + (max_h - col_h[c]) / 2.0;
        for &p in col {
            points[p].y = y;
            y += height_of(&points[p]) + GAP_Y;
        }
    }
    let x_of = |l: usize| PAD + l as f64 * (NODE_W + GAP_X);
    let width = if layers == 0 { 2.0 * PAD } else { x_of(layers - 1) + NODE_W + PAD };
    let height = max_h.max(0.0) + 2.0 * PAD;
    let nodes: Vec<Placed> = points
        .iter()
        .filter_map(|p| {
            p.task.map(|i| Placed {
                task_id: topo[i].clone(),
                x: x_of(p.layer),
                y: p.y,
                layer: p.layer,
            })
        })
        .collect();
    let edges: Vec<Vec<(f64, f64)>> = chains
        .iter()
        .map(|chain| {
            let last = chain.len() - 1;
            chain
                .iter()
                .enumerate()
                .flat_map(|(k, &p)| {
                    let pt = &points[p];
                    let x = x_of(pt.layer);
                    let mid = pt.y + height_of(pt) / 2.0;
                    // A dummy is passed straight through: in on its left, out on its right.
                    match (k, pt.task) {
                        (0, _) => vec![(x + NODE_W, mid)],
                        (k, _) if k == last => vec![(x, mid)],
                        _ => vec![(x, mid), (x + NODE_W, mid)],
                    }
                })
                .collect()
        })
        .collect();
    let ends: Vec<(&str, &str)> = chains
        .iter()
        .filter_map(|c| Some((points[*c.first()?].task?, points[*c.last()?].task?)))
        .map(|(u, v)| (topo[u].as_str(), topo[v].as_str()))
        .collect();
    let markup = draw(&nodes, &edges, &ends, width, height, &info);
    Svg { markup, width, height, nodes, edges }
}

/// Orders each column by the mean position of its neighbours in the column before (sweeping
/// down) or after (sweeping up); a point without neighbours keeps its place.
fn order_columns(columns: &mut [Vec<usize>], preds: &[Vec<usize>], succs: &[Vec<usize>], n: usize) {
    let mut pos = vec![0.0f64; n];
    let index = |columns: &[Vec<usize>], pos: &mut [f64]| {
        for col in columns {
            for (i, &p) in col.iter().enumerate() {
                pos[p] = i as f64;
            }
        }
    };
    index(columns, &mut pos);
    for sweep in 0..SWEEPS {
        let down = sweep % 2 == 0;
        let order: Vec<usize> = if down {
            (1..columns.len()).collect()
        } else {
            (0..columns.len().saturating_sub(1)).rev().collect()
        };
        for c in order {
            let nbrs = if down { preds } else { succs };
            let mut keyed: Vec<(f64, usize)> = columns[c]
                .iter()
                .map(|&p| {
                    let ns = &nbrs[p];
                    let key = if ns.is_empty() {
                        pos[p]
                    } else {
                        ns.iter().map(|&q| pos[q]).sum::<f64>() / ns.len() as f64
                    };
                    (key, p)
                })
                .collect();
            // Stable: ties keep the current (file/topological) order.
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
            columns[c] = keyed.into_iter().map(|(_, p)| p).collect();
            for (i, &p) in columns[c].iter().enumerate() {
                pos[p] = i as f64;
            }
        }
    }
}

fn draw(
    nodes: &[Placed],
    edges: &[Vec<(f64, f64)>],
    ends: &[(&str, &str)],
    width: f64,
    height: f64,
    info: &impl Fn(&str) -> NodeInfo,
) -> String {
    let mut s = String::with_capacity(256 + nodes.len() * 400 + edges.len() * 160);
    let _ = write!(
        s,
        r##"<svg class="graph" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0} {height:.0}" data-width="{width:.0}" data-height="{height:.0}" style="max-width:{width:.0}px" preserveAspectRatio="xMidYMid meet" role="group" aria-label="task graph"><defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#7b8494"/></marker></defs><g class="edges">"##
    );
    for (n, e) in edges.iter().enumerate() {
        let (from, to) = ends.get(n).copied().unwrap_or_default();
        let mut d = String::new();
        for (k, w) in e.windows(2).enumerate() {
            let ((x0, y0), (x1, y1)) = (w[0], w[1]);
            if k == 0 {
                let _ = write!(d, "M{x0:.1},{y0:.1}");
            }
            if (x1 - x0).abs() < 1e-9 || (y1 - y0).abs() < 1e-9 {
                let _ = write!(d, " L{x1:.1},{y1:.1}");
            } else {
                let cx = (x0 + x1) / 2.0;
                let _ = write!(d, " C{cx:.1},{y0:.1} {cx:.1},{y1:.1} {x1:.1},{y1:.1}");
            }
        }
        let _ = write!(
            s,
            r##"<path class="edge" d="{d}" data-from="{from}" data-to="{to}" fill="none" stroke="#7b8494" stroke-width="1.4" marker-end="url(#arrow)"/>"##,
            from = escape(from),
            to = escape(to),
        );
    }
    s.push_str("</g><g class=\"nodes\">");
    for n in nodes {
        let i = info(&n.task_id);
        let state = i.state.as_deref().unwrap_or("none");
        let label = if n.task_id.chars().count() > LABEL_CHARS {
            let cut: String = n.task_id.chars().take(LABEL_CHARS - 1).collect();
            format!("{cut}…")
        } else {
            n.task_id.clone()
        };
        let title = i.title.clone().unwrap_or_else(|| format!("{} · {state}", n.task_id));
        let title = match &i.rule {
            Some(rule) => format!("{title} · trigger rule {rule}"),
            None => title,
        };
        let kind = match &i.rule {
            Some(rule) => format!("{} · {rule}", i.kind),
            None => i.kind.clone(),
        };
        let kind = if kind.chars().count() > KIND_CHARS {
            let cut: String = kind.chars().take(KIND_CHARS - 1).collect();
            format!("{cut}…")
        } else {
            kind
        };
        if let Some(h) = &i.href {
            let _ = write!(s, r#"<a href="{}">"#, escape(h));
        }
        let _ = write!(
            s,
            r#"<g class="node s-{st}{ruled}{group}" data-task-id="{id}"><title>{title}</title><rect class="box" x="{x:.1}" y="{y:.1}" width="{NODE_W}" height="{NODE_H}" rx="5"/><rect class="bar" x="{x:.1}" y="{y:.1}" width="6" height="{NODE_H}" rx="2"/><text x="{tx:.1}" y="{ty1:.1}" class="id">{label}</text><text x="{tx:.1}" y="{ty2:.1}" class="kind">{kind}</text></g>"#,
            ruled = if i.rule.is_some() { " ruled" } else { "" },
            group = if i.group { " group" } else { "" },
            st = escape(state),
            id = escape(&n.task_id),
            title = escape(&title),
            x = n.x,
            y = n.y,
            tx = n.x + 13.0,
            ty1 = n.y + 17.0,
            ty2 = n.y + 33.0,
            label = escape(&label),
            kind = escape(&kind),
        );
        if i.href.is_some() {
            s.push_str("</a>");
        }
    }
    s.push_str("</g></svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> DagGraph {
        DagGraph::build(edges.iter().map(|(t, d)| (*t, d.iter().copied()))).expect("acyclic")
    }

    fn diamond() -> DagGraph {
        graph(&[
            ("start", &[]),
            ("a", &["start"]),
            ("b", &["start"]),
            ("c", &["a", "b"]),
            ("late", &["start"]),
            ("end", &["c", "late"]),
        ])
    }

    #[test]
    fn boxes_do_not_overlap() {
        let svg = layout(&diamond(), |_| NodeInfo::default());
        assert_eq!(svg.nodes.len(), 6);
        for (i, a) in svg.nodes.iter().enumerate() {
            for b in &svg.nodes[i + 1..] {
                let apart = a.x + NODE_W <= b.x
                    || b.x + NODE_W <= a.x
                    || a.y + NODE_H <= b.y
                    || b.y + NODE_H <= a.y;
                assert!(apart, "{} and {} overlap", a.task_id, b.task_id);
            }
            assert!(a.x + NODE_W <= svg.width && a.y + NODE_H <= svg.height);
        }
    }

    #[test]
    fn layers_follow_longest_path_and_edges_go_right() {
        let svg = layout(&diamond(), |_| NodeInfo::default());
        let layer = |t: &str| svg.nodes.iter().find(|n| n.task_id == t).map(|n| n.layer);
        assert_eq!(layer("start"), Some(0));
        assert_eq!(layer("c"), Some(2));
        assert_eq!(layer("late"), Some(1));
        assert_eq!(layer("end"), Some(3));
        assert_eq!(svg.edges.len(), 7);
        for e in &svg.edges {
            for w in e.windows(2) {
                assert!(w[1].0 >= w[0].0, "edge goes left: {e:?}");
            }
            assert!(e.last().map(|p| p.0) > e.first().map(|p| p.0));
        }
        // late (column 1) -> end (column 3) passes column 2 through one dummy point.
        let long = svg.edges.iter().filter(|e| e.len() == 4).count();
        assert_eq!(long, 1, "the edge late -> end passes one column: {:?}", svg.edges);
        assert_eq!(svg.markup.matches("<path class=\"edge\"").count(), 7);
    }

    #[test]
    fn barycenter_untangles_a_crossing() {
        // File order puts x2 first, but it hangs below b: the sweep should pair them.
        let g = graph(&[("a", &[]), ("b", &[]), ("x2", &["b"]), ("x1", &["a"])]);
        let svg = layout(&g, |_| NodeInfo::default());
        let y = |t: &str| svg.nodes.iter().find(|n| n.task_id == t).map(|n| n.y).unwrap_or(-1.0);
        assert_eq!(y("a") < y("b"), y("x1") < y("x2"));
    }

    #[test]
    fn labels_and_links_are_escaped() {
        let g = graph(&[("<script>x</script>", &[]), ("b&\"c", &["<script>x</script>"])]);
        let svg = layout(&g, |t| NodeInfo {
            kind: "bash<b>".into(),
            state: Some("success".into()),
            href: Some(format!("/t?x=\"{t}\"")),
            title: None,
            rule: Some("one<failed>".into()),
            group: false,
        });
        assert!(!svg.markup.contains("<script>"), "{}", svg.markup);
        assert!(!svg.markup.contains("<b>"));
        assert!(svg.markup.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(svg.markup.contains("b&amp;&quot;c"));
        assert!(svg.markup.contains("class=\"node s-success ruled\""));
        assert!(svg.markup.contains("one&lt;failed&gt;") && !svg.markup.contains("<failed>"));
        assert!(svg.markup.contains("data-from=\"&lt;script&gt;x&lt;/script&gt;\""));
    }

    #[test]
    fn edges_name_their_ends_and_the_drawing_fits_its_box() {
        let svg = layout(&diamond(), |_| NodeInfo::default());
        for (from, to) in [("start", "a"), ("late", "end"), ("c", "end")] {
            let attrs = format!("data-from=\"{from}\" data-to=\"{to}\"");
            assert!(svg.markup.contains(&attrs), "edge {from} -> {to}");
        }
        let view = format!("viewBox=\"0 0 {:.0} {:.0}\"", svg.width, svg.height);
        assert!(svg.markup.contains(&view) && svg.markup.contains("preserveAspectRatio"));
        assert!(!svg.markup.contains(" width=\"") || svg.markup.contains("width=\"6\""));
    }

    #[test]
    fn empty_and_single() {
        let svg = layout(&graph(&[]), |_| NodeInfo::default());
        assert!(svg.nodes.is_empty() && svg.markup.starts_with("<svg"));
        let svg = layout(&graph(&[("only", &[])]), |_| NodeInfo::default());
        assert_eq!(svg.nodes.len(), 1);
        assert!(svg.markup.contains(">only</text>"));
    }
}
