//! The `capacity` benchmark: ramps concurrent G.711 calls against the echo plugin with audio
//! both ways and reports what each step cost vaani.
//!
//! Per step, sipp does the signalling only ([`crate::bench::SippLoad`] with
//! `uac_capacity_hold.xml`: each call's SDP offer carries the port of its own socket in the
//! [`RtpLoadGenerator`], injected from an `-inf` file) and holds every call; the generator
//! learns vaani's RTP port from the first packet vaani sends and then sends one 20 ms PCMU
//! packet per call per tick (sipp 3.6.1 cannot do this itself: all its calls' RTP leaves from one
//! port). Once every call is up and a settling time has passed, a measuring window reads vaani's
//! CPU time and memory from `/proc` (vaani's process only; the generator's and sipp's own CPU are
//! reported beside it), the pacing of vaani's packets (kernel receive timestamps) and sequence
//! gaps. Then the generator stops sending, sipp hangs up, and vaani's own counters give the
//! inbound loss (packets the generator sent that vaani did not receive, or that its jitter
//! buffers declared lost).
//!
//! The baseline replaces vaani with [`UdpEcho`]: the same number of sockets, the same shard
//! count and 20 ms tick, every packet sent straight back — the cost of the socket I/O alone on
//! this machine. vaani's cost is reported as a ratio of it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::VaaniServer;
use crate::bench::{
    BenchError, SippLoad, SippLoadSpec, metric, percent_of_core, scrape_metrics, server_spec,
    thread_shares, wait_until_idle,
};
use crate::load::{CallerAudio, LoadStats, RtpLoadGenerator, UdpEcho};
use crate::procstat::{
    UdpDropCounters, own_thread_cpu, process_cpu, process_rss, raise_open_file_limit,
    thread_cpu_by_name,
};

/// CPU share of one core per call that still allows 1,000 calls per core.
pub const TARGET_CPU_PERCENT_PER_CALL: f64 = 0.1;
/// Largest acceptable p99 outbound pacing error.
pub const TARGET_PACING_P99: Duration = Duration::from_millis(2);

/// How the ramp runs.
#[derive(Debug, Clone)]
pub struct CapacityOptions {
    /// Concurrent calls per step, ascending.
    pub steps: Vec<usize>,
    /// Calls sipp starts per second while ramping up a step.
    pub setup_rate: u32,
    /// Time between the last call being up and the measuring window.
    pub settle: Duration,
    /// Length of the measuring window.
    pub window: Duration,
    /// What the simulated callers send (silence: listening; noise: the VAD runs as for speech).
    pub caller_audio: CallerAudio,
    /// Run the UDP echo baseline at every step.
    pub baseline: bool,
    /// Threads of the UDP echo baseline (vaani's media shards default to the core count).
    pub baseline_shards: usize,
    /// Stop after the first saturated step ([`CapacityStep::saturated`]: calls not up or failed,
    /// or packets lost). Missing only the pacing or CPU target does not stop the ramp: on a busy
    /// machine pacing shows other processes' load first.
    pub stop_on_failure: bool,
}

impl Default for CapacityOptions {
    fn default() -> Self {
        Self {
            steps: vec![50, 100, 200, 400, 800, 1200, 1600, 2000],
            setup_rate: 100,
            settle: Duration::from_secs(5),
            window: Duration::from_secs(10),
            caller_audio: CallerAudio::Silence,
            baseline: true,
            baseline_shards: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            stop_on_failure: true,
        }
    }
}

/// The UDP echo baseline at one step.
#[derive(Debug, Clone)]
pub struct BaselineStep {
    /// Echo threads' CPU, percent of one core.
    pub cpu_percent: f64,
    /// Packets the generator sent in the window.
    pub sent: u64,
    /// Packets that came back in the window.
    pub received: u64,
    /// p99 pacing error of the echoes.
    pub pacing_p99: Duration,
}

impl BaselineStep {
    /// Echo CPU per call, percent of one core.
    pub fn cpu_percent_per_call(&self, calls: usize) -> f64 {
        self.cpu_percent / calls.max(1) as f64
    }
}

/// One step of the ramp.
#[derive(Debug, Clone)]
pub struct CapacityStep {
    /// Calls asked for.
    pub calls: usize,
    /// Calls whose media came up (vaani sent RTP to the generator).
    pub calls_up: usize,
    /// sipp's exit code and counts after the step's calls ended.
    pub sipp_exit: i32,
    /// Calls sipp completed.
    pub sipp_successful: u64,
    /// Calls sipp counted as failed.
    pub sipp_failed: u64,
    /// Length of the measuring window actually used.
    pub window: Duration,
    /// vaani's CPU over the window, percent of one core.
    pub vaani_cpu_percent: f64,
    /// vaani's CPU by thread name over the window, percent of one core, largest first.
    pub vaani_threads: Vec<(String, f64)>,
    /// vaani's resident memory at the end of the window, bytes.
    pub vaani_rss: u64,
    /// vaani's resident memory before the first step, bytes.
    pub vaani_idle_rss: u64,
    /// The generator thread's CPU over the window, percent of one core.
    pub generator_cpu_percent: f64,
    /// sipp's CPU over the window, percent of one core.
    pub sipp_cpu_percent: f64,
    /// What the generator counted in the window (pacing of vaani's packets included).
    pub window_stats: LoadStats,
    /// Packets the generator sent over the whole step.
    pub inbound_sent: u64,
    /// Packets vaani counted as received over the whole step (`vaani_rtp_packets_received_total`).
    pub inbound_received: u64,
    /// Packets vaani's jitter buffers declared lost over the whole step (call setup included).
    pub inbound_jitter_lost: u64,
    /// Packets vaani's jitter buffers declared lost in the measuring window only (all calls up).
    pub window_jitter_lost: u64,
    /// Packets vaani received in the measuring window.
    pub window_received: u64,
    /// Datagrams the kernel dropped (system-wide) during the window.
    pub kernel_udp_drops: u64,
    /// The UDP echo baseline at the same number of calls.
    pub baseline: Option<BaselineStep>,
}

impl CapacityStep {
    /// vaani CPU per call, percent of one core.
    pub fn cpu_percent_per_call(&self) -> f64 {
        self.vaani_cpu_percent / self.calls.max(1) as f64
    }

    /// Calls one core could carry at this step's cost per call.
    pub fn calls_per_core(&self) -> f64 {
        let per_call = self.cpu_percent_per_call();
        if per_call > 0.0 {
            100.0 / per_call
        } else {
            0.0
        }
    }

    /// Resident memory per call above the idle server, bytes.
    pub fn rss_per_call(&self) -> u64 {
        self.vaani_rss.saturating_sub(self.vaani_idle_rss) / self.calls.max(1) as u64
    }

    /// Inbound packets lost: not received by vaani, or declared lost by its jitter buffers.
    pub fn inbound_lost(&self) -> u64 {
        self.inbound_sent
            .saturating_sub(self.inbound_received)
            .max(self.inbound_jitter_lost)
    }

    /// vaani's CPU per call as a multiple of the UDP echo's.
    pub fn cost_ratio(&self) -> Option<f64> {
        let baseline = self.baseline.as_ref()?;
        let echo = baseline.cpu_percent_per_call(self.calls);
        (echo > 0.0).then(|| self.cpu_percent_per_call() / echo)
    }

    /// Packets vaani should have sent in the window (one per call per 20 ms) beyond those that
    /// arrived, allowing one per call for the window's edges. vaani skips the ticks its shards
    /// fell behind on without spending sequence numbers, so this, not the sequence gaps, shows
    /// an overloaded shard.
    pub fn outbound_shortfall(&self) -> u64 {
        let per_call = self.window.as_secs_f64() / crate::load::PACKET_INTERVAL.as_secs_f64();
        let expected = (per_call * self.calls_up as f64) as u64;
        expected.saturating_sub(self.window_stats.received + self.calls_up as u64)
    }

    /// Whether vaani could not carry this step: calls did not come up or failed, or packets
    /// were lost in either direction.
    pub fn saturated(&self) -> bool {
        self.calls_up < self.calls
            || self.sipp_failed > 0
            || self.sipp_exit != 0
            || self.inbound_lost() > 0
            || self.window_stats.gaps > 0
            || self.outbound_shortfall() > 0
    }

    /// What this step missed, besides the CPU target: calls not up or failed, loss (either
    /// direction), pacing.
    pub fn capacity_failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if self.calls_up < self.calls {
            failures.push(format!("{} of {} calls up", self.calls_up, self.calls));
        }
        if self.sipp_failed > 0 || self.sipp_exit != 0 {
            failures.push(format!(
                "sipp: {} failed (exit {})",
                self.sipp_failed, self.sipp_exit
            ));
        }
        if self.inbound_lost() > 0 {
            failures.push(format!("inbound loss {}", self.inbound_lost()));
        }
        if self.outbound_shortfall() > 0 {
            failures.push(format!(
                "outbound short by {} packets (ticks skipped)",
                self.outbound_shortfall()
            ));
        }
        if self.window_stats.gaps > 0 {
            failures.push(format!("outbound loss {}", self.window_stats.gaps));
        }
        if self.window_stats.pacing.quantile(0.99) >= TARGET_PACING_P99 {
            failures.push("pacing p99 ≥ 2 ms".to_string());
        }
        failures
    }

    /// Every target: the capacity ones and at most [`TARGET_CPU_PERCENT_PER_CALL`].
    pub fn failures(&self) -> Vec<String> {
        let mut failures = self.capacity_failures();
        if self.cpu_percent_per_call() > TARGET_CPU_PERCENT_PER_CALL {
            failures.push(format!(
                "CPU {:.3} %/call > {TARGET_CPU_PERCENT_PER_CALL} %",
                self.cpu_percent_per_call()
            ));
        }
        failures
    }
}

/// The whole ramp.
#[derive(Debug, Clone)]
pub struct CapacityReport {
    /// The vaani binary measured.
    pub vaani_binary: String,
    /// vaani's CPU with no call, percent of one core (its tickers and timers).
    pub vaani_idle_cpu_percent: f64,
    /// What the simulated callers sent.
    pub caller_audio: CallerAudio,
    /// Steps run, in order.
    pub steps: Vec<CapacityStep>,
}

impl CapacityReport {
    /// The highest step that met every target.
    pub fn highest_passing(&self) -> Option<&CapacityStep> {
        self.steps.iter().rfind(|s| s.failures().is_empty())
    }

    /// The highest step with every call up, no loss and pacing in target (CPU aside).
    pub fn highest_clean(&self) -> Option<&CapacityStep> {
        self.steps
            .iter()
            .rfind(|s| s.capacity_failures().is_empty())
    }

    /// The report as markdown: one table row per step and a summary.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "vaani binary: `{}`; idle (no call): {:.1} % of a core; callers send {}\n\n",
            self.vaani_binary,
            self.vaani_idle_cpu_percent,
            match self.caller_audio {
                CallerAudio::Silence =>
                    "digital silence (listening: the VAD gate skips the network)",
                CallerAudio::Noise =>
                    "white noise at −30 dBFS (the VAD network runs, as for speech)",
            }
        ));
        out.push_str(
            "| calls | up | vaani CPU % | CPU %/call | calls/core | RSS MiB | RSS KiB/call \
             | in sent | in lost | in lost (window) | gen late ticks | out recv | out short | out lost | kernel UDP drops | pacing p50 ms | p99 ms | max ms \
             | gen CPU % | sipp CPU % | echo CPU %/call | vaani/echo | vaani threads (% of a core) \
             | verdict |\n",
        );
        out.push_str(
            "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|\n",
        );
        for s in &self.steps {
            let pacing = &s.window_stats.pacing;
            let threads = s
                .vaani_threads
                .iter()
                .take(4)
                .map(|(name, pct)| format!("{name} {pct:.0}"))
                .collect::<Vec<_>>()
                .join(", ");
            let failures = s.failures();
            let verdict = if failures.is_empty() {
                "meets targets".to_string()
            } else {
                failures.join("; ")
            };
            out.push_str(&format!(
                "| {} | {} | {:.1} | {:.3} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} | {} | {} | {} | {} |\n",
                s.calls,
                s.calls_up,
                s.vaani_cpu_percent,
                s.cpu_percent_per_call(),
                s.calls_per_core(),
                s.vaani_rss as f64 / (1024.0 * 1024.0),
                s.rss_per_call() as f64 / 1024.0,
                s.inbound_sent,
                s.inbound_lost(),
                s.window_jitter_lost,
                s.window_stats.late_ticks,
                s.window_stats.received,
                s.outbound_shortfall(),
                s.window_stats.gaps,
                s.kernel_udp_drops,
                ms(pacing.quantile(0.5)),
                ms(pacing.quantile(0.99)),
                ms(pacing.max()),
                s.generator_cpu_percent,
                s.sipp_cpu_percent,
                s.baseline
                    .as_ref()
                    .map(|b| format!("{:.4}", b.cpu_percent_per_call(s.calls)))
                    .unwrap_or_else(|| "-".into()),
                s.cost_ratio()
                    .map(|r| format!("{r:.1}×"))
                    .unwrap_or_else(|| "-".into()),
                threads,
                verdict,
            ));
        }
        out.push('\n');
        match self.highest_passing() {
            Some(step) => out.push_str(&format!(
                "Highest step meeting every target: **{} calls** ({:.0} calls per core at its cost).\n",
                step.calls,
                step.calls_per_core()
            )),
            None => out.push_str("Highest step meeting every target: **none**.\n"),
        }
        if let Some(step) = self.highest_clean() {
            out.push_str(&format!(
                "Highest step with all calls up, zero loss and p99 pacing < 2 ms (CPU aside): **{} calls**, \
                 {:.3} % of a core per call (≈ {:.0} calls per core).\n",
                step.calls,
                step.cpu_percent_per_call(),
                step.calls_per_core()
            ));
        }
        out
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Runs the ramp against a vaani it starts itself (the echo tenant), printing each step's row
/// to stderr as it finishes.
pub fn run_capacity(options: &CapacityOptions) -> Result<CapacityReport, BenchError> {
    raise_open_file_limit();
    let max_calls = options.steps.iter().copied().max().unwrap_or(0);
    let server = VaaniServer::start(&server_spec(max_calls));
    std::thread::sleep(Duration::from_secs(1));
    let idle_rss = process_rss(server.pid())?;
    let idle_before = process_cpu(server.pid())?;
    let idle_started = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let idle_cpu = process_cpu(server.pid())?.saturating_sub(idle_before);
    let mut report = CapacityReport {
        vaani_binary: crate::vaani_binary().display().to_string(),
        vaani_idle_cpu_percent: percent_of_core(idle_cpu, idle_started.elapsed()),
        caller_audio: options.caller_audio,
        steps: Vec::new(),
    };
    for &calls in &options.steps {
        let baseline = if options.baseline {
            Some(run_baseline(calls, options)?)
        } else {
            None
        };
        let mut step = run_step(&server, calls, options, idle_rss)?;
        step.baseline = baseline;
        eprintln!(
            "capacity: {} calls: {} up, vaani {:.1} % CPU ({:.3} %/call), in lost {}, out short {}, out lost {}, pacing p99 {:.2} ms{}",
            step.calls,
            step.calls_up,
            step.vaani_cpu_percent,
            step.cpu_percent_per_call(),
            step.inbound_lost(),
            step.outbound_shortfall(),
            step.window_stats.gaps,
            ms(step.window_stats.pacing.quantile(0.99)),
            step.cost_ratio()
                .map(|r| format!(", {r:.1}× the UDP echo"))
                .unwrap_or_default()
        );
        let stop = options.stop_on_failure && step.saturated();
        report.steps.push(step);
        if stop {
            break;
        }
    }
    Ok(report)
}

fn run_baseline(calls: usize, options: &CapacityOptions) -> Result<BaselineStep, BenchError> {
    let echo = UdpEcho::start(calls, options.baseline_shards)?;
    let peers: Vec<Option<SocketAddr>> = echo.addresses().iter().copied().map(Some).collect();
    let generator = RtpLoadGenerator::start(&peers, options.caller_audio)?;
    std::thread::sleep(Duration::from_secs(1));
    let window = options.window.min(Duration::from_secs(5));
    let cpu_before = echo.cpu();
    generator.start_window();
    let started = Instant::now();
    std::thread::sleep(window);
    let stats = generator.take_window();
    let elapsed = started.elapsed();
    let cpu = echo.cpu().saturating_sub(cpu_before);
    Ok(BaselineStep {
        cpu_percent: percent_of_core(cpu, elapsed),
        sent: stats.sent,
        received: stats.received,
        pacing_p99: stats.pacing.quantile(0.99),
    })
}

fn run_step(
    server: &VaaniServer,
    calls: usize,
    options: &CapacityOptions,
    idle_rss: u64,
) -> Result<CapacityStep, BenchError> {
    let before = scrape_metrics(server)?;
    let generator = RtpLoadGenerator::start(&vec![None; calls], options.caller_audio)?;
    let ramp = Duration::from_secs_f64(calls as f64 / f64::from(options.setup_rate.max(1)));
    let establish_limit = ramp + Duration::from_secs(15);
    let hold = establish_limit + options.settle + options.window + Duration::from_secs(2);
    let sipp = SippLoad::start(
        server,
        &SippLoadSpec {
            scenario: "uac_capacity_hold.xml",
            substitutions: vec![("HOLD_MS", hold.as_millis().to_string())],
            injection: generator
                .ports()
                .iter()
                .map(|port| format!("{port};"))
                .collect(),
            rate: options.setup_rate,
            calls: calls as u64,
            limit: calls as u64,
            timeout: hold + ramp + Duration::from_secs(60),
        },
    )?;
    // Every call is up once vaani has sent it RTP.
    let deadline = sipp.started() + establish_limit;
    while generator.peers_known() < calls && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let calls_up = generator.peers_known();
    std::thread::sleep(options.settle);

    let pid = server.pid();
    let vaani_before = process_cpu(pid)?;
    let threads_before = thread_cpu_by_name(pid)?;
    let sipp_before = process_cpu(sipp.pid()).unwrap_or_default();
    let generator_before = own_thread_cpu(generator.thread_id()).unwrap_or_default();
    let drops_before = UdpDropCounters::read()?;
    let window_before = scrape_metrics(server)?;
    generator.start_window();
    let started = Instant::now();
    std::thread::sleep(options.window);
    let window_stats = generator.take_window();
    let window = started.elapsed();
    let window_after = scrape_metrics(server)?;
    let vaani_cpu = process_cpu(pid)?.saturating_sub(vaani_before);
    let threads_after = thread_cpu_by_name(pid)?;
    let sipp_cpu = process_cpu(sipp.pid())
        .unwrap_or_default()
        .saturating_sub(sipp_before);
    let generator_cpu = own_thread_cpu(generator.thread_id())
        .unwrap_or_default()
        .saturating_sub(generator_before);
    let kernel_udp_drops = UdpDropCounters::read()?.since(&drops_before);
    let vaani_rss = process_rss(pid)?;

    // Stop the caller audio before the BYEs so that every packet sent had a session to reach.
    generator.set_sending(false);
    std::thread::sleep(Duration::from_millis(200));
    let inbound_sent = generator.totals().sent;
    let sipp_limit = hold + ramp + Duration::from_secs(60);
    let (sipp_exit, counts, errors) = sipp.wait(sipp_limit);
    if counts.failed > 0 || sipp_exit != 0 {
        eprintln!("capacity: {calls} calls: sipp's errors begin with:\n{errors}");
    }
    drop(generator);
    wait_until_idle(server, Duration::from_secs(30));
    let after = scrape_metrics(server)?;
    let delta = |name: &str| (metric(&after, name) - metric(&before, name)).max(0.0) as u64;
    let window_delta =
        |name: &str| (metric(&window_after, name) - metric(&window_before, name)).max(0.0) as u64;

    Ok(CapacityStep {
        calls,
        calls_up,
        sipp_exit,
        sipp_successful: counts.successful,
        sipp_failed: counts.failed,
        window,
        vaani_cpu_percent: percent_of_core(vaani_cpu, window),
        vaani_threads: thread_shares(&threads_before, &threads_after, window),
        vaani_rss,
        vaani_idle_rss: idle_rss,
        generator_cpu_percent: percent_of_core(generator_cpu, window),
        sipp_cpu_percent: percent_of_core(sipp_cpu, window),
        window_stats,
        inbound_sent,
        inbound_received: delta("vaani_rtp_packets_received_total"),
        inbound_jitter_lost: delta("vaani_rtp_packets_lost_total"),
        window_jitter_lost: window_delta("vaani_media_rtp_packets_lost_total"),
        window_received: window_delta("vaani_media_rtp_packets_received_total"),
        kernel_udp_drops,
        baseline: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(calls: usize, cpu: f64) -> CapacityStep {
        CapacityStep {
            calls,
            calls_up: calls,
            sipp_exit: 0,
            sipp_successful: calls as u64,
            sipp_failed: 0,
            window: Duration::from_secs(10),
            vaani_cpu_percent: cpu,
            vaani_threads: vec![("vaani-media".into(), cpu)],
            vaani_rss: 200 << 20,
            vaani_idle_rss: 100 << 20,
            generator_cpu_percent: 1.0,
            sipp_cpu_percent: 0.5,
            window_stats: LoadStats {
                received: calls as u64 * 500,
                ..LoadStats::default()
            },
            inbound_sent: 1000,
            inbound_received: 1000,
            inbound_jitter_lost: 0,
            window_jitter_lost: 0,
            window_received: 1000,
            kernel_udp_drops: 0,
            baseline: Some(BaselineStep {
                cpu_percent: cpu / 4.0,
                sent: 1,
                received: 1,
                pacing_p99: Duration::ZERO,
            }),
        }
    }

    #[test]
    fn a_cheap_clean_step_meets_every_target() {
        let s = step(1000, 50.0);
        assert!(s.failures().is_empty(), "{:?}", s.failures());
        assert_eq!(s.calls_per_core(), 2000.0);
        assert_eq!(s.rss_per_call(), (100 << 20) / 1000);
        assert_eq!(s.cost_ratio(), Some(4.0));
    }

    #[test]
    fn loss_pacing_and_cpu_are_each_failures() {
        let mut s = step(100, 50.0); // 0.5 % per call
        assert_eq!(s.capacity_failures(), Vec::<String>::new());
        assert_eq!(s.failures().len(), 1);
        s.window_stats.pacing.record(5_000_000);
        assert!(!s.saturated(), "late packets alone do not saturate");
        s.inbound_received = 990;
        let failures = s.capacity_failures();
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert_eq!(s.inbound_lost(), 10);
        s.inbound_received = 1000;
        // 10 s at 50 packets/s for 100 calls is 50,000; 1 per call is allowed for the edges.
        s.window_stats.received = 40_000;
        assert_eq!(s.outbound_shortfall(), 9_900);
        assert!(s.saturated());
        s.inbound_received = 990;
        assert_eq!(s.inbound_lost(), 10);
        assert!(s.saturated());
    }

    #[test]
    fn the_report_names_the_highest_passing_step() {
        let report = CapacityReport {
            vaani_binary: "vaani".into(),
            vaani_idle_cpu_percent: 1.0,
            caller_audio: CallerAudio::Silence,
            steps: vec![step(100, 5.0), step(200, 10.0), step(400, 80.0)],
        };
        assert_eq!(report.highest_passing().map(|s| s.calls), Some(200));
        assert_eq!(report.highest_clean().map(|s| s.calls), Some(400));
        let markdown = report.to_markdown();
        assert!(markdown.contains("**200 calls**"), "{markdown}");
        assert_eq!(markdown.matches("\n| 400 |").count(), 1, "{markdown}");
    }
}
