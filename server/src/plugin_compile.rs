//! Compiling uploaded plugins in a separate, resource-limited process.
//!
//! Cranelift's memory and time on hostile input are outside wasmtime's threat
//! model, so the server never compiles an upload itself. [`PluginCompiler`]
//! runs this same executable as `vaani compile-plugin` (a hidden subcommand,
//! [`run_child`]) with `setrlimit` limits on CPU time, address space, heap,
//! open files and core dumps, an empty environment, a wall-clock timeout and a
//! cap on the bytes it may answer with. The child runs
//! [`PluginHost::precompile`] on a [`HostConfig::compile_only`] host (no
//! pooling allocator: the pool would reserve terabytes of address space) and
//! writes the artifact back; the parent loads it with
//! [`PluginHost::load_precompiled`].
//!
//! # Protocol
//!
//! The child reads the component from standard input (or `--wasm PATH`) and
//! writes to standard output, all integers big-endian:
//!
//! ```text
//! "VNICMP01"            8 bytes, magic and protocol version
//! header length         u32, at most 1 MiB
//! header                JSON (below)
//! artifact              exactly `artifact_bytes` bytes, only when `status` is "ok"
//! ```
//!
//! The header is one of
//!
//! ```text
//! {"status":"ok","manifest":{ArtifactManifest},"artifact_bytes":N}
//! {"status":"rejected","error":{"code":"unsupported_world","message":"..."}}
//! {"status":"failed","message":"..."}     (the child itself could not work)
//! ```
//!
//! The exit status is 0 with "ok", 1 with "rejected" and 2 with "failed".
//! `code` is [`LoadError::code`] (or `resource_limit` when wasmtime could not
//! map memory under the limits) and `message` its exact text.
//!
//! `POST /api/v1/plugins` (server/src/http/plugins.rs) calls
//! [`PluginCompiler::compile`] and stores the manifest and artifact.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use vaani_sandbox::{
    ArtifactManifest, HostConfig, LoadError, MAX_COMPONENT_BYTES, PluginHost, PrecompiledPlugin,
};

/// Magic and protocol version at the start of the child's answer.
pub const PROTOCOL_MAGIC: &[u8; 8] = b"VNICMP01";
/// Largest header the parent accepts.
const MAX_HEADER_BYTES: usize = 1 << 20;
/// Most bytes of the child's standard error kept for error messages.
const MAX_STDERR_BYTES: usize = 16 << 10;
/// Subcommand name of the child.
pub const CHILD_SUBCOMMAND: &str = "compile-plugin";
/// Code for a compilation stopped by a resource limit (CPU, memory, wall clock).
pub const RESOURCE_LIMIT_CODE: &str = "resource_limit";

/// Limits of one compile child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileLimits {
    /// `RLIMIT_CPU`: CPU seconds (all threads together) before `SIGXCPU`;
    /// `SIGKILL` follows one second later.
    pub cpu_seconds: u64,
    /// `RLIMIT_AS`: address space. It must leave room for the 4 GiB reservation
    /// (plus guards) wasmtime maps for each linear memory when `describe()` runs.
    pub address_space_bytes: u64,
    /// `RLIMIT_DATA`: private writable memory (heap, stacks, mapped wasm memory
    /// pages); the real bound on how much memory compilation may use. Reserved
    /// but inaccessible address space does not count.
    pub data_bytes: u64,
    /// `RLIMIT_NOFILE`: open descriptors (the pipes, a memfd per module image).
    pub open_files: u64,
    /// Wall-clock time before the child is killed.
    pub wall_timeout: Duration,
    /// Most bytes read back from the child (header and artifact).
    pub max_output_bytes: usize,
}

impl Default for CompileLimits {
    fn default() -> Self {
        CompileLimits {
            cpu_seconds: 30,
            // Two linear memories of 4 GiB + guards each, plus the compiler.
            address_space_bytes: 12 << 30,
            // echo.wasm peaks at about 50 MiB resident, clinic.wasm at 60 MiB.
            data_bytes: 1 << 30,
            open_files: 32,
            wall_timeout: Duration::from_secs(60),
            max_output_bytes: 256 << 20,
        }
    }
}

/// Which limit stopped a compile child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceLimit {
    /// `RLIMIT_CPU` (`SIGXCPU`).
    Cpu,
    /// `RLIMIT_AS` / `RLIMIT_DATA`: an allocation failed.
    Memory,
}

impl std::fmt::Display for ResourceLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResourceLimit::Cpu => "CPU time",
            ResourceLimit::Memory => "memory",
        })
    }
}

/// Why compiling an upload failed.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The child refused the component; `code` and `message` are stable and
    /// meant for the uploader.
    #[error("{message}")]
    Rejected {
        /// Stable machine-readable code ([`LoadError::code`], or `resource_limit`).
        code: String,
        /// Exact reason.
        message: String,
    },
    /// The child was killed by a resource limit (or by `SIGKILL`, which the
    /// hard CPU limit and the kernel's out-of-memory killer both send).
    #[error("plugin compilation was stopped by {}: {status}", limit.map_or("a resource limit (SIGKILL)".to_string(), |l| format!("the {l} limit")))]
    KilledByLimit {
        /// The limit, when the way the child died shows it.
        limit: Option<ResourceLimit>,
        /// How the child ended.
        status: String,
        /// The end of the child's standard error.
        stderr: String,
    },
    /// The child ran past the wall-clock timeout and was killed.
    #[error("plugin compilation ran past its {} s wall-clock limit", after.as_secs_f64())]
    TimedOut {
        /// The timeout.
        after: Duration,
    },
    /// The child ended without a valid answer (crash, other signal).
    #[error("the plugin compiler ended without an answer ({status}): {stderr}")]
    Crashed {
        /// How the child ended.
        status: String,
        /// The end of the child's standard error.
        stderr: String,
    },
    /// The child's answer broke the protocol (or it said it could not work).
    #[error("the plugin compiler's answer is invalid: {0}")]
    Protocol(String),
    /// The child could not be started or talked to.
    #[error("cannot run the plugin compiler {}: {source}", executable.display())]
    Io {
        /// The executable.
        executable: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

impl CompileError {
    /// A stable, machine-readable code: the child's code for a rejection,
    /// `resource_limit` for a limit or the timeout, `internal` otherwise.
    pub fn code(&self) -> &str {
        match self {
            CompileError::Rejected { code, .. } => code,
            CompileError::KilledByLimit { .. } | CompileError::TimedOut { .. } => {
                RESOURCE_LIMIT_CODE
            }
            CompileError::Crashed { .. } | CompileError::Protocol(_) | CompileError::Io { .. } => {
                "internal"
            }
        }
    }
}

/// An upload compiled by the child.
#[derive(Debug, Clone)]
pub struct CompiledPlugin {
    /// The manifest and artifact, ready for [`PluginHost::load_precompiled`].
    pub precompiled: PrecompiledPlugin,
    /// Wall-clock time the child took.
    pub elapsed: Duration,
}

/// Runs `vaani compile-plugin` children.
#[derive(Debug, Clone)]
pub struct PluginCompiler {
    executable: PathBuf,
    limits: CompileLimits,
}

impl PluginCompiler {
    /// A compiler that runs the current executable.
    pub fn current_exe(limits: CompileLimits) -> std::io::Result<PluginCompiler> {
        Ok(PluginCompiler::with_executable(
            std::env::current_exe()?,
            limits,
        ))
    }

    /// A compiler that runs `executable` (a `vaani` binary) as the child.
    pub fn with_executable(executable: PathBuf, limits: CompileLimits) -> PluginCompiler {
        PluginCompiler { executable, limits }
    }

    /// Compiles `wasm` in a child. Oversized uploads are refused without
    /// starting one. The returned artifact's content hash and artifact hash have
    /// been checked against the bytes sent and received.
    pub async fn compile(&self, wasm: &[u8]) -> Result<CompiledPlugin, CompileError> {
        if wasm.len() > MAX_COMPONENT_BYTES {
            let refusal = LoadError::TooLarge {
                size: wasm.len(),
                max: MAX_COMPONENT_BYTES,
            };
            return Err(CompileError::Rejected {
                code: refusal.code().to_string(),
                message: refusal.to_string(),
            });
        }
        let io_error = |source| CompileError::Io {
            executable: self.executable.clone(),
            source,
        };
        let started = Instant::now();
        let mut command = tokio::process::Command::new(&self.executable);
        command
            .arg(CHILD_SUBCOMMAND)
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let rlimits = child_rlimits(&self.limits);
        // SAFETY: the closure runs in the forked child before `exec`. It only
        // calls `setrlimit` and `prctl` (async-signal-safe system calls) on
        // values computed before the fork, and builds an `io::Error` from
        // `errno` (no allocation); it takes no locks and touches no shared state.
        unsafe {
            command.pre_exec(move || apply_rlimits(&rlimits));
        }
        let mut child = command.spawn().map_err(io_error)?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(CompileError::Protocol(
                "the child's pipes are missing".to_string(),
            ));
        };

        let input = wasm.to_vec();
        let feed = async move {
            // A child that stops reading early (it died) closes the pipe: not an
            // error here, its exit status says what happened.
            let _ = stdin.write_all(&input).await;
            drop(stdin);
        };
        let max_output = self.limits.max_output_bytes;
        let talk = async {
            let ((), output, errors) = tokio::join!(
                feed,
                read_capped(stdout, max_output, false),
                read_capped(stderr, MAX_STDERR_BYTES, true),
            );
            (output, errors)
        };
        let (output, errors) = match tokio::time::timeout(self.limits.wall_timeout, talk).await {
            Ok(result) => result,
            Err(_) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(CompileError::TimedOut {
                    after: self.limits.wall_timeout,
                });
            }
        };
        let output = match output {
            Ok(Capped::Complete(bytes)) => bytes,
            Ok(Capped::Overflow) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(CompileError::Protocol(format!(
                    "the child wrote more than {max_output} bytes"
                )));
            }
            Err(e) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(io_error(e));
            }
        };
        let stderr = match errors {
            Ok(Capped::Complete(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            _ => String::new(),
        };
        // Output is at EOF, so the child has exited or is about to; the wall
        // clock still bounds the wait in case it closed stdout and hung.
        let remaining = self.limits.wall_timeout.saturating_sub(started.elapsed());
        let status = match tokio::time::timeout(remaining, child.wait()).await {
            Ok(status) => status.map_err(io_error)?,
            Err(_) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(CompileError::TimedOut {
                    after: self.limits.wall_timeout,
                });
            }
        };
        let precompiled = interpret(status, &output, stderr)?;
        check_against_input(&precompiled, wasm)?;
        Ok(CompiledPlugin {
            precompiled,
            elapsed: started.elapsed(),
        })
    }
}

/// What reading a pipe up to a cap gave.
enum Capped {
    Complete(Vec<u8>),
    Overflow,
}

/// Reads to EOF. Past `max` bytes it gives up, or with `keep_head` keeps the
/// first `max` bytes and discards the rest (so a chatty child never blocks on
/// a full pipe).
async fn read_capped(
    mut pipe: impl AsyncRead + Unpin,
    max: usize,
    keep_head: bool,
) -> std::io::Result<Capped> {
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = pipe.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Capped::Complete(bytes));
        }
        if bytes.len() + n > max {
            if !keep_head {
                return Ok(Capped::Overflow);
            }
            let room = max - bytes.len();
            bytes.extend_from_slice(&chunk[..room]);
            continue;
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
}

/// One `setrlimit` call: resource, soft and hard limit.
type Rlimit = (libc::__rlimit_resource_t, u64, u64);

/// The limits applied in the child, computed before the fork.
/// No `RLIMIT_FSIZE`: wasmtime writes each module's memory image to a memfd,
/// which that limit counts.
fn child_rlimits(limits: &CompileLimits) -> [Rlimit; 5] {
    [
        (
            libc::RLIMIT_CPU,
            limits.cpu_seconds,
            limits.cpu_seconds.saturating_add(1),
        ),
        (
            libc::RLIMIT_AS,
            limits.address_space_bytes,
            limits.address_space_bytes,
        ),
        (libc::RLIMIT_DATA, limits.data_bytes, limits.data_bytes),
        (libc::RLIMIT_NOFILE, limits.open_files, limits.open_files),
        (libc::RLIMIT_CORE, 0, 0),
    ]
}

/// Runs in the forked child before `exec`: only async-signal-safe calls.
fn apply_rlimits(rlimits: &[Rlimit]) -> std::io::Result<()> {
    for &(resource, soft, hard) in rlimits {
        let limit = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: `setrlimit` reads the struct we pass and nothing else.
        if unsafe { libc::setrlimit(resource, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    // Die with the parent rather than compile on for nobody.
    // SAFETY: `prctl(PR_SET_PDEATHSIG)` takes plain integers.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The header the child writes.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum ChildHeader {
    Ok {
        manifest: ArtifactManifest,
        artifact_bytes: u64,
    },
    Rejected {
        error: Refusal,
    },
    Failed {
        message: String,
    },
}

/// A refusal as the child reports it.
#[derive(Debug, Serialize, Deserialize)]
struct Refusal {
    code: String,
    message: String,
}

/// Turns the child's exit status and output into the result.
fn interpret(
    status: ExitStatus,
    output: &[u8],
    stderr: String,
) -> Result<PrecompiledPlugin, CompileError> {
    use std::os::unix::process::ExitStatusExt;
    if let Some(signal) = status.signal() {
        let status = format!("killed by {}", signal_name(signal));
        let limit = match signal {
            libc::SIGXCPU => Some(ResourceLimit::Cpu),
            libc::SIGABRT if stderr.contains("memory allocation of") => Some(ResourceLimit::Memory),
            libc::SIGKILL => None,
            _ => return Err(CompileError::Crashed { status, stderr }),
        };
        return Err(CompileError::KilledByLimit {
            limit,
            status,
            stderr,
        });
    }
    let (header, artifact) = match parse_answer(output) {
        Ok(parsed) => parsed,
        Err(problem) if status.success() => return Err(CompileError::Protocol(problem)),
        Err(problem) => {
            return Err(CompileError::Crashed {
                status: format!("{status}; {problem}"),
                stderr,
            });
        }
    };
    match (header, status.code()) {
        (ChildHeader::Ok { manifest, .. }, Some(0)) => Ok(PrecompiledPlugin {
            manifest,
            artifact: artifact.to_vec(),
        }),
        (ChildHeader::Rejected { error }, Some(1)) => Err(CompileError::Rejected {
            code: error.code,
            message: error.message,
        }),
        (ChildHeader::Failed { message }, Some(2)) => Err(CompileError::Protocol(format!(
            "the child could not work: {message}"
        ))),
        (header, code) => Err(CompileError::Protocol(format!(
            "exit code {code:?} does not match the answer {header:?}"
        ))),
    }
}

/// Splits the child's output into header and artifact.
fn parse_answer(output: &[u8]) -> Result<(ChildHeader, &[u8]), String> {
    let rest = output
        .strip_prefix(PROTOCOL_MAGIC.as_slice())
        .ok_or_else(|| "no protocol preamble".to_string())?;
    let (length, rest) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| "the header length is cut off".to_string())?;
    let length = u32::from_be_bytes(*length) as usize;
    if length > MAX_HEADER_BYTES {
        return Err(format!("a header of {length} bytes is too large"));
    }
    let header_bytes = rest
        .get(..length)
        .ok_or_else(|| "the header is cut off".to_string())?;
    let body = &rest[length..];
    let header: ChildHeader =
        serde_json::from_slice(header_bytes).map_err(|e| format!("header is not valid: {e}"))?;
    let expected = match &header {
        ChildHeader::Ok { artifact_bytes, .. } => *artifact_bytes,
        _ => 0,
    };
    if body.len() as u64 != expected {
        return Err(format!(
            "{} bytes follow the header, {expected} were announced",
            body.len()
        ));
    }
    Ok((header, body))
}

/// The artifact must be for the bytes we sent, and arrive intact.
fn check_against_input(precompiled: &PrecompiledPlugin, wasm: &[u8]) -> Result<(), CompileError> {
    let sent = hex(&Sha256::digest(wasm));
    if precompiled.manifest.content_hash != sent {
        return Err(CompileError::Protocol(format!(
            "the artifact is for content {}, {sent} was sent",
            precompiled.manifest.content_hash
        )));
    }
    let received = hex(&Sha256::digest(&precompiled.artifact));
    if precompiled.manifest.artifact_hash != received {
        return Err(CompileError::Protocol(format!(
            "the artifact's SHA-256 is {received}, the child announced {}",
            precompiled.manifest.artifact_hash
        )));
    }
    Ok(())
}

fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGXCPU => "SIGXCPU".to_string(),
        libc::SIGKILL => "SIGKILL".to_string(),
        libc::SIGABRT => "SIGABRT".to_string(),
        libc::SIGSEGV => "SIGSEGV".to_string(),
        libc::SIGBUS => "SIGBUS".to_string(),
        libc::SIGXFSZ => "SIGXFSZ".to_string(),
        other => format!("signal {other}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// `vaani compile-plugin`: the child side. Reads the component from `wasm` or
/// standard input, precompiles it and writes the answer (see the module docs)
/// to standard output.
pub fn run_child(wasm: Option<&Path>) -> ExitCode {
    let (header, artifact) = match read_input(wasm) {
        Ok(Input::Component(bytes)) => compile_in_child(&bytes),
        Ok(Input::TooLarge(size)) => (
            rejected(&LoadError::TooLarge {
                size,
                max: MAX_COMPONENT_BYTES,
            }),
            Vec::new(),
        ),
        Err(message) => (ChildHeader::Failed { message }, Vec::new()),
    };
    let exit = match &header {
        ChildHeader::Ok { .. } => 0,
        ChildHeader::Rejected { .. } => 1,
        ChildHeader::Failed { .. } => 2,
    };
    match write_answer(&header, &artifact) {
        Ok(()) => ExitCode::from(exit),
        Err(e) => {
            eprintln!("vaani compile-plugin: writing the answer: {e}");
            ExitCode::from(2)
        }
    }
}

/// What the child was given.
enum Input {
    /// The bytes, within the size limit.
    Component(Vec<u8>),
    /// More than the size limit: only the size is kept.
    TooLarge(usize),
}

/// Reads the whole input, keeping at most one byte more than the size limit
/// (the rest is only counted, so the refusal states the real size).
fn read_input(path: Option<&Path>) -> Result<Input, String> {
    let mut source: Box<dyn Read> = match path {
        Some(path) => Box::new(
            std::fs::File::open(path)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?,
        ),
        None => Box::new(std::io::stdin().lock()),
    };
    let keep = MAX_COMPONENT_BYTES + 1;
    let mut bytes = Vec::new();
    (&mut source)
        .take(keep as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading the component: {e}"))?;
    if bytes.len() < keep {
        return Ok(Input::Component(bytes));
    }
    let rest = std::io::copy(&mut source, &mut std::io::sink())
        .map_err(|e| format!("reading the component: {e}"))?;
    let rest = usize::try_from(rest).unwrap_or(usize::MAX);
    Ok(Input::TooLarge(keep.saturating_add(rest)))
}

/// Precompiles on a compile-only host and builds the answer.
fn compile_in_child(wasm: &[u8]) -> (ChildHeader, Vec<u8>) {
    let host = match PluginHost::new(HostConfig::compile_only()) {
        Ok(host) => host,
        Err(e) => {
            return (
                ChildHeader::Failed {
                    message: e.to_string(),
                },
                Vec::new(),
            );
        }
    };
    match host.precompile(wasm) {
        Ok(precompiled) => (
            ChildHeader::Ok {
                artifact_bytes: precompiled.artifact.len() as u64,
                manifest: precompiled.manifest,
            },
            precompiled.artifact,
        ),
        Err(refusal) => (rejected(&refusal), Vec::new()),
    }
}

/// A refusal with its code; a failure to map memory is the limits' doing, not
/// a fault of the component, and says so.
fn rejected(refusal: &LoadError) -> ChildHeader {
    let message = refusal.to_string();
    let out_of_memory = matches!(refusal, LoadError::Compile(_) | LoadError::Describe(_))
        && (message.contains("Cannot allocate memory") || message.contains("out of memory"));
    ChildHeader::Rejected {
        error: Refusal {
            code: if out_of_memory {
                RESOURCE_LIMIT_CODE.to_string()
            } else {
                refusal.code().to_string()
            },
            message,
        },
    }
}

/// Writes magic, header length, header and artifact to standard output.
fn write_answer(header: &ChildHeader, artifact: &[u8]) -> std::io::Result<()> {
    let header = serde_json::to_vec(header).map_err(std::io::Error::other)?;
    let length = u32::try_from(header.len()).map_err(std::io::Error::other)?;
    let mut out = std::io::stdout().lock();
    out.write_all(PROTOCOL_MAGIC)?;
    out.write_all(&length.to_be_bytes())?;
    out.write_all(&header)?;
    out.write_all(artifact)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn answer(header: &str, artifact: &[u8]) -> Vec<u8> {
        let mut out = PROTOCOL_MAGIC.to_vec();
        out.extend_from_slice(&(header.len() as u32).to_be_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(artifact);
        out
    }

    fn exited(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    const REJECTED: &str =
        r#"{"status":"rejected","error":{"code":"too_large","message":"component is 9 bytes"}}"#;

    #[test]
    fn a_rejection_keeps_its_code_and_message() {
        let err = interpret(exited(1), &answer(REJECTED, b""), String::new()).unwrap_err();
        match err {
            CompileError::Rejected { code, message } => {
                assert_eq!(code, "too_large");
                assert_eq!(message, "component is 9 bytes");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn broken_answers_are_protocol_errors() {
        let truncated = answer(REJECTED, b"");
        for output in [
            b"".as_slice(),
            b"NOTMAGIC\0\0\0\x02{}",
            &truncated[..truncated.len() - 1],
        ] {
            let err = interpret(exited(0), output, String::new()).unwrap_err();
            assert!(matches!(err, CompileError::Protocol(_)), "{err:?}");
        }
        // Bytes after a rejection, and an exit code that disagrees with the header.
        let err = interpret(exited(1), &answer(REJECTED, b"x"), String::new()).unwrap_err();
        assert!(matches!(err, CompileError::Crashed { .. }), "{err:?}");
        let err = interpret(exited(0), &answer(REJECTED, b""), String::new()).unwrap_err();
        assert!(matches!(err, CompileError::Protocol(_)), "{err:?}");
        // An oversized header length is refused before anything is read.
        let mut huge = PROTOCOL_MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse_answer(&huge).unwrap_err().contains("too large"));
    }

    #[test]
    fn signals_name_the_limit_when_they_can() {
        let killed = |signal: i32, stderr: &str| {
            interpret(ExitStatus::from_raw(signal), b"", stderr.to_string()).unwrap_err()
        };
        assert!(matches!(
            killed(libc::SIGXCPU, ""),
            CompileError::KilledByLimit {
                limit: Some(ResourceLimit::Cpu),
                ..
            }
        ));
        assert!(matches!(
            killed(libc::SIGABRT, "memory allocation of 4096 bytes failed"),
            CompileError::KilledByLimit {
                limit: Some(ResourceLimit::Memory),
                ..
            }
        ));
        let sigkill = killed(libc::SIGKILL, "");
        assert!(matches!(
            sigkill,
            CompileError::KilledByLimit { limit: None, .. }
        ));
        assert_eq!(sigkill.code(), "resource_limit");
        assert!(matches!(
            killed(libc::SIGSEGV, ""),
            CompileError::Crashed { .. }
        ));
        assert!(matches!(
            killed(libc::SIGABRT, "panicked"),
            CompileError::Crashed { .. }
        ));
    }

    #[test]
    fn an_out_of_memory_compile_error_is_a_resource_limit() {
        let header = rejected(&LoadError::Compile(
            "failed to mmap: Cannot allocate memory (os error 12)".into(),
        ));
        assert!(
            matches!(header, ChildHeader::Rejected { error } if error.code == "resource_limit")
        );
        let header = rejected(&LoadError::Compile("invalid section".into()));
        assert!(
            matches!(header, ChildHeader::Rejected { error } if error.code == "compile_failed")
        );
    }
}
