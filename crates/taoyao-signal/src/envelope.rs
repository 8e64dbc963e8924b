//! The taoyao envelope: `{code, message, header: {v, id, signal}, body}`.
//!
//! Parsing is strict and explains itself: every rejection carries the reason a client developer
//! needs, and whatever of the header could be read (so an error can still answer the right id).

use serde::Serialize;
use serde_json::{Map, Value};
use taoyao_boot::Code;
use taoyao_boot::ids::MAX_SAFE_ID;

/// The protocol version this server speaks (`header.v`).
pub const PROTOCOL_VERSION: &str = "1.0.0";
/// Longest signal name accepted; real ones are far shorter.
const MAX_SIGNAL_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Header {
    pub v: String,
    pub id: u64,
    pub signal: String,
}

/// One protocol message. Requests and notifications carry no `code`; responses always do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<Code>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub header: Header,
    /// Always a JSON object (an absent or null body is read as `{}`).
    pub body: Value,
}

/// Why a text frame is not a protocol message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    /// The header id, when it could be read, so the error can answer it.
    pub id: Option<u64>,
    pub reason: String,
}

impl Message {
    /// A request or notification (no code).
    pub fn new(id: u64, signal: impl Into<String>, body: Value) -> Self {
        Message {
            code: None,
            message: None,
            header: Header {
                v: PROTOCOL_VERSION.into(),
                id,
                signal: signal.into(),
            },
            body: object_or_empty(body),
        }
    }

    /// The success response to this message: same id and signal, code 0000.
    pub fn reply(&self, body: Value) -> Message {
        Message {
            code: Some(Code::Success),
            message: Some(Code::Success.meaning().into()),
            header: Header {
                v: PROTOCOL_VERSION.into(),
                id: self.header.id,
                signal: self.header.signal.clone(),
            },
            body: object_or_empty(body),
        }
    }

    /// An error response to this message: same id and signal, the code and a readable message.
    pub fn reply_error(&self, code: Code, message: impl Into<String>) -> Message {
        Message {
            code: Some(code),
            message: Some(message.into()),
            header: Header {
                v: PROTOCOL_VERSION.into(),
                id: self.header.id,
                signal: self.header.signal.clone(),
            },
            body: Value::Object(Map::new()),
        }
    }

    /// A response (it carries a code) rather than a request or notification.
    pub fn is_response(&self) -> bool {
        self.code.is_some()
    }

    pub fn signal(&self) -> &str {
        &self.header.signal
    }

    pub fn id(&self) -> u64 {
        self.header.id
    }

    /// A string field of the body.
    pub fn body_str(&self, key: &str) -> Option<&str> {
        self.body.get(key).and_then(Value::as_str)
    }

    pub fn to_json(&self) -> String {
        // Serializing a Value tree with string keys cannot fail.
        serde_json::to_string(self).expect("message serializes")
    }

    /// Parses one text frame.
    pub fn parse(text: &str) -> Result<Message, ParseError> {
        let fail = |id, reason: String| ParseError { id, reason };
        let value: Value =
            serde_json::from_str(text).map_err(|e| fail(None, format!("not valid JSON: {e}")))?;
        let Value::Object(mut obj) = value else {
            return Err(fail(None, "a message must be a JSON object".into()));
        };
        let Some(Value::Object(header)) = obj.remove("header") else {
            return Err(fail(
                None,
                "missing header (an object with v, id and signal)".into(),
            ));
        };
        let id = match header.get("id") {
            Some(Value::Number(n)) => match n.as_u64() {
                Some(id) if id <= MAX_SAFE_ID => id,
                _ => {
                    return Err(fail(
                        None,
                        "header.id must be an integer from 0 to 2^53-1".into(),
                    ));
                }
            },
            Some(_) => return Err(fail(None, "header.id must be a number".into())),
            None => return Err(fail(None, "missing header.id".into())),
        };
        let v = match header.get("v") {
            Some(Value::String(v)) if !v.is_empty() && v.len() <= 16 => v.clone(),
            Some(_) => return Err(fail(Some(id), "header.v must be a short string".into())),
            None => return Err(fail(Some(id), "missing header.v".into())),
        };
        let signal = match header.get("signal") {
            Some(Value::String(s)) if valid_signal(s) => s.clone(),
            Some(Value::String(_)) => {
                return Err(fail(
                    Some(id),
                    format!(
                        "header.signal must look like group::name (letters, digits, _ and ::, \
                         at most {MAX_SIGNAL_LEN} characters)"
                    ),
                ));
            }
            Some(_) => return Err(fail(Some(id), "header.signal must be a string".into())),
            None => return Err(fail(Some(id), "missing header.signal".into())),
        };
        let code = match obj.remove("code") {
            None | Some(Value::Null) => None,
            Some(Value::String(c)) => Some(Code::parse(&c)),
            Some(_) => return Err(fail(Some(id), "code must be a string like \"0000\"".into())),
        };
        let message = match obj.remove("message") {
            None | Some(Value::Null) => None,
            Some(Value::String(m)) => Some(m),
            Some(_) => return Err(fail(Some(id), "message must be a string".into())),
        };
        let body = match obj.remove("body") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(b @ Value::Object(_)) => b,
            Some(_) => return Err(fail(Some(id), "body must be a JSON object".into())),
        };
        Ok(Message {
            code,
            message,
            header: Header { v, id, signal },
            body,
        })
    }
}

fn object_or_empty(body: Value) -> Value {
    match body {
        Value::Object(_) => body,
        _ => Value::Object(Map::new()),
    }
}

fn valid_signal(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SIGNAL_LEN
        && s.split("::").all(|part| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(text: &str) -> ParseError {
        Message::parse(text).unwrap_err()
    }

    #[test]
    fn parses_a_request_and_serializes_a_reply() {
        let m = Message::parse(
            r#"{"header":{"v":"1.0.0","id":7,"signal":"client::list"},"body":{"clientType":"WEB"}}"#,
        )
        .unwrap();
        assert_eq!(m.id(), 7);
        assert_eq!(m.signal(), "client::list");
        assert!(!m.is_response());
        assert_eq!(m.body_str("clientType"), Some("WEB"));
        let r: Value = serde_json::from_str(&m.reply(json!({"n": 1})).to_json()).unwrap();
        assert_eq!(
            r,
            json!({"code":"0000","message":"success",
                   "header":{"v":"1.0.0","id":7,"signal":"client::list"},"body":{"n":1}})
        );
    }

    #[test]
    fn missing_or_null_body_is_empty_object() {
        let m = Message::parse(r#"{"header":{"v":"1","id":1,"signal":"client::list"}}"#).unwrap();
        assert_eq!(m.body, json!({}));
        let m =
            Message::parse(r#"{"header":{"v":"1","id":1,"signal":"client::list"},"body":null}"#)
                .unwrap();
        assert_eq!(m.body, json!({}));
    }

    #[test]
    fn response_codes_are_read() {
        let m = Message::parse(
            r#"{"code":"2001","message":"late","header":{"v":"1","id":3,"signal":"client::list"}}"#,
        )
        .unwrap();
        assert_eq!(m.code, Some(Code::Timeout));
        assert!(m.is_response());
    }

    #[test]
    fn rejections_explain_themselves() {
        assert!(err("not json").reason.starts_with("not valid JSON"));
        assert!(err("[1,2]").reason.contains("JSON object"));
        assert!(err("{}").reason.contains("missing header"));
        assert!(
            err(r#"{"header":{"v":"1","signal":"client::list"}}"#)
                .reason
                .contains("header.id")
        );
        assert!(
            err(r#"{"header":{"v":"1","id":-1,"signal":"client::list"}}"#)
                .reason
                .contains("2^53")
        );
        assert!(
            err(r#"{"header":{"v":"1","id":1.5,"signal":"client::list"}}"#)
                .reason
                .contains("2^53")
        );
        assert!(
            err(r#"{"header":{"v":"1","id":9007199254740992,"signal":"client::list"}}"#)
                .reason
                .contains("2^53")
        );
        assert!(
            err(r#"{"header":{"v":"1","id":"1","signal":"client::list"}}"#)
                .reason
                .contains("number")
        );
        let e = err(r#"{"header":{"id":4,"signal":"client::list"}}"#);
        assert_eq!((e.id, e.reason.as_str()), (Some(4), "missing header.v"));
        let e = err(r#"{"header":{"v":"1","id":5}}"#);
        assert_eq!(
            (e.id, e.reason.as_str()),
            (Some(5), "missing header.signal")
        );
        assert!(
            err(r#"{"header":{"v":"1","id":5,"signal":"a b"}}"#)
                .reason
                .contains("group::name")
        );
        assert!(
            err(r#"{"header":{"v":"1","id":5,"signal":"a::"}}"#)
                .reason
                .contains("group::name")
        );
        assert!(
            err(r#"{"header":{"v":"1","id":5,"signal":7}}"#)
                .reason
                .contains("string")
        );
        assert!(
            err(r#"{"header":{"v":"1","id":5,"signal":"client::list"},"body":[]}"#)
                .reason
                .contains("body")
        );
        assert!(
            err(r#"{"code":0,"header":{"v":"1","id":5,"signal":"client::list"}}"#)
                .reason
                .contains("code")
        );
        let deep = "[".repeat(10_000);
        assert!(err(&deep).reason.starts_with("not valid JSON"));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            ".{0,40}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(".{0,12}", inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn signal() -> impl Strategy<Value = String> {
        prop::collection::vec("[a-z0-9_]{1,10}", 1..4).prop_map(|parts| parts.join("::"))
    }

    proptest! {
        /// Whatever the server sends parses back to the same message.
        #[test]
        fn serialize_then_parse_is_identity(
            id in 0..=MAX_SAFE_ID,
            signal in signal(),
            body in prop::collection::btree_map(".{0,12}", json_value(), 0..6),
            code in prop::option::of(prop::sample::select(Code::ALL.to_vec())),
            message in prop::option::of(".{0,30}"),
        ) {
            let mut m = Message::new(id, signal, Value::Object(body.into_iter().collect()));
            m.code = code;
            m.message = message;
            let back = Message::parse(&m.to_json()).unwrap();
            prop_assert_eq!(back, m);
        }

        /// Any text either parses or is refused with a reason; nothing panics.
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,200}") {
            match Message::parse(&text) {
                Ok(m) => prop_assert!(m.body.is_object()),
                Err(e) => prop_assert!(!e.reason.is_empty()),
            }
        }

        /// Any JSON value either parses or is refused with a reason.
        #[test]
        fn arbitrary_json_never_panics(v in json_value()) {
            let _ = Message::parse(&v.to_string());
        }
    }
}
