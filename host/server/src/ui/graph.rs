//! The small dependency picture on an entity page: the entity in the
//! middle, what it belongs to or depends on at one side, what belongs to or
//! depends on it at the other, each a link, each edge named.

use maud::{html, Markup};

/// Relations drawn on the left: the entity points up or out to them.
const LEFT: &[&str] = &[
    "ownedBy",
    "partOf",
    "childOf",
    "memberOf",
    "dependsOn",
    "consumesApi",
    "providesApi",
];

/// Most nodes drawn on one side; the rest are counted.
const MAX_PER_SIDE: usize = 10;

const NODE_W: f64 = 210.0;
const NODE_H: f64 = 30.0;
const GAP: f64 = 12.0;
const WIDTH: f64 = 760.0;

/// One relation: its type and the other entity's reference.
pub struct Edge {
    pub kind: String,
    pub target: String,
}

/// The picture, or nothing when the entity has no relations.
pub fn picture(center: &str, edges: &[Edge]) -> Markup {
    if edges.is_empty() {
        return html! {};
    }
    let (left, right): (Vec<&Edge>, Vec<&Edge>) =
        edges.iter().partition(|e| LEFT.contains(&e.kind.as_str()));
    let rows = left
        .len()
        .min(MAX_PER_SIDE + 1)
        .max(right.len().min(MAX_PER_SIDE + 1))
        .max(1);
    let height = rows as f64 * (NODE_H + GAP) + GAP;
    let cy = height / 2.0;
    let cx = WIDTH / 2.0;
    let label = format!(
        "Relations of {center}: {}",
        edges
            .iter()
            .map(|e| format!("{} {}", e.kind, e.target))
            .collect::<Vec<_>>()
            .join(", ")
    );
    html! {
        svg.graph xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {WIDTH} {height}"))
            width=(WIDTH) height=(height) role="img" aria-label=(label) {
            (side(&left, 10.0, cx, cy, true))
            (side(&right, WIDTH - NODE_W - 10.0, cx, cy, false))
            rect.center x=(cx - 90.0) y=(cy - NODE_H / 2.0) width="180" height=(NODE_H) rx="6" {}
            text.center x=(cx) y=(cy + 5.0) text-anchor="middle" { (short(center, 26)) }
        }
    }
}

fn side(edges: &[&Edge], x: f64, cx: f64, cy: f64, left: bool) -> Markup {
    let shown = edges.len().min(MAX_PER_SIDE);
    let more = edges.len() - shown;
    let total = shown + usize::from(more > 0);
    let top = cy - (total as f64 * (NODE_H + GAP) - GAP) / 2.0;
    html! {
        @for (i, edge) in edges.iter().take(shown).enumerate() {
            @let y = top + i as f64 * (NODE_H + GAP);
            @let (x1, x2) = if left { (x + NODE_W, cx - 90.0) } else { (x, cx + 90.0) };
            line x1=(x1) y1=(y + NODE_H / 2.0) x2=(x2) y2=(cy) {}
            a href=(super::entity_href(&edge.target)) {
                rect.node x=(x) y=(y) width=(NODE_W) height=(NODE_H) rx="4" {}
                text x=(x + 8.0) y=(y + 13.0) class="edge" { (edge.kind) }
                text x=(x + 8.0) y=(y + 26.0) { (short(&edge.target, 30)) }
            }
        }
        @if more > 0 {
            @let y = top + shown as f64 * (NODE_H + GAP);
            text x=(x + 8.0) y=(y + 20.0) class="edge" { "and " (more) " more" }
        }
    }
}

fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}
