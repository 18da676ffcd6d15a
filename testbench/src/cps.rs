//! The `cps` benchmark: call setup rate. sipp runs `uac_cps.xml` (INVITE → 200 → ACK → BYE →
//! 200, media pointed at a socket this process drains) against the echo tenant at a rising rate;
//! each rate runs for a fixed time, and counts as sustained when every call completed, none
//! failed and sipp finished within a quarter of the planned time plus a few seconds (it did not
//! fall behind). vaani's CPU over each rate is reported beside it.
//!
//! Over UDP vaani's SIP endpoint keeps every ended call for 64 × T1 = 32 s to absorb
//! retransmissions, in a table of at most `vaani_sip::endpoint::MAX_CALLS` (10,000) calls; a
//! full table answers `503`. So a rate is only *sustained* if it runs longer than that (the
//! table reaches its steady size, rate × 32 s), and each rate starts after the previous one's
//! calls have left the table: by default every rate runs 40 s after a 33 s drain. Shorter
//! `--duration`s measure bursts.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::VaaniServer;
use crate::bench::{
    BenchError, SippLoad, SippLoadSpec, percent_of_core, server_spec, thread_shares,
    wait_until_idle,
};
use crate::procstat::{process_cpu, raise_open_file_limit, thread_cpu_by_name};

/// Slack on top of the planned duration before a rate counts as not sustained.
const SLACK: Duration = Duration::from_secs(3);

/// How the rates run.
#[derive(Debug, Clone)]
pub struct CpsOptions {
    /// Calls per second to try, ascending.
    pub rates: Vec<u32>,
    /// How long each rate runs.
    pub duration: Duration,
    /// How long each call stays up between ACK and BYE.
    pub hold: Duration,
    /// Wait before each rate after the first, so that the previous rate's ended calls have left
    /// vaani's SIP call table (64 × T1 = 32 s over UDP).
    pub drain: Duration,
    /// Stop after the first rate that was not sustained.
    pub stop_on_failure: bool,
}

impl Default for CpsOptions {
    fn default() -> Self {
        Self {
            rates: vec![100, 200, 300, 400, 500, 600],
            duration: Duration::from_secs(40),
            hold: Duration::ZERO,
            drain: Duration::from_secs(33),
            stop_on_failure: true,
        }
    }
}

/// One rate.
#[derive(Debug, Clone)]
pub struct CpsStep {
    /// Calls per second asked for.
    pub rate: u32,
    /// Calls asked for (rate × duration).
    pub calls: u64,
    /// Calls sipp completed.
    pub successful: u64,
    /// Calls sipp counted as failed.
    pub failed: u64,
    /// sipp's exit code (0: every call succeeded).
    pub sipp_exit: i32,
    /// Time from starting sipp to its exit.
    pub elapsed: Duration,
    /// Planned time (calls / rate).
    pub planned: Duration,
    /// vaani's CPU over the step, percent of one core.
    pub vaani_cpu_percent: f64,
    /// vaani's CPU by thread name over the step, percent of one core, largest first.
    pub vaani_threads: Vec<(String, f64)>,
    /// sipp's CPU over the step, percent of one core.
    pub sipp_cpu_percent: f64,
    /// Calls vaani still reported active 30 s after sipp finished (`vaani_active_calls`).
    pub left_active: u64,
}

impl CpsStep {
    /// Calls completed per second of wall time.
    pub fn achieved_rate(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.successful as f64 / seconds
        } else {
            0.0
        }
    }

    /// Whether every call completed, none failed and sipp kept to the planned time.
    pub fn sustained(&self) -> bool {
        self.failed == 0
            && self.sipp_exit == 0
            && self.successful == self.calls
            && self.elapsed <= self.planned + self.planned / 4 + SLACK
            && self.left_active == 0
    }
}

/// All rates run.
#[derive(Debug, Clone)]
pub struct CpsReport {
    /// The vaani binary measured.
    pub vaani_binary: String,
    /// Rates run, in order.
    pub steps: Vec<CpsStep>,
}

impl CpsReport {
    /// The highest sustained rate.
    pub fn highest_sustained(&self) -> Option<&CpsStep> {
        self.steps.iter().rfind(|s| s.sustained())
    }

    /// The report as markdown: one table row per rate and a summary.
    pub fn to_markdown(&self) -> String {
        let mut out = format!("vaani binary: `{}`\n\n", self.vaani_binary);
        out.push_str(
            "| CPS asked | calls | successful | failed | elapsed s | planned s | achieved CPS \
             | vaani CPU % | sipp CPU % | vaani threads (% of a core) | left active | sustained |\n\
             |--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|---|\n",
        );
        for s in &self.steps {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {:.1} | {:.1} | {:.0} | {:.0} | {:.0} | {} | {} | {} |\n",
                s.rate,
                s.calls,
                s.successful,
                s.failed,
                s.elapsed.as_secs_f64(),
                s.planned.as_secs_f64(),
                s.achieved_rate(),
                s.vaani_cpu_percent,
                s.sipp_cpu_percent,
                s.vaani_threads
                    .iter()
                    .take(4)
                    .map(|(name, pct)| format!("{name} {pct:.0}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                s.left_active,
                if s.sustained() { "yes" } else { "no" },
            ));
        }
        out.push('\n');
        match self.highest_sustained() {
            Some(step) => out.push_str(&format!(
                "Highest sustained rate with no failed call: **{} CPS** (target ≥ 500).\n",
                step.rate
            )),
            None => out.push_str("Highest sustained rate with no failed call: **none**.\n"),
        }
        out
    }
}

/// Runs every rate against a vaani it starts itself (the echo tenant), printing each rate's
/// result to stderr as it finishes.
pub fn run_cps(options: &CpsOptions) -> Result<CpsReport, BenchError> {
    raise_open_file_limit();
    let max_rate = options.rates.iter().copied().max().unwrap_or(1);
    // Concurrent calls stay small: each lasts a round trip plus the hold.
    let concurrent = (f64::from(max_rate) * (options.hold.as_secs_f64() + 2.0)) as usize + 100;
    let server = VaaniServer::start(&server_spec(concurrent));
    let sink = MediaSink::start().map_err(|e| BenchError::Sipp(format!("media sink: {e}")))?;
    let mut report = CpsReport {
        vaani_binary: crate::vaani_binary().display().to_string(),
        steps: Vec::new(),
    };
    for (index, &rate) in options.rates.iter().enumerate() {
        if index > 0 {
            std::thread::sleep(options.drain);
        }
        let step = run_rate(&server, sink.port, rate, options, concurrent)?;
        eprintln!(
            "cps: {} CPS: {}/{} ok, {} failed, {:.1} s (planned {:.1} s), vaani {:.0} % CPU, {} left active, {}",
            step.rate,
            step.successful,
            step.calls,
            step.failed,
            step.elapsed.as_secs_f64(),
            step.planned.as_secs_f64(),
            step.vaani_cpu_percent,
            step.left_active,
            if step.sustained() {
                "sustained"
            } else {
                "NOT sustained"
            }
        );
        let stop = options.stop_on_failure && !step.sustained();
        report.steps.push(step);
        if stop {
            break;
        }
    }
    Ok(report)
}

fn run_rate(
    server: &VaaniServer,
    sink_port: u16,
    rate: u32,
    options: &CpsOptions,
    concurrent: usize,
) -> Result<CpsStep, BenchError> {
    let rate = rate.max(1);
    let calls = (f64::from(rate) * options.duration.as_secs_f64())
        .ceil()
        .max(1.0) as u64;
    let planned = Duration::from_secs_f64(calls as f64 / f64::from(rate));
    let timeout = planned * 3 + Duration::from_secs(30);
    let vaani_before = process_cpu(server.pid())?;
    let threads_before = thread_cpu_by_name(server.pid())?;
    let sipp = SippLoad::start(
        server,
        &SippLoadSpec {
            scenario: "uac_cps.xml",
            substitutions: vec![
                ("SINK_PORT", sink_port.to_string()),
                ("PAUSE_MS", options.hold.as_millis().to_string()),
            ],
            injection: Vec::new(),
            rate,
            calls,
            limit: concurrent as u64,
            timeout,
        },
    )?;
    let started = sipp.started();
    let sipp_pid = sipp.pid();
    // sipp's CPU is read just before it exits: poll it while waiting.
    let sipp_cpu = Arc::new(std::sync::Mutex::new(Duration::ZERO));
    let done = Arc::new(AtomicBool::new(false));
    let poller = {
        let sipp_cpu = sipp_cpu.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                if let Ok(cpu) = process_cpu(sipp_pid)
                    && let Ok(mut cell) = sipp_cpu.lock()
                {
                    *cell = cpu;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let (sipp_exit, counts, errors) = sipp.wait(timeout + Duration::from_secs(10));
    if counts.failed > 0 || sipp_exit != 0 {
        eprintln!("cps: {rate} CPS: sipp's errors begin with:\n{errors}");
    }
    let elapsed = started.elapsed();
    let vaani_cpu = process_cpu(server.pid())?.saturating_sub(vaani_before);
    let threads_after = thread_cpu_by_name(server.pid())?;
    done.store(true, Ordering::Release);
    let _ = poller.join();
    let sipp_cpu = sipp_cpu.lock().map(|c| *c).unwrap_or_default();
    let left_active = wait_until_idle(server, Duration::from_secs(30));
    Ok(CpsStep {
        rate,
        calls,
        successful: counts.successful,
        failed: counts.failed,
        sipp_exit,
        elapsed,
        planned,
        vaani_cpu_percent: percent_of_core(vaani_cpu, elapsed),
        vaani_threads: thread_shares(&threads_before, &threads_after, elapsed),
        sipp_cpu_percent: percent_of_core(sipp_cpu, elapsed),
        left_active,
    })
}

/// A socket that reads and discards the RTP vaani sends to the benchmark's short calls.
struct MediaSink {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MediaSink {
    fn start() -> std::io::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        let port = socket.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 2048];
                while !stop.load(Ordering::Acquire) {
                    let _ = socket.recv_from(&mut buffer);
                }
            })
        };
        Ok(Self {
            port,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for MediaSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(rate: u32, failed: u64, elapsed_s: u64) -> CpsStep {
        CpsStep {
            rate,
            calls: u64::from(rate) * 10,
            successful: u64::from(rate) * 10 - failed,
            failed,
            sipp_exit: i32::from(failed > 0),
            elapsed: Duration::from_secs(elapsed_s),
            planned: Duration::from_secs(10),
            vaani_cpu_percent: 50.0,
            vaani_threads: vec![("vaani-calls".into(), 40.0)],
            sipp_cpu_percent: 5.0,
            left_active: 0,
        }
    }

    #[test]
    fn a_rate_is_sustained_only_without_failures_and_on_time() {
        assert!(step(100, 0, 11).sustained());
        assert!(!step(100, 1, 11).sustained());
        assert!(!step(100, 0, 30).sustained(), "sipp fell behind");
    }

    #[test]
    fn the_report_names_the_highest_sustained_rate() {
        let report = CpsReport {
            vaani_binary: "vaani".into(),
            steps: vec![step(100, 0, 10), step(200, 0, 11), step(400, 3, 12)],
        };
        assert_eq!(report.highest_sustained().map(|s| s.rate), Some(200));
        assert!(report.to_markdown().contains("**200 CPS**"));
    }
}
