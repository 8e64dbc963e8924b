//! Who a client is: access tokens (JWT, HS256) with grants, the password login kept for taoyao
//! compatibility, or nobody checking at all. With tokens, identity comes from the token, never
//! from the register body.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use taoyao_boot::Code;

use crate::config::AuthConfig;
use crate::error::SignalError;

/// What a client may do. From the token's `grants`, or full rights for a password or open
/// login (`admin` from the user entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Grants {
    /// Rooms (ids or names) the client may create or enter; absent: every room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<String>>,
    /// May send media.
    pub publish: bool,
    /// May receive media.
    pub subscribe: bool,
    /// May manage (close, expel, invite in) every room.
    pub admin: bool,
    /// May start a live stream as its anchor.
    pub anchor: bool,
}

impl Default for Grants {
    fn default() -> Self {
        Grants {
            rooms: None,
            publish: true,
            subscribe: true,
            admin: false,
            anchor: true,
        }
    }
}

impl Grants {
    pub fn may_enter(&self, room: &str) -> bool {
        self.rooms
            .as_ref()
            .is_none_or(|r| r.iter().any(|x| x == room || x == "*"))
    }

    /// A 3403 naming the missing right.
    pub fn denied(right: &str) -> SignalError {
        SignalError::forbidden(format!("not granted: {right}"))
    }
}

/// The claims of a taoyao access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The client id.
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Expiry, Unix seconds.
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// A one-time id: a token carrying one is refused the second time it is presented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default)]
    pub grants: Grants,
}

/// The identity a register produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub client_id: String,
    pub name: Option<String>,
    pub username: Option<String>,
    pub grants: Grants,
}

/// What a client sent in `client::register`.
pub struct Credentials<'a> {
    pub client_id: Option<&'a str>,
    pub token: Option<&'a str>,
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
}

pub(crate) fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Makes a token (for `taoyao-server token` and for tests).
pub fn issue_token(secret: &str, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

/// Checks credentials against `[auth]`.
pub struct Authenticator {
    config: AuthConfig,
    used_jti: Mutex<HashMap<String, u64>>,
}

impl Authenticator {
    pub fn new(config: AuthConfig) -> Self {
        Authenticator {
            config,
            used_jti: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Nobody is checked: anyone may register under any id.
    pub fn is_open(&self) -> bool {
        self.config.users.is_empty() && self.config.token_secret.is_none()
    }

    pub fn authenticate(&self, c: &Credentials<'_>) -> Result<Identity, SignalError> {
        if let Some(token) = c.token {
            return self.check_token(token, c.client_id);
        }
        if !self.config.users.is_empty() && c.username.is_some() {
            return self.check_password(c);
        }
        let client_id = c
            .client_id
            .ok_or_else(|| SignalError::bad_request("clientId is required"))?;
        if self.is_open() {
            return Ok(Identity {
                client_id: client_id.to_owned(),
                name: None,
                username: c.username.map(str::to_owned),
                grants: Grants::default(),
            });
        }
        Err(SignalError::unauthorized(
            match (&self.config.token_secret, self.config.users.is_empty()) {
                (Some(_), true) => "a token is required",
                (Some(_), false) => "a token, or username and password, is required",
                _ => "username and password are required",
            },
        ))
    }

    fn check_password(&self, c: &Credentials<'_>) -> Result<Identity, SignalError> {
        let (Some(username), Some(password)) = (c.username, c.password) else {
            return Err(SignalError::unauthorized(
                "username and password are required",
            ));
        };
        let client_id = c
            .client_id
            .ok_or_else(|| SignalError::bad_request("clientId is required"))?;
        // Every password is compared in constant time whatever the username, so neither timing
        // nor the error says which part was wrong.
        let mut matched = None;
        for u in &self.config.users {
            let pass_ok: bool = u.password.as_bytes().ct_eq(password.as_bytes()).into();
            if pass_ok && u.username == username {
                matched = Some(u.admin);
            }
        }
        let admin = matched.ok_or_else(|| SignalError::unauthorized("bad username or password"))?;
        Ok(Identity {
            client_id: client_id.to_owned(),
            name: None,
            username: Some(username.to_owned()),
            grants: Grants {
                admin,
                ..Grants::default()
            },
        })
    }

    fn check_token(&self, token: &str, claimed_id: Option<&str>) -> Result<Identity, SignalError> {
        let secret = self
            .config
            .token_secret
            .as_ref()
            .ok_or_else(|| SignalError::unauthorized("this server does not accept tokens"))?;
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = self.config.token_leeway_s;
        v.set_required_spec_claims(&["exp", "sub"]);
        let data =
            jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret.as_bytes()), &v)
                .map_err(|e| {
                    use jsonwebtoken::errors::ErrorKind;
                    let why = match e.kind() {
                        ErrorKind::ExpiredSignature => "token expired",
                        ErrorKind::InvalidSignature => "token signature is wrong",
                        ErrorKind::InvalidAlgorithm => "token algorithm must be HS256",
                        ErrorKind::ImmatureSignature => "token not valid yet",
                        _ => "token is malformed",
                    };
                    SignalError::new(Code::SignatureFailed, why)
                })?;
        let claims = data.claims;
        if claims.sub.is_empty() {
            return Err(SignalError::new(
                Code::SignatureFailed,
                "token has no subject (sub)",
            ));
        }
        if claimed_id.is_some_and(|id| id != claims.sub) {
            return Err(SignalError::unauthorized(
                "clientId differs from the token's subject: identity comes from the token",
            ));
        }
        if let Some(jti) = &claims.jti {
            let now = now_s();
            let mut used = self.used_jti.lock().expect("jti lock");
            used.retain(|_, exp| *exp + self.config.token_leeway_s >= now);
            if used.insert(jti.clone(), claims.exp).is_some() {
                return Err(SignalError::new(
                    Code::SignatureFailed,
                    "token already used (jti)",
                ));
            }
        }
        Ok(Identity {
            client_id: claims.sub,
            name: claims.name,
            username: None,
            grants: claims.grants,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UserConfig;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn auth(users: bool, tokens: bool) -> Authenticator {
        Authenticator::new(AuthConfig {
            users: if users {
                vec![UserConfig {
                    username: "u".into(),
                    password: "p".into(),
                    admin: true,
                }]
            } else {
                vec![]
            },
            token_secret: tokens.then(|| SECRET.into()),
            token_leeway_s: 0,
        })
    }

    fn creds<'a>(
        id: Option<&'a str>,
        token: Option<&'a str>,
        user: Option<&'a str>,
        pass: Option<&'a str>,
    ) -> Credentials<'a> {
        Credentials {
            client_id: id,
            token,
            username: user,
            password: pass,
        }
    }

    fn claims(sub: &str, exp_in: i64) -> Claims {
        Claims {
            sub: sub.into(),
            name: Some("Alice".into()),
            exp: (now_s() as i64 + exp_in) as u64,
            iat: None,
            jti: None,
            grants: Grants {
                rooms: Some(vec!["r1".into()]),
                publish: false,
                ..Grants::default()
            },
        }
    }

    #[test]
    fn token_gives_identity_and_grants() {
        let a = auth(false, true);
        let t = issue_token(SECRET, &claims("alice", 60)).unwrap();
        let id = a.authenticate(&creds(None, Some(&t), None, None)).unwrap();
        assert_eq!(id.client_id, "alice");
        assert_eq!(id.name.as_deref(), Some("Alice"));
        assert!(!id.grants.publish && id.grants.subscribe);
        assert!(id.grants.may_enter("r1") && !id.grants.may_enter("r2"));
        let e = a
            .authenticate(&creds(Some("mallory"), Some(&t), None, None))
            .unwrap_err();
        assert_eq!(e.code, Code::Unauthorized);
    }

    #[test]
    fn bad_tokens_are_1003() {
        let a = auth(false, true);
        let expired = issue_token(SECRET, &claims("a", -10)).unwrap();
        let wrong = issue_token("another-secret-another-secret-xx", &claims("a", 60)).unwrap();
        for (t, why) in [
            (expired.as_str(), "expired"),
            (wrong.as_str(), "signature"),
            ("abc.def.ghi", "malformed"),
            ("", "malformed"),
        ] {
            let e = a
                .authenticate(&creds(None, Some(t), None, None))
                .unwrap_err();
            assert_eq!(e.code, Code::SignatureFailed, "{why}");
            assert!(e.message.contains(why), "{}", e.message);
        }
    }

    #[test]
    fn a_token_with_jti_is_used_once() {
        let a = auth(false, true);
        let mut c = claims("a", 60);
        c.jti = Some("once".into());
        let t = issue_token(SECRET, &c).unwrap();
        a.authenticate(&creds(None, Some(&t), None, None)).unwrap();
        let e = a
            .authenticate(&creds(None, Some(&t), None, None))
            .unwrap_err();
        assert!(e.message.contains("already used"));
    }

    #[test]
    fn modes() {
        assert!(
            auth(false, false)
                .authenticate(&creds(Some("x"), None, None, None))
                .is_ok()
        );
        let e = auth(false, true)
            .authenticate(&creds(Some("x"), None, None, None))
            .unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (Code::Unauthorized, "a token is required")
        );
        let e = auth(false, false)
            .authenticate(&creds(None, Some("t"), None, None))
            .unwrap_err();
        assert_eq!(e.message, "this server does not accept tokens");
        let ok = auth(true, true)
            .authenticate(&creds(Some("x"), None, Some("u"), Some("p")))
            .unwrap();
        assert!(ok.grants.admin);
        let e = auth(true, false)
            .authenticate(&creds(Some("x"), None, Some("u"), Some("q")))
            .unwrap_err();
        assert_eq!(e.message, "bad username or password");
    }
}
