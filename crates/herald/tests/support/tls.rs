//! TLS for the black-box tests: a private CA and leaf certificates made with rcgen, the PEM
//! files herald reads, and clients that trust only that CA — a WebSocket over `wss://`, one
//! HTTPS request, and a bare handshake that reports the certificate the server presented.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SerialNumber};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::Connector;

use super::{next_json, parse_response, Api, Client, Resp, KEY, WAIT};

/// A private certificate authority.
pub(crate) struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate (for 127.0.0.1 and localhost) and its key, PEM.
pub(crate) struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    /// The serial number it was issued with.
    pub serial: u64,
}

impl TestCa {
    pub(crate) fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "herald test CA");
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA cert");
        TestCa { issuer }
    }

    pub(crate) fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf valid now, with serial `serial`.
    pub(crate) fn leaf(&self, serial: u64) -> Leaf {
        self.leaf_with(serial, |_| {})
    }

    /// A leaf with serial `serial`, its parameters adjusted by `f` (validity, say).
    pub(crate) fn leaf_with(&self, serial: u64, f: impl FnOnce(&mut CertificateParams)) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).expect("leaf params");
        params.serial_number = Some(SerialNumber::from(serial));
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(30);
        f(&mut params);
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf cert");
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem(), serial }
    }

    /// A rustls client configuration trusting this CA only (ALPN `http/1.1`).
    pub(crate) fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.issuer.der().clone()).expect("CA into the root store");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// A directory holding `cert.pem` and `key.pem` for herald; removed on drop.
pub(crate) struct TlsFiles {
    pub dir: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    pub(crate) fn new(leaf: &Leaf) -> TlsFiles {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "herald-tls-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("tls temp dir");
        let files = TlsFiles { cert: dir.join("cert.pem"), key: dir.join("key.pem"), dir };
        files.write(&leaf.cert_pem, &leaf.key_pem);
        files
    }

    /// Replaces both files' contents (what a certificate renewal does).
    pub(crate) fn write(&self, cert_pem: &str, key_pem: &str) {
        std::fs::write(&self.cert, cert_pem).expect("write cert");
        std::fs::write(&self.key, key_pem).expect("write key");
    }

    pub(crate) fn config(&self) -> herald::config::tls::TlsConfig {
        herald::config::tls::TlsConfig { cert_file: self.cert.clone(), key_file: self.key.clone() }
    }
}

impl Drop for TlsFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `wss://` Pusher client (trusting `ca`) that has received `connection_established`.
pub(crate) async fn wss_client(addr: SocketAddr, ca: &TestCa) -> Client {
    let url = format!("wss://{addr}/app/{KEY}?protocol=7&client=js&version=8.4.0&flash=false");
    let connector = Connector::Rustls(ca.client_config());
    let (mut ws, _) =
        tokio::time::timeout(WAIT, tokio_tungstenite::connect_async_tls_with_config(url, None, true, Some(connector)))
            .await
            .expect("connect in time")
            .expect("wss handshake");
    let first = next_json(&mut ws).await.expect("first frame");
    assert_eq!(first["event"], "pusher:connection_established", "first frame: {first}");
    let data: serde_json::Value = serde_json::from_str(first["data"].as_str().expect("data string")).unwrap();
    Client { socket_id: data["socket_id"].as_str().unwrap().to_owned(), ws }
}

/// A TLS session to `addr` trusting `ca` (server name 127.0.0.1).
pub(crate) async fn tls_connect(addr: SocketAddr, ca: &TestCa) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("tcp connect");
    let name = ServerName::IpAddress(addr.ip().into());
    tokio::time::timeout(WAIT, TlsConnector::from(ca.client_config()).connect(name, tcp))
        .await
        .expect("handshake in time")
        .expect("TLS handshake")
}

/// The serial number of the certificate `addr` presents in a new handshake.
pub(crate) async fn served_serial(addr: SocketAddr, ca: &TestCa) -> u64 {
    let tls = tls_connect(addr, ca).await;
    let der = tls.get_ref().1.peer_certificates().expect("server certificate")[0].clone();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("X.509");
    u64::try_from(cert.serial.clone()).expect("a small serial")
}

/// One HTTP/1.1 request over a new TLS connection (`Connection: close`).
pub(crate) async fn https(addr: SocketAddr, ca: &TestCa, method: &str, path_and_query: &str, body: &[u8]) -> Resp {
    let mut s = tls_connect(addr, ca).await;
    let mut req = format!(
        "{method} {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    s.write_all(&req).await.expect("write request");
    let mut buf = Vec::new();
    // A peer that closes without close_notify is still a complete `Connection: close` answer.
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut buf)).await.expect("response in time");
    parse_response(&buf)
}

/// A signed `POST /apps/{id}/events` over HTTPS.
pub(crate) async fn https_trigger(api: &Api, ca: &TestCa, body: serde_json::Value) -> Resp {
    let body = body.to_string().into_bytes();
    let path = format!("/apps/{}/events", api.app_id);
    let q = api.signed_query("POST", &path, &[], &body, super::now());
    https(api.addr, ca, "POST", &format!("{path}?{q}"), &body).await
}
