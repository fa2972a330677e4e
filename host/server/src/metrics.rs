//! Prometheus metrics in the text exposition format.
//!
//! Kept by hand with atomics: a handful of counters does not justify a
//! metrics framework, and the exposition format is simple and stable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::app::AppState;

/// Counters of HTTP traffic, by status class.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests answered, by status class 1xx..5xx (index 0..4).
    responses: [AtomicU64; 5],
    /// Sum of request durations, in microseconds.
    duration_us: AtomicU64,
}

impl Metrics {
    fn observe(&self, status: u16, elapsed_us: u64) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
        self.duration_us.fetch_add(elapsed_us, Ordering::Relaxed);
    }
}

/// Middleware counting every response.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let resp = next.run(req).await;
    state
        .metrics
        .observe(resp.status().as_u16(), started.elapsed().as_micros() as u64);
    resp
}

/// Renders all metrics.
pub fn render(state: &AppState) -> String {
    use std::fmt::Write as _;
    let m = &state.metrics;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP portolan_http_responses_total HTTP responses by status class."
    );
    let _ = writeln!(out, "# TYPE portolan_http_responses_total counter");
    let mut total = 0;
    for (i, c) in m.responses.iter().enumerate() {
        let n = c.load(Ordering::Relaxed);
        total += n;
        let _ = writeln!(
            out,
            "portolan_http_responses_total{{class=\"{}xx\"}} {n}",
            i + 1
        );
    }
    let _ = writeln!(
        out,
        "# HELP portolan_http_request_duration_seconds Time spent answering HTTP requests."
    );
    let _ = writeln!(out, "# TYPE portolan_http_request_duration_seconds summary");
    let _ = writeln!(
        out,
        "portolan_http_request_duration_seconds_sum {}",
        m.duration_us.load(Ordering::Relaxed) as f64 / 1e6
    );
    let _ = writeln!(out, "portolan_http_request_duration_seconds_count {total}");

    let plugins = state.registry.list();
    let ready = plugins
        .iter()
        .filter(|p| p.status == portolan_runtime::PluginStatus::Ready)
        .count();
    let _ = writeln!(out, "# HELP portolan_plugins Plugin files by load status.");
    let _ = writeln!(out, "# TYPE portolan_plugins gauge");
    let _ = writeln!(out, "portolan_plugins{{status=\"ready\"}} {ready}");
    let _ = writeln!(
        out,
        "portolan_plugins{{status=\"failed\"}} {}",
        plugins.len() - ready
    );
    let _ = writeln!(
        out,
        "# HELP portolan_uptime_seconds Seconds since the server started."
    );
    let _ = writeln!(out, "# TYPE portolan_uptime_seconds gauge");
    let _ = writeln!(
        out,
        "portolan_uptime_seconds {}",
        state.started.elapsed().as_secs()
    );
    out
}
