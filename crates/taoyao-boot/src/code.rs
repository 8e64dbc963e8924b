//! taoyao's protocol code table (see `docs/protocol.md`).

use serde::{Deserialize, Serialize};

/// A protocol result code. Serialized as taoyao's four-digit string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Code {
    #[serde(rename = "0000")]
    Success,
    #[serde(rename = "1000")]
    UnknownInterface,
    #[serde(rename = "1001")]
    PreviousRequestNotFinished,
    #[serde(rename = "1002")]
    BadMessage,
    #[serde(rename = "1003")]
    SignatureFailed,
    #[serde(rename = "2000")]
    Internal,
    #[serde(rename = "2001")]
    Timeout,
    #[serde(rename = "3400")]
    BadRequest,
    #[serde(rename = "3401")]
    Unauthorized,
    #[serde(rename = "3403")]
    Forbidden,
    #[serde(rename = "3404")]
    NotFound,
    #[serde(rename = "3415")]
    UnsupportedSignal,
    #[serde(rename = "3500")]
    SystemError,
    #[serde(rename = "9999")]
    Unknown,
}

impl Code {
    /// Every code, in table order (used by docs and tests).
    pub const ALL: [Code; 14] = [
        Code::Success,
        Code::UnknownInterface,
        Code::PreviousRequestNotFinished,
        Code::BadMessage,
        Code::SignatureFailed,
        Code::Internal,
        Code::Timeout,
        Code::BadRequest,
        Code::Unauthorized,
        Code::Forbidden,
        Code::NotFound,
        Code::UnsupportedSignal,
        Code::SystemError,
        Code::Unknown,
    ];

    /// The four-digit wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Success => "0000",
            Code::UnknownInterface => "1000",
            Code::PreviousRequestNotFinished => "1001",
            Code::BadMessage => "1002",
            Code::SignatureFailed => "1003",
            Code::Internal => "2000",
            Code::Timeout => "2001",
            Code::BadRequest => "3400",
            Code::Unauthorized => "3401",
            Code::Forbidden => "3403",
            Code::NotFound => "3404",
            Code::UnsupportedSignal => "3415",
            Code::SystemError => "3500",
            Code::Unknown => "9999",
        }
    }

    /// The wire form back to a code; anything unknown is [`Code::Unknown`].
    pub fn parse(s: &str) -> Code {
        Code::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .unwrap_or(Code::Unknown)
    }

    /// The table's short meaning, used when an error carries no message of its own.
    pub fn meaning(self) -> &'static str {
        match self {
            Code::Success => "success",
            Code::UnknownInterface => "unknown interface",
            Code::PreviousRequestNotFinished => "previous request not finished",
            Code::BadMessage => "bad message format",
            Code::SignatureFailed => "signature or token check failed",
            Code::Internal => "internal error",
            Code::Timeout => "timeout",
            Code::BadRequest => "bad request",
            Code::Unauthorized => "unauthorized",
            Code::Forbidden => "forbidden",
            Code::NotFound => "not found",
            Code::UnsupportedSignal => "unsupported signal",
            Code::SystemError => "system error",
            Code::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Implemented by every crate's error enum: the protocol code the signaling edge answers with.
/// The error's `Display` is the human-readable message, so it must never carry secrets.
pub trait ErrorCode: std::error::Error {
    fn code(&self) -> Code;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_round_trips_and_is_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert_eq!(Code::parse(c.as_str()), c);
            assert_eq!(c.as_str().len(), 4);
            assert!(seen.insert(c.as_str()), "duplicate code {c}");
        }
        assert_eq!(Code::parse("1234"), Code::Unknown);
    }
}
