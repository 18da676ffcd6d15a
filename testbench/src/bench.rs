//! Pieces the `capacity` and `cps` benchmarks share: the server they run against, a sipp load
//! run in the background with its statistics, and reading vaani's Prometheus counters.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{OPERATOR_KEY, ScratchDir, ServerSpec, TenantSpec, VaaniServer, free_port, repo_root};

/// The number the echo tenant answers.
pub const ECHO_NUMBER: &str = "+918000000099";

/// Why a benchmark could not run (as opposed to a step that missed its targets).
#[derive(Debug)]
pub enum BenchError {
    /// sipp could not be started or its files written.
    Sipp(String),
    /// The RTP load generator or the UDP echo could not start.
    Load(crate::load::LoadError),
    /// A `/proc` figure could not be read.
    Proc(crate::procstat::ProcError),
    /// vaani's HTTP API did not answer.
    Http(String),
}

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BenchError::Sipp(what) => write!(f, "sipp: {what}"),
            BenchError::Load(error) => write!(f, "{error}"),
            BenchError::Proc(error) => write!(f, "/proc: {error}"),
            BenchError::Http(what) => write!(f, "vaani HTTP API: {what}"),
        }
    }
}

impl std::error::Error for BenchError {}

impl From<crate::load::LoadError> for BenchError {
    fn from(error: crate::load::LoadError) -> Self {
        BenchError::Load(error)
    }
}

impl From<crate::procstat::ProcError> for BenchError {
    fn from(error: crate::procstat::ProcError) -> Self {
        BenchError::Proc(error)
    }
}

/// The server both benchmarks call: the echo tenant only, `calls` RTP port pairs (in
/// 10000-…, below the kernel's ephemeral ports so the load generator's sockets never take
/// them), room for as many plugin instances, and quiet logs.
pub fn server_spec(calls: usize) -> ServerSpec {
    let mut spec = ServerSpec::demo();
    spec.tenants = vec![TenantSpec::new("echo", ECHO_NUMBER, "echo")];
    let pairs = (calls + 64) as u32;
    let end = (10_000 + 2 * pairs - 1).min(32_767) as u16;
    spec.rtp_ports = Some((10_000, end));
    spec.rtp_timeout_secs = 60;
    spec.extra_toml = format!("\n[sandbox]\nmax_instances = {}\n", calls + 64);
    // Hundreds of calls per second to one number from one address: the flood limits
    // (`[sip] max_calls_per_minute_per_number`, `max_invites_per_second_per_source`) are off.
    spec.sip_toml
        .push_str("max_calls_per_minute_per_number = 0\nmax_invites_per_second_per_source = 0\n");
    spec.env.push(("RUST_LOG".to_string(), "warn".to_string()));
    spec
}

/// vaani's Prometheus text from `/metrics`.
pub fn scrape_metrics(server: &VaaniServer) -> Result<String, BenchError> {
    match server.http_get("/metrics", Some(OPERATOR_KEY)) {
        Ok((200, body)) => Ok(body),
        Ok((status, body)) => Err(BenchError::Http(format!("/metrics {status}: {body}"))),
        Err(error) => Err(BenchError::Http(error)),
    }
}

/// The value of an unlabelled metric in Prometheus text (0 when absent).
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (key, value) = line.split_once(' ')?;
            (key == name).then(|| value.trim().parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// Waits until vaani reports no active call (up to `limit`); returns the active calls it last
/// reported (0: idle; `u64::MAX`: `/metrics` never answered).
pub fn wait_until_idle(server: &VaaniServer, limit: Duration) -> u64 {
    let deadline = Instant::now() + limit;
    let mut active = u64::MAX;
    loop {
        if let Ok(text) = scrape_metrics(server) {
            active = metric(&text, "vaani_active_calls").max(0.0) as u64;
            if active == 0 {
                return 0;
            }
        }
        if Instant::now() > deadline {
            return active;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// sipp's counts at the end of a run, from its `-trace_stat` file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SippCounts {
    /// Calls sipp started.
    pub started: u64,
    /// Calls that reached the end of the scenario.
    pub successful: u64,
    /// Calls that failed (unexpected message, timeout, …).
    pub failed: u64,
}

/// The first lines of sipp's `_errors.log` in `dir` (why calls failed), at most `max` bytes.
pub fn sipp_error_summary(dir: &Path, max: usize) -> String {
    let mut summary = String::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().ends_with("_errors.log") {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    if summary.len() + line.len() > max {
                        return summary;
                    }
                    summary.push_str(line);
                    summary.push('\n');
                }
            }
        }
    }
    summary
}

/// A sipp run in the background (its own scratch directory); killed on drop.
pub struct SippLoad {
    child: Child,
    dir: ScratchDir,
    started: Instant,
}

/// What to run: a scenario, its rewrites, rate and count.
pub struct SippLoadSpec<'a> {
    /// A scenario file in `testbench/scenarios/`.
    pub scenario: &'a str,
    /// Tokens replaced in the scenario text.
    pub substitutions: Vec<(&'a str, String)>,
    /// Lines of an `-inf` injection file (without the `SEQUENTIAL` header); empty: none.
    pub injection: Vec<String>,
    /// Calls started per second.
    pub rate: u32,
    /// Calls in total.
    pub calls: u64,
    /// Concurrent calls allowed.
    pub limit: u64,
    /// sipp's overall timeout.
    pub timeout: Duration,
}

impl SippLoad {
    /// Starts sipp calling `server`'s echo number.
    pub fn start(server: &VaaniServer, spec: &SippLoadSpec<'_>) -> Result<Self, BenchError> {
        let dir = ScratchDir::new("sipp-load");
        let source = repo_root().join("testbench/scenarios").join(spec.scenario);
        let mut text = std::fs::read_to_string(&source)
            .map_err(|e| BenchError::Sipp(format!("read {}: {e}", source.display())))?;
        for (token, value) in &spec.substitutions {
            if !text.contains(token) {
                return Err(BenchError::Sipp(format!(
                    "{} has no {token}",
                    spec.scenario
                )));
            }
            text = text.replace(token, value);
        }
        let scenario = dir.path().join(spec.scenario);
        std::fs::write(&scenario, text).map_err(|e| BenchError::Sipp(e.to_string()))?;
        let mut command = Command::new("sipp");
        command
            .current_dir(dir.path())
            .arg(server.sip_addr().to_string())
            .arg("-sf")
            .arg(&scenario)
            .args(["-s", ECHO_NUMBER, "-i", "127.0.0.1", "-mi", "127.0.0.1"])
            .args(["-p", &free_port().to_string()])
            .args(["-mp", &free_port().to_string()])
            .args(["-nostdin", "-trace_err", "-trace_stat", "-fd", "1"])
            .args(["-stf", "stats.csv"])
            .args(["-r", &spec.rate.to_string(), "-rp", "1000"])
            .args(["-m", &spec.calls.to_string(), "-l", &spec.limit.to_string()])
            .args(["-timeout", &format!("{}s", spec.timeout.as_secs().max(1))])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if !spec.injection.is_empty() {
            let path = dir.path().join("calls.csv");
            let mut csv = String::from("SEQUENTIAL\n");
            for line in &spec.injection {
                csv.push_str(line);
                csv.push('\n');
            }
            std::fs::write(&path, csv).map_err(|e| BenchError::Sipp(e.to_string()))?;
            command.arg("-inf").arg(&path);
        }
        let child = command
            .spawn()
            .map_err(|e| BenchError::Sipp(format!("start sipp (Debian sip-tester): {e}")))?;
        Ok(Self {
            child,
            dir,
            started: Instant::now(),
        })
    }

    /// sipp's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// When sipp was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Waits for sipp to exit (killing it after `limit`); returns its exit code (-1 when killed),
    /// its final counts and the start of its error log.
    pub fn wait(mut self, limit: Duration) -> (i32, SippCounts, String) {
        let deadline = Instant::now() + limit;
        let code = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break -1;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        (
            code,
            read_sipp_counts(&self.dir.path().join("stats.csv")),
            sipp_error_summary(self.dir.path(), 600),
        )
    }

    /// The scratch directory (sipp's logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SippLoad {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last line of sipp's `-trace_stat` CSV (`;`-separated, header first).
fn read_sipp_counts(path: &PathBuf) -> SippCounts {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    parse_sipp_counts(&text)
}

fn parse_sipp_counts(text: &str) -> SippCounts {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return SippCounts::default();
    };
    let Some(last) = lines.next_back() else {
        return SippCounts::default();
    };
    let names: Vec<&str> = header.split(';').collect();
    let values: Vec<&str> = last.split(';').collect();
    let get = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .and_then(|i| values.get(i))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    SippCounts {
        started: get("OutgoingCall(C)"),
        successful: get("SuccessfulCall(C)"),
        failed: get("FailedCall(C)"),
    }
}

/// Percent of one core used over `window`.
pub fn percent_of_core(cpu: Duration, window: Duration) -> f64 {
    if window.is_zero() {
        return 0.0;
    }
    100.0 * cpu.as_secs_f64() / window.as_secs_f64()
}

/// CPU per thread name over the window, percent of one core, largest first (under 0.5 % left
/// out).
pub fn thread_shares(
    before: &BTreeMap<String, Duration>,
    after: &BTreeMap<String, Duration>,
    window: Duration,
) -> Vec<(String, f64)> {
    let mut shares: Vec<(String, f64)> = after
        .iter()
        .map(|(name, cpu)| {
            let earlier = before.get(name).copied().unwrap_or_default();
            (
                name.trim_end_matches('-').to_string(),
                percent_of_core(cpu.saturating_sub(earlier), window),
            )
        })
        .filter(|(_, pct)| *pct >= 0.5)
        .collect();
    shares.sort_by(|a, b| b.1.total_cmp(&a.1));
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sipp_counts_come_from_the_last_stat_line() {
        let text = "StartTime;OutgoingCall(C);SuccessfulCall(C);FailedCall(C);\n\
                    a;5;3;0;\n\
                    b;10;9;1;\n";
        assert_eq!(
            parse_sipp_counts(text),
            SippCounts {
                started: 10,
                successful: 9,
                failed: 1
            }
        );
        assert_eq!(parse_sipp_counts(""), SippCounts::default());
    }

    #[test]
    fn metrics_are_read_by_exact_name() {
        let text = "# HELP vaani_active_calls x\nvaani_active_calls 3\n\
                    vaani_active_calls_peak 9\nvaani_rtp_packets_lost_total 12\n";
        assert_eq!(metric(text, "vaani_active_calls"), 3.0);
        assert_eq!(metric(text, "vaani_rtp_packets_lost_total"), 12.0);
        assert_eq!(metric(text, "missing"), 0.0);
    }
}
