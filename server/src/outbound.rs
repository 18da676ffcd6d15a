//! Calls vaani places (`POST /api/v1/calls`): checking the request against the tenant and its
//! trunk, the trunk's calls-per-second and concurrency limits, and handing the INVITE to the
//! SIP driver. Once answered, an outbound call runs exactly like an inbound one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use vaani_config::{OutboundConfig, TrunkConfig};
use vaani_sip::{DigestCredentials, OutboundCall, OutboundTls, SdpSession, SipCommand, Transport};

use crate::limits::{Rate, TokenBucket};

/// A request to place a call, from the HTTP API.
#[derive(Debug)]
pub struct DialRequest {
    /// The tenant whose plugin talks on the call.
    pub tenant: String,
    /// The number to call (E.164).
    pub to: String,
    /// Our caller id (E.164); default: the trunk's `caller_id`, else the tenant's first number.
    pub from: Option<String>,
    /// Where the outcome of the checks goes.
    pub reply: oneshot::Sender<Result<String, DialError>>,
}

/// Why a call could not be placed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DialError {
    /// No such tenant.
    #[error("unknown tenant {0:?}")]
    UnknownTenant(String),
    /// The tenant's trunk has no `[trunks.outbound]`.
    #[error("trunk {0:?} does not place calls (no [trunks.outbound])")]
    NoOutboundTrunk(String),
    /// A number is not E.164.
    #[error("{field}: {value:?} is not an E.164 number (+ and 8-15 digits)")]
    InvalidNumber {
        /// Which field.
        field: &'static str,
        /// What was sent.
        value: String,
    },
    /// The trunk's calls-per-second limit.
    #[error("trunk {0:?} is at its calls-per-second limit")]
    RateLimited(String),
    /// The trunk's concurrent-call limit.
    #[error("trunk {0:?} has its maximum number of calls up")]
    TooManyCalls(String),
    /// The tenant's concurrent-call limit (`max_concurrent_calls`).
    #[error("tenant {0:?} has its maximum number of calls up")]
    TenantBusy(String),
    /// The trunk's address, the media ports or the SIP driver failed.
    #[error("{0}")]
    Unavailable(String),
    /// The server is stopping (draining): it places no new calls.
    #[error("the server is stopping and places no new calls")]
    Draining,
}

/// One trunk's outbound admission: a token bucket for calls per second (a burst of one
/// second's worth, see [`crate::limits::TokenBucket`]) and a count of calls up. Time is
/// passed in.
#[derive(Debug)]
pub struct TrunkLimiter {
    rate: Rate,
    bucket: TokenBucket,
    max_concurrent: u32,
    active: u32,
}

impl TrunkLimiter {
    /// A full bucket at `now`.
    pub fn new(per_second: f64, max_concurrent: u32, now: Instant) -> Self {
        let rate = Rate {
            per_second,
            burst: per_second.max(1.0),
        };
        Self {
            rate,
            bucket: TokenBucket::full(rate, now),
            max_concurrent,
            active: 0,
        }
    }

    /// Takes one call start if both limits allow it.
    pub fn try_start(&mut self, now: Instant, trunk: &str) -> Result<(), DialError> {
        if self.active >= self.max_concurrent {
            return Err(DialError::TooManyCalls(trunk.to_owned()));
        }
        if self.bucket.try_take(self.rate, now).is_err() {
            return Err(DialError::RateLimited(trunk.to_owned()));
        }
        self.active += 1;
        Ok(())
    }

    /// A call that [`try_start`](Self::try_start) admitted has ended.
    pub fn finish(&mut self) {
        self.active = self.active.saturating_sub(1);
    }
}

/// The limiters of every outbound trunk, shared by the API and the call tasks.
#[derive(Debug, Default)]
pub struct Limiters {
    by_trunk: Mutex<HashMap<String, TrunkLimiter>>,
}

impl Limiters {
    /// Admits one call on `trunk` now.
    pub fn try_start(&self, trunk: &str, outbound: &OutboundConfig) -> Result<(), DialError> {
        let now = Instant::now();
        let mut map = self.by_trunk.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(trunk.to_owned())
            .or_insert_with(|| {
                TrunkLimiter::new(outbound.calls_per_second, outbound.max_concurrent, now)
            })
            .try_start(now, trunk)
    }

    /// Releases a call admitted on `trunk`.
    pub fn finish(&self, trunk: &str) {
        let mut map = self.by_trunk.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(limiter) = map.get_mut(trunk) {
            limiter.finish();
        }
    }
}

/// Where a trunk's INVITEs go, from its `uri`: host, port, transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkTarget {
    /// Host name or address, as written.
    pub host: String,
    /// The port (5060, or 5061 for TLS, when the URI has none).
    pub port: u16,
    /// The transport (`;transport=`, default UDP).
    pub transport: Transport,
}

impl TrunkTarget {
    /// Reads a checked `sip:`/`sips:` URI (see the config's validation).
    pub fn parse(uri: &str) -> Option<Self> {
        let (secure, rest) = match uri.strip_prefix("sips:") {
            Some(rest) => (true, rest),
            None => (false, uri.strip_prefix("sip:")?),
        };
        let mut parts = rest.split(';');
        let address = parts.next()?;
        let host_port = address.rsplit_once('@').map_or(address, |(_, h)| h);
        let mut transport = if secure {
            Transport::Tls
        } else {
            Transport::Udp
        };
        for param in parts {
            if let Some(value) = param.strip_prefix("transport=") {
                transport = match value.to_ascii_lowercase().as_str() {
                    "tcp" => Transport::Tcp,
                    "tls" => Transport::Tls,
                    _ => Transport::Udp,
                };
            }
        }
        let default_port = if transport == Transport::Tls {
            5061
        } else {
            5060
        };
        let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
            let (host, after) = v6.split_once(']')?;
            let port = after.strip_prefix(':').map(str::parse).transpose().ok()?;
            (host.to_owned(), port.unwrap_or(default_port))
        } else {
            match host_port.rsplit_once(':') {
                Some((host, port)) => (host.to_owned(), port.parse().ok()?),
                None => (host_port.to_owned(), default_port),
            }
        };
        (!host.is_empty()).then_some(Self {
            host,
            port,
            transport,
        })
    }

    /// The Request-URI for calling `to` through this trunk.
    pub fn request_uri(&self, to: &str) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let transport = match self.transport {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
            Transport::Tls => ";transport=tls",
        };
        format!("sip:{to}@{host}:{}{transport}", self.port)
    }

    /// Resolves the host (DNS A/AAAA; SRV/NAPTR are not used).
    pub async fn resolve(&self) -> Result<SocketAddr, DialError> {
        tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| DialError::Unavailable(format!("resolving {}: {e}", self.host)))?
            .next()
            .ok_or_else(|| DialError::Unavailable(format!("{} has no address", self.host)))
    }
}

/// TLS settings of the trunks called over TLS, by CA file and host name: each CA file is read
/// once for the life of the process (restart to pick up a replaced file).
fn tls_settings_cache() -> &'static Mutex<HashMap<(PathBuf, String), OutboundTls>> {
    static CACHE: OnceLock<Mutex<HashMap<(PathBuf, String), OutboundTls>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// How the SIP driver opens the TLS connection to a trunk: the trust roots of its `tls_ca`
/// (never the system's) and its host name, which its certificate must carry and which goes
/// out as SNI. `None` for UDP and TCP trunks.
pub fn outbound_tls(
    trunk: &str,
    outbound: &OutboundConfig,
    target: &TrunkTarget,
) -> Result<Option<OutboundTls>, DialError> {
    if target.transport != Transport::Tls {
        return Ok(None);
    }
    let ca = outbound.tls_ca.as_ref().ok_or_else(|| {
        DialError::Unavailable(format!(
            "trunk {trunk}: calls over TLS need [trunks.outbound] tls_ca (the CA file to trust)"
        ))
    })?;
    let key = (ca.clone(), target.host.clone());
    let mut cache = tls_settings_cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(tls) = cache.get(&key) {
        return Ok(Some(tls.clone()));
    }
    let unavailable =
        |e: vaani_sip::TlsConfigError| DialError::Unavailable(format!("trunk {trunk}: {e}"));
    let config = vaani_sip::tls::load_client_config(ca).map_err(unavailable)?;
    let tls = OutboundTls::new(config, &target.host).map_err(unavailable)?;
    cache.insert(key, tls.clone());
    Ok(Some(tls))
}

/// Everything needed to send the INVITE of one call.
pub struct PlacedCall {
    /// The command for the SIP driver.
    pub command: SipCommand,
    /// Where the trunk is.
    pub destination: SocketAddr,
}

/// The trunk a call goes out through.
#[derive(Clone, Copy)]
pub struct OutboundRoute<'a> {
    /// The trunk.
    pub trunk: &'a TrunkConfig,
    /// Its `[trunks.outbound]`.
    pub outbound: &'a OutboundConfig,
    /// Where its INVITEs go.
    pub target: &'a TrunkTarget,
}

/// Builds the driver command for a call to `to` from `from` through `route`.
pub fn place_call_command(
    request_id: u64,
    route: OutboundRoute<'_>,
    destination: SocketAddr,
    (from, to): (&str, &str),
    offer: SdpSession,
) -> Result<PlacedCall, DialError> {
    let OutboundRoute {
        trunk,
        outbound,
        target,
    } = route;
    let credentials = match (&outbound.username, &outbound.password_env) {
        (Some(username), Some(variable)) => Some(DigestCredentials {
            username: username.clone(),
            password: std::env::var(variable).map_err(|_| {
                DialError::Unavailable(format!(
                    "trunk {}: the environment variable {variable} (password_env) is not set",
                    trunk.id
                ))
            })?,
        }),
        _ => None,
    };
    let tls = outbound_tls(&trunk.id, outbound, target)?;
    let call = OutboundCall {
        request_uri: target.request_uri(to),
        destination,
        transport: target.transport,
        from_user: from.to_owned(),
        from_display: None,
        to_user: to.to_owned(),
        sdp: offer,
        extra_headers: Vec::new(),
        credentials,
        ring_timeout: Duration::from_secs(u64::from(outbound.ring_timeout_secs)),
        tls,
    };
    Ok(PlacedCall {
        command: SipCommand::PlaceCall {
            request_id,
            call: Box::new(call),
        },
        destination,
    })
}

/// Checks a dial request, stores the call (`ringing`, outbound) and sends its INVITE; answers
/// the request with the call id, or why not.
pub async fn dial(state: Arc<crate::app::AppState>, request: DialRequest) {
    let result = start_dial(&state, &request).await;
    if let Err(error) = &result {
        // The error may quote the number asked for: masked like every number in the logs.
        tracing::info!(
            tenant = %request.tenant,
            "call not placed: {}",
            crate::call::mask_numbers_in(&error.to_string())
        );
    }
    let _ = request.reply.send(result);
}

async fn start_dial(
    state: &Arc<crate::app::AppState>,
    request: &DialRequest,
) -> Result<String, DialError> {
    // The call keeps the tenant it was placed for, whatever the registry becomes later.
    let tenant = state
        .registry
        .snapshot()
        .tenant(&request.tenant)
        .ok_or_else(|| DialError::UnknownTenant(request.tenant.clone()))?;
    let trunk = state
        .config
        .trunks
        .iter()
        .find(|t| t.id == tenant.trunk)
        .ok_or_else(|| DialError::NoOutboundTrunk(tenant.trunk.clone()))?;
    let outbound = trunk
        .outbound
        .as_ref()
        .ok_or_else(|| DialError::NoOutboundTrunk(trunk.id.clone()))?;
    let to = request.to.trim().to_owned();
    if !vaani_config::is_e164(&to) {
        return Err(DialError::InvalidNumber {
            field: "to",
            value: to,
        });
    }
    let from = match &request.from {
        Some(from) => from.trim().to_owned(),
        None => outbound
            .caller_id
            .clone()
            .or_else(|| tenant.numbers.first().cloned())
            .unwrap_or_default(),
    };
    if !vaani_config::is_e164(&from) {
        return Err(DialError::InvalidNumber {
            field: "from",
            value: from,
        });
    }
    let target = TrunkTarget::parse(&outbound.uri)
        .ok_or_else(|| DialError::Unavailable(format!("trunk {}: bad uri", trunk.id)))?;
    // The call counts toward the tenant's calls up from now on (released if it is not placed).
    let slot = state
        .call_limits
        .try_occupy(&tenant.id, tenant.call_limits.max_concurrent_calls)
        .map_err(|_| DialError::TenantBusy(tenant.id.clone()))?;
    state.outbound_limiters.try_start(&trunk.id, outbound)?;
    let route = OutboundRoute {
        trunk,
        outbound,
        target: &target,
    };
    let placed = place(state, request, (tenant, slot), route, (&from, &to)).await;
    if placed.is_err() {
        state.outbound_limiters.finish(&trunk.id);
    }
    placed
}

async fn place(
    state: &Arc<crate::app::AppState>,
    request: &DialRequest,
    (tenant, slot): (Arc<crate::app::TenantRuntime>, crate::limits::CallSlot),
    route: OutboundRoute<'_>,
    (from, to): (&str, &str),
) -> Result<String, DialError> {
    use vaani_store::{CallDirection, CallStatus, NewCall};

    let OutboundRoute { trunk, target, .. } = route;
    let destination = target.resolve().await?;
    let lease = state
        .media
        .allocate_port()
        .map_err(|e| DialError::Unavailable(format!("no RTP port: {e}")))?;
    let codecs = match trunk.codecs.as_deref() {
        Some(codecs) => crate::call_media::codec_list(codecs),
        None => state.codecs.clone(),
    };
    // The trunk's SRTP policy: `required` offers RTP/SAVP with SDES keys, `optional` RTP/AVP
    // with the same keys (best effort); the agreed keys reach the media session through
    // `NegotiatedMedia::srtp` of the answer, as for inbound calls.
    let offer = SdpSession::offer_initial_with_srtp(
        &codecs,
        state.media_public_ip,
        lease.port(),
        crate::call::rand_session_id(),
        crate::call_media::srtp_mode(trunk.srtp),
    );
    let request_id = state
        .next_dial
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let placed = place_call_command(request_id, route, destination, (from, to), offer)?;
    let call_id = vaani_store::new_id();
    let new_call = NewCall {
        id: call_id.clone(),
        tenant_id: request.tenant.clone(),
        external_id: None,
        direction: CallDirection::Outbound,
        caller: to.to_owned(),
        dialled: from.to_owned(),
        status: CallStatus::Ringing,
        started_at_ms: crate::call::now_unix_ms(),
        plugin_name: tenant.plugin.as_ref().map(|p| p.info.name.clone()),
        plugin_version: tenant.plugin.as_ref().map(|p| p.info.version.clone()),
    };
    state
        .store
        .insert_call(&new_call)
        .await
        .map_err(|e| DialError::Unavailable(format!("storing the call: {e}")))?;
    let start = crate::call::OutboundStart {
        call_id: call_id.clone(),
        tenant,
        trunk: trunk.clone(),
        from: from.to_owned(),
        to: to.to_owned(),
        lease,
        destination: placed.destination,
        transport: target.transport,
        slot,
    };
    state
        .pending_dials
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(request_id, start);
    state.sip_command(placed.command).await;
    Ok(call_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_the_rate_and_the_concurrency_limit_holds() {
        let t0 = Instant::now();
        let mut limiter = TrunkLimiter::new(2.0, 3, t0);
        assert!(limiter.try_start(t0, "t").is_ok());
        assert!(limiter.try_start(t0, "t").is_ok());
        assert_eq!(
            limiter.try_start(t0, "t"),
            Err(DialError::RateLimited("t".into()))
        );
        // Half a second later one more token has come back.
        let later = t0 + Duration::from_millis(500);
        assert!(limiter.try_start(later, "t").is_ok());
        // Three calls are up: the concurrency limit answers, whatever the bucket says.
        let much_later = t0 + Duration::from_secs(10);
        assert_eq!(
            limiter.try_start(much_later, "t"),
            Err(DialError::TooManyCalls("t".into()))
        );
        limiter.finish();
        assert!(limiter.try_start(much_later, "t").is_ok());
    }

    #[test]
    fn a_slow_trunk_still_admits_one_call_at_a_time() {
        // Exotel: 200 per minute.
        let t0 = Instant::now();
        let mut limiter = TrunkLimiter::new(200.0 / 60.0, 100, t0);
        for _ in 0..3 {
            assert!(limiter.try_start(t0, "exotel").is_ok());
        }
        assert!(limiter.try_start(t0, "exotel").is_err());
        assert!(
            limiter
                .try_start(t0 + Duration::from_millis(300), "exotel")
                .is_ok()
        );
    }

    fn outbound(uri: &str, tls_ca: Option<&str>) -> OutboundConfig {
        OutboundConfig {
            uri: uri.to_owned(),
            username: None,
            password_env: None,
            caller_id: None,
            calls_per_second: 10.0,
            max_concurrent: 10,
            ring_timeout_secs: 45,
            tls_ca: tls_ca.map(PathBuf::from),
        }
    }

    #[test]
    fn tls_trunks_need_a_readable_ca_file_and_others_need_none() {
        let plain = outbound("sip:pstn.in2.exotel.com:5070;transport=tcp", None);
        let target = TrunkTarget::parse(&plain.uri).unwrap();
        assert_eq!(outbound_tls("exotel", &plain, &target), Ok(None));

        let secure = outbound("sips:vaani.pstn.twilio.com", None);
        let target = TrunkTarget::parse(&secure.uri).unwrap();
        let Err(DialError::Unavailable(why)) = outbound_tls("twilio", &secure, &target) else {
            panic!("a TLS trunk without tls_ca is refused");
        };
        assert!(why.contains("tls_ca"), "{why}");

        let missing = outbound(
            "sips:vaani.pstn.twilio.com",
            Some("/nonexistent/vaani-test-ca.pem"),
        );
        let Err(DialError::Unavailable(why)) = outbound_tls("twilio", &missing, &target) else {
            panic!("an unreadable CA file is refused");
        };
        assert!(why.contains("vaani-test-ca.pem"), "{why}");
    }

    #[test]
    fn trunk_uris_give_host_port_and_transport() {
        let exotel = TrunkTarget::parse("sip:pstn.in2.exotel.com:5070;transport=tcp").unwrap();
        assert_eq!(exotel.host, "pstn.in2.exotel.com");
        assert_eq!(exotel.port, 5070);
        assert_eq!(exotel.transport, Transport::Tcp);
        assert_eq!(
            exotel.request_uri("+919876543210"),
            "sip:+919876543210@pstn.in2.exotel.com:5070;transport=tcp"
        );
        let twilio = TrunkTarget::parse("sip:vaani.pstn.twilio.com").unwrap();
        assert_eq!((twilio.port, twilio.transport), (5060, Transport::Udp));
        let secure = TrunkTarget::parse("sips:vaani.pstn.twilio.com").unwrap();
        assert_eq!((secure.port, secure.transport), (5061, Transport::Tls));
        let v6 = TrunkTarget::parse("sip:[2001:db8::1]:5080").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("2001:db8::1", 5080));
        assert_eq!(v6.request_uri("+1"), "sip:+1@[2001:db8::1]:5080");
        assert!(TrunkTarget::parse("http://x").is_none());
        assert!(TrunkTarget::parse("sip:host:notaport").is_none());
    }
}
