//! TLS material: loading a PEM certificate chain and key into a rustls server config with
//! errors that say which file is wrong, and making a development CA and server certificate.
//! Private keys are only ever written here, at run time, never shipped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use crate::config::{Invalid, Validate};

/// `[server.tls]`: https / wss on the listener when both paths are set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsConfig {
    /// PEM certificate chain (server certificate first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
}

impl TlsConfig {
    pub fn enabled(&self) -> bool {
        self.cert.is_some() || self.key.is_some()
    }
}

impl Validate for TlsConfig {
    fn validate(&self) -> Result<(), Invalid> {
        match (&self.cert, &self.key) {
            (Some(_), None) => Err(Invalid::new(
                "server.tls.key",
                "is needed when server.tls.cert is set",
            )),
            (None, Some(_)) => Err(Invalid::new(
                "server.tls.cert",
                "is needed when server.tls.key is set",
            )),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("cannot read TLS {what} {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS {what} {} holds no {expected}", path.display())]
    Empty {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("TLS certificate and key do not work together: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("cannot make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Loads a certificate chain and key into a rustls server config (ring provider, HTTP/1.1).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let cert_pem = read("certificate", cert)?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read {
            what: "certificate",
            path: cert.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what: "certificate",
            path: cert.to_owned(),
            expected: "PEM certificate",
        });
    }
    let key_pem = read("key", key)?;
    let key_der: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|source| TlsError::Read {
            what: "key",
            path: key.to_owned(),
            source,
        })?
        .ok_or_else(|| TlsError::Empty {
            what: "key",
            path: key.to_owned(),
            expected: "PEM private key",
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// What [`generate_dev_certs`] wrote.
#[derive(Debug, Clone)]
pub struct DevCerts {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// SHA-256 of the server key's SubjectPublicKeyInfo, base64: what Chromium's
    /// `--ignore-certificate-errors-spki-list` takes.
    pub server_spki_sha256: String,
}

/// Makes a development CA and a server certificate signed by it for `localhost`, `127.0.0.1`,
/// `::1` and `hosts`, into `dir` (keys with mode 0600). A new CA each time: trust it anew.
pub fn generate_dev_certs(dir: &Path, hosts: &[String]) -> Result<DevCerts, TlsError> {
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "taoyao-rs development CA");
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, &ca_key);

    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    names.extend(hosts.iter().cloned());
    names.dedup();
    let server_key = KeyPair::generate()?;
    let mut server = CertificateParams::new(Vec::<String>::new())?;
    server.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => Ok(SanType::DnsName(n.clone().try_into()?)),
        })
        .collect::<Result<_, rcgen::Error>>()?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "taoyao-rs development server");
    server.distinguished_name = dn;
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let server_cert = server.signed_by(&server_key, &issuer)?;

    let out = DevCerts {
        ca_cert: dir.join("ca.pem"),
        ca_key: dir.join("ca-key.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server-key.pem"),
        server_spki_sha256: spki_sha256(&server_key.subject_public_key_info()),
    };
    write(&out.ca_cert, ca_cert.pem().as_bytes(), false)?;
    write(&out.ca_key, ca_key.serialize_pem().as_bytes(), true)?;
    write(
        &out.server_cert,
        format!("{}{}", server_cert.pem(), ca_cert.pem()).as_bytes(),
        false,
    )?;
    write(&out.server_key, server_key.serialize_pem().as_bytes(), true)?;
    Ok(out)
}

fn spki_sha256(der: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(der))
}

fn write(path: &Path, bytes: &[u8], secret: bool) -> Result<(), TlsError> {
    let err = |source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(if secret { 0o600 } else { 0o644 })
            .open(path)
            .map_err(err)?;
        f.write_all(bytes).map_err(err)
    }
    #[cfg(not(unix))]
    {
        let _ = secret;
        std::fs::write(path, bytes).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certs_load_and_keys_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let c = generate_dev_certs(dir.path(), &["taoyao.test".into(), "10.1.2.3".into()]).unwrap();
        server_config(&c.server_cert, &c.server_key).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&c.server_key)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(c.server_spki_sha256.len(), 44);
    }

    #[test]
    fn clear_errors_for_missing_or_wrong_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let e = server_config(&missing, &missing).unwrap_err().to_string();
        assert!(
            e.contains("cannot read TLS certificate") && e.contains("nope.pem"),
            "{e}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem").unwrap();
        let e = server_config(&empty, &empty).unwrap_err().to_string();
        assert!(e.contains("holds no PEM certificate"), "{e}");
        let c = generate_dev_certs(dir.path(), &[]).unwrap();
        let e = server_config(&c.server_cert, &c.server_cert)
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds no PEM private key"), "{e}");
        let e = server_config(&c.server_cert, &c.ca_key)
            .unwrap_err()
            .to_string();
        assert!(e.contains("do not work together"), "{e}");
    }
}
