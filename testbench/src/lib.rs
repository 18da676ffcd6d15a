//! Test harness for end-to-end tests against the real `vaani` binary and real peers.
//!
//! [`VaaniServer`] writes a configuration on free loopback ports, starts the binary that
//! `cargo test` built and waits until it is ready; [`Sipp`] runs a scenario from
//! `testbench/scenarios/` with Debian's sipp 3.6.1; [`RtpSink`] records the RTP that vaani sends
//! to a port the test advertises in SDP, so tests can check what the caller heard.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod audio;
pub mod bench;
pub mod capacity;
pub mod cps;
pub mod fake_llm;
pub mod load;
pub mod procstat;
pub mod webhook_receiver;

/// The repository root (the parent of `testbench/`).
pub fn repo_root() -> PathBuf {
    // Cargo sets CARGO_MANIFEST_DIR when it runs tests; prefer it to the compile-time value, which
    // is stale when a shared target dir reuses a build made in another checkout.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("testbench has a parent directory")
        .to_path_buf()
}

/// The `vaani` binary built by this `cargo test` run (or `VAANI_BIN`).
pub fn vaani_binary() -> PathBuf {
    if let Ok(path) = std::env::var("VAANI_BIN") {
        return PathBuf::from(path);
    }
    // Test executables live in <target>/<profile>/deps/; binaries in <target>/<profile>/,
    // next to the benchmark binaries (`capacity`, `cps`).
    let exe = std::env::current_exe().expect("current test executable");
    if let Some(sibling) = exe.parent().map(|dir| dir.join("vaani"))
        && sibling.exists()
    {
        return sibling;
    }
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable sits in <target>/<profile>/deps");
    let bin = profile_dir.join("vaani");
    assert!(
        bin.exists(),
        "vaani binary not found at {}: run the tests with `cargo test --workspace` (make test)",
        bin.display()
    );
    bin
}

/// A built plugin component from `plugins/dist/`; fails the test if it was not built.
pub fn plugin_path(name: &str) -> PathBuf {
    let path = repo_root()
        .join("plugins/dist")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "plugin {} is missing: build the plugins with `plugins/build.sh` (make test does)",
        path.display()
    );
    path
}

/// The speech-to-text model the set-up links into `data/models/`; fails the test if missing.
pub fn stt_model_path() -> PathBuf {
    let path = repo_root().join("data/models/ggml-tiny.en.bin");
    assert!(
        path.exists(),
        "speech-to-text model {} is missing: run scripts/setup.sh (make test does)",
        path.display()
    );
    path
}

/// A free TCP+UDP port on 127.0.0.1 (both protocols free at the time of the check).
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let port = tcp.local_addr().expect("addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port found");
}

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// A scratch directory removed when the test passes and kept (with its path printed) when it fails.
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// Create a new empty directory for one test.
    pub fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "vaani-tb-{}-{}-{}",
            label,
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create scratch dir");
        Self { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// One tenant of a test server.
#[derive(Debug, Clone)]
pub struct TenantSpec {
    pub id: String,
    pub name: String,
    pub number: String,
    /// Plugin name in `plugins/dist/` (e.g. `echo`); empty: the tenant has no plugin.
    pub plugin: String,
    /// Milliseconds to ring before answering (0 answers at once).
    pub ring_ms: u32,
    /// Extra TOML lines inside this tenant's table.
    pub extra: String,
}

impl TenantSpec {
    /// A tenant answering `number` with plugin `plugin`.
    pub fn new(id: &str, number: &str, plugin: &str) -> Self {
        Self {
            id: id.to_string(),
            name: format!("Test tenant {id}"),
            number: number.to_string(),
            plugin: plugin.to_string(),
            ring_ms: 0,
            extra: String::new(),
        }
    }
}

/// What a test server serves.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub tenants: Vec<TenantSpec>,
    /// Source networks the single trunk accepts.
    pub allowed_cidrs: Vec<String>,
    /// Extra TOML lines inside the single `[[trunks]]` table (e.g. `profile = "twilio"`).
    pub trunk_toml: String,
    /// Extra TOML appended at the end (sections not otherwise written).
    pub extra_toml: String,
    /// `[media] rtp_timeout_secs`.
    pub rtp_timeout_secs: u32,
    /// Extra TOML lines inside `[media]`.
    pub media_toml: String,
    /// Extra TOML lines inside `[sip]` (e.g. `listen_tls`, `tls_cert`, `tls_key`).
    pub sip_toml: String,
    /// Environment variables for the server process (e.g. a trunk's password).
    pub env: Vec<(String, String)>,
    /// `[media] rtp_ports` as an inclusive range; `None`: 400 ports at a random base in
    /// 20000-39999 (200 calls).
    pub rtp_ports: Option<(u16, u16)>,
    /// `[store] url`; `None`: a SQLite file in the server's scratch directory. For
    /// PostgreSQL, a [`PostgresDatabase`]'s URL (the test keeps the database alive).
    pub store_url: Option<String>,
}

impl ServerSpec {
    /// The demo tenants: clinic on +918000000001 and echo on +918000000099, trunk 127.0.0.1/32.
    pub fn demo() -> Self {
        let mut clinic = TenantSpec::new("clinic", "+918000000001", "clinic");
        clinic.extra = "plugin_config = { clinic_name = \"Sunny Clinic\" }".to_string();
        Self {
            tenants: vec![clinic, TenantSpec::new("echo", "+918000000099", "echo")],
            allowed_cidrs: vec!["127.0.0.1/32".to_string()],
            trunk_toml: String::new(),
            extra_toml: String::new(),
            rtp_timeout_secs: 30,
            media_toml: String::new(),
            sip_toml: String::new(),
            env: Vec::new(),
            rtp_ports: None,
            store_url: None,
        }
    }
}

/// A PostgreSQL database created for one test server (`vaani_tb_<random>`) on the server
/// named by `VAANI_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`,
/// which `scripts/setup.sh` provides), with `psql`; dropped (`WITH (FORCE)`) when this guard
/// is dropped. Put [`PostgresDatabase::url`] in [`ServerSpec::store_url`].
pub struct PostgresDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PostgresDatabase {
    /// Creates the database; panics, saying why, when the server cannot be reached.
    pub fn create() -> PostgresDatabase {
        let admin_url = std::env::var("VAANI_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = format!("vaani_tb_{}_{}", std::process::id(), rand_u16());
        psql(&admin_url, &format!("CREATE DATABASE {name}"));
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        PostgresDatabase {
            admin_url,
            name,
            url,
        }
    }

    /// The database's URL, for `[store] url`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        // Never panics (it may run while a failed test unwinds).
        let dropped = Command::new("psql")
            .arg(&self.admin_url)
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
        match dropped {
            Ok(output) if output.status.success() => {}
            Ok(output) => eprintln!(
                "dropping {}: {}",
                self.name,
                String::from_utf8_lossy(&output.stderr)
            ),
            Err(error) => eprintln!("dropping {}: {error}", self.name),
        }
    }
}

/// Runs one SQL statement with `psql`; panics with its output when it fails.
fn psql(url: &str, sql: &str) {
    let output = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .unwrap_or_else(|e| panic!("psql could not run ({e}); run scripts/setup.sh"));
    assert!(
        output.status.success(),
        "psql {sql:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Operator key used by every test server.
pub const OPERATOR_KEY: &str = "testbench-operator-key";

/// A running `vaani serve` process on free loopback ports; killed on drop.
pub struct VaaniServer {
    child: Child,
    pub sip_port: u16,
    pub http_port: u16,
    pub dir: ScratchDir,
    log: Arc<Mutex<String>>,
    log_threads: Vec<JoinHandle<()>>,
    /// The configuration file, kept for [`VaaniServer::restart`].
    config_path: PathBuf,
    /// The spec's environment variables, kept for [`VaaniServer::restart`].
    env: Vec<(String, String)>,
    /// The server's `[store] url`.
    store_url: String,
}

/// Starts `vaani serve` on `config_path`, its output appended to `log`.
fn spawn_server(
    config_path: &Path,
    env: &[(String, String)],
    log: &Arc<Mutex<String>>,
) -> (Child, Vec<JoinHandle<()>>) {
    let mut child = Command::new(vaani_binary())
        .arg("serve")
        .arg("--config")
        .arg(config_path)
        .env("RUST_LOG", "info,vaani=debug")
        .env("NO_COLOR", "1")
        // After the defaults, so that a spec can quieten the log (the benchmarks do).
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vaani");
    let mut log_threads = Vec::new();
    if let Some(out) = child.stdout.take() {
        log_threads.push(collect_lines(out, log.clone()));
    }
    if let Some(err) = child.stderr.take() {
        log_threads.push(collect_lines(err, log.clone()));
    }
    (child, log_threads)
}

impl VaaniServer {
    /// Write a configuration for `spec`, start vaani and wait until `/readyz` answers 200.
    pub fn start(spec: &ServerSpec) -> Self {
        let dir = ScratchDir::new("server");
        let sip_port = free_port();
        let http_port = free_port();
        let rtp_base = 20000 + 2 * (rand_u16() % 10000);
        let rtp_ports = spec.rtp_ports.unwrap_or((rtp_base, rtp_base + 399));
        let config = render_config(spec, sip_port, http_port, rtp_ports, dir.path());
        let config_path = dir.path().join("vaani.toml");
        let configured_store = store_url(spec, dir.path());
        std::fs::write(&config_path, config).expect("write config");

        let log = Arc::new(Mutex::new(String::new()));
        let (child, log_threads) = spawn_server(&config_path, &spec.env, &log);
        let mut server = Self {
            child,
            sip_port,
            http_port,
            dir,
            log,
            log_threads,
            config_path,
            env: spec.env.clone(),
            store_url: configured_store,
        };
        server.wait_ready(Duration::from_secs(60));
        server
    }

    /// Kills the server with SIGKILL (a crash: nothing is cleaned up) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for thread in self.log_threads.drain(..) {
            let _ = thread.join();
        }
    }

    /// Starts the server again after it stopped or was [killed](Self::kill): same
    /// configuration, ports, scratch directory and database. Waits until it is ready; its log
    /// is appended to the earlier one after a `---- restart ----` line.
    pub fn restart(&mut self) {
        assert!(
            !self.is_running(),
            "restart: the server is still running (kill or terminate it first)"
        );
        for thread in self.log_threads.drain(..) {
            let _ = thread.join();
        }
        if let Ok(mut log) = self.log.lock() {
            log.push_str("---- restart ----\n");
        }
        let (child, log_threads) = spawn_server(&self.config_path, &self.env, &self.log);
        self.child = child;
        self.log_threads = log_threads;
        self.wait_ready(Duration::from_secs(60));
    }

    fn wait_ready(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("vaani exited during start-up ({status}):\n{}", self.log());
            }
            if let Ok((200, _)) = self.http_get("/readyz", None) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("vaani did not become ready in {limit:?}:\n{}", self.log());
    }

    /// Everything the server printed so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The lines the server printed that are JSON objects (the default log format), parsed.
    pub fn log_json(&self) -> Vec<Value> {
        self.log()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(Value::is_object)
            .collect()
    }

    /// SIP address of the server.
    pub fn sip_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.sip_port))
    }

    /// Base URL of the HTTP API.
    pub fn http_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// GET a path; returns status and body text. `bearer` is sent as the Authorization token.
    pub fn http_get(&self, path: &str, bearer: Option<&str>) -> Result<(u16, String), String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let mut request = agent.get(format!("{}{}", self.http_base(), path));
        if let Some(token) = bearer {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut response = request.call().map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        Ok((status, body))
    }

    /// GET a path with the operator key; returns the status, the `Content-Type` and the raw body
    /// (for binary downloads such as recordings).
    pub fn http_get_bytes(&self, path: &str) -> Result<(u16, String, Vec<u8>), String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let mut response = agent
            .get(format!("{}{}", self.http_base(), path))
            .header("Authorization", format!("Bearer {OPERATOR_KEY}"))
            .call()
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .map_err(|e| e.to_string())?;
        Ok((status, content_type, body))
    }

    /// POST a JSON body with the operator key; returns the status and the parsed body.
    pub fn api_post(&self, path: &str, body: &Value) -> (u16, Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let mut response = agent
            .post(format!("{}{}", self.http_base(), path))
            .header("Authorization", format!("Bearer {OPERATOR_KEY}"))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// GET a path with the operator key and parse the JSON body; panics unless 200.
    pub fn api_json(&self, path: &str) -> Value {
        let (status, body) = self
            .http_get(path, Some(OPERATOR_KEY))
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(status, 200, "GET {path} returned {status}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: bad JSON {e}: {body}"))
    }

    /// Uploads `plugins/dist/<plugin>.wasm` with `key` (`POST /api/v1/plugins`); returns the
    /// status and the parsed body.
    pub fn upload_plugin(&self, key: &str, plugin: &str) -> (u16, Value) {
        let wasm = std::fs::read(plugin_path(plugin)).expect("read the plugin");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let mut response = agent
            .post(format!("{}/api/v1/plugins", self.http_base()))
            .header("Authorization", format!("Bearer {key}"))
            .header("Content-Type", "application/wasm")
            .send(&wasm[..])
            .unwrap_or_else(|e| panic!("upload {plugin}: {e}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Sends `method path` with `Authorization: Bearer <key>` and, if given, a JSON body;
    /// returns the status and the parsed body (`null` when empty or not JSON). Any status is
    /// returned, not treated as an error.
    pub fn api_request(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.http_base(), path))
            .header("Authorization", format!("Bearer {key}"));
        let sent = match body {
            Some(body) => agent.run(
                request
                    .header("Content-Type", "application/json")
                    .body(body.to_string())
                    .expect("a request"),
            ),
            None => agent.run(request.body(()).expect("a request")),
        };
        let mut response = sent.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The URL of the server's database (for tests that write fixtures straight into it
    /// while the server runs).
    pub fn database_url(&self) -> String {
        self.store_url.clone()
    }

    /// Calls listed by the API (newest first).
    pub fn calls(&self) -> Vec<Value> {
        let listed = self.api_json("/api/v1/calls?limit=500");
        listed["calls"].as_array().cloned().unwrap_or_default()
    }

    /// Wait until `accept` holds for the call list, returning it; panics with the log on timeout.
    pub fn wait_for_calls(&self, limit: Duration, accept: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let calls = self.calls();
            if accept(&calls) {
                return calls;
            }
            if Instant::now() > deadline {
                panic!(
                    "calls did not reach the expected state in {limit:?}: {}\nserver log:\n{}",
                    serde_json::to_string_pretty(&calls).unwrap_or_default(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Sends SIGTERM and waits up to `limit` for the process to exit; returns its exit code.
    pub fn terminate(&mut self, limit: Duration) -> Option<i32> {
        self.send_sigterm();
        self.wait_exit(limit)
    }

    /// Sends SIGTERM (the server starts draining) without waiting.
    pub fn send_sigterm(&self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
    }

    /// Waits up to `limit` for the process to exit; returns its exit code (`None`: still
    /// running, or killed by a signal).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The server's process id (for reading its CPU time and memory from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for VaaniServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for thread in self.log_threads.drain(..) {
            let _ = thread.join();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- vaani log ----\n{}\n---- end of vaani log ----",
                self.log()
            );
        }
    }
}

fn collect_lines(stream: impl Read + Send + 'static, log: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if let Ok(mut log) = log.lock() {
                // Keep the last ~2 MB so a chatty server cannot exhaust memory.
                if log.len() > 2_000_000 {
                    let cut = log.len() - 1_000_000;
                    let cut = (cut..log.len())
                        .find(|&i| log.is_char_boundary(i))
                        .unwrap_or(0);
                    log.drain(..cut);
                }
                log.push_str(&line);
                log.push('\n');
            }
        }
    })
}

fn rand_u16() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    ((nanos ^ std::process::id().wrapping_mul(2654435761)) >> 7) as u16
}

/// The `[store] url` of a server for `spec` in `dir`.
fn store_url(spec: &ServerSpec, dir: &Path) -> String {
    spec.store_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("vaani.db").display()))
}

fn render_config(
    spec: &ServerSpec,
    sip_port: u16,
    http_port: u16,
    (rtp_base, rtp_end): (u16, u16),
    dir: &Path,
) -> String {
    let cidrs = spec
        .allowed_cidrs
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let mut toml = format!(
        r#"
[sip]
listen_udp = "127.0.0.1:{sip_port}"
listen_tcp = "127.0.0.1:{sip_port}"
public_address = "127.0.0.1"
{sip_toml}

[media]
bind_ip = "127.0.0.1"
public_ip = "127.0.0.1"
rtp_ports = "{rtp_base}-{rtp_end}"
shards = 2
rtp_timeout_secs = {rtp_timeout}
{media_toml}

[http]
listen = "127.0.0.1:{http_port}"
operator_key = "{OPERATOR_KEY}"

[store]
url = "{store_url}"

[speech]
stt_engine = "whisper"
stt_model = "{stt_model}"

[[trunks]]
id = "local"
name = "Loopback test trunk"
allowed_cidrs = [{cidrs}]
{trunk_toml}
"#,
        trunk_toml = spec.trunk_toml,
        rtp_timeout = spec.rtp_timeout_secs,
        media_toml = spec.media_toml,
        sip_toml = spec.sip_toml,
        store_url = store_url(spec, dir),
        stt_model = stt_model_path().display(),
    );
    for tenant in &spec.tenants {
        toml.push_str(&format!(
            r#"
[[tenants]]
id = "{id}"
name = "{name}"
numbers = ["{number}"]
trunk = "local"
{plugin}
ring_ms = {ring_ms}
{extra}
"#,
            id = tenant.id,
            name = tenant.name,
            number = tenant.number,
            plugin = if tenant.plugin.is_empty() {
                String::new()
            } else {
                format!("plugin = \"{}\"", plugin_path(&tenant.plugin).display())
            },
            ring_ms = tenant.ring_ms,
            extra = tenant.extra,
        ));
    }
    toml.push_str(&spec.extra_toml);
    toml
}

/// Outcome of one sipp run.
#[derive(Debug)]
pub struct SippRun {
    /// sipp's exit code (0: every call succeeded; 1: at least one failed).
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Contents of sipp's `_errors.log`, if any.
    pub errors: String,
    /// Contents of sipp's `_messages.log` (SIP messages sent and received).
    pub messages: String,
}

impl SippRun {
    /// Panics with everything sipp reported unless it exited 0.
    pub fn assert_success(&self) {
        assert_eq!(
            self.exit_code,
            0,
            "sipp failed (exit {}):\nstderr: {}\nerrors: {}\nmessages (tail): {}",
            self.exit_code,
            self.stderr,
            self.errors,
            tail(&self.messages, 6000)
        );
    }
}

fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let start = (text.len() - max..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    &text[start..]
}

/// A sipp invocation of one scenario from `testbench/scenarios/`.
pub struct Sipp {
    scenario: String,
    substitutions: Vec<(String, String)>,
    args: Vec<String>,
    local_ip: String,
    dir: ScratchDir,
}

impl Sipp {
    /// Prepare `scenario` (a file name in `testbench/scenarios/`).
    pub fn new(scenario: &str) -> Self {
        let dir = ScratchDir::new("sipp");
        audio::write_caller_files(dir.path());
        Self {
            scenario: scenario.to_string(),
            substitutions: Vec::new(),
            args: Vec::new(),
            local_ip: "127.0.0.1".to_string(),
            dir,
        }
    }

    /// Replace `token` in the scenario text before running it (e.g. the SDP media port, a
    /// pause or the digits: sipp reads attributes when it loads a scenario, so `-key` cannot).
    /// The run fails if the token is not in the scenario.
    pub fn substitute(mut self, token: &str, value: impl ToString) -> Self {
        self.substitutions
            .push((token.to_string(), value.to_string()));
        self
    }

    /// Set a scenario keyword (`-key name value`).
    pub fn key(mut self, name: &str, value: impl ToString) -> Self {
        self.args.push("-key".to_string());
        self.args.push(name.to_string());
        self.args.push(value.to_string());
        self
    }

    /// Add raw sipp arguments.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// The scratch directory sipp runs in (audio files for `rtp_stream` go here).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Send from this local address instead of 127.0.0.1.
    pub fn local_ip(mut self, ip: &str) -> Self {
        self.local_ip = ip.to_string();
        self
    }

    /// Run sipp against `target`, calling `service` (the dialled number), and wait for it.
    pub fn run(self, target: SocketAddr, service: &str, limit: Duration) -> SippRun {
        self.execute(Some(target), Some(service), None, limit)
    }

    /// Run sipp as a UAS (callee) on 127.0.0.1:`sip_port` and wait for it; vaani calls it.
    pub fn run_uas(self, sip_port: u16, limit: Duration) -> SippRun {
        self.execute(None, None, Some(sip_port), limit)
    }

    fn execute(
        self,
        target: Option<SocketAddr>,
        service: Option<&str>,
        sip_port: Option<u16>,
        limit: Duration,
    ) -> SippRun {
        let source = repo_root().join("testbench/scenarios").join(&self.scenario);
        let mut text = std::fs::read_to_string(&source)
            .unwrap_or_else(|e| panic!("read scenario {}: {e}", source.display()));
        for (token, value) in &self.substitutions {
            assert!(
                text.contains(token.as_str()),
                "{} has no `{token}` to replace",
                self.scenario
            );
            text = text.replace(token, value);
        }
        let scenario = self.dir.path().join(&self.scenario);
        std::fs::write(&scenario, text).expect("write scenario");
        // sipp binds its media port and the three after it (RTCP, video RTP/RTCP); a port that
        // was free when chosen can be taken by a parallel test before sipp binds it. sipp then
        // exits at once, having sent nothing: run it again on other ports.
        let mut attempt = 0;
        let output = loop {
            attempt += 1;
            let output = self.spawn(
                target,
                service,
                sip_port.unwrap_or_else(free_port),
                limit,
                &scenario,
            );
            let stderr = String::from_utf8_lossy(&output.stderr);
            let bind_failed = !output.status.success()
                && (stderr.contains("errno = 98") || stderr.contains("Address already in use"));
            if !bind_failed || attempt == 5 {
                break output;
            }
            if let Ok(entries) = std::fs::read_dir(self.dir.path()) {
                for entry in entries.flatten() {
                    if entry.file_name().to_string_lossy().ends_with(".log") {
                        let _ = std::fs::remove_file(entry.path());
                    }
                }
            }
        };
        let mut errors = String::new();
        let mut messages = String::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.path()) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                if name.ends_with("_errors.log") {
                    errors.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
                } else if name.ends_with("_messages.log") {
                    messages.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
                }
            }
        }
        SippRun {
            exit_code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).to_string(),
            errors,
            messages,
        }
    }
}

impl Sipp {
    /// One sipp process on `sip_port` and a fresh media port, waited for.
    fn spawn(
        &self,
        target: Option<SocketAddr>,
        service: Option<&str>,
        sip_port: u16,
        limit: Duration,
        scenario: &Path,
    ) -> std::process::Output {
        let media_port = free_port();
        let mut command = Command::new("sipp");
        command.current_dir(self.dir.path());
        if let Some(target) = target {
            command.arg(target.to_string());
        }
        command.arg("-sf").arg(scenario);
        if let Some(service) = service {
            command.arg("-s").arg(service);
        }
        command
            .args(["-i", &self.local_ip, "-mi", &self.local_ip])
            .args(["-p", &sip_port.to_string(), "-mp", &media_port.to_string()])
            .args(["-nostdin", "-trace_err", "-trace_msg"])
            .args(["-timeout", &format!("{}s", limit.as_secs().max(1))])
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !self.args.iter().any(|a| a == "-m") {
            command.args(["-m", "1"]);
        }
        command
            .output()
            .expect("run sipp (installed by the set-up as Debian package sip-tester)")
    }
}

/// One RTP packet as received by [`RtpSink`].
#[derive(Debug, Clone)]
pub struct ReceivedRtp {
    pub arrival: Instant,
    pub source: SocketAddr,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
    /// The whole datagram (for SRTP: header, encrypted payload and tag).
    pub raw: Vec<u8>,
}

/// A UDP socket that records every RTP packet sent to it, on a background thread.
pub struct RtpSink {
    pub port: u16,
    socket: UdpSocket,
    packets: Arc<Mutex<Vec<ReceivedRtp>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RtpSink {
    /// Bind on a free loopback port and start recording.
    pub fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind rtp sink");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let port = socket.local_addr().expect("addr").port();
        let sender = socket.try_clone().expect("clone rtp sink socket");
        let packets = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let packets = packets.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((len, source)) = socket.recv_from(&mut buf)
                        && let Some(packet) = parse_rtp(&buf[..len], source)
                        && let Ok(mut list) = packets.lock()
                    {
                        list.push(packet);
                    }
                }
            })
        };
        Self {
            port,
            socket: sender,
            packets,
            stop,
            thread: Some(thread),
        }
    }

    /// Sends one datagram from the sink's own port (so that the peer sees one RTP endpoint).
    pub fn send_to(&self, to: SocketAddr, bytes: &[u8]) {
        self.socket.send_to(bytes, to).expect("send rtp");
    }

    /// The packets received so far.
    pub fn packets(&self) -> Vec<ReceivedRtp> {
        self.packets.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// The packets that came from `source`, in arrival order.
    pub fn packets_from(&self, source: SocketAddr) -> Vec<ReceivedRtp> {
        let mut packets: Vec<ReceivedRtp> = self
            .packets()
            .into_iter()
            .filter(|p| p.source == source)
            .collect();
        packets.sort_by_key(|p| p.arrival);
        packets
    }
}

/// Asserts that consecutive packets (by sequence number) step the RTP timestamp by one
/// `frame_units` frame: a whole number of frames more is allowed where vaani's media shard
/// fell behind and skipped ticks (a loaded machine), but must stay under 5 % of the steps.
pub fn assert_timestamp_steps(packets: &[ReceivedRtp], frame_units: u32) {
    let mut by_sequence = packets.to_vec();
    by_sequence.sort_by_key(|p| p.sequence);
    let steps: Vec<u32> = by_sequence
        .windows(2)
        .filter(|pair| pair[1].sequence == pair[0].sequence.wrapping_add(1))
        .map(|pair| pair[1].timestamp.wrapping_sub(pair[0].timestamp))
        .collect();
    assert!(
        steps.len() > 100,
        "{} consecutive packet pairs",
        steps.len()
    );
    assert!(
        steps
            .iter()
            .all(|&step| step > 0 && step % frame_units == 0),
        "timestamp steps not in {frame_units}-unit frames: {steps:?}"
    );
    let exact = steps.iter().filter(|&&step| step == frame_units).count();
    assert!(exact * 20 >= steps.len() * 19, "{steps:?}");
}

impl Drop for RtpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn parse_rtp(data: &[u8], source: SocketAddr) -> Option<ReceivedRtp> {
    // RTCP (SR, RR, SDES, BYE, APP) is not RTP: vaani sends its reports to the RTP port + 1,
    // which may be another sink's port.
    if data.len() < 12 || data[0] >> 6 != 2 || (200..=204).contains(&data[1]) {
        return None;
    }
    let csrc = usize::from(data[0] & 0x0f);
    let header = 12 + 4 * csrc;
    if data.len() < header {
        return None;
    }
    Some(ReceivedRtp {
        arrival: Instant::now(),
        source,
        payload_type: data[1] & 0x7f,
        marker: data[1] & 0x80 != 0,
        sequence: u16::from_be_bytes([data[2], data[3]]),
        timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
        payload: data[header..].to_vec(),
        raw: data.to_vec(),
    })
}

/// Whether sipp can send RFC 4733 digits (`play_dtmf` needs raw sockets, i.e. root).
pub fn can_send_dtmf() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
