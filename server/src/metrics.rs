//! Prometheus metrics: active calls, calls by final status, RTP packets, plugin event time.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// The server's metrics, registered in their own registry.
pub struct Metrics {
    registry: Registry,
    /// Calls currently answered or ringing.
    pub active_calls: IntGauge,
    /// Calls that ended, by final status.
    pub calls_total: IntCounterVec,
    /// INVITEs refused before a call existed, by SIP status code.
    pub sip_rejections_total: IntCounterVec,
    /// RTP packets received from callers (ended calls plus a running total).
    pub rtp_packets_received: IntCounter,
    /// RTP packets sent to callers.
    pub rtp_packets_sent: IntCounter,
    /// RTP packets callers sent that never arrived (jitter-buffer loss).
    pub rtp_packets_lost: IntCounter,
    /// Time a plugin spent handling one event.
    pub plugin_event_seconds: Histogram,
    /// Plugin traps, timeouts and quota breaches that sent a call to its fallback.
    pub plugin_failures_total: IntCounterVec,
}

impl Metrics {
    /// Create and register every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("vaani".to_string()), None)?;
        let active_calls = IntGauge::new("active_calls", "Calls currently ringing or answered")?;
        let calls_total = IntCounterVec::new(
            Opts::new("calls_total", "Calls that ended, by final status"),
            &["status"],
        )?;
        let sip_rejections_total = IntCounterVec::new(
            Opts::new(
                "sip_rejections_total",
                "INVITEs refused, by SIP status code",
            ),
            &["code"],
        )?;
        let rtp_packets_received = IntCounter::new(
            "rtp_packets_received_total",
            "RTP packets received from callers",
        )?;
        let rtp_packets_sent =
            IntCounter::new("rtp_packets_sent_total", "RTP packets sent to callers")?;
        let rtp_packets_lost = IntCounter::new(
            "rtp_packets_lost_total",
            "RTP packets from callers declared lost by the jitter buffer",
        )?;
        let plugin_event_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "plugin_event_seconds",
                "Time a plugin spent handling one event",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25,
            ]),
        )?;
        let plugin_failures_total = IntCounterVec::new(
            Opts::new(
                "plugin_failures_total",
                "Plugin failures that ended in the fallback, by kind",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(active_calls.clone()))?;
        registry.register(Box::new(calls_total.clone()))?;
        registry.register(Box::new(sip_rejections_total.clone()))?;
        registry.register(Box::new(rtp_packets_received.clone()))?;
        registry.register(Box::new(rtp_packets_sent.clone()))?;
        registry.register(Box::new(rtp_packets_lost.clone()))?;
        registry.register(Box::new(plugin_event_seconds.clone()))?;
        registry.register(Box::new(plugin_failures_total.clone()))?;
        Ok(Self {
            registry,
            active_calls,
            calls_total,
            sip_rejections_total,
            rtp_packets_received,
            rtp_packets_sent,
            rtp_packets_lost,
            plugin_event_seconds,
            plugin_failures_total,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        if encoder
            .encode(&self.registry.gather(), &mut buffer)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_the_prefix() {
        let metrics = Metrics::new().expect("metrics");
        metrics.active_calls.set(3);
        metrics.calls_total.with_label_values(&["completed"]).inc();
        metrics
            .sip_rejections_total
            .with_label_values(&["404"])
            .inc();
        metrics.plugin_event_seconds.observe(0.002);
        metrics
            .plugin_failures_total
            .with_label_values(&["timeout"])
            .inc();
        let text = metrics.render();
        assert!(text.contains("vaani_active_calls 3"), "{text}");
        assert!(
            text.contains("vaani_calls_total{status=\"completed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("vaani_sip_rejections_total{code=\"404\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("vaani_rtp_packets_received_total 0"),
            "{text}"
        );
        assert!(
            text.contains("vaani_plugin_event_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains("vaani_plugin_failures_total{kind=\"timeout\"} 1"),
            "{text}"
        );
    }
}
