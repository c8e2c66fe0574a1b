//! Prometheus metrics: one registry per running server (so parallel test servers do not mix),
//! exposed as text at `/metrics`. Labels carry route patterns, methods, status codes, pipeline and
//! error-code names — never ids, personal data or secrets.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Latency buckets in seconds: sub-millisecond API calls up to multi-second workflows.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    /// Requests by route pattern, method and status.
    pub http_requests: IntCounterVec,
    /// Request latency by route pattern, method and status.
    pub http_duration: HistogramVec,
    /// Inference latency by pipeline (`face_match`, …).
    pub inference_duration: HistogramVec,
    /// Refused requests by error code (authentication failures, aggregated).
    pub auth_failures: IntCounterVec,
    /// 1 once every model has loaded and run its warm-up.
    pub models_loaded: IntGauge,
    /// Media deleted by the retention sweeper.
    pub media_swept: IntCounterVec,
    /// Jobs by status (read from the store at scrape time).
    pub jobs: IntGaugeVec,
    /// Age of the oldest queued job, seconds (0 when none is queued).
    pub job_oldest_queued_age: IntGauge,
    /// Webhook deliveries by outcome (`pending`, `delivered`, `failed`).
    pub webhook_deliveries: IntGaugeVec,
    /// Units used this month, by tenant and module.
    pub quota_used: IntGaugeVec,
    /// Monthly quota, by tenant and module (absent: unlimited).
    pub quota_limit: IntGaugeVec,
    /// Bytes held under each admission budget.
    pub admission_bytes: IntGaugeVec,
    /// Refusals by admission budget.
    pub admission_refused: IntCounterVec,
    /// When the stored-state gauges were last refreshed; also serialises their refresh.
    stored_refreshed: std::sync::Mutex<Option<std::time::Instant>>,
}

/// The stored state `/metrics` reports, read at scrape time.
#[derive(Debug, Default, Clone)]
pub struct StoredState {
    /// Jobs by status.
    pub jobs: Vec<(String, i64)>,
    /// Age of the oldest queued job, seconds.
    pub oldest_queued_age: i64,
    /// Webhook deliveries by status.
    pub deliveries: Vec<(String, i64)>,
    /// (tenant, module, used, quota) this month.
    pub quotas: Vec<(String, String, i64, Option<i64>)>,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("kycd".into()), None).expect("static prefix");
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency")
                .buckets(BUCKETS.to_vec()),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let inference_duration = HistogramVec::new(
            HistogramOpts::new("inference_duration_seconds", "Inference pipeline latency")
                .buckets(BUCKETS.to_vec()),
            &["pipeline"],
        )
        .expect("valid metric");
        let auth_failures = IntCounterVec::new(
            Opts::new(
                "auth_failures_total",
                "Refused signed requests by error code",
            ),
            &["code"],
        )
        .expect("valid metric");
        let models_loaded = IntGauge::new(
            "models_loaded",
            "1 when every model is loaded and warmed up",
        )
        .expect("valid metric");
        let media_swept = IntCounterVec::new(
            Opts::new("media_swept_total", "Media deleted by retention"),
            &["reason"],
        )
        .expect("valid metric");
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        let jobs = gauge_vec("jobs", "Verification jobs by status", &["status"]);
        let job_oldest_queued_age = IntGauge::new(
            "job_oldest_queued_age_seconds",
            "Age of the oldest queued job",
        )
        .expect("valid metric");
        let webhook_deliveries = gauge_vec(
            "webhook_deliveries",
            "Webhook deliveries by outcome",
            &["status"],
        );
        let quota_used = gauge_vec(
            "quota_used_units",
            "Units used this month by tenant and module",
            &["tenant", "module"],
        );
        let quota_limit = gauge_vec(
            "quota_limit_units",
            "Monthly quota by tenant and module",
            &["tenant", "module"],
        );
        let admission_bytes = gauge_vec(
            "admission_bytes",
            "Bytes held under each admission budget (request bodies, decoded pixels)",
            &["budget"],
        );
        let admission_refused = IntCounterVec::new(
            Opts::new(
                "admission_refused_total",
                "Requests refused by an admission budget (503 overloaded or 413)",
            ),
            &["budget"],
        )
        .expect("valid metric");
        let build_info =
            IntGaugeVec::new(Opts::new("build_info", "Build information"), &["version"])
                .expect("valid metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for c in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(inference_duration.clone()),
            Box::new(auth_failures.clone()),
            Box::new(models_loaded.clone()),
            Box::new(media_swept.clone()),
            Box::new(build_info.clone()),
            Box::new(jobs.clone()),
            Box::new(job_oldest_queued_age.clone()),
            Box::new(webhook_deliveries.clone()),
            Box::new(quota_used.clone()),
            Box::new(quota_limit.clone()),
            Box::new(admission_bytes.clone()),
            Box::new(admission_refused.clone()),
        ] {
            registry.register(c).expect("unique metric names");
        }
        Metrics {
            registry,
            http_requests,
            http_duration,
            inference_duration,
            auth_failures,
            models_loaded,
            media_swept,
            jobs,
            job_oldest_queued_age,
            webhook_deliveries,
            quota_used,
            quota_limit,
            admission_bytes,
            admission_refused,
            stored_refreshed: std::sync::Mutex::new(None),
        }
    }

    /// Whether the stored-state gauges are older than `every` (claims the refresh when so).
    pub fn stored_state_due(&self, every: std::time::Duration) -> bool {
        let mut last = self
            .stored_refreshed
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let due = last.is_none_or(|t| t.elapsed() >= every);
        if due {
            *last = Some(std::time::Instant::now());
        }
        due
    }

    /// Sets the gauges that mirror stored state (stale label sets are dropped).
    pub fn set_stored_state(&self, s: &StoredState, tenant_labels: bool) {
        // One refresh at a time: a scrape never sees the gauges half reset.
        let _one = self
            .stored_refreshed
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        self.jobs.reset();
        for (status, n) in &s.jobs {
            self.jobs.with_label_values(&[status.as_str()]).set(*n);
        }
        self.job_oldest_queued_age.set(s.oldest_queued_age);
        self.webhook_deliveries.reset();
        for (status, n) in &s.deliveries {
            self.webhook_deliveries
                .with_label_values(&[status.as_str()])
                .set(*n);
        }
        self.quota_used.reset();
        self.quota_limit.reset();
        if tenant_labels {
            for (tenant, module, used, quota) in &s.quotas {
                let labels = [tenant.as_str(), module.as_str()];
                self.quota_used.with_label_values(&labels).set(*used);
                if let Some(q) = quota {
                    self.quota_limit.with_label_values(&labels).set(*q);
                }
            }
        } else {
            // Without tenant labels (the default) whoever scrapes learns totals per module,
            // not which tenants exist or their volumes; per-tenant quotas are not summed.
            let mut totals: std::collections::BTreeMap<&str, i64> = Default::default();
            for (_, module, used, _) in &s.quotas {
                *totals.entry(module.as_str()).or_default() += used;
            }
            for (module, used) in totals {
                self.quota_used
                    .with_label_values(&["all", module])
                    .set(used);
            }
        }
    }

    /// Admission budgets: bytes held now and refusals so far, by budget.
    pub fn set_admission(&self, budgets: &[&crate::admission::Budget]) {
        for b in budgets {
            self.admission_bytes
                .with_label_values(&[b.name()])
                .set(b.used() as i64);
            let counter = self.admission_refused.with_label_values(&[b.name()]);
            counter.inc_by(b.refused().saturating_sub(counter.get()));
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let _consistent = self
            .stored_refreshed
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding into memory");
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Reads what the stored-state gauges report. Blocking.
pub fn stored_state(
    store: &crate::store::Store,
    now: i64,
) -> Result<StoredState, crate::store::StoreError> {
    use crate::store;
    use crate::tenancy::{meter::period_of, plans::Module, subscription::effective_plan};
    store.read(|c| {
        let (jobs, oldest) = store::jobs::queue_stats(c)?;
        let mut quotas = Vec::new();
        let mut plans = std::collections::HashMap::new();
        for (tenant, module, used) in store::usage::period_usage(c, &period_of(now))? {
            if !plans.contains_key(&tenant) {
                plans.insert(tenant.clone(), effective_plan(c, &tenant)?);
            }
            let quota = Module::parse(&module)
                .and_then(|m| plans[&tenant].modules.get(&m))
                .and_then(|t| t.monthly_quota);
            quotas.push((tenant, module, used, quota));
        }
        Ok(StoredState {
            jobs,
            oldest_queued_age: oldest.map_or(0, |t| (now - t).max(0)),
            deliveries: store::webhooks::delivery_counts(c)?,
            quotas,
        })
    })
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_registered_metrics() {
        let m = Metrics::new();
        m.http_requests
            .with_label_values(&["/v1/ping", "GET", "200"])
            .inc();
        m.models_loaded.set(1);
        let text = m.render();
        assert!(text.contains(
            "kycd_http_requests_total{method=\"GET\",route=\"/v1/ping\",status=\"200\"} 1"
        ));
        assert!(text.contains("kycd_models_loaded 1"));
        assert!(text.contains("kycd_build_info{version="));
    }
}
