//! Layered, strict config loading.
//!
//! The tree itself is the caller's type (the server composes each crate's section); this module
//! only knows how to fill it: serde defaults (every section is `#[serde(default)]`, and the
//! repo's commented sample file is kept equal to them by a test) -> an optional TOML file ->
//! environment variables `TAOYAO__SECTION__KEY`. A key the tree does not know is an error that
//! names the key and the layer it came from, so a typo never silently falls back to a default.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use config::{Environment, File, FileFormat};
use serde::de::DeserializeOwned;

/// Environment variables that start with this prefix (then `__`) override config keys.
pub const ENV_PREFIX: &str = "TAOYAO";
const ENV_SEPARATOR: &str = "__";

/// A value that is well-formed but impossible (a zero limit, an unparsable address ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config key `{key}`: {reason}")]
pub struct Invalid {
    /// Dotted path of the offending key, e.g. `signal.max_message_bytes`.
    pub key: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Implemented by every config section: reject values that parse but cannot work.
pub trait Validate {
    fn validate(&self) -> Result<(), Invalid>;
}

/// Something was wrong with the config; the message says what and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot load config file {}: {source}", path.display())]
    File {
        path: PathBuf,
        source: Box<config::ConfigError>,
    },
    #[error("{}", describe_unknown(.0))]
    UnknownKeys(Vec<UnknownKey>),
    #[error("config has a value of the wrong type: {0}")]
    Type(Box<config::ConfigError>),
    #[error("invalid config: {0}")]
    Invalid(#[from] Invalid),
}

/// A key no section knows, with the layer it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    pub key: String,
    /// `file PATH` or `environment variable NAME`.
    pub origin: String,
}

fn describe_unknown(keys: &[UnknownKey]) -> String {
    let parts: Vec<String> = keys
        .iter()
        .map(|k| format!("unknown config key `{}` in {}", k.key, k.origin))
        .collect();
    parts.join("; ")
}

/// Where the layers above the built-in defaults come from.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// A TOML file; it must exist when given.
    pub file: Option<PathBuf>,
    /// Environment variables (only those starting with `TAOYAO__` are looked at).
    pub env: HashMap<String, String>,
}

impl Sources {
    /// The file given on the command line (if any) and this process's environment.
    pub fn from_process(file: Option<PathBuf>) -> Self {
        Sources {
            file,
            env: std::env::vars().filter(|(k, _)| is_ours(k)).collect(),
        }
    }
}

fn is_ours(var: &str) -> bool {
    var.strip_prefix(ENV_PREFIX)
        .is_some_and(|rest| rest.starts_with(ENV_SEPARATOR))
}

fn env_source(env: &HashMap<String, String>) -> Environment {
    let ours: config::Map<String, String> = env
        .iter()
        .filter(|(k, _)| is_ours(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Environment::with_prefix(ENV_PREFIX)
        .prefix_separator(ENV_SEPARATOR)
        .separator(ENV_SEPARATOR)
        .try_parsing(true)
        .source(Some(ours))
}

fn file_source(path: &Path) -> File<config::FileSourceFile, FileFormat> {
    File::from(path).format(FileFormat::Toml).required(true)
}

/// Collects the keys one layer sets that `T` does not know.
fn unknown_in<T: DeserializeOwned>(
    layer: config::Config,
    origin: impl Fn(&str) -> String,
    out: &mut Vec<UnknownKey>,
) {
    let mut found = Vec::new();
    // A type error here is reported by the merged load below, with the config crate's origin.
    let _ = serde_ignored::deserialize::<_, _, T>(layer, |path| found.push(path.to_string()));
    out.extend(found.into_iter().map(|key| UnknownKey {
        origin: origin(&key),
        key,
    }));
}

/// Loads `T`: defaults, then the file, then the environment; rejects unknown keys; validates.
pub fn load<T>(sources: &Sources) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Validate,
{
    let mut unknown = Vec::new();
    let mut builder = config::Config::builder();
    if let Some(path) = &sources.file {
        let layer = config::Config::builder()
            .add_source(file_source(path))
            .build()
            .map_err(|source| ConfigError::File {
                path: path.clone(),
                source: Box::new(source),
            })?;
        unknown_in::<T>(layer, |_| format!("file {}", path.display()), &mut unknown);
        builder = builder.add_source(file_source(path));
    }
    let env_layer = config::Config::builder()
        .add_source(env_source(&sources.env))
        .build()
        .map_err(|e| ConfigError::Type(Box::new(e)))?;
    unknown_in::<T>(
        env_layer,
        |key| {
            let name = key.replace('.', ENV_SEPARATOR).to_uppercase();
            format!("environment variable {ENV_PREFIX}{ENV_SEPARATOR}{name}")
        },
        &mut unknown,
    );
    if !unknown.is_empty() {
        return Err(ConfigError::UnknownKeys(unknown));
    }
    let merged = builder
        .add_source(env_source(&sources.env))
        .build()
        .map_err(|e| ConfigError::Type(Box::new(e)))?;
    let value: T = merged
        .try_deserialize()
        .map_err(|e| ConfigError::Type(Box::new(e)))?;
    value.validate()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::io::Write;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(default)]
    struct Tree {
        net: Net,
        name: String,
    }
    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(default)]
    struct Net {
        port: u16,
        limit: u32,
        verbose: bool,
    }
    impl Default for Tree {
        fn default() -> Self {
            Tree {
                net: Net::default(),
                name: "default".into(),
            }
        }
    }
    impl Default for Net {
        fn default() -> Self {
            Net {
                port: 9000,
                limit: 10,
                verbose: false,
            }
        }
    }
    impl Validate for Tree {
        fn validate(&self) -> Result<(), Invalid> {
            if self.net.limit == 0 {
                return Err(Invalid::new("net.limit", "must be at least 1"));
            }
            Ok(())
        }
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_when_no_layers() {
        let t: Tree = load(&Sources::default()).unwrap();
        assert_eq!(t, Tree::default());
    }

    #[test]
    fn file_overrides_defaults_and_keeps_the_rest() {
        let f = file("name = \"from-file\"\n[net]\nport = 7000\n");
        let t: Tree = load(&Sources {
            file: Some(f.path().into()),
            env: HashMap::new(),
        })
        .unwrap();
        assert_eq!(t.name, "from-file");
        assert_eq!(t.net.port, 7000);
        assert_eq!(t.net.limit, 10);
    }

    #[test]
    fn env_overrides_file() {
        let f = file("[net]\nport = 7000\nlimit = 3\n");
        let t: Tree = load(&Sources {
            file: Some(f.path().into()),
            env: env(&[
                ("TAOYAO__NET__PORT", "7100"),
                ("TAOYAO__NET__VERBOSE", "true"),
                ("OTHER__NET__PORT", "1"),
                ("TAOYAOX__NET__PORT", "2"),
            ]),
        })
        .unwrap();
        assert_eq!(t.net.port, 7100);
        assert_eq!(t.net.limit, 3);
        assert!(t.net.verbose);
    }

    #[test]
    fn unknown_key_in_file_is_named_with_the_file() {
        let f = file("[net]\nprot = 7000\n");
        let err = load::<Tree>(&Sources {
            file: Some(f.path().into()),
            env: HashMap::new(),
        })
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`net.prot`"), "{msg}");
        assert!(msg.contains(&f.path().display().to_string()), "{msg}");
    }

    #[test]
    fn unknown_key_in_env_is_named_with_the_variable() {
        let err = load::<Tree>(&Sources {
            file: None,
            env: env(&[("TAOYAO__NET__PROT", "1")]),
        })
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("environment variable TAOYAO__NET__PROT"),
            "{msg}"
        );
    }

    #[test]
    fn validation_error_names_the_key() {
        let err = load::<Tree>(&Sources {
            file: None,
            env: env(&[("TAOYAO__NET__LIMIT", "0")]),
        })
        .unwrap_err();
        assert!(matches!(err, ConfigError::Invalid(_)));
        assert_eq!(
            err.to_string(),
            "invalid config: config key `net.limit`: must be at least 1"
        );
    }

    #[test]
    fn wrong_type_is_an_error() {
        let f = file("[net]\nport = \"not a number\"\n");
        let err = load::<Tree>(&Sources {
            file: Some(f.path().into()),
            env: HashMap::new(),
        })
        .unwrap_err();
        assert!(matches!(err, ConfigError::Type(_)), "{err}");
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = load::<Tree>(&Sources {
            file: Some("/nonexistent/taoyao.toml".into()),
            env: HashMap::new(),
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/taoyao.toml"),
            "{err}"
        );
    }
}
