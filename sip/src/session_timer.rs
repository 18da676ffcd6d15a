//! Session timers (RFC 4028): the interval and refresher agreed in a dialog-creating or
//! refreshing request, and when the refresher must act or the session is dead.
//!
//! Pure values: the endpoint reads the request headers through [`TimerRequest::read`], asks
//! [`negotiate`] what to answer, and keeps a [`SessionTimer`] per call.

use std::time::{Duration, Instant};

use crate::message::{self, split_header_list};

/// Which side of the dialog sends the refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// The caller (the UAC of the INVITE) refreshes; we watch for expiry.
    Uac,
    /// We (the UAS) refresh, with UPDATE.
    Uas,
}

impl Refresher {
    fn token(self) -> &'static str {
        match self {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        }
    }
}

/// The session-timer headers of one request (or 2xx response).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TimerRequest {
    /// `Session-Expires` delta-seconds.
    pub session_expires: Option<u32>,
    /// The `refresher` parameter of `Session-Expires`.
    pub refresher: Option<Refresher>,
    /// `Min-SE` delta-seconds.
    pub min_se: Option<u32>,
    /// `timer` is in `Supported` (or `Require`).
    pub supported: bool,
}

fn delta_seconds(value: &str) -> Option<u32> {
    value.split(';').next()?.trim().parse().ok()
}

impl TimerRequest {
    /// Reads the headers; unparseable values count as absent.
    pub fn read(headers: &[(String, String)]) -> Self {
        let session_expires_raw = message::first_header(headers, "Session-Expires");
        let refresher = session_expires_raw.and_then(|value| {
            value.split(';').skip(1).find_map(|param| {
                let (name, val) = param.split_once('=')?;
                if !name.trim().eq_ignore_ascii_case("refresher") {
                    return None;
                }
                match val.trim().to_ascii_lowercase().as_str() {
                    "uac" => Some(Refresher::Uac),
                    "uas" => Some(Refresher::Uas),
                    _ => None,
                }
            })
        });
        let supported = headers
            .iter()
            .filter(|(name, _)| {
                let name = name.as_str();
                name.eq_ignore_ascii_case("Supported")
                    || name.eq_ignore_ascii_case("k")
                    || name.eq_ignore_ascii_case("Require")
            })
            .flat_map(|(_, value)| split_header_list(value))
            .any(|tag| tag.eq_ignore_ascii_case("timer"));
        Self {
            session_expires: session_expires_raw.and_then(delta_seconds),
            refresher,
            min_se: message::first_header(headers, "Min-SE").and_then(delta_seconds),
            supported,
        }
    }
}

/// What to do with a request's session-timer headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Negotiation {
    /// The interval is below our minimum: answer `422` with this `Min-SE`.
    TooSmall {
        /// Our minimum, in seconds.
        min_se: u32,
    },
    /// No session timer in this dialog.
    Off,
    /// Run a session timer.
    On {
        /// Seconds.
        interval: u32,
        /// Who refreshes.
        refresher: Refresher,
    },
}

/// Decides the session timer for a request (RFC 4028 §9). `preferred` is the interval we ask
/// for when the caller supports timers but names none; `min_se` is the smallest we accept.
pub(crate) fn negotiate(request: &TimerRequest, preferred: u32, min_se: u32) -> Negotiation {
    let floor = min_se.max(request.min_se.unwrap_or(0)).max(90);
    match request.session_expires {
        Some(asked) if asked < min_se => Negotiation::TooSmall {
            min_se: min_se.max(90),
        },
        Some(asked) => Negotiation::On {
            // We may shorten a long interval, never below either side's minimum.
            interval: asked.min(preferred.max(floor)),
            // Prefer the caller as refresher when it can do it: it is the side that knows
            // whether it is still there.
            refresher: request.refresher.unwrap_or(if request.supported {
                Refresher::Uac
            } else {
                Refresher::Uas
            }),
        },
        None if request.supported => Negotiation::On {
            interval: preferred.max(floor),
            refresher: Refresher::Uac,
        },
        None => Negotiation::Off,
    }
}

/// The header value we send for an agreed interval and refresher.
pub(crate) fn header_value(interval: u32, refresher: Refresher) -> String {
    format!("{interval};refresher={}", refresher.token())
}

/// A running session timer of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionTimer {
    /// Agreed interval.
    pub interval: Duration,
    /// Who refreshes.
    pub refresher: Refresher,
    /// When we send our next refresh (we are the refresher).
    pub refresh_at: Option<Instant>,
    /// When the session is dead without a refresh (the peer is the refresher).
    pub expires_at: Option<Instant>,
}

impl SessionTimer {
    /// Starts (or restarts, after a refresh) the timer at `now`.
    pub fn start(now: Instant, interval: u32, refresher: Refresher) -> Self {
        let interval = Duration::from_secs(u64::from(interval));
        match refresher {
            Refresher::Uas => Self {
                interval,
                refresher,
                refresh_at: Some(now + interval / 2),
                expires_at: None,
            },
            Refresher::Uac => Self {
                interval,
                refresher,
                refresh_at: None,
                // RFC 4028 §10: BYE at expiry minus the lesser of 32 s and a third of it.
                expires_at: Some(now + interval - (interval / 3).min(Duration::from_secs(32))),
            },
        }
    }

    /// The earliest instant this timer needs attention.
    pub fn deadline(&self) -> Option<Instant> {
        match (self.refresh_at, self.expires_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
