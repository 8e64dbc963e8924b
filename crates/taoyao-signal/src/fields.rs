//! Reading a request body's fields with errors a client can act on (3400 naming the field).

use serde_json::Value;

use crate::error::SignalError;

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
}
