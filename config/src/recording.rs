//! `[tenants.recording]`: per-tenant call recording (opt-in).

use serde::{Deserialize, Serialize};

use crate::checker::Checker;
use crate::lenient;

/// `[tenants.recording]`: whether the tenant's calls are recorded (two-channel WAV: caller,
/// agent), how long recordings are kept, and what is said before recording starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordingConfig {
    /// Record calls (default false).
    pub enabled: bool,
    /// Recordings older than this many days are deleted (default 30; 1..=3650).
    pub retention_days: u32,
    /// Spoken to the caller before recording starts (default none: recording starts when
    /// the call is answered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub announcement: Option<String>,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            enabled: false,
            retention_days: 30,
            announcement: None,
        }
    }
}

/// `[tenants.recording]` as written.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawRecording {
    enabled: bool,
    retention_days: u32,
    #[serde(deserialize_with = "lenient::opt_string")]
    announcement: Option<String>,
}

impl Default for RawRecording {
    fn default() -> Self {
        let d = RecordingConfig::default();
        RawRecording {
            enabled: d.enabled,
            retention_days: d.retention_days,
            announcement: None,
        }
    }
}

impl RawRecording {
    pub(crate) fn check(self, c: &mut Checker, key: &str) -> RecordingConfig {
        c.in_range(
            &format!("{key}.retention_days"),
            self.retention_days,
            1,
            3650,
        );
        let announcement = self
            .announcement
            .map(|text| c.non_empty(&format!("{key}.announcement"), &text));
        RecordingConfig {
            enabled: self.enabled,
            retention_days: self.retention_days,
            announcement,
        }
    }
}
