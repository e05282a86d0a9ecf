//! Lock-free call and connection metrics, rendered as Prometheus text.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// gRPC status code names, indexed by code.
pub(crate) const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// Upper bounds of the latency histogram, in microseconds.
const BUCKETS_US: [u64; 14] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 10_000_000,
];

/// A latency histogram in [`BUCKETS_US`], rendered in seconds. Lock-free: one observation
/// is three relaxed atomic adds.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; BUCKETS_US.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub(crate) fn observe(&self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(micros, Relaxed);
        if let Some(bucket) = BUCKETS_US.iter().position(|&bound| micros <= bound) {
            self.buckets[bucket].fetch_add(1, Relaxed);
        }
    }

    /// Writes the `_bucket`, `_sum` and `_count` series of `name` with `labels` (already
    /// escaped, `key="value"` pairs without braces).
    fn render(&self, out: &mut String, name: &str, labels: &str) -> std::fmt::Result {
        let mut cumulative = 0;
        for (bound, count) in BUCKETS_US.iter().zip(&self.buckets) {
            cumulative += count.load(Relaxed);
            writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{}\"}} {cumulative}",
                *bound as f64 / 1e6
            )?;
        }
        // The count is read after the buckets: a call recorded in between shows in +Inf only,
        // which keeps the buckets cumulative.
        let count = self.count.load(Relaxed).max(cumulative);
        writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}")?;
        writeln!(
            out,
            "{name}_sum{{{labels}}} {}",
            self.sum_us.load(Relaxed) as f64 / 1e6
        )?;
        writeln!(out, "{name}_count{{{labels}}} {count}")
    }
}

/// Calls, status codes, latency and bytes of one route. Built from the route table when the
/// state is built, so recording a call takes no lock and allocates nothing.
#[derive(Debug)]
pub(crate) struct RouteMetrics {
    /// Shared with the spans of traced calls (`gateway.route`).
    label: Arc<str>,
    /// `label` as a JSON string, for the access log.
    label_json: Box<str>,
    calls: AtomicU64,
    codes: [AtomicU64; 17],
    latency: Histogram,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl RouteMetrics {
    pub(crate) fn new(label: String) -> Self {
        RouteMetrics {
            label_json: crate::text::json_string(&label),
            label: label.into(),
            calls: AtomicU64::new(0),
            codes: Default::default(),
            latency: Histogram::default(),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
        }
    }

    /// The route's label (its path, `prefix*` or `unmatched`).
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// [`RouteMetrics::label`], to keep without a copy.
    #[cfg_attr(not(feature = "otel"), allow(dead_code))]
    pub(crate) fn shared_label(&self) -> &Arc<str> {
        &self.label
    }

    /// The label as a JSON string (quoted and escaped).
    pub(crate) fn label_json(&self) -> &str {
        &self.label_json
    }

    /// Records one finished call.
    pub(crate) fn record(&self, code: u16, elapsed: Duration) {
        self.calls.fetch_add(1, Relaxed);
        self.codes[usize::from(code).min(16)].fetch_add(1, Relaxed);
        self.latency.observe(elapsed);
    }

    /// Adds a call's request and response bytes (message bytes as sent on the wire, gRPC
    /// frame headers included; for REST, the JSON bodies).
    pub(crate) fn add_bytes(&self, request: u64, response: u64) {
        if request > 0 {
            self.bytes_in.fetch_add(request, Relaxed);
        }
        if response > 0 {
            self.bytes_out.fetch_add(response, Relaxed);
        }
    }

    #[cfg(test)]
    pub(crate) fn calls(&self) -> u64 {
        self.calls.load(Relaxed)
    }
}

/// Connection counters of one upstream.
#[derive(Debug)]
pub(crate) struct UpstreamMetrics {
    pub(crate) name: String,
    /// `name` as a JSON string, for the access log.
    pub(crate) name_json: Box<str>,
    pub(crate) open: AtomicI64,
    pub(crate) connects: AtomicU64,
    pub(crate) connect_errors: AtomicU64,
    /// Connections the pool replaced after a surge of streams (not lost ones).
    pub(crate) replaced: AtomicU64,
    pub(crate) has_connected: AtomicBool,
    /// Calls answered through this upstream, by status code.
    codes: [AtomicU64; 17],
    /// Time from sending a call upstream to the end of its response.
    latency: Histogram,
    /// Upstream protection (pool.rs): what the pool did to keep one client from hurting others.
    pub(crate) protection: UpstreamProtection,
}

/// What an upstream's pool did to protect its shared connections (`gateway_upstream_*_total`).
#[derive(Debug, Default)]
pub(crate) struct UpstreamProtection {
    /// Responses reset because their client stopped reading (`slow_consumer_timeout`, or the
    /// connection window running short).
    pub(crate) slow_consumer_resets: AtomicU64,
    /// Calls sent again because the upstream had not processed them (GOAWAY, REFUSED_STREAM).
    pub(crate) retries: AtomicU64,
    /// Calls refused after waiting `queue_timeout` behind `concurrency_limit`.
    pub(crate) queue_timeouts: AtomicU64,
    /// Calls failed at once because their endpoint was down (waiting for its next attempt).
    pub(crate) failed_fast: AtomicU64,
    /// Calls held until a connection of the upstream came up (or their deadline passed).
    pub(crate) held: AtomicU64,
    /// Calls not sent again because the retry budget was spent.
    pub(crate) retry_budget_exhausted: AtomicU64,
    /// Endpoints ejected by outlier detection.
    pub(crate) ejections: AtomicU64,
    /// Resolutions of `dns://` endpoints, and those that failed.
    pub(crate) resolutions: AtomicU64,
    pub(crate) resolve_errors: AtomicU64,
}

impl UpstreamMetrics {
    pub(crate) fn new(name: String) -> Self {
        UpstreamMetrics {
            name_json: crate::text::json_string(&name),
            name,
            open: AtomicI64::new(0),
            connects: AtomicU64::new(0),
            connect_errors: AtomicU64::new(0),
            replaced: AtomicU64::new(0),
            has_connected: AtomicBool::new(false),
            codes: Default::default(),
            latency: Histogram::default(),
            protection: UpstreamProtection::default(),
        }
    }

    /// Records one call that was sent to this upstream.
    pub(crate) fn record(&self, code: u16, elapsed: Duration) {
        self.codes[usize::from(code).min(16)].fetch_add(1, Relaxed);
        self.latency.observe(elapsed);
    }
}

/// Counters of one listener (the public port): client connections and calls admitted or refused.
#[derive(Debug, Default)]
pub(crate) struct ListenerMetrics {
    /// Client connections open now.
    pub(crate) open: AtomicI64,
    /// Client connections accepted, ever (including those closed at once).
    pub(crate) accepted: AtomicU64,
    /// Connections closed at once because `max_connections` were open.
    pub(crate) rejected: AtomicU64,
    /// Calls in flight now (what `max_in_flight` bounds).
    pub(crate) in_flight: AtomicI64,
    /// Calls answered at once because `max_in_flight` calls were in flight.
    pub(crate) shed: AtomicU64,
    /// Requests refused for a header list over `max_header_list_bytes`.
    pub(crate) oversized_headers: AtomicU64,
    /// Connections closed because they sent no protocol preface within `sniff_timeout`.
    pub(crate) sniff_timeouts: AtomicU64,
    /// Connections closed after `idle_timeout` without a request.
    pub(crate) idle_closed: AtomicU64,
    /// Connections closed for cancelling more than `max_client_resets` calls in `reset_window`.
    pub(crate) reset_closed: AtomicU64,
    /// Client addresses refused new connections for cancelling more than
    /// `max_address_resets` calls in `reset_window`.
    pub(crate) address_penalties: AtomicU64,
    /// New connections closed at once because their address was refused (see
    /// `address_penalties`).
    pub(crate) penalized: AtomicU64,
    /// TLS handshakes that failed (`[tls]`): no shared protocol, an untrusted or missing
    /// client certificate, a client that does not trust the gateway, or not TLS at all.
    pub(crate) tls_handshake_failures: AtomicU64,
    /// Clients held to a budget now because the gateway is busy (`limits.busy_lag`).
    pub(crate) throttled_clients: AtomicI64,
    /// 10 ms windows in which work waited `limits.busy_lag` or more for the event loop.
    pub(crate) busy_windows: AtomicU64,
    /// Times a client was throttled (see `throttled_clients`).
    pub(crate) throttles: AtomicU64,
}

/// The states `gateway_upstream_endpoint_state` shows (`health::EndpointState` and draining).
const ENDPOINT_STATES: [&str; 5] = ["healthy", "connecting", "unhealthy", "ejected", "draining"];

/// Renders counters kept elsewhere (the gate's, the access log's): `(name, help, value)`.
pub(crate) fn render_counters<'a>(
    out: &mut String,
    counters: impl IntoIterator<Item = (&'a str, &'a str, u64)>,
) {
    render_series(out, "counter", counters);
}

/// Writes gauges given as `(name, help, value)`.
pub(crate) fn render_gauges<'a>(
    out: &mut String,
    gauges: impl IntoIterator<Item = (&'a str, &'a str, u64)>,
) {
    render_series(out, "gauge", gauges);
}

/// Writes unlabelled series of one `kind` given as `(name, help, value)`.
fn render_series<'a>(
    out: &mut String,
    kind: &str,
    series: impl IntoIterator<Item = (&'a str, &'a str, u64)>,
) {
    for (name, help, value) in series {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {value}");
    }
}

/// The help text of the gate's counters (`gate::Gate::counters`).
pub(crate) fn gate_help(name: &str) -> &'static str {
    match name {
        "gateway_auth_unauthenticated_total" => {
            "Calls refused UNAUTHENTICATED (no or bad credentials)."
        }
        "gateway_auth_permission_denied_total" => {
            "Calls refused PERMISSION_DENIED (authenticated, not allowed)."
        }
        "gateway_rate_limit_allowed_total" => "Calls a rate limit let through.",
        "gateway_rate_limit_rejected_total" => "Calls refused RESOURCE_EXHAUSTED by a rate limit.",
        _ => "Gate counter.",
    }
}

/// Escapes a label value (backslash, double quote, newline), as the text format requires.
fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders every metric in the Prometheus text exposition format.
pub(crate) fn render<'a>(
    routes: impl Iterator<Item = &'a RouteMetrics> + Clone,
    upstreams: impl Iterator<Item = &'a UpstreamMetrics> + Clone,
    listener: &ListenerMetrics,
) -> String {
    let mut out = String::with_capacity(4096);
    // Writing to a String cannot fail.
    let upstreams_for_protection = upstreams.clone();
    let _ = render_into(&mut out, routes, upstreams);
    let _ = render_listener(&mut out, listener);
    let _ = render_upstream_protection(&mut out, upstreams_for_protection);
    out
}

fn render_upstream_protection<'a>(
    out: &mut String,
    upstreams: impl Iterator<Item = &'a UpstreamMetrics> + Clone,
) -> std::fmt::Result {
    type Counter = fn(&UpstreamProtection) -> &AtomicU64;
    let counters: [(&str, &str, Counter); 9] = [
        (
            "gateway_upstream_slow_consumer_resets_total",
            "Upstream responses reset because their client stopped reading them.",
            |p| &p.slow_consumer_resets,
        ),
        (
            "gateway_upstream_retries_total",
            "Calls sent again because the upstream had not processed them (GOAWAY, REFUSED_STREAM).",
            |p| &p.retries,
        ),
        (
            "gateway_upstream_queue_timeouts_total",
            "Calls refused after waiting queue_timeout behind concurrency_limit.",
            |p| &p.queue_timeouts,
        ),
        (
            "gateway_upstream_failed_fast_total",
            "Calls failed at once because their endpoint was down.",
            |p| &p.failed_fast,
        ),
        (
            "gateway_upstream_held_total",
            "Calls held until a connection of the upstream came up (retries.max_held, hold_timeout).",
            |p| &p.held,
        ),
        (
            "gateway_upstream_retry_budget_exhausted_total",
            "Calls not sent again because the upstream's retry budget was spent.",
            |p| &p.retry_budget_exhausted,
        ),
        (
            "gateway_upstream_ejections_total",
            "Endpoints ejected by outlier detection (consecutive failures).",
            |p| &p.ejections,
        ),
        (
            "gateway_upstream_resolutions_total",
            "Resolutions of the upstream's dns:// endpoints.",
            |p| &p.resolutions,
        ),
        (
            "gateway_upstream_resolve_errors_total",
            "Resolutions of dns:// endpoints that failed (the last addresses were kept).",
            |p| &p.resolve_errors,
        ),
    ];
    for (name, help, counter) in counters {
        writeln!(out, "# HELP {name} {help}")?;
        writeln!(out, "# TYPE {name} counter")?;
        for upstream in upstreams.clone() {
            writeln!(
                out,
                "{name}{{upstream=\"{}\"}} {}",
                escape(&upstream.name),
                counter(&upstream.protection).load(Relaxed)
            )?;
        }
    }
    Ok(())
}

/// Renders each endpoint's state (`gateway_upstream_endpoint_state`, 1 for its current state)
/// and open connections: `(upstream, endpoint, state, connections up)`.
pub(crate) fn render_endpoints<'a>(
    out: &mut String,
    endpoints: impl Iterator<Item = (&'a str, String, &'static str, usize)>,
) {
    let endpoints: Vec<_> = endpoints.collect();
    let _ = writeln!(
        out,
        "# HELP gateway_upstream_endpoint_state Endpoints by state (healthy, connecting, unhealthy, ejected, draining): 1 for the current one."
    );
    let _ = writeln!(out, "# TYPE gateway_upstream_endpoint_state gauge");
    // Every state is shown (0 or 1), so a state's series does not vanish when an endpoint
    // leaves it (Prometheus would keep its last value for the staleness window).
    for (upstream, endpoint, current, _) in &endpoints {
        let (upstream, endpoint) = (escape(upstream), escape(endpoint));
        for state in ENDPOINT_STATES {
            let _ = writeln!(
                out,
                "gateway_upstream_endpoint_state{{upstream=\"{upstream}\",endpoint=\"{endpoint}\",state=\"{state}\"}} {}",
                u8::from(state == *current)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP gateway_upstream_endpoint_connections Connected HTTP/2 connections per endpoint."
    );
    let _ = writeln!(out, "# TYPE gateway_upstream_endpoint_connections gauge");
    for (upstream, endpoint, _, up) in &endpoints {
        let _ = writeln!(
            out,
            "gateway_upstream_endpoint_connections{{upstream=\"{}\",endpoint=\"{}\"}} {up}",
            escape(upstream),
            escape(endpoint)
        );
    }
}

fn render_listener(out: &mut String, listener: &ListenerMetrics) -> std::fmt::Result {
    let gauges = [
        (
            "gateway_client_connections",
            "Client connections open on the public port.",
            listener.open.load(Relaxed),
        ),
        (
            "gateway_in_flight_calls",
            "Calls in flight across all clients (bounded by limits.max_in_flight).",
            listener.in_flight.load(Relaxed),
        ),
        (
            "gateway_throttled_clients",
            "Clients whose work runs only in between other clients' because the gateway is busy and they make it work more than their share (limits.busy_lag).",
            listener.throttled_clients.load(Relaxed),
        ),
    ];
    for (name, help, value) in gauges {
        writeln!(out, "# HELP {name} {help}")?;
        writeln!(out, "# TYPE {name} gauge")?;
        writeln!(out, "{name} {value}")?;
    }
    let counters = [
        (
            "gateway_client_connections_total",
            "Client connections accepted on the public port.",
            &listener.accepted,
        ),
        (
            "gateway_client_connections_rejected_total",
            "Client connections closed at once because limits.max_connections were open.",
            &listener.rejected,
        ),
        (
            "gateway_client_connections_penalized_total",
            "Client connections closed at once because their address cancelled more than limits.max_address_resets calls within limits.reset_window.",
            &listener.penalized,
        ),
        (
            "gateway_client_address_penalties_total",
            "Times a client address was refused new connections for limits.reset_window for cancelling more than limits.max_address_resets calls within it.",
            &listener.address_penalties,
        ),
        (
            "gateway_calls_shed_total",
            "Calls refused at once because limits.max_in_flight calls were in flight.",
            &listener.shed,
        ),
        (
            "gateway_oversized_headers_total",
            "Requests refused for headers over limits.max_header_list_bytes.",
            &listener.oversized_headers,
        ),
        (
            "gateway_tls_handshake_failures_total",
            "TLS handshakes on the public port that failed (e.g. a missing or untrusted client certificate).",
            &listener.tls_handshake_failures,
        ),
        (
            "gateway_busy_windows_total",
            "10 ms windows in which work waited limits.busy_lag or more for the gateway's event loop (it was busy, and heavy clients were throttled).",
            &listener.busy_windows,
        ),
        (
            "gateway_client_throttles_total",
            "Times a client was throttled for making a busy gateway work more than its share (limits.busy_lag).",
            &listener.throttles,
        ),
    ];
    for (name, help, value) in counters {
        writeln!(out, "# HELP {name} {help}")?;
        writeln!(out, "# TYPE {name} counter")?;
        writeln!(out, "{name} {}", value.load(Relaxed))?;
    }
    writeln!(
        out,
        "# HELP gateway_client_connections_closed_total Client connections the gateway closed, by reason."
    )?;
    writeln!(
        out,
        "# TYPE gateway_client_connections_closed_total counter"
    )?;
    for (reason, value) in [
        ("sniff_timeout", &listener.sniff_timeouts),
        ("idle_timeout", &listener.idle_closed),
        ("client_resets", &listener.reset_closed),
    ] {
        writeln!(
            out,
            "gateway_client_connections_closed_total{{reason=\"{reason}\"}} {}",
            value.load(Relaxed)
        )?;
    }
    Ok(())
}

/// One per-upstream value of a series.
type UpstreamValue = fn(&UpstreamMetrics) -> i64;

fn render_into<'a>(
    out: &mut String,
    routes: impl Iterator<Item = &'a RouteMetrics> + Clone,
    upstreams: impl Iterator<Item = &'a UpstreamMetrics> + Clone,
) -> std::fmt::Result {
    writeln!(
        out,
        "# HELP gateway_calls_total gRPC calls finished, by route."
    )?;
    writeln!(out, "# TYPE gateway_calls_total counter")?;
    for route in routes.clone() {
        let label = escape(&route.label);
        writeln!(
            out,
            "gateway_calls_total{{route=\"{label}\"}} {}",
            route.calls.load(Relaxed)
        )?;
    }
    writeln!(
        out,
        "# HELP gateway_call_errors_total gRPC calls that ended with a non-OK status, by route and code."
    )?;
    writeln!(out, "# TYPE gateway_call_errors_total counter")?;
    for route in routes.clone() {
        let label = escape(&route.label);
        for (code, count) in route.codes.iter().enumerate().skip(1) {
            let count = count.load(Relaxed);
            if count > 0 {
                writeln!(
                    out,
                    "gateway_call_errors_total{{route=\"{label}\",code=\"{}\"}} {count}",
                    CODE_NAMES[code]
                )?;
            }
        }
    }
    writeln!(
        out,
        "# HELP gateway_calls_by_code_total Calls finished, by route and gRPC status code (OK always shown, other codes once seen)."
    )?;
    writeln!(out, "# TYPE gateway_calls_by_code_total counter")?;
    for route in routes.clone() {
        let label = escape(&route.label);
        for (code, count) in route.codes.iter().enumerate() {
            let count = count.load(Relaxed);
            if count > 0 || code == 0 {
                writeln!(
                    out,
                    "gateway_calls_by_code_total{{route=\"{label}\",code=\"{}\"}} {count}",
                    CODE_NAMES[code]
                )?;
            }
        }
    }
    writeln!(
        out,
        "# HELP gateway_call_duration_seconds Time from request headers to the end of the response, by route."
    )?;
    writeln!(out, "# TYPE gateway_call_duration_seconds histogram")?;
    for route in routes.clone() {
        let labels = format!("route=\"{}\"", escape(&route.label));
        route
            .latency
            .render(out, "gateway_call_duration_seconds", &labels)?;
    }
    for (name, help, bytes) in [
        (
            "gateway_request_bytes_total",
            "Request bytes received from clients, by route (gRPC messages with their frame headers; REST JSON bodies).",
            (|route| &route.bytes_in) as fn(&RouteMetrics) -> &AtomicU64,
        ),
        (
            "gateway_response_bytes_total",
            "Response bytes sent to clients, by route (gRPC messages with their frame headers; REST JSON bodies).",
            |route| &route.bytes_out,
        ),
    ] {
        writeln!(out, "# HELP {name} {help}")?;
        writeln!(out, "# TYPE {name} counter")?;
        for route in routes.clone() {
            writeln!(
                out,
                "{name}{{route=\"{}\"}} {}",
                escape(&route.label),
                bytes(route).load(Relaxed)
            )?;
        }
    }
    writeln!(
        out,
        "# HELP gateway_upstream_call_duration_seconds Time from sending a call to an upstream to the end of its response."
    )?;
    writeln!(
        out,
        "# TYPE gateway_upstream_call_duration_seconds histogram"
    )?;
    for upstream in upstreams.clone() {
        let labels = format!("upstream=\"{}\"", escape(&upstream.name));
        upstream
            .latency
            .render(out, "gateway_upstream_call_duration_seconds", &labels)?;
    }
    writeln!(
        out,
        "# HELP gateway_upstream_calls_total Calls sent to an upstream, by gRPC status code (OK always shown, other codes once seen)."
    )?;
    writeln!(out, "# TYPE gateway_upstream_calls_total counter")?;
    for upstream in upstreams.clone() {
        let label = escape(&upstream.name);
        for (code, count) in upstream.codes.iter().enumerate() {
            let count = count.load(Relaxed);
            if count > 0 || code == 0 {
                writeln!(
                    out,
                    "gateway_upstream_calls_total{{upstream=\"{label}\",code=\"{}\"}} {count}",
                    CODE_NAMES[code]
                )?;
            }
        }
    }
    let connection_series: [(&str, &str, &str, UpstreamValue); 4] = [
        (
            "gateway_upstream_connections",
            "gauge",
            "Open HTTP/2 connections to an upstream.",
            |upstream| upstream.open.load(Relaxed),
        ),
        (
            "gateway_upstream_connects_total",
            "counter",
            "TCP connections opened to an upstream.",
            |upstream| upstream.connects.load(Relaxed) as i64,
        ),
        (
            "gateway_upstream_connections_replaced_total",
            "counter",
            "Connections the gateway replaced after a surge of streams (its own choice, not a lost connection).",
            |upstream| upstream.replaced.load(Relaxed) as i64,
        ),
        (
            "gateway_upstream_connect_errors_total",
            "counter",
            "Failed connection attempts to an upstream.",
            |upstream| upstream.connect_errors.load(Relaxed) as i64,
        ),
    ];
    for (name, kind, help, value) in connection_series {
        writeln!(out, "# HELP {name} {help}")?;
        writeln!(out, "# TYPE {name} {kind}")?;
        for upstream in upstreams.clone() {
            writeln!(
                out,
                "{name}{{upstream=\"{}\"}} {}",
                escape(&upstream.name),
                value(upstream)
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_histogram_and_codes() {
        let route = RouteMetrics::new("/a.B/C".into());
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        route.record(0, Duration::from_micros(300));
        route.record(14, Duration::from_millis(20));
        assert_eq!(route.calls(), 2);
        let upstream = UpstreamMetrics::new("a.B".into());
        let listener = ListenerMetrics::default();
        listener.shed.fetch_add(3, Relaxed);
        let text = render([&route].into_iter(), [&upstream].into_iter(), &listener);
        assert!(
            text.contains("gateway_calls_total{route=\"/a.B/C\"} 2"),
            "{text}"
        );
        assert!(text.contains("code=\"UNAVAILABLE\"} 1"), "{text}");
        assert!(text.contains("le=\"0.0005\"} 1"), "{text}");
        assert!(
            text.contains("gateway_calls_by_code_total{route=\"/a.B/C\",code=\"OK\"} 1"),
            "{text}"
        );
        assert!(text.contains("le=\"+Inf\"} 2"), "{text}");
        assert!(
            text.contains("gateway_upstream_connections{upstream=\"a.B\"} 0"),
            "{text}"
        );
        assert!(text.contains("\ngateway_calls_shed_total 3\n"), "{text}");
        assert!(
            text.contains("gateway_client_connections_closed_total{reason=\"idle_timeout\"} 0"),
            "{text}"
        );
    }
}
