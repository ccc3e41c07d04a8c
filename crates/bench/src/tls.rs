//! TLS for the load generator's connections (`--tls-ca PEM`): the WebSocket clients connect with
//! `wss://` and the publisher with `https://`, over rustls (the `ring` provider, as herald),
//! trusting only the CA certificates in the given PEM file. The server name is the target's IP
//! address, so the server's certificate must carry it (an IP SAN such as `127.0.0.1`).
//!
//! [`Stream`] is a TCP connection, plain or under TLS, so the WebSocket and HTTP code is the
//! same for both.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::client::Target;

/// A client configuration trusting the CA certificates of `ca_pem` (ALPN `http/1.1`).
pub(crate) fn client_config(ca_pem: &Path) -> Result<Arc<ClientConfig>, String> {
    let pem = std::fs::read(ca_pem).map_err(|e| format!("--tls-ca {}: {e}", ca_pem.display()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("--tls-ca {}: {e}", ca_pem.display()))?;
        roots.add(cert).map_err(|e| format!("--tls-ca {}: {e}", ca_pem.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("--tls-ca {}: no certificate in it", ca_pem.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A connection to the server, plain or TLS.
pub(crate) enum Stream {
    Plain(TcpStream),
    /// Boxed: a TLS session is far larger than a `TcpStream`.
    Tls(Box<TlsStream<TcpStream>>),
}

/// `stream` as the target wants it: the TLS handshake when the target has a TLS configuration.
pub(crate) async fn wrap(stream: TcpStream, target: &Target) -> io::Result<Stream> {
    match &target.tls {
        None => Ok(Stream::Plain(stream)),
        Some(config) => {
            let name = ServerName::IpAddress(std::net::IpAddr::V4(target.host).into());
            let tls = TlsConnector::from(config.clone()).connect(name, stream).await?;
            Ok(Stream::Tls(Box::new(tls)))
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
