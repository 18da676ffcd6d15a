//! Protection against floods: token buckets for call and request rates (per dialled number,
//! per SIP source address, per API key), and a count of each tenant's calls up for its
//! concurrent-call limit.
//!
//! Sans-IO: every decision takes the time (`now`) from the caller, so the tests run on a
//! simulated clock. Memory stays bounded whatever peers send: a bucket that has refilled is
//! the same as no bucket and is swept away, at most [`MAX_TRACKED_KEYS`] keys are tracked per
//! limiter (a key beyond that is let through untracked until a sweep frees room), and a
//! tenant's count is removed when its last call ends.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most keys (numbers, addresses, API keys) one limiter tracks at a time.
pub const MAX_TRACKED_KEYS: usize = 65_536;

/// Shortest time between two sweeps of a full limiter (a sweep walks every key).
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// A rate: tokens added per second, up to a bucket of `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// Bucket size: how many may pass at once after a quiet time.
    pub burst: f64,
}

impl Rate {
    /// `n` per minute, a burst of `n` (0: no limit, `None`).
    pub fn per_minute(n: u32) -> Option<Self> {
        (n > 0).then(|| Self {
            per_second: f64::from(n) / 60.0,
            burst: f64::from(n),
        })
    }

    /// `n` per second with a burst of `burst` (at least 1; 0 per second: no limit, `None`).
    pub fn per_second(n: u32, burst: u32) -> Option<Self> {
        (n > 0).then(|| Self {
            per_second: f64::from(n),
            burst: f64::from(burst.max(1)),
        })
    }
}

/// One token bucket. Time is passed in.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn full(rate: Rate, now: Instant) -> Self {
        Self {
            tokens: rate.burst,
            refilled_at: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(rate.burst);
        self.refilled_at = now;
    }

    /// Takes one token, or says how long until one is there.
    pub fn try_take(&mut self, rate: Rate, now: Instant) -> Result<(), Duration> {
        self.refill(rate, now);
        // A hair of slack: 6 s at 10/min is one whole token, whatever the rounding.
        if self.tokens >= 1.0 - 1e-9 {
            self.tokens = (self.tokens - 1.0).max(0.0);
            return Ok(());
        }
        let missing = 1.0 - self.tokens;
        Err(Duration::from_secs_f64(missing / rate.per_second.max(1e-9)))
    }

    /// Whether the bucket is full again at `now` (then it is the same as no bucket).
    fn is_full(&self, rate: Rate, now: Instant) -> bool {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens + elapsed * rate.per_second >= rate.burst
    }
}

/// Why a limiter refused: when to try again, and whether this is the key's first refusal
/// since it last passed (log that one; count them all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// How long until the key has a token again.
    pub retry_after: Duration,
    /// The first refusal of this key since it last passed.
    pub first: bool,
}

impl Refused {
    /// [`Refused::retry_after`] in whole seconds, at least 1 (a `Retry-After` value).
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

#[derive(Debug)]
struct Entry {
    bucket: TokenBucket,
    rate: Rate,
    refusing: bool,
}

/// Token buckets by key (a number, an address, a key hash), bounded in memory.
#[derive(Debug)]
pub struct KeyedLimiter<K> {
    entries: HashMap<K, Entry>,
    max_keys: usize,
    swept_at: Option<Instant>,
}

impl<K: Hash + Eq + Clone> Default for KeyedLimiter<K> {
    fn default() -> Self {
        Self::with_capacity(MAX_TRACKED_KEYS)
    }
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// A limiter that tracks at most `max_keys` keys.
    pub fn with_capacity(max_keys: usize) -> Self {
        Self {
            entries: HashMap::new(),
            max_keys,
            swept_at: None,
        }
    }

    /// Lets one event of `key` through at `rate`, or refuses it.
    pub fn check(&mut self, key: &K, rate: Rate, now: Instant) -> Result<(), Refused> {
        if !self.entries.contains_key(key) {
            if self.entries.len() >= self.max_keys {
                self.sweep(now);
            }
            if self.entries.len() >= self.max_keys {
                // Full of busy keys: let this one through rather than refuse a stranger.
                return Ok(());
            }
            self.entries.insert(
                key.clone(),
                Entry {
                    bucket: TokenBucket::full(rate, now),
                    rate,
                    refusing: false,
                },
            );
        }
        let Some(entry) = self.entries.get_mut(key) else {
            return Ok(());
        };
        entry.rate = rate;
        match entry.bucket.try_take(rate, now) {
            Ok(()) => {
                entry.refusing = false;
                Ok(())
            }
            Err(retry_after) => {
                let first = !entry.refusing;
                entry.refusing = true;
                Err(Refused { retry_after, first })
            }
        }
    }

    /// Drops the keys whose buckets have refilled (at most once per [`SWEEP_INTERVAL`]).
    fn sweep(&mut self, now: Instant) {
        if self
            .swept_at
            .is_some_and(|at| now.saturating_duration_since(at) < SWEEP_INTERVAL)
        {
            return;
        }
        self.swept_at = Some(now);
        self.entries
            .retain(|_, entry| !entry.bucket.is_full(entry.rate, now));
    }

    /// How many keys are tracked.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.entries.len()
    }
}

/// A tenant's own limits on its calls (`[[tenants]]` or its settings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantCallLimits {
    /// New calls per minute per number; `None`: the `[sip]` default.
    pub calls_per_minute_per_number: Option<u32>,
    /// Most calls up at once; `None`: no limit.
    pub max_concurrent_calls: Option<u32>,
}

impl TenantCallLimits {
    /// The limits a tenant's configuration sets.
    pub fn from_config(tenant: &vaani_config::TenantConfig) -> Self {
        Self {
            calls_per_minute_per_number: tenant.max_calls_per_minute_per_number,
            max_concurrent_calls: tenant.max_concurrent_calls,
        }
    }
}

/// Why an INVITE was refused by a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallRefusal {
    /// The source address is over `[sip] max_invites_per_second_per_source`.
    SourceRate(Refused),
    /// The dialled number is over its calls per minute.
    NumberRate(Refused),
    /// The tenant has `max_concurrent_calls` calls up.
    TenantBusy {
        /// The tenant's limit.
        limit: u32,
    },
}

impl CallRefusal {
    /// The `reason` label of `vaani_call_refusals_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::SourceRate(_) => "source_rate",
            Self::NumberRate(_) => "number_rate",
            Self::TenantBusy { .. } => "tenant_concurrency",
        }
    }
}

/// The limits on new inbound calls, shared by every call task: per source address, per
/// dialled number, and each tenant's calls up.
pub struct CallLimits {
    source_rate: Option<Rate>,
    default_number_rate: u32,
    sources: Mutex<KeyedLimiter<IpAddr>>,
    numbers: Mutex<KeyedLimiter<String>>,
    tenants: TenantCalls,
}

impl CallLimits {
    /// Limits from `[sip]`; `active_calls` is the per-tenant gauge the call slots keep.
    pub fn new(sip: &vaani_config::SipConfig, active_calls: prometheus::IntGaugeVec) -> Self {
        let per_source = sip.max_invites_per_second_per_source;
        Self {
            source_rate: Rate::per_second(per_source, per_source),
            default_number_rate: sip.max_calls_per_minute_per_number,
            sources: Mutex::default(),
            numbers: Mutex::default(),
            tenants: TenantCalls::new(active_calls),
        }
    }

    /// One INVITE from `source`: within `[sip] max_invites_per_second_per_source`?
    pub fn check_source(&self, source: IpAddr, now: Instant) -> Result<(), CallRefusal> {
        let Some(rate) = self.source_rate else {
            return Ok(());
        };
        lock(&self.sources)
            .check(&source.to_canonical(), rate, now)
            .map_err(CallRefusal::SourceRate)
    }

    /// One new call to `number` (a tenant's, with its own per-minute limit if it set one).
    pub fn check_number(
        &self,
        number: &str,
        tenant_per_minute: Option<u32>,
        now: Instant,
    ) -> Result<(), CallRefusal> {
        let per_minute = tenant_per_minute.unwrap_or(self.default_number_rate);
        let Some(rate) = Rate::per_minute(per_minute) else {
            return Ok(());
        };
        lock(&self.numbers)
            .check(&number.to_owned(), rate, now)
            .map_err(CallRefusal::NumberRate)
    }

    /// A slot for one more call of `tenant` (inbound, or one we place), unless it has `max`
    /// up already.
    pub fn try_occupy(&self, tenant: &str, max: Option<u32>) -> Result<CallSlot, CallRefusal> {
        self.tenants
            .try_occupy(tenant, max)
            .ok_or(CallRefusal::TenantBusy {
                limit: max.unwrap_or(u32::MAX),
            })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Who an API request counts against: its API key (by a hash; the key itself is never kept),
/// or, without a valid key, its source address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ApiClient {
    /// The first 16 bytes of the SHA-256 of a valid key.
    Key([u8; 16]),
    /// The source address of a request without a valid key (`None`: not known).
    Address(Option<IpAddr>),
}

impl ApiClient {
    /// The client of a request that presented `key` and was let in.
    pub fn key(key: &str) -> Self {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(key.as_bytes());
        let mut id = [0; 16];
        id.copy_from_slice(&digest[..16]);
        Self::Key(id)
    }
}

/// The per-key (and per-address) request rate of the HTTP API.
pub struct ApiRateLimiter {
    rate: Option<Rate>,
    clients: Mutex<KeyedLimiter<ApiClient>>,
}

impl ApiRateLimiter {
    /// `per_second` requests per second with bursts of `burst` (0 per second: no limit).
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            rate: Rate::per_second(per_second, burst),
            clients: Mutex::default(),
        }
    }

    /// The limits `[http]` sets.
    pub fn from_config(http: &vaani_config::HttpConfig) -> Self {
        Self::new(http.requests_per_second_per_key, http.request_burst_per_key)
    }

    /// Lets one request of `client` through, or says when to try again.
    pub fn check(&self, client: &ApiClient, now: Instant) -> Result<(), Refused> {
        match self.rate {
            Some(rate) => lock(&self.clients).check(client, rate, now),
            None => Ok(()),
        }
    }
}

impl Default for ApiRateLimiter {
    /// The `[http]` defaults.
    fn default() -> Self {
        Self::new(
            vaani_config::DEFAULT_REQUESTS_PER_SECOND_PER_KEY,
            vaani_config::DEFAULT_REQUEST_BURST_PER_KEY,
        )
    }
}

/// Each tenant's calls up, for its concurrent-call limit and its active-calls gauge.
pub struct TenantCalls {
    counts: Arc<Mutex<HashMap<String, u32>>>,
    gauge: prometheus::IntGaugeVec,
}

impl TenantCalls {
    /// No calls up; `gauge` (labelled by tenant) follows the counts.
    pub fn new(gauge: prometheus::IntGaugeVec) -> Self {
        Self {
            counts: Arc::default(),
            gauge,
        }
    }

    /// A slot unless `tenant` has `max` calls up.
    pub fn try_occupy(&self, tenant: &str, max: Option<u32>) -> Option<CallSlot> {
        let mut counts = lock(&self.counts);
        let count = counts.entry(tenant.to_owned()).or_insert(0);
        if max.is_some_and(|max| *count >= max) {
            if *count == 0 {
                counts.remove(tenant);
            }
            return None;
        }
        *count += 1;
        drop(counts);
        Some(self.slot(tenant))
    }

    fn slot(&self, tenant: &str) -> CallSlot {
        let gauge = self.gauge.with_label_values(&[tenant]);
        gauge.inc();
        CallSlot {
            counts: self.counts.clone(),
            tenant: tenant.to_owned(),
            gauge,
        }
    }

    /// How many calls `tenant` has up.
    #[cfg(test)]
    pub fn count(&self, tenant: &str) -> u32 {
        lock(&self.counts).get(tenant).copied().unwrap_or(0)
    }
}

/// One call of a tenant that counts toward its limit; released when dropped (also when the
/// call task panics).
pub struct CallSlot {
    counts: Arc<Mutex<HashMap<String, u32>>>,
    tenant: String,
    gauge: prometheus::IntGauge,
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        self.gauge.dec();
        let mut counts = lock(&self.counts);
        if let Some(count) = counts.get_mut(&self.tenant) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauge() -> prometheus::IntGaugeVec {
        prometheus::IntGaugeVec::new(prometheus::Opts::new("active", "test"), &["tenant"])
            .expect("gauge")
    }

    fn sip(per_number: u32, per_source: u32) -> vaani_config::SipConfig {
        let text = format!(
            "[http]\noperator_key = \"k\"\n[sip]\nmax_calls_per_minute_per_number = {per_number}\nmax_invites_per_second_per_source = {per_source}\n"
        );
        vaani_config::Config::from_toml_str(
            &text,
            "test.toml",
            std::path::Path::new("/"),
            &vaani_config::LoadOptions {
                env: Default::default(),
                check_files: false,
            },
        )
        .expect("config")
        .sip
    }

    #[test]
    fn a_bucket_lets_its_burst_through_then_one_per_interval() {
        let t0 = Instant::now();
        let rate = Rate::per_minute(10).unwrap();
        let mut bucket = TokenBucket::full(rate, t0);
        for _ in 0..10 {
            assert!(bucket.try_take(rate, t0).is_ok());
        }
        let wait = bucket.try_take(rate, t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(6), "one call every 6 s refills");
        assert!(bucket.try_take(rate, t0 + Duration::from_secs(5)).is_err());
        assert!(bucket.try_take(rate, t0 + Duration::from_secs(6)).is_ok());
        assert!(bucket.try_take(rate, t0 + Duration::from_secs(6)).is_err());
    }

    #[test]
    fn the_eleventh_call_to_a_number_in_a_minute_is_refused_with_a_retry_after() {
        let limits = CallLimits::new(&sip(10, 0), gauge());
        let t0 = Instant::now();
        // Ten calls in the first second; 10/min refills one every 6 s.
        for i in 0..10 {
            let at = t0 + Duration::from_millis(100 * i);
            assert!(limits.check_number("+918000000001", None, at).is_ok());
        }
        let at = t0 + Duration::from_secs(1);
        let Err(CallRefusal::NumberRate(refused)) = limits.check_number("+918000000001", None, at)
        else {
            panic!("the 11th call within a minute passed");
        };
        assert!(refused.first);
        // About a sixth of a token has come back: 5 s more (rounded up) to a whole one.
        assert_eq!(refused.retry_after_secs(), 5);
        // A second refusal in a row is not the first (logged once).
        let Err(CallRefusal::NumberRate(again)) = limits.check_number("+918000000001", None, at)
        else {
            panic!("passed");
        };
        assert!(!again.first);
        // Another number has its own bucket.
        assert!(limits.check_number("+918000000002", None, at).is_ok());
        // After the Retry-After the number takes a call again.
        assert!(
            limits
                .check_number("+918000000001", None, at + Duration::from_secs(5))
                .is_ok()
        );
    }

    #[test]
    fn a_tenant_setting_overrides_the_server_default_and_zero_means_no_limit() {
        let limits = CallLimits::new(&sip(10, 0), gauge());
        let t0 = Instant::now();
        assert!(limits.check_number("+918000000001", Some(1), t0).is_ok());
        assert!(limits.check_number("+918000000001", Some(1), t0).is_err());
        for _ in 0..1000 {
            assert!(limits.check_number("+918000000002", Some(0), t0).is_ok());
        }
        let unlimited = CallLimits::new(&sip(0, 0), gauge());
        for _ in 0..1000 {
            assert!(unlimited.check_number("+918000000001", None, t0).is_ok());
            assert!(unlimited.check_source([127, 0, 0, 1].into(), t0).is_ok());
        }
    }

    #[test]
    fn a_source_address_gets_its_rate_per_second() {
        let limits = CallLimits::new(&sip(0, 3), gauge());
        let t0 = Instant::now();
        let peer: IpAddr = [203, 0, 113, 7].into();
        for _ in 0..3 {
            assert!(limits.check_source(peer, t0).is_ok());
        }
        let Err(CallRefusal::SourceRate(refused)) = limits.check_source(peer, t0) else {
            panic!("the 4th INVITE in a second passed");
        };
        assert_eq!(refused.retry_after_secs(), 1);
        assert!(limits.check_source([203, 0, 113, 8].into(), t0).is_ok());
        // An IPv4-mapped IPv6 address is the same peer.
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert!(limits.check_source(mapped, t0).is_err());
        assert!(
            limits
                .check_source(peer, t0 + Duration::from_millis(334))
                .is_ok()
        );
    }

    #[test]
    fn idle_keys_are_swept_and_memory_stays_bounded() {
        let rate = Rate::per_second(1, 1).unwrap();
        let mut limiter = KeyedLimiter::<u32>::with_capacity(100);
        let t0 = Instant::now();
        for key in 0..100 {
            assert!(limiter.check(&key, rate, t0).is_ok());
        }
        assert_eq!(limiter.tracked(), 100);
        // Full of busy keys: a new key passes untracked, nothing grows.
        assert!(limiter.check(&1000, rate, t0).is_ok());
        assert!(limiter.check(&1000, rate, t0).is_ok());
        assert_eq!(limiter.tracked(), 100);
        // Busy keys stay limited meanwhile.
        assert!(limiter.check(&5, rate, t0).is_err());
        // Once their buckets have refilled, the next new key sweeps them away.
        let later = t0 + Duration::from_secs(2);
        assert!(limiter.check(&2000, rate, later).is_ok());
        assert_eq!(limiter.tracked(), 1);
        assert!(limiter.check(&2000, rate, later).is_err());
    }

    #[test]
    fn a_sweep_runs_at_most_once_a_second() {
        // 10 per second, a burst of 1: a bucket refills in 0.1 s.
        let rate = Rate::per_second(10, 1).unwrap();
        let mut limiter = KeyedLimiter::<u32>::with_capacity(2);
        let t0 = Instant::now();
        limiter.check(&1, rate, t0).unwrap();
        limiter.check(&2, rate, t0).unwrap();
        // Full: sweeps at t0 (nothing has refilled), key 3 passes untracked.
        limiter.check(&3, rate, t0).unwrap();
        assert_eq!(limiter.tracked(), 2);
        // Both buckets have refilled by 0.5 s, but the last sweep was under a second ago.
        limiter
            .check(&4, rate, t0 + Duration::from_millis(500))
            .unwrap();
        assert_eq!(limiter.tracked(), 2);
        limiter
            .check(&4, rate, t0 + Duration::from_secs(1))
            .unwrap();
        assert_eq!(limiter.tracked(), 1);
    }

    #[test]
    fn an_api_key_gets_its_burst_then_its_rate_and_keys_are_apart() {
        let limiter = ApiRateLimiter::new(2, 4);
        let t0 = Instant::now();
        let key = ApiClient::key("vk_secret");
        for _ in 0..4 {
            assert!(limiter.check(&key, t0).is_ok());
        }
        let refused = limiter.check(&key, t0).unwrap_err();
        assert_eq!(refused.retry_after_secs(), 1);
        assert!(limiter.check(&ApiClient::key("vk_other"), t0).is_ok());
        assert!(
            limiter
                .check(&ApiClient::Address(Some([10, 0, 0, 1].into())), t0)
                .is_ok()
        );
        assert!(limiter.check(&key, t0 + Duration::from_millis(500)).is_ok());
        // The key is kept only as a hash.
        assert!(!format!("{key:?}").contains("vk_secret"));
        let unlimited = ApiRateLimiter::new(0, 0);
        for _ in 0..1000 {
            assert!(unlimited.check(&key, t0).is_ok());
        }
    }

    #[test]
    fn a_tenant_at_its_concurrent_limit_gets_no_slot_until_a_call_ends() {
        let gauge = gauge();
        let limits = CallLimits::new(&sip(0, 0), gauge.clone());
        let first = limits.try_occupy("clinic", Some(2)).expect("slot 1");
        let second = limits.try_occupy("clinic", Some(2)).expect("slot 2");
        assert_eq!(
            limits.try_occupy("clinic", Some(2)).err(),
            Some(CallRefusal::TenantBusy { limit: 2 })
        );
        assert_eq!(gauge.with_label_values(&["clinic"]).get(), 2);
        // Other tenants are not affected; no limit is no limit.
        let other = limits.try_occupy("echo", None).expect("echo");
        assert_eq!(limits.tenants.count("clinic"), 2);
        drop(first);
        assert_eq!(limits.tenants.count("clinic"), 1);
        let third = limits.try_occupy("clinic", Some(2)).expect("slot again");
        drop((second, third, other));
        assert_eq!(limits.tenants.count("clinic"), 0);
        assert!(lock(&limits.tenants.counts).is_empty(), "no leftover keys");
        assert_eq!(gauge.with_label_values(&["clinic"]).get(), 0);
    }
}
