//! Download links for recorded files: `record::list` hands each file out as
//! `/recordings/<roomId>/<name>.webm?token=<expiry>.<mac>`, where `mac` is an HMAC-SHA256 over
//! the file and the expiry under a key made at random when the process starts. Only the room's
//! members (and admins) get links; a link opens one file until it expires, and no link outlives
//! the process. The HTTP side (apps/taoyao-server) asks [`DownloadLinks::check`] and
//! [`resolve`] before it serves a byte.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a download is refused (the HTTP status follows from it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// A room id or file name that is not one the server makes (400).
    #[error("bad recording path: {0}")]
    BadPath(String),
    /// No token, or not in the token form (401).
    #[error("a download token is required")]
    NoToken,
    /// The link's time is up (401).
    #[error("the download link has expired; list the recordings again")]
    Expired,
    /// The token was not made by this server for this file (403).
    #[error("the download token is not valid for this file")]
    Forged,
    /// No such file (404).
    #[error("no such recording")]
    NotFound,
}

/// Signs and checks download links with a per-process random key.
pub struct DownloadLinks {
    key: [u8; 32],
    ttl: Duration,
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A room id or file stem as the server writes it: letters, digits, `-`, `_`, nothing else.
fn plain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks that `room` and `name` are names the server makes (so neither can climb out of the
/// recording directory).
pub fn check_names(room: &str, name: &str) -> Result<(), DownloadError> {
    let stem = name.strip_suffix(".webm");
    if !plain(room) || !stem.is_some_and(plain) {
        return Err(DownloadError::BadPath(
            "room ids and file names are letters, digits, '-' and '_' (files end in .webm)".into(),
        ));
    }
    Ok(())
}

/// The file `<dir>/<room>/<name>`, made sure to be a regular file under `dir` after every
/// link is followed.
pub fn resolve(dir: &Path, room: &str, name: &str) -> Result<PathBuf, DownloadError> {
    check_names(room, name)?;
    let root = dir.canonicalize().map_err(|_| DownloadError::NotFound)?;
    let path = root
        .join(room)
        .join(name)
        .canonicalize()
        .map_err(|_| DownloadError::NotFound)?;
    if !path.starts_with(&root) || !path.is_file() {
        return Err(DownloadError::NotFound);
    }
    Ok(path)
}

impl DownloadLinks {
    /// A fresh random key; links live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system's random source");
        DownloadLinks { key, ttl }
    }

    fn mac(&self, room: &str, name: &str, exp: u64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key size");
        mac.update(format!("{room}/{name}\n{exp}").as_bytes());
        mac
    }

    /// The token for `<room>/<name>` expiring at `exp` (Unix seconds).
    pub fn token_at(&self, room: &str, name: &str, exp: u64) -> String {
        let tag = self.mac(room, name, exp).finalize().into_bytes();
        format!("{exp}.{}", hex::encode(tag))
    }

    /// The download URL (path and query) for `<room>/<name>`, valid for the configured time.
    pub fn url(&self, room: &str, name: &str) -> String {
        let exp = now_s() + self.ttl.as_secs().max(1);
        format!(
            "/recordings/{room}/{name}?token={}",
            self.token_at(room, name, exp)
        )
    }

    /// Checks a token for `<room>/<name>`: the names first, then the signature (in constant
    /// time), then the expiry.
    pub fn check(&self, room: &str, name: &str, token: Option<&str>) -> Result<(), DownloadError> {
        check_names(room, name)?;
        let token = token.ok_or(DownloadError::NoToken)?;
        let (exp, tag) = token.split_once('.').ok_or(DownloadError::NoToken)?;
        let exp: u64 = exp.parse().map_err(|_| DownloadError::NoToken)?;
        let tag = hex::decode(tag).map_err(|_| DownloadError::NoToken)?;
        self.mac(room, name, exp)
            .verify_slice(&tag)
            .map_err(|_| DownloadError::Forged)?;
        if exp <= now_s() {
            return Err(DownloadError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_of(url: &str) -> &str {
        url.split_once("?token=").unwrap().1
    }

    #[test]
    fn a_link_opens_its_own_file_only() {
        let links = DownloadLinks::new(Duration::from_secs(60));
        let url = links.url("room-1", "a-1.webm");
        assert!(
            url.starts_with("/recordings/room-1/a-1.webm?token="),
            "{url}"
        );
        let t = token_of(&url);
        assert_eq!(links.check("room-1", "a-1.webm", Some(t)), Ok(()));
        assert_eq!(
            links.check("room-2", "a-1.webm", Some(t)),
            Err(DownloadError::Forged)
        );
        assert_eq!(
            links.check("room-1", "b-1.webm", Some(t)),
            Err(DownloadError::Forged)
        );
        // Another process (another key) made it.
        let other = DownloadLinks::new(Duration::from_secs(60));
        assert_eq!(
            other.check("room-1", "a-1.webm", Some(t)),
            Err(DownloadError::Forged)
        );
        // A changed expiry breaks the signature.
        let (exp, tag) = t.split_once('.').unwrap();
        let later = format!("{}.{tag}", exp.parse::<u64>().unwrap() + 3600);
        assert_eq!(
            links.check("room-1", "a-1.webm", Some(&later)),
            Err(DownloadError::Forged)
        );
    }

    #[test]
    fn expired_missing_and_malformed_tokens_are_refused() {
        let links = DownloadLinks::new(Duration::from_secs(60));
        let old = links.token_at("r", "f.webm", now_s() - 1);
        assert_eq!(
            links.check("r", "f.webm", Some(&old)),
            Err(DownloadError::Expired)
        );
        for bad in [None, Some(""), Some("x"), Some("1.zz"), Some("abc.00")] {
            assert_eq!(
                links.check("r", "f.webm", bad),
                Err(DownloadError::NoToken),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn names_cannot_leave_the_directory() {
        for (room, name) in [
            ("..", "a.webm"),
            ("r", "..webm"),
            ("r", "../a.webm"),
            ("r/x", "a.webm"),
            ("r", "a.mp4"),
            ("r", ".webm"),
            ("", "a.webm"),
            ("r", "a%2F.webm"),
        ] {
            assert!(
                matches!(check_names(room, name), Err(DownloadError::BadPath(_))),
                "{room} {name}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("r")).unwrap();
        std::fs::write(dir.path().join("r/a.webm"), b"x").unwrap();
        std::fs::write(dir.path().join("secret.webm"), b"x").unwrap();
        // A link planted in the room's directory pointing outside it is not followed out.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("o.webm"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path().join("o.webm"), dir.path().join("r/l.webm"))
            .unwrap();
        assert!(resolve(dir.path(), "r", "a.webm").is_ok());
        assert_eq!(
            resolve(dir.path(), "r", "l.webm"),
            Err(DownloadError::NotFound)
        );
        assert_eq!(
            resolve(dir.path(), "r", "none.webm"),
            Err(DownloadError::NotFound)
        );
    }
}
