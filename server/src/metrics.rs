//! Prometheus metrics: active calls, calls by final status, RTP and RTCP packets, call quality
//! (MOS, round-trip time), plugin event time, per-turn latency by stage, per-call cost and the
//! usage the cost is made of; per tenant (`vaani_tenant_*`): calls up, calls by final status,
//! the summed cost of its calls and plugin failures; and INVITEs refused before a call
//! existed, by reason (`vaani_call_refusals_total{tenant,reason}`).
//!
//! Labels stay bounded: the only ids are tenant ids (the tenants the operator runs; `""` when
//! a refused INVITE reached no tenant), never numbers, addresses or call ids; engine labels
//! are the server's configured engines and LLM model labels are the models in the `[pricing]`
//! table (others are `other`). The server-wide families (`vaani_active_calls`,
//! `vaani_calls_total{status}`, …) stay as they were, so dashboards and the benchmarks that
//! read them by name keep working.

use prometheus::{
    CounterVec, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The `stage` label values of `vaani_turn_latency_seconds`.
pub const TURN_STAGES: [&str; 7] = [
    "transcript",
    "plugin",
    "llm_first_token",
    "tts_first_audio",
    "first_rtp",
    "total",
    "server_added",
];

/// Buckets for turn latency stages: 10 ms to 5 s, dense where voice agents live (0.2–1.5 s).
const TURN_LATENCY_BUCKETS: [f64; 16] = [
    0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0,
];

/// Buckets for the cost of one call in INR, around the ₹2-per-call target.
const CALL_COST_BUCKETS: [f64; 12] = [
    0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 7.5, 10.0,
];

/// Buckets for the E-model MOS of a call (1–4.5; 4.41 is a perfect G.711 call).
const CALL_MOS_BUCKETS: [f64; 10] = [1.5, 2.0, 2.5, 3.0, 3.5, 3.8, 4.0, 4.2, 4.3, 4.4];

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
    /// RTCP compound packets, by direction (`sent`, `received`, `invalid`).
    pub rtcp_packets_total: IntCounterVec,
    /// E-model MOS estimate of each ended call that received audio.
    pub call_mos: Histogram,
    /// Mean RTCP round-trip time of each ended call that measured one, seconds.
    pub call_rtt_seconds: Histogram,
    /// Time a plugin spent handling one event.
    pub plugin_event_seconds: Histogram,
    /// Plugin traps, timeouts and quota breaches that sent a call to its fallback.
    pub plugin_failures_total: IntCounterVec,
    /// Conversational turn latency by stage (see [`TURN_STAGES`]).
    pub turn_latency_seconds: HistogramVec,
    /// Priced cost of each ended call, INR.
    pub call_cost_inr: Histogram,
    /// Caller audio sent to speech-to-text, seconds, by engine.
    pub stt_audio_seconds_total: CounterVec,
    /// Characters sent to text-to-speech, by engine.
    pub tts_characters_total: IntCounterVec,
    /// LLM tokens, by model and kind (`prompt`, `completion`).
    pub llm_tokens_total: IntCounterVec,
    /// Calls up, by tenant (kept by [`crate::limits::CallSlot`]).
    pub tenant_active_calls: IntGaugeVec,
    /// Calls that ended, by tenant and final status.
    pub tenant_calls_total: IntCounterVec,
    /// Priced cost of the tenant's ended answered calls, INR, summed.
    pub tenant_call_cost_inr_total: CounterVec,
    /// Plugin failures that sent a call to its fallback, by tenant and kind.
    pub tenant_plugin_failures_total: IntCounterVec,
    /// INVITEs refused before a call existed, by tenant (`""`: none reached) and reason
    /// (`source_rate`, `number_rate`, `tenant_concurrency`, `forbidden_source`,
    /// `unknown_number`, `tenant_unavailable`, `unauthorized`, `draining`).
    pub call_refusals_total: IntCounterVec,
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
        let rtcp_packets_total = IntCounterVec::new(
            Opts::new(
                "rtcp_packets_total",
                "RTCP compound packets, by direction (sent, received, invalid)",
            ),
            &["direction"],
        )?;
        let call_mos = Histogram::with_opts(
            HistogramOpts::new(
                "call_mos",
                "E-model (ITU-T G.107) MOS estimate of each ended call's inbound audio",
            )
            .buckets(CALL_MOS_BUCKETS.to_vec()),
        )?;
        let call_rtt_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "call_rtt_seconds",
                "Mean RTCP round-trip time of each ended call, seconds",
            )
            .buckets(vec![0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0]),
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
        let turn_latency_seconds = HistogramVec::new(
            HistogramOpts::new(
                "turn_latency_seconds",
                "Conversational turn latency from the end of caller speech, by stage",
            )
            .buckets(TURN_LATENCY_BUCKETS.to_vec()),
            &["stage"],
        )?;
        let call_cost_inr = Histogram::with_opts(
            HistogramOpts::new("call_cost_inr", "Priced cost of each ended call, in INR")
                .buckets(CALL_COST_BUCKETS.to_vec()),
        )?;
        let stt_audio_seconds_total = CounterVec::new(
            Opts::new(
                "stt_audio_seconds_total",
                "Caller audio sent to speech-to-text, seconds, by engine",
            ),
            &["engine"],
        )?;
        let tts_characters_total = IntCounterVec::new(
            Opts::new(
                "tts_characters_total",
                "Characters sent to text-to-speech, by engine",
            ),
            &["engine"],
        )?;
        let llm_tokens_total = IntCounterVec::new(
            Opts::new("llm_tokens_total", "LLM tokens, by model and kind"),
            &["model", "kind"],
        )?;
        let tenant_active_calls = IntGaugeVec::new(
            Opts::new("tenant_active_calls", "Calls currently up, by tenant"),
            &["tenant"],
        )?;
        let tenant_calls_total = IntCounterVec::new(
            Opts::new(
                "tenant_calls_total",
                "Calls that ended, by tenant and final status",
            ),
            &["tenant", "status"],
        )?;
        let tenant_call_cost_inr_total = CounterVec::new(
            Opts::new(
                "tenant_call_cost_inr_total",
                "Priced cost of the tenant's ended answered calls, INR",
            ),
            &["tenant"],
        )?;
        let tenant_plugin_failures_total = IntCounterVec::new(
            Opts::new(
                "tenant_plugin_failures_total",
                "Plugin failures that ended in the fallback, by tenant and kind",
            ),
            &["tenant", "kind"],
        )?;
        let call_refusals_total = IntCounterVec::new(
            Opts::new(
                "call_refusals_total",
                "INVITEs refused before a call existed, by tenant (empty: none) and reason",
            ),
            &["tenant", "reason"],
        )?;
        registry.register(Box::new(tenant_active_calls.clone()))?;
        registry.register(Box::new(tenant_calls_total.clone()))?;
        registry.register(Box::new(tenant_call_cost_inr_total.clone()))?;
        registry.register(Box::new(tenant_plugin_failures_total.clone()))?;
        registry.register(Box::new(call_refusals_total.clone()))?;
        registry.register(Box::new(active_calls.clone()))?;
        registry.register(Box::new(calls_total.clone()))?;
        registry.register(Box::new(sip_rejections_total.clone()))?;
        registry.register(Box::new(rtp_packets_received.clone()))?;
        registry.register(Box::new(rtp_packets_sent.clone()))?;
        registry.register(Box::new(rtp_packets_lost.clone()))?;
        registry.register(Box::new(rtcp_packets_total.clone()))?;
        registry.register(Box::new(call_mos.clone()))?;
        registry.register(Box::new(call_rtt_seconds.clone()))?;
        registry.register(Box::new(plugin_event_seconds.clone()))?;
        registry.register(Box::new(plugin_failures_total.clone()))?;
        registry.register(Box::new(turn_latency_seconds.clone()))?;
        registry.register(Box::new(call_cost_inr.clone()))?;
        registry.register(Box::new(stt_audio_seconds_total.clone()))?;
        registry.register(Box::new(tts_characters_total.clone()))?;
        registry.register(Box::new(llm_tokens_total.clone()))?;
        Ok(Self {
            registry,
            active_calls,
            calls_total,
            sip_rejections_total,
            rtp_packets_received,
            rtp_packets_sent,
            rtp_packets_lost,
            rtcp_packets_total,
            call_mos,
            call_rtt_seconds,
            plugin_event_seconds,
            plugin_failures_total,
            turn_latency_seconds,
            call_cost_inr,
            stt_audio_seconds_total,
            tts_characters_total,
            llm_tokens_total,
            tenant_active_calls,
            tenant_calls_total,
            tenant_call_cost_inr_total,
            tenant_plugin_failures_total,
            call_refusals_total,
        })
    }

    /// Counts one ended call of `tenant`: server-wide and per tenant by status, and its cost
    /// (`None`: never answered, not priced).
    pub fn call_ended(&self, tenant: &str, status: &str, cost_inr: Option<f64>) {
        self.calls_total.with_label_values(&[status]).inc();
        self.tenant_calls_total
            .with_label_values(&[tenant, status])
            .inc();
        if let Some(cost) = cost_inr {
            self.tenant_call_cost_inr_total
                .with_label_values(&[tenant])
                .inc_by(cost.max(0.0));
        }
    }

    /// Counts one plugin failure of `tenant`'s plugin: server-wide and per tenant by kind.
    pub fn plugin_failed(&self, tenant: &str, kind: &str) {
        self.plugin_failures_total.with_label_values(&[kind]).inc();
        self.tenant_plugin_failures_total
            .with_label_values(&[tenant, kind])
            .inc();
    }

    /// Counts one INVITE refused before a call existed, by the tenant its number reached
    /// (`None`: none) and why.
    pub fn call_refused(&self, tenant: Option<&str>, reason: &str) {
        self.call_refusals_total
            .with_label_values(&[tenant.unwrap_or(""), reason])
            .inc();
    }

    /// Records the RTCP counts, MOS and round-trip time of one ended call.
    pub fn observe_media_quality(&self, stats: &vaani_media::MediaStats) {
        let rtcp = &stats.rtcp;
        for (direction, count) in [
            ("sent", rtcp.sent),
            ("received", rtcp.received),
            ("invalid", rtcp.invalid),
        ] {
            self.rtcp_packets_total
                .with_label_values(&[direction])
                .inc_by(count);
        }
        if let Some(mos) = stats.mos() {
            self.call_mos.observe(mos);
        }
        if let Some(rtt_ms) = rtcp.rtt_mean_ms {
            self.call_rtt_seconds.observe(rtt_ms / 1000.0);
        }
    }

    /// Exports the media engine's live counters, read at every scrape: packets received, sent,
    /// declared lost and late by the jitter buffers of calls in progress as well as ended
    /// ones (`vaani_media_*`, the registry adds the prefix; the `vaani_rtp_*` counters grow
    /// only when a call ends), and the sessions open.
    pub fn register_media_engine(
        &self,
        engine: vaani_media::MediaEngine,
    ) -> prometheus::Result<()> {
        let collector = MediaEngineCollector::new(engine)?;
        self.registry.register(Box::new(collector))
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

/// Reads [`vaani_media::MediaEngine::counters`] when Prometheus gathers.
struct MediaEngineCollector {
    engine: vaani_media::MediaEngine,
    received: IntCounter,
    sent: IntCounter,
    lost: IntCounter,
    late: IntCounter,
    sessions: IntGauge,
}

impl MediaEngineCollector {
    fn new(engine: vaani_media::MediaEngine) -> prometheus::Result<Self> {
        Ok(Self {
            engine,
            received: IntCounter::new(
                "media_rtp_packets_received_total",
                "RTP datagrams the media engine received (calls in progress included)",
            )?,
            sent: IntCounter::new(
                "media_rtp_packets_sent_total",
                "RTP packets the media engine sent (calls in progress included)",
            )?,
            lost: IntCounter::new(
                "media_rtp_packets_lost_total",
                "Caller RTP packets the jitter buffers declared lost (calls in progress included)",
            )?,
            late: IntCounter::new(
                "media_rtp_packets_late_total",
                "Caller RTP packets that arrived after their jitter-buffer deadline",
            )?,
            sessions: IntGauge::new(
                "media_sessions",
                "Media sessions open in the engine's shards",
            )?,
        })
    }
}

/// Raises `counter` to `value` (never lowers it: concurrent scrapes cannot make it go back).
fn advance(counter: &IntCounter, value: u64) {
    let current = counter.get();
    if value > current {
        counter.inc_by(value - current);
    }
}

impl prometheus::core::Collector for MediaEngineCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        [
            self.received.desc(),
            self.sent.desc(),
            self.lost.desc(),
            self.late.desc(),
            self.sessions.desc(),
        ]
        .concat()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let counters = self.engine.counters();
        advance(&self.received, counters.packets_in);
        advance(&self.sent, counters.packets_out);
        advance(&self.lost, counters.packets_lost);
        advance(&self.late, counters.packets_late);
        self.sessions
            .set(i64::try_from(self.engine.active_sessions()).unwrap_or(i64::MAX));
        [
            self.received.collect(),
            self.sent.collect(),
            self.lost.collect(),
            self.late.collect(),
            self.sessions.collect(),
        ]
        .concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_engine_counters_are_read_at_every_scrape() {
        let metrics = Metrics::new().expect("metrics");
        let engine = vaani_media::MediaEngine::start(vaani_media::EngineConfig {
            bind_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            port_range: (47900, 47909),
            shards: 1,
        })
        .expect("engine");
        metrics
            .register_media_engine(engine.clone())
            .expect("registered");
        let text = metrics.render();
        assert!(
            text.contains("\nvaani_media_rtp_packets_received_total 0"),
            "{text}"
        );
        assert!(text.contains("\nvaani_media_sessions 0"), "{text}");
        let lease = engine.allocate_port().expect("port");
        let server = lease.local_addr();
        let _session = engine
            .open_session(
                lease,
                vaani_media::SessionConfig::new(vaani_media::Law::Mu),
                Box::new(vaani_media::EnergyVad::default()),
            )
            .expect("session");
        let client = std::net::UdpSocket::bind("127.0.0.1:0").expect("client");
        let mut packet = [0xFFu8; 172];
        packet[0] = 0x80;
        for seq in 0..3u16 {
            packet[2..4].copy_from_slice(&seq.to_be_bytes());
            client.send_to(&packet, server).expect("send");
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let text = metrics.render();
            if text.contains("\nvaani_media_rtp_packets_received_total 3")
                && text.contains("\nvaani_media_sessions 1")
            {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{text}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

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

    #[test]
    fn renders_the_per_tenant_families_and_refusals() {
        let metrics = Metrics::new().expect("metrics");
        metrics.call_ended("clinic", "completed", Some(1.5));
        metrics.call_ended("clinic", "completed", Some(0.5));
        metrics.call_ended("echo", "cancelled", None);
        metrics.plugin_failed("clinic", "timeout");
        metrics.call_refused(Some("clinic"), "number_rate");
        metrics.call_refused(None, "source_rate");
        metrics
            .tenant_active_calls
            .with_label_values(&["echo"])
            .set(2);
        let text = metrics.render();
        for expected in [
            "vaani_calls_total{status=\"completed\"} 2",
            "vaani_calls_total{status=\"cancelled\"} 1",
            "vaani_tenant_calls_total{status=\"completed\",tenant=\"clinic\"} 2",
            "vaani_tenant_calls_total{status=\"cancelled\",tenant=\"echo\"} 1",
            "vaani_tenant_call_cost_inr_total{tenant=\"clinic\"} 2",
            "vaani_plugin_failures_total{kind=\"timeout\"} 1",
            "vaani_tenant_plugin_failures_total{kind=\"timeout\",tenant=\"clinic\"} 1",
            "vaani_call_refusals_total{reason=\"number_rate\",tenant=\"clinic\"} 1",
            "vaani_call_refusals_total{reason=\"source_rate\",tenant=\"\"} 1",
            "vaani_tenant_active_calls{tenant=\"echo\"} 2",
        ] {
            assert!(text.contains(expected), "no {expected:?} in:\n{text}");
        }
        // A call never answered is not priced: the echo tenant has no cost series.
        assert!(
            !text.contains("vaani_tenant_call_cost_inr_total{tenant=\"echo\"}"),
            "{text}"
        );
    }

    #[test]
    fn renders_call_quality() {
        let metrics = Metrics::new().expect("metrics");
        metrics.observe_media_quality(&vaani_media::MediaStats::default());
        let mut stats = vaani_media::MediaStats::default();
        stats.jitter.received = 100;
        stats.rtcp.sent = 3;
        stats.rtcp.received = 2;
        stats.rtcp.rtt_mean_ms = Some(60.0);
        metrics.observe_media_quality(&stats);
        let text = metrics.render();
        for expected in [
            "vaani_rtcp_packets_total{direction=\"sent\"} 3",
            "vaani_rtcp_packets_total{direction=\"received\"} 2",
            "vaani_rtcp_packets_total{direction=\"invalid\"} 0",
            // Only the call with audio has a MOS (no loss: 4.2–4.3 bucket with the delay).
            "vaani_call_mos_count 1",
            "vaani_call_mos_bucket{le=\"4.2\"} 0",
            "vaani_call_mos_bucket{le=\"4.4\"} 1",
            "vaani_call_rtt_seconds_count 1",
            "vaani_call_rtt_seconds_bucket{le=\"0.05\"} 0",
            "vaani_call_rtt_seconds_bucket{le=\"0.1\"} 1",
        ] {
            assert!(text.contains(expected), "no {expected:?} in:\n{text}");
        }
    }

    #[test]
    fn renders_turn_latency_cost_and_usage() {
        let metrics = Metrics::new().expect("metrics");
        metrics
            .turn_latency_seconds
            .with_label_values(&["total"])
            .observe(0.62);
        metrics.call_cost_inr.observe(1.8);
        metrics
            .stt_audio_seconds_total
            .with_label_values(&["whisper"])
            .inc_by(2.5);
        metrics
            .tts_characters_total
            .with_label_values(&["espeak-ng"])
            .inc_by(42);
        metrics
            .llm_tokens_total
            .with_label_values(&["gpt-4o-mini", "prompt"])
            .inc_by(900);
        let text = metrics.render();
        for expected in [
            "vaani_turn_latency_seconds_count{stage=\"total\"} 1",
            "vaani_turn_latency_seconds_bucket{stage=\"total\",le=\"0.75\"} 1",
            "vaani_turn_latency_seconds_bucket{stage=\"total\",le=\"0.5\"} 0",
            "vaani_call_cost_inr_bucket{le=\"2\"} 1",
            "vaani_call_cost_inr_sum 1.8",
            "vaani_stt_audio_seconds_total{engine=\"whisper\"} 2.5",
            "vaani_tts_characters_total{engine=\"espeak-ng\"} 42",
            "vaani_llm_tokens_total{kind=\"prompt\",model=\"gpt-4o-mini\"} 900",
        ] {
            assert!(text.contains(expected), "no {expected:?} in:\n{text}");
        }
    }
}
