//! Prometheus metrics for ingest. Labels are bounded: route templates and
//! fixed cause names, never raw paths or account ids from the request.

use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

pub struct Metrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub events_accepted: IntCounterVec,
    pub events_rejected: IntCounterVec,
    pub produce_seconds: HistogramVec,
    pub queue_depth: IntGauge,
    pub pool_live: IntGaugeVec,
    pub pool_size: IntGaugeVec,
    pub pool_utilisation: GaugeVec,
    pub pool_exhausted: IntCounterVec,
    pub dlq_written: IntCounterVec,
    pub dlq_failed: IntCounterVec,
    /// Accounts-file reloads (SIGHUP) by outcome: `ok` or `failed` (the previous accounts stay).
    pub config_reloads: IntCounterVec,
    /// Number requests a matching pool gave no number, by cause (client cap,
    /// store unavailable or refilling, empty pool): they got the source-level or site number.
    pub numbers_without_pool: IntCounterVec,
    /// Hold renewals dropped because the queue was full, and merged into a recent one.
    pub renewals_dropped: prometheus::IntCounter,
    pub renewals_coalesced: prometheus::IntCounter,
    /// Refills of the pool store from the assignments topic.
    pub pool_refills: prometheus::IntCounter,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(Opts::new("ringpath_ingest_requests_total", "HTTP requests by route template and status"), &["route", "status"])
            .expect("valid metric");
        let events_accepted = IntCounterVec::new(Opts::new("ringpath_ingest_events_accepted_total", "Events made durable in Kafka"), &["kind"]).expect("valid metric");
        let events_rejected =
            IntCounterVec::new(Opts::new("ringpath_ingest_events_rejected_total", "Requests rejected, by cause"), &["cause"]).expect("valid metric");
        let produce_seconds = HistogramVec::new(
            HistogramOpts::new("ringpath_ingest_produce_seconds", "Time from produce to broker acknowledgement")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["topic"],
        )
        .expect("valid metric");
        let queue_depth = IntGauge::new("ringpath_ingest_producer_queue_depth", "Records waiting in the producer queue").expect("valid metric");
        // Pool labels come from the accounts file (bounded), never from a request.
        let pool_labels = &["account", "pool"];
        let pool_live = IntGaugeVec::new(Opts::new("ringpath_ingest_pool_live_numbers", "Numbers with a live hold"), pool_labels).expect("valid metric");
        let pool_size = IntGaugeVec::new(Opts::new("ringpath_ingest_pool_numbers", "Numbers in the pool"), pool_labels).expect("valid metric");
        let pool_utilisation =
            GaugeVec::new(Opts::new("ringpath_ingest_pool_utilisation_ratio", "Live holds / numbers in the pool"), pool_labels).expect("valid metric");
        let pool_exhausted =
            IntCounterVec::new(Opts::new("ringpath_ingest_pool_exhausted_total", "Assignments that had to share a number"), pool_labels).expect("valid metric");
        let dlq_written = IntCounterVec::new(Opts::new("ringpath_ingest_dlq_written_total", "Rejected payloads written to the dead-letter topic"), &["route"])
            .expect("valid metric");
        let dlq_failed = IntCounterVec::new(Opts::new("ringpath_ingest_dlq_failed_total", "Rejected payloads that could not be dead-lettered"), &["route"])
            .expect("valid metric");
        let numbers_without_pool = IntCounterVec::new(
            Opts::new("ringpath_ingest_numbers_without_pool_total", "Number requests a matching pool gave no number (source-level or site number instead), by cause"),
            &["cause"],
        )
        .expect("valid metric");
        registry.register(Box::new(numbers_without_pool.clone())).expect("unique metric");
        let counter = |name: &str, help: &str| {
            let c = prometheus::IntCounter::new(name, help).expect("valid metric");
            registry.register(Box::new(c.clone())).expect("unique metric");
            c
        };
        let renewals_dropped = counter("ringpath_ingest_renewals_dropped_total", "Hold renewals dropped: the renewal queue was full");
        let renewals_coalesced = counter("ringpath_ingest_renewals_coalesced_total", "Hold renewals merged into a renewal of the same session moments before");
        let pool_refills = counter("ringpath_ingest_pool_refills_total", "Refills of the pool store from the assignments topic");
        let config_reloads = IntCounterVec::new(Opts::new("ringpath_ingest_config_reloads_total", "Accounts-file reloads by outcome"), &["outcome"]).expect("valid metric");
        for c in [&requests, &events_accepted, &events_rejected, &pool_exhausted, &dlq_written, &dlq_failed, &config_reloads] {
            registry.register(Box::new(c.clone())).expect("unique metric");
        }
        registry.register(Box::new(produce_seconds.clone())).expect("unique metric");
        registry.register(Box::new(queue_depth.clone())).expect("unique metric");
        registry.register(Box::new(pool_live.clone())).expect("unique metric");
        registry.register(Box::new(pool_size.clone())).expect("unique metric");
        registry.register(Box::new(pool_utilisation.clone())).expect("unique metric");
        Metrics {
            registry,
            requests,
            events_accepted,
            events_rejected,
            produce_seconds,
            queue_depth,
            pool_live,
            pool_size,
            pool_utilisation,
            pool_exhausted,
            dlq_written,
            dlq_failed,
            config_reloads,
            numbers_without_pool,
            renewals_dropped,
            renewals_coalesced,
            pool_refills,
        }
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
