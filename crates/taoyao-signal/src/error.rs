//! The error every signal handler returns: a protocol code and a message for the client.

use taoyao_boot::{Code, ErrorCode};

/// What the signaling edge answers with. The message is shown to users: it says what was wrong
/// and never carries internals or secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SignalError {
    pub code: Code,
    pub message: String,
}

impl SignalError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        SignalError {
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Code::BadRequest, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(Code::Unauthorized, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Code::Forbidden, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(Code::Timeout, message)
    }
    pub fn system(message: impl Into<String>) -> Self {
        Self::new(Code::SystemError, message)
    }

    /// Wraps any crate's error that knows its protocol code.
    pub fn from_coded<E: ErrorCode>(e: &E) -> Self {
        Self::new(e.code(), e.to_string())
    }
}
