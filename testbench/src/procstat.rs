//! Process and kernel figures read from `/proc` for the benchmarks: CPU time and resident memory
//! of one process, CPU time per thread name (where the time goes), and the kernel's UDP drop
//! counters.

use std::collections::BTreeMap;
use std::time::Duration;

/// Why a `/proc` figure could not be read.
#[derive(Debug)]
pub enum ProcError {
    /// The file could not be read (the process is gone, or not Linux).
    Read(String, std::io::Error),
    /// The file did not have the expected shape.
    Parse(String),
}

impl std::fmt::Display for ProcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProcError::Read(path, error) => write!(f, "reading {path}: {error}"),
            ProcError::Parse(what) => write!(f, "unexpected contents: {what}"),
        }
    }
}

impl std::error::Error for ProcError {}

fn read(path: &str) -> Result<String, ProcError> {
    std::fs::read_to_string(path).map_err(|e| ProcError::Read(path.to_string(), e))
}

/// Clock ticks per second of `utime`/`stime` in `/proc/*/stat`.
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

/// `(comm, utime + stime in ticks)` from the text of a `stat` file. The command name is in
/// parentheses and may itself contain spaces or parentheses, so fields are counted from the
/// last `)`.
fn parse_stat(text: &str) -> Result<(String, u64), ProcError> {
    let open = text
        .find('(')
        .ok_or_else(|| ProcError::Parse("stat without (".into()))?;
    let close = text
        .rfind(')')
        .ok_or_else(|| ProcError::Parse("stat without )".into()))?;
    let comm = text.get(open + 1..close).unwrap_or("").to_string();
    // After ") ": field 3 (state) is index 0, so utime (field 14) is index 11, stime index 12.
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let field = |index: usize| -> Result<u64, ProcError> {
        fields
            .get(index)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| ProcError::Parse(format!("stat field {}", index + 3)))
    };
    Ok((comm, field(11)? + field(12)?))
}

/// CPU time (user + system) a process or thread has used, from a `stat` file.
fn stat_cpu(path: &str) -> Result<Duration, ProcError> {
    let (_, ticks) = parse_stat(&read(path)?)?;
    Ok(ticks_to_duration(ticks))
}

fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64)
}

/// CPU time (user + system, all threads) of process `pid`.
pub fn process_cpu(pid: u32) -> Result<Duration, ProcError> {
    stat_cpu(&format!("/proc/{pid}/stat"))
}

/// CPU time of thread `tid` of this process.
pub fn own_thread_cpu(tid: i32) -> Result<Duration, ProcError> {
    stat_cpu(&format!("/proc/self/task/{tid}/stat"))
}

/// Resident memory of process `pid` (`VmRSS`), bytes.
pub fn process_rss(pid: u32) -> Result<u64, ProcError> {
    let path = format!("/proc/{pid}/status");
    let text = read(&path)?;
    text.lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
        .ok_or_else(|| ProcError::Parse(format!("{path} without VmRSS")))
}

/// CPU time per thread name of process `pid`; trailing digits are dropped so that
/// `vaani-media-0` and `vaani-media-1` count together as `vaani-media-`. Threads that ended
/// since an earlier sample are missing from this one.
pub fn thread_cpu_by_name(pid: u32) -> Result<BTreeMap<String, Duration>, ProcError> {
    let dir = format!("/proc/{pid}/task");
    let entries = std::fs::read_dir(&dir).map_err(|e| ProcError::Read(dir.clone(), e))?;
    let mut by_name: BTreeMap<String, u64> = BTreeMap::new();
    for entry in entries.flatten() {
        let path = entry.path().join("stat");
        // A thread may end between listing and reading: skip it.
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let (comm, ticks) = parse_stat(&text)?;
        let name = comm
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .to_string();
        *by_name.entry(name).or_default() += ticks;
    }
    Ok(by_name
        .into_iter()
        .map(|(name, ticks)| (name, ticks_to_duration(ticks)))
        .collect())
}

/// The kernel's system-wide UDP counters that show dropped datagrams (`/proc/net/snmp`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpDropCounters {
    /// `InErrors`: datagrams that could not be delivered (includes the two below).
    pub in_errors: u64,
    /// `RcvbufErrors`: dropped because a socket's receive buffer was full.
    pub rcvbuf_errors: u64,
    /// `SndbufErrors`: dropped because a socket's send buffer was full.
    pub sndbuf_errors: u64,
}

impl UdpDropCounters {
    /// Reads the current counters.
    pub fn read() -> Result<Self, ProcError> {
        Self::parse(&read("/proc/net/snmp")?)
    }

    fn parse(text: &str) -> Result<Self, ProcError> {
        let mut lines = text.lines().filter(|l| l.starts_with("Udp:"));
        let header = lines
            .next()
            .ok_or_else(|| ProcError::Parse("no Udp: header in /proc/net/snmp".into()))?;
        let values = lines
            .next()
            .ok_or_else(|| ProcError::Parse("no Udp: values in /proc/net/snmp".into()))?;
        let pairs: BTreeMap<&str, u64> = header
            .split_whitespace()
            .zip(values.split_whitespace())
            .filter_map(|(name, value)| Some((name, value.parse().ok()?)))
            .collect();
        let get = |name: &str| pairs.get(name).copied().unwrap_or(0);
        Ok(Self {
            in_errors: get("InErrors"),
            rcvbuf_errors: get("RcvbufErrors"),
            sndbuf_errors: get("SndbufErrors"),
        })
    }

    /// Datagrams dropped between `earlier` and `self`.
    pub fn since(&self, earlier: &Self) -> u64 {
        self.in_errors.saturating_sub(earlier.in_errors)
            + self.sndbuf_errors.saturating_sub(earlier.sndbuf_errors)
    }
}

/// Raises this process's open-file limit to its hard limit (sockets for thousands of calls);
/// children started afterwards (vaani, sipp) inherit it. Returns the new soft limit.
pub fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read the struct we pass and nothing else.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        }
    }
    limit.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let text = "42 (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0";
        let (comm, ticks) = parse_stat(text).unwrap();
        assert_eq!(comm, "odd) name");
        assert_eq!(ticks, 325);
    }

    #[test]
    fn snmp_udp_counters_are_read_by_name() {
        let text = "Ip: Forwarding\nIp: 1\n\
            Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n\
            Udp: 10 2 7 9 5 1\n";
        let counters = UdpDropCounters::parse(text).unwrap();
        assert_eq!(counters.in_errors, 7);
        assert_eq!(counters.rcvbuf_errors, 5);
        assert_eq!(counters.sndbuf_errors, 1);
        assert_eq!(counters.since(&UdpDropCounters::default()), 8);
    }

    #[test]
    fn own_process_figures_are_readable() {
        let pid = std::process::id();
        assert!(process_rss(pid).unwrap() > 0);
        assert!(process_cpu(pid).is_ok());
        assert!(!thread_cpu_by_name(pid).unwrap().is_empty());
    }
}
