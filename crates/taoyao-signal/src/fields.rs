//! Reading a request body's fields with errors a client can act on (3400 naming the field).

use serde_json::Value;

use crate::error::SignalError;
#[cfg(test)]
use taoyao_boot::Code;

/// A string field that may be absent (or null).
pub fn optional_str<'a>(body: &'a Value, key: &str) -> Result<Option<&'a str>, SignalError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(SignalError::bad_request(format!("{key} must be a string"))),
    }
}

/// A string field that must be present.
pub fn required_str<'a>(body: &'a Value, key: &str) -> Result<&'a str, SignalError> {
    optional_str(body, key)?.ok_or_else(|| SignalError::bad_request(format!("{key} is required")))
}

/// A boolean field; `default` when absent (or null).
pub fn bool_or(body: &Value, key: &str, default: bool) -> Result<bool, SignalError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(SignalError::bad_request(format!(
            "{key} must be true or false"
        ))),
    }
}

/// Decodes a whole request body into its typed form (fields it does not name are ignored;
/// null is absent). A missing field is 3400 `<field> is required`, a wrong one 3400 naming the
/// field and what it must be, e.g. `kind: unknown variant \`x\`, expected \`audio\` or
/// \`video\``.
pub fn decode<'de, T: serde::Deserialize<'de>>(body: &'de Value) -> Result<T, SignalError> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde names a missing field in the message of its parent: say it as the field.
        if let Some(field) = inner
            .strip_prefix("missing field `")
            .and_then(|r| r.strip_suffix('`'))
        {
            let field = if path == "." {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            };
            return SignalError::bad_request(format!("{field} is required"));
        }
        if path == "." {
            SignalError::bad_request(format!("bad request body: {inner}"))
        } else {
            SignalError::bad_request(format!("{path}: {inner}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields() {
        let b = json!({"s": "x", "n": 1, "z": null, "t": true});
        assert_eq!(optional_str(&b, "s").unwrap(), Some("x"));
        assert_eq!(optional_str(&b, "z").unwrap(), None);
        assert_eq!(
            optional_str(&b, "n").unwrap_err().message,
            "n must be a string"
        );
        assert_eq!(
            required_str(&b, "missing").unwrap_err().message,
            "missing is required"
        );
        assert!(bool_or(&b, "t", false).unwrap());
        assert!(bool_or(&b, "missing", true).unwrap());
        assert!(bool_or(&b, "s", true).is_err());
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Body<'a> {
        client_id: &'a str,
        kind: Option<Kind>,
        muted: Option<bool>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Audio,
        Video,
    }

    #[test]
    fn decoded_bodies_name_the_field_that_is_wrong() {
        let body = json!({"clientId": "a", "kind": null, "roomId": "r"});
        let ok: Body = decode(&body).unwrap();
        assert_eq!(
            (ok.client_id, ok.kind.is_none(), ok.muted),
            ("a", true, None)
        );
        let e = decode::<Body>(&json!({"kind": "audio"})).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (Code::BadRequest, "clientId is required")
        );
        let e = decode::<Body>(&json!({"clientId": 5})).unwrap_err();
        assert!(
            e.message.starts_with("clientId: invalid type: integer"),
            "{}",
            e.message
        );
        let e = decode::<Body>(&json!({"clientId": "a", "kind": "x"})).unwrap_err();
        assert!(
            e.message.starts_with("kind: unknown variant `x`"),
            "{}",
            e.message
        );
        let e = decode::<Body>(&json!({"clientId": "a", "muted": "yes"})).unwrap_err();
        assert!(
            e.message.starts_with("muted: invalid type"),
            "{}",
            e.message
        );
        assert!(decode::<Body>(&json!([1])).is_err());
    }
}
