//! Prometheus metrics for enrich, served on `RINGPATH_ENRICH_METRICS_LISTEN`.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

pub struct Metrics {
    pub registry: Registry,
    pub rows: IntCounterVec,
    pub dead_letters: IntCounterVec,
    pub store_errors: IntCounterVec,
    pub flush_seconds: Histogram,
    pub retention_actions: IntCounterVec,
    /// Rows naming an erased visitor or session: `dropped` (events,
    /// assignments) or stored `anonymised` (calls), by table.
    pub erased_rows: IntCounterVec,
    /// Clean-up mutations for rows stored while an erasure was being written.
    pub erasure_cleanups: IntCounter,
    /// Erased ids held in memory.
    pub erased_ids: IntGauge,
    /// Points of the batch cycle passed (`pipeline::Stage`): progress inside a batch.
    pub batch_stages: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let rows = IntCounterVec::new(Opts::new("ringpath_enrich_rows_written_total", "Rows written to ClickHouse by table"), &["table"]).expect("valid metric");
        let dead_letters =
            IntCounterVec::new(Opts::new("ringpath_enrich_dead_letters_total", "Messages sent to the dead-letter topic by stage"), &["stage"]).expect("valid metric");
        let store_errors = IntCounterVec::new(Opts::new("ringpath_enrich_store_errors_total", "Failed ClickHouse operations (retried)"), &["what"]).expect("valid metric");
        let flush_seconds = Histogram::with_opts(
            HistogramOpts::new("ringpath_enrich_flush_seconds", "Time to write one batch and commit its offsets")
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
        )
        .expect("valid metric");
        let retention_actions =
            IntCounterVec::new(Opts::new("ringpath_enrich_retention_actions_total", "Retention actions issued (partition drops, delete mutations)"), &["action"]).expect("valid metric");
        let erased_rows = IntCounterVec::new(
            Opts::new("ringpath_enrich_erased_rows_total", "Rows naming an erased visitor or session, dropped (events, assignments) or stored anonymised (calls)"),
            &["table", "action"],
        )
        .expect("valid metric");
        let erasure_cleanups =
            IntCounter::new("ringpath_enrich_erasure_cleanups_total", "Clean-up mutations for rows stored while an erasure was being written").expect("valid metric");
        let erased_ids = IntGauge::new("ringpath_enrich_erased_ids", "Erased visitor and session ids (hashes) held in memory").expect("valid metric");
        let batch_stages =
            IntCounterVec::new(Opts::new("ringpath_enrich_batch_stages_total", "Points of the batch cycle passed (rows stored per table, offsets committed)"), &["stage"]).expect("valid metric");
        registry.register(Box::new(batch_stages.clone())).expect("unique metric");
        registry.register(Box::new(erased_rows.clone())).expect("unique metric");
        registry.register(Box::new(erasure_cleanups.clone())).expect("unique metric");
        registry.register(Box::new(erased_ids.clone())).expect("unique metric");
        registry.register(Box::new(retention_actions.clone())).expect("unique metric");
        registry.register(Box::new(rows.clone())).expect("unique metric");
        registry.register(Box::new(dead_letters.clone())).expect("unique metric");
        registry.register(Box::new(store_errors.clone())).expect("unique metric");
        registry.register(Box::new(flush_seconds.clone())).expect("unique metric");
        Metrics { registry, rows, dead_letters, store_errors, flush_seconds, retention_actions, erased_rows, erasure_cleanups, erased_ids, batch_stages }
    }

    pub fn render(&self) -> String {
        ringpath_service::render_metrics(&self.registry)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
