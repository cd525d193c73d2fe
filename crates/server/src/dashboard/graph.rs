//! The asset graph drawn as SVG on the server, left to right: each asset in
//! the column one past its deepest input, each column ordered to keep edges
//! short (two sweeps of the barycentre heuristic, as layered graph drawing
//! does), each node a link coloured by its state.

use std::collections::HashMap;

use maud::{Markup, html};

/// One asset to draw.
pub(crate) struct Node {
    /// Its name.
    pub(crate) name: String,
    /// Its kind word (`source`, `table`...).
    pub(crate) kind: String,
    /// `fresh`, `stale`, `failed`, `blocked`, `running` or `never`.
    pub(crate) state: &'static str,
    /// The assets it reads (those not in the graph are left out).
    pub(crate) inputs: Vec<String>,
}

const W: f64 = 176.0;
const H: f64 = 40.0;
const GAP_X: f64 = 64.0;
const GAP_Y: f64 = 14.0;
const PAD: f64 = 8.0;

/// Where each node goes: (column, row), for `nodes` in dependency order.
fn place(nodes: &[Node]) -> Vec<(usize, usize)> {
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let inputs: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| {
            n.inputs
                .iter()
                .filter_map(|i| index.get(i.as_str()).copied())
                .collect()
        })
        .collect();
    let mut column = vec![0usize; nodes.len()];
    for i in 0..nodes.len() {
        column[i] = inputs[i].iter().map(|&j| column[j] + 1).max().unwrap_or(0);
    }
    let columns = column.iter().max().map_or(0, |m| m + 1);
    let mut lanes: Vec<Vec<usize>> = vec![Vec::new(); columns];
    for (i, &c) in column.iter().enumerate() {
        lanes[c].push(i);
    }
    let mut row = vec![0usize; nodes.len()];
    let renumber = |lanes: &Vec<Vec<usize>>, row: &mut Vec<usize>| {
        for lane in lanes {
            for (r, &i) in lane.iter().enumerate() {
                row[i] = r;
            }
        }
    };
    renumber(&lanes, &mut row);
    for _ in 0..2 {
        for lane in lanes.iter_mut().skip(1) {
            let key = |i: &usize| -> f64 {
                let ins = &inputs[*i];
                if ins.is_empty() {
                    row[*i] as f64
                } else {
                    ins.iter().map(|&j| row[j] as f64).sum::<f64>() / ins.len() as f64
                }
            };
            lane.sort_by(|a, b| key(a).total_cmp(&key(b)));
            for (r, &i) in lane.iter().enumerate() {
                row[i] = r;
            }
        }
    }
    column.into_iter().zip(row).collect()
}

fn short(name: &str) -> String {
    if name.chars().count() <= 22 {
        name.to_string()
    } else {
        let head: String = name.chars().take(21).collect();
        format!("{head}…")
    }
}

/// The graph as an `<svg>`, its nodes linking to their pages.
pub(crate) fn draw(nodes: &[Node]) -> Markup {
    let at = place(nodes);
    let columns = at.iter().map(|(c, _)| c + 1).max().unwrap_or(0);
    let rows = at.iter().map(|(_, r)| r + 1).max().unwrap_or(0);
    let width = PAD * 2.0 + columns as f64 * W + columns.saturating_sub(1) as f64 * GAP_X;
    let height = PAD * 2.0 + rows as f64 * H + rows.saturating_sub(1) as f64 * GAP_Y;
    let xy = |i: usize| {
        let (c, r) = at[i];
        (PAD + c as f64 * (W + GAP_X), PAD + r as f64 * (H + GAP_Y))
    };
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let mut edges = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        for input in &n.inputs {
            if let Some(&j) = index.get(input.as_str()) {
                let (x1, y1) = xy(j);
                let (x2, y2) = xy(i);
                let (x1, y1, x2, y2) = (x1 + W, y1 + H / 2.0, x2, y2 + H / 2.0);
                let mid = (x1 + x2) / 2.0;
                edges.push(format!(
                    "M{x1:.1},{y1:.1} C{mid:.1},{y1:.1} {mid:.1},{y2:.1} {x2:.1},{y2:.1}"
                ));
            }
        }
    }
    html! {
        svg.graph xmlns="http://www.w3.org/2000/svg" role="img" aria-label="The asset graph"
            width=(format!("{width:.0}")) height=(format!("{height:.0}"))
            viewBox=(format!("0 0 {width:.0} {height:.0}")) {
            @for d in &edges { path.edge d=(d) {} }
            @for (i, n) in nodes.iter().enumerate() {
                @let (x, y) = xy(i);
                a href=(format!("/assets/{}", super::encode(&n.name))) data-asset=(n.name) data-state=(n.state) {
                    title { (n.name) " (" (n.kind) "): " (n.state) }
                    rect class={ "node n-" (n.state) } x=(format!("{x:.1}")) y=(format!("{y:.1}"))
                        width=(format!("{W:.0}")) height=(format!("{H:.0}")) rx="6" {}
                    text.name x=(format!("{:.1}", x + 10.0)) y=(format!("{:.1}", y + 17.0)) { (short(&n.name)) }
                    text.sub x=(format!("{:.1}", x + 10.0)) y=(format!("{:.1}", y + 32.0)) { (n.kind) " · " (n.state) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, inputs: &[&str]) -> Node {
        Node {
            name: name.into(),
            kind: "table".into(),
            state: "fresh",
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn each_asset_sits_one_column_past_its_deepest_input() {
        let nodes = [
            node("a", &[]),
            node("b", &[]),
            node("c", &["a"]),
            node("d", &["c", "b"]),
            node("e", &["elsewhere"]),
        ];
        let at = place(&nodes);
        let columns: Vec<usize> = at.iter().map(|(c, _)| *c).collect();
        assert_eq!(columns, [0, 0, 1, 2, 0]);
        // No two nodes share a place.
        let mut seen = at.clone();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), at.len());
        let svg = draw(&nodes).into_string();
        assert_eq!(svg.matches("<path").count(), 3, "{svg}");
        assert!(svg.contains("href=\"/assets/d\""));
    }

    #[test]
    fn a_column_is_ordered_by_where_its_inputs_are() {
        // x reads the second source, y the first: y goes above x.
        let nodes = [
            node("s1", &[]),
            node("s2", &[]),
            node("x", &["s2"]),
            node("y", &["s1"]),
        ];
        let at = place(&nodes);
        assert!(at[3].1 < at[2].1, "{at:?}");
    }
}
