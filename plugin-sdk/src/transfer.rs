//! Call transfer and DTMF sending: what a plugin asks for and what comes back (0.3.0).

/// How a transfer hands the caller over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransferMode {
    /// The trunk connects the caller to the target (SIP REFER); the call ends
    /// when the transfer succeeds.
    #[default]
    Blind,
    /// vaani calls the target and connects the two calls, after speaking the
    /// summary (if any) to the person who answers.
    Bridged,
}

/// How [`Call::transfer`](crate::Call::transfer) proceeds: the mode, and for a
/// bridged transfer what to tell the person who answers.
///
/// ```
/// use vaani_plugin_sdk::{TransferMode, TransferOptions};
///
/// let blind = TransferOptions::blind();
/// assert_eq!(blind.mode, TransferMode::Blind);
/// let bridged = TransferOptions::bridged().summary("A caller from the echo line.");
/// assert_eq!(bridged.summary.as_deref(), Some("A caller from the echo line."));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransferOptions {
    /// Blind (the default) or bridged.
    pub mode: TransferMode,
    /// Spoken to the person who answers before the caller is connected; the
    /// host accepts it for a bridged transfer only (at most 2 KiB, not blank).
    pub summary: Option<String>,
}

impl TransferOptions {
    /// A blind transfer: the trunk connects the caller to the target.
    pub fn blind() -> Self {
        TransferOptions {
            mode: TransferMode::Blind,
            summary: None,
        }
    }

    /// A bridged transfer: vaani calls the target and connects the two calls.
    pub fn bridged() -> Self {
        TransferOptions {
            mode: TransferMode::Bridged,
            summary: None,
        }
    }

    /// Sets what the person who answers a bridged transfer hears before the
    /// caller is connected (the host refuses a summary on a blind transfer).
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = Some(summary.into());
        self
    }
}

/// Why a transfer did not happen; delivered to
/// [`Plugin::on_transfer_failed`](crate::Plugin::on_transfer_failed). The call
/// goes on, and the plugin may ask for another transfer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransferFailure {
    /// The target as the plugin gave it.
    pub target: String,
    /// The SIP status that ended it, if any (e.g. 486 busy, 603 declined).
    pub status: Option<u16>,
    /// What happened (also when the tenant's transfer targets do not include
    /// the target), for logs and the plugin's next words.
    pub reason: String,
}
