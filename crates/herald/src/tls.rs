//! TLS termination: reading and checking the `[tls]` certificate/key pair, and the rustls
//! server configuration every new handshake on `port` uses.
//!
//! - [`load`] reads both PEM files and refuses, with an error naming `tls.cert_file` or
//!   `tls.key_file`, a file that cannot be read, one with no certificate / no private key, a key
//!   that does not belong to the leaf certificate, and a leaf outside its validity period. The
//!   config loader calls it (start-up and `herald check-config` fail on the same problems).
//! - [`Tls`] holds the current `rustls::ServerConfig` in an [`ArcSwap`]: each new connection
//!   loads it once for its handshake, and [`Tls::reload`] (SIGHUP) stores a freshly loaded one,
//!   so open connections keep the session they negotiated and only new handshakes see the new
//!   certificate. A pair that fails to load leaves the previous one in place.
//! - rustls with the `ring` provider (no C toolchain beyond `ring`'s own, and the same provider
//!   reqwest's webhooks client already builds); TLS 1.2 and 1.3; ALPN `http/1.1` only (herald
//!   serves HTTP/1.1, and WebSocket upgrades are HTTP/1.1).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use metrics::{Counter, Gauge};
use rustls::crypto::CryptoProvider;
use rustls::server::ServerConfig;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use x509_parser::time::ASN1Time;

use crate::config::tls::TlsConfig;

const CERT_KEY: &str = "tls.cert_file";
const KEY_KEY: &str = "tls.key_file";
/// Larger PEM files are refused: a chain or a key is a few KiB, and a path such as `/dev/zero`
/// must not be read forever.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// Why a certificate/key pair cannot be served. `Display` is one line starting with the config
/// key (`tls.cert_file` or `tls.key_file`).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file cannot be read (missing, a directory, no permission).
    #[error("{key}: cannot read {}: {source}", path.display())]
    Read {
        key: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than any certificate chain or key.
    #[error("{key}: {} is larger than 1 MiB: not a PEM certificate chain or key", path.display())]
    TooLarge { key: &'static str, path: PathBuf },
    /// A PEM block in the file is malformed.
    #[error("{key}: {} is not valid PEM: {reason}", path.display())]
    Pem { key: &'static str, path: PathBuf, reason: String },
    /// The certificate file holds no `CERTIFICATE` block.
    #[error("tls.cert_file: no certificate (-----BEGIN CERTIFICATE-----) in {}", path.display())]
    NoCertificate { path: PathBuf },
    /// The key file holds no private key block.
    #[error("tls.key_file: no private key (PKCS#8, RSA or EC PEM block) in {}", path.display())]
    NoKey { path: PathBuf },
    /// The leaf certificate does not parse as X.509.
    #[error("tls.cert_file: the first certificate in {} does not parse: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },
    /// The private key is of a kind rustls cannot sign with, or malformed.
    #[error("tls.key_file: unusable private key in {}: {reason}", path.display())]
    BadKey { path: PathBuf, reason: String },
    /// The private key is not the leaf certificate's.
    #[error(
        "tls.key_file: the private key in {} does not match the certificate in {} (tls.cert_file)",
        key.display(), cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    /// The leaf certificate's validity ended.
    #[error("tls.cert_file: the certificate in {} expired on {not_after}", path.display())]
    Expired { path: PathBuf, not_after: String },
    /// The leaf certificate's validity has not begun.
    #[error("tls.cert_file: the certificate in {} is not valid before {not_before}", path.display())]
    NotYetValid { path: PathBuf, not_before: String },
    /// rustls refused the configuration.
    #[error("tls.cert_file: rustls refused the certificate and key: {0}")]
    Rustls(#[from] rustls::Error),
}

impl TlsError {
    /// The config key the error is about.
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::Read { key, .. } | TlsError::TooLarge { key, .. } | TlsError::Pem { key, .. } => key,
            TlsError::NoKey { .. } | TlsError::BadKey { .. } | TlsError::KeyMismatch { .. } => KEY_KEY,
            _ => CERT_KEY,
        }
    }
}

/// A checked pair, ready to serve.
pub struct Loaded {
    /// The rustls configuration (certificate, key, ALPN `http/1.1`).
    pub config: Arc<ServerConfig>,
    /// The leaf's `notAfter`, seconds since the Unix epoch.
    pub not_after: i64,
    /// The leaf's serial number, hex (for the log line of a reload).
    pub serial: String,
}

/// Reads and checks `tls`'s pair and builds the rustls configuration (see the module doc).
pub fn load(tls: &TlsConfig) -> Result<Loaded, TlsError> {
    let cert_pem = read(CERT_KEY, &tls.cert_file)?;
    let key_pem = read(KEY_KEY, &tls.key_file)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem { key: CERT_KEY, path: tls.cert_file.clone(), reason: e.to_string() })?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCertificate { path: tls.cert_file.clone() });
    };
    let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(key) => key,
        Err(rustls_pki_types::pem::Error::NoItemsFound) => return Err(TlsError::NoKey { path: tls.key_file.clone() }),
        Err(e) => return Err(TlsError::Pem { key: KEY_KEY, path: tls.key_file.clone(), reason: e.to_string() }),
    };

    let (_, parsed) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| TlsError::BadCertificate { path: tls.cert_file.clone(), reason: e.to_string() })?;
    let validity = parsed.validity();
    let now = ASN1Time::now();
    if now > validity.not_after {
        return Err(TlsError::Expired { path: tls.cert_file.clone(), not_after: validity.not_after.to_string() });
    }
    if now < validity.not_before {
        return Err(TlsError::NotYetValid { path: tls.cert_file.clone(), not_before: validity.not_before.to_string() });
    }
    let not_after = validity.not_after.timestamp();
    let serial = parsed.raw_serial_as_string();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::BadKey { path: tls.key_file.clone(), reason: e.to_string() })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(TlsError::KeyMismatch { cert: tls.cert_file.clone(), key: tls.key_file.clone() })
        }
        // ring can name the public key of every key type it loads, so this is a key rustls
        // cannot check: refuse it rather than serve a pair that may not match.
        Err(e) => return Err(TlsError::BadKey { path: tls.key_file.clone(), reason: e.to_string() }),
    }
    Ok(Loaded { config: server_config(provider, certified)?, not_after, serial })
}

fn server_config(provider: Arc<CryptoProvider>, certified: CertifiedKey) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let error = |source| TlsError::Read { key, path: path.to_path_buf(), source };
    let mut bytes = Vec::new();
    std::fs::File::open(path).and_then(|f| f.take(MAX_PEM_BYTES + 1).read_to_end(&mut bytes)).map_err(error)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(TlsError::TooLarge { key, path: path.to_path_buf() });
    }
    Ok(bytes)
}

/// The metric handles of TLS termination.
#[derive(Clone)]
pub(crate) struct TlsMetrics {
    /// `herald_tls_handshake_failures_total`: handshakes that failed or were cut by the
    /// header-read timeout.
    pub handshake_failures: Counter,
    /// `herald_tls_reloads_total{result="ok"}`.
    pub reloads_ok: Counter,
    /// `herald_tls_reloads_total{result="error"}`.
    pub reloads_error: Counter,
    /// `herald_tls_certificate_not_after_seconds`: the served leaf's expiry (Unix time).
    pub not_after: Gauge,
}

/// TLS on the main listener: the current configuration and how to reload it.
pub(crate) struct Tls {
    paths: TlsConfig,
    /// The configuration new handshakes use. `ArcSwap`: every accepted connection loads it
    /// (lock-free), a reload stores a new one; a handshake holds the `Arc` it loaded, so a
    /// reload never disturbs one in progress nor an open connection.
    current: ArcSwap<ServerConfig>,
    pub(crate) metrics: TlsMetrics,
}

impl Tls {
    /// Loads the pair (see [`load`]) and starts serving it.
    pub(crate) fn new(paths: TlsConfig, metrics: TlsMetrics) -> Result<Arc<Tls>, TlsError> {
        let loaded = load(&paths)?;
        metrics.not_after.set(loaded.not_after as f64);
        Ok(Arc::new(Tls { paths, current: ArcSwap::new(loaded.config), metrics }))
    }

    /// The acceptor for one new connection (the configuration current now).
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.load_full())
    }

    /// Re-reads the pair from the same paths. On success new handshakes use it at once and
    /// the leaf's serial is returned; on failure the previous pair stays. Counted either way.
    pub(crate) fn reload(&self) -> Result<String, TlsError> {
        match load(&self.paths) {
            Ok(loaded) => {
                self.current.store(loaded.config);
                self.metrics.not_after.set(loaded.not_after as f64);
                self.metrics.reloads_ok.increment(1);
                Ok(loaded.serial)
            }
            Err(e) => {
                self.metrics.reloads_error.increment(1);
                Err(e)
            }
        }
    }
}
