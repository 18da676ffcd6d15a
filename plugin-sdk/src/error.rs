//! The error type plugin event methods return.

use std::fmt::Display;

/// An error a plugin returns from an event method. The host logs it with the
/// call; the instance stays usable (unlike a panic, which ends the plugin).
///
/// Anything that implements `Display` converts into it, so `?` works on most
/// errors. (`Error` itself deliberately does not implement `Display`, which is
/// what makes that blanket conversion possible.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// Whether an [`Error`] is about the conversation state or a plugin fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The event did not make sense in the plugin's current state.
    InvalidState,
    /// Something inside the plugin failed.
    Internal,
}

impl Error {
    /// An internal error with this message.
    pub fn internal(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Internal,
            message: message.into(),
        }
    }

    /// An invalid-state error with this message.
    pub fn invalid_state(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::InvalidState,
            message: message.into(),
        }
    }

    /// The error message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl<E: Display> From<E> for Error {
    fn from(error: E) -> Self {
        Error::internal(error.to_string())
    }
}

/// Result of plugin methods; `Result` alone means `Result<(), Error>`.
pub type Result<T = (), E = Error> = std::result::Result<T, E>;
