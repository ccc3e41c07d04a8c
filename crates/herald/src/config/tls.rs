//! The `[tls]` table: where herald's certificate chain and private key are, when herald
//! terminates TLS itself on `port` (both `wss://` and the `https://` HTTP API).
//!
//! ```toml
//! [tls]
//! cert_file = "/etc/herald/fullchain.pem"   # PEM: the leaf first, then its intermediates
//! key_file = "/etc/herald/privkey.pem"      # PEM: PKCS#8, PKCS#1 (RSA) or SEC1 (EC)
//! ```
//! Env `HERALD_TLS_CERT_FILE` / `HERALD_TLS_KEY_FILE`, flags `--tls-cert-file` /
//! `--tls-key-file`; each key is layered on its own (file < env < flags), then both must be
//! set or neither: a `[tls]` table, a variable or a flag naming one file without the other is an
//! error naming the missing key. Without any of them herald serves plain HTTP and `ws://`.
//!
//! This module only resolves the paths; `crate::tls` reads and checks the files (readable, a
//! certificate and a key in them, the key matching the certificate, the leaf within its
//! validity), and `config::load_from` calls it so a bad pair fails start-up and
//! `herald check-config` alike.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

/// The environment variables of this table.
pub(crate) const TLS_VARS: [&str; 2] = ["HERALD_TLS_CERT_FILE", "HERALD_TLS_KEY_FILE"];

/// `[tls]` as written in the file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileTls {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// The resolved `[tls]` table: herald terminates TLS with this pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first (`tls.cert_file`).
    pub cert_file: PathBuf,
    /// PEM private key of the leaf (`tls.key_file`).
    pub key_file: PathBuf,
}

/// Layers the two keys (file < env < flags) and requires both or neither. `flags` are
/// `--tls-cert-file` and `--tls-key-file`.
pub(super) fn resolve(
    file: Option<&FileTls>,
    env: &HashMap<String, String>,
    flags: (Option<PathBuf>, Option<PathBuf>),
) -> Result<Option<TlsConfig>, ConfigError> {
    let table_given = file.is_some();
    let file = file.cloned().unwrap_or_default();
    // (value, where it came from) for one key, the highest source that sets it.
    let pick = |from_file: Option<PathBuf>, var: &str, flag: Option<PathBuf>, flag_name: &str| {
        let mut v = from_file.map(|p| (p, "the config file".to_string()));
        if let Some(e) = env.get(var) {
            v = Some((PathBuf::from(e), var.to_string()));
        }
        if let Some(f) = flag {
            v = Some((f, flag_name.to_string()));
        }
        v
    };
    let cert = pick(file.cert_file, TLS_VARS[0], flags.0, "--tls-cert-file");
    let key = pick(file.key_file, TLS_VARS[1], flags.1, "--tls-key-file");
    for (name, value) in [("tls.cert_file", &cert), ("tls.key_file", &key)] {
        if let Some((path, source)) = value {
            if path.as_os_str().is_empty() {
                return Err(ConfigError::invalid(name, format!("must not be empty (from {source})")));
            }
        }
    }
    match (cert, key) {
        (None, None) if !table_given => Ok(None),
        (Some((cert_file, _)), Some((key_file, _))) => Ok(Some(TlsConfig { cert_file, key_file })),
        (cert, key) => {
            let (missing, given) = match (&cert, &key) {
                (None, Some((_, source))) => ("tls.cert_file", format!("tls.key_file is set (from {source})")),
                (Some((_, source)), None) => ("tls.key_file", format!("tls.cert_file is set (from {source})")),
                _ => ("tls.cert_file", "the config file has a [tls] table".to_string()),
            };
            Err(ConfigError::invalid(
                missing,
                format!(
                    "missing; tls.cert_file and tls.key_file must be set together ({given}; \
                     also HERALD_TLS_CERT_FILE / HERALD_TLS_KEY_FILE or --tls-cert-file / --tls-key-file)"
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn nothing_set_is_plain() {
        assert_eq!(resolve(None, &env(&[]), (None, None)).unwrap(), None);
    }

    #[test]
    fn env_overrides_file_and_flags_override_env_key_by_key() {
        let file = FileTls { cert_file: Some("file.crt".into()), key_file: Some("file.key".into()) };
        let e = env(&[("HERALD_TLS_CERT_FILE", "env.crt"), ("HERALD_TLS_KEY_FILE", "env.key")]);
        let tls = resolve(Some(&file), &e, (None, Some("flag.key".into()))).unwrap().unwrap();
        assert_eq!(tls, TlsConfig { cert_file: "env.crt".into(), key_file: "flag.key".into() });
    }

    #[test]
    fn one_key_alone_names_the_missing_one() {
        let err = resolve(None, &env(&[("HERALD_TLS_CERT_FILE", "a.crt")]), (None, None)).unwrap_err().to_string();
        assert!(err.starts_with("tls.key_file: missing"), "{err}");
        assert!(err.contains("HERALD_TLS_CERT_FILE"), "{err}");
        let file = FileTls { key_file: Some("a.key".into()), ..FileTls::default() };
        let err = resolve(Some(&file), &env(&[]), (None, None)).unwrap_err().to_string();
        assert!(err.starts_with("tls.cert_file: missing"), "{err}");
    }

    #[test]
    fn an_empty_tls_table_is_an_error() {
        let err = resolve(Some(&FileTls::default()), &env(&[]), (None, None)).unwrap_err().to_string();
        assert!(err.starts_with("tls.cert_file: missing"), "{err}");
    }
}
