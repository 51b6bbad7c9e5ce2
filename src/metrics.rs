//! What the server counts for its operators, rendered in Prometheus' text format at `/metrics`
//! (`http`). One registry per server (no global recorder), so servers in one process (tests) keep
//! their own figures. Counters and histograms are updated where things happen; figures that are
//! a state (sockets open, queue length) are set by the caller just before rendering.

use std::ops::Deref;
use std::sync::Arc;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Latency buckets in seconds: 0.1 ms to 30 s.
const SECONDS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0,
];

/// Waiting-in-queue buckets in seconds: 10 ms to an hour.
const WAITING: &[f64] = &[
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// Cheap handle to the server's metrics; clone it freely.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

/// The metrics themselves (reached through [`Metrics`]).
pub struct Inner {
    registry: Registry,
    /// Sockets open now, by `kind` (`customer`, `agent`); set before rendering.
    pub sockets: IntGaugeVec,
    /// Customer turns done, by `outcome` (the bot's outcome, `escalated`, `to_person`,
    /// `skipped` when the models were busy and a person holds the chat, `failed`).
    pub turns: IntCounterVec,
    /// A customer turn, from the stored message to the bot's answer (or the hand-off).
    pub turn_seconds: Histogram,
    /// Of a turn, the time waiting for and in the understanding seam (the encoder).
    pub understand_seconds: Histogram,
    /// A turn's steps, by `phase` (`slot`, `understand`, `signals`, `history`, `answer`,
    /// `reply`, `hand_over`): where a slow turn spent its time.
    pub turn_phase_seconds: HistogramVec,
    /// Escalations, by `reason` (one count per reason of each escalation).
    pub escalations: IntCounterVec,
    /// Conversations waiting in the queue now; set before rendering.
    pub queue_length: IntGauge,
    /// Time in the queue until an agent got the conversation.
    pub queue_wait_seconds: Histogram,
    /// Messages stored and relayed, by `from` (`customer`, `agent`, `bot`, `system`).
    pub relayed: IntCounterVec,
    /// Store calls on the message path, by `op`.
    pub store_seconds: HistogramVec,
    /// Customer turns in flight (waiting for or using the models and the bot).
    pub turns_in_flight: IntGauge,
}

impl Deref for Metrics {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Metrics {
    /// A new registry with every metric at zero.
    pub fn new() -> Self {
        let registry = Registry::new();
        let inner = Inner {
            sockets: gauges(
                &registry,
                "frontdesk_sockets_open",
                "WebSockets open",
                &["kind"],
            ),
            turns: counters(
                &registry,
                "frontdesk_turns_total",
                "Customer turns, by what came of them",
                &["outcome"],
            ),
            turn_seconds: histogram(
                &registry,
                "frontdesk_turn_seconds",
                "A customer turn: stored message to the bot's answer or the hand-off",
                SECONDS,
            ),
            understand_seconds: histogram(
                &registry,
                "frontdesk_understand_seconds",
                "Of a turn, waiting for and running the understanding seam (the encoder)",
                SECONDS,
            ),
            turn_phase_seconds: histograms(
                &registry,
                "frontdesk_turn_phase_seconds",
                "A customer turn's steps, by phase",
                &["phase"],
                SECONDS,
            ),
            escalations: counters(
                &registry,
                "frontdesk_escalations_total",
                "Escalations to a person, by reason",
                &["reason"],
            ),
            queue_length: gauge(
                &registry,
                "frontdesk_queue_length",
                "Conversations waiting for a person",
            ),
            queue_wait_seconds: histogram(
                &registry,
                "frontdesk_queue_wait_seconds",
                "Time in the queue until an agent got the conversation",
                WAITING,
            ),
            relayed: counters(
                &registry,
                "frontdesk_messages_total",
                "Messages stored and relayed, by sender",
                &["from"],
            ),
            store_seconds: histograms(
                &registry,
                "frontdesk_store_seconds",
                "Store calls on the message path",
                &["op"],
                SECONDS,
            ),
            turns_in_flight: gauge(
                &registry,
                "frontdesk_turns_in_flight",
                "Customer turns waiting for or using the models and the bot",
            ),
            registry,
        };
        Self(Arc::new(inner))
    }

    /// Adds metrics kept elsewhere (the encoder's) to what is rendered.
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        if let Err(e) = self.registry.register(collector) {
            tracing::warn!("a metric could not be registered: {e}");
        }
    }

    /// Counts one customer turn that ended with `outcome` after `seconds`.
    pub fn turn(&self, outcome: &str, seconds: f64) {
        self.turns.with_label_values(&[outcome]).inc();
        self.turn_seconds.observe(seconds);
    }

    /// Everything, in Prometheus' text format.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# the metrics could not be rendered: {e}\n"))
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn registered<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    registry
        .register(Box::new(c.clone()))
        .expect("each metric is registered once, under its own name");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    registered(registry, IntGauge::new(name, help).expect("valid name"))
}

fn gauges(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid name");
    registered(registry, g)
}

fn counters(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid name");
    registered(registry, c)
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    registered(registry, Histogram::with_opts(opts).expect("valid name"))
}

fn histograms(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    registered(
        registry,
        HistogramVec::new(opts, labels).expect("valid name"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_was_counted() {
        let m = Metrics::new();
        m.turn("answered", 0.004);
        m.relayed.with_label_values(&["agent"]).inc_by(3);
        m.sockets.with_label_values(&["customer"]).set(2);
        let text = m.render();
        assert!(
            text.contains("frontdesk_turns_total{outcome=\"answered\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("frontdesk_messages_total{from=\"agent\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("frontdesk_sockets_open{kind=\"customer\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("frontdesk_turn_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn two_servers_keep_their_own_figures() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.relayed.with_label_values(&["customer"]).inc();
        assert!(!b
            .render()
            .contains("frontdesk_messages_total{from=\"customer\"} 1"));
    }
}
