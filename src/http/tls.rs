//! HTTPS on the main listener: rustls with the ring provider, TLS 1.2 and 1.3 only (anything
//! older is refused in the handshake), the certificate read from PEM files and read again on
//! SIGHUP. New connections get the new certificate; open ones keep theirs, nothing is dropped. A
//! file that does not load on SIGHUP is logged and the old certificate stays.
//!
//! With `tls.admin_client_ca`, clients may present a certificate, which must chain to that CA
//! (or the handshake fails); `/admin/v1` then refuses requests on connections without one.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use actix_web::dev::Extensions;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};

use crate::config::TlsConfig;

/// Why TLS could not be set up (start-up fails; a SIGHUP keeps the old certificate).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {reason}")]
    Pem { path: PathBuf, reason: String },
    /// rustls refused the key, the chain or the client CA.
    #[error("{0}")]
    Rustls(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |reason: String| TlsError::Pem {
        path: path.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(e.to_string()))?;
    if chain.is_empty() {
        return Err(pem("no CERTIFICATE block".into()));
    }
    Ok(chain)
}

/// Reads the certificate chain and key and checks that the key signs for the leaf.
fn read_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let chain = read_chain(cert)?;
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Pem {
        path: key.to_owned(),
        reason: e.to_string(),
    })?;
    let certified = CertifiedKey::from_der(chain, private, provider)
        .map_err(|e| TlsError::Rustls(format!("{} with {}: {e}", cert.display(), key.display())))?;
    Ok(certified)
}

/// The listener's certificate, swapped in place on reload.
#[derive(Debug)]
pub struct Certificates {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificates {
    fn load(cert: &Path, key: &Path, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let pair = read_pair(cert, key, &provider)?;
        Ok(Certificates {
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider,
            current: RwLock::new(Arc::new(pair)),
        })
    }

    /// Reads the files again; on success new handshakes use them.
    pub fn reload(&self) -> Result<(), TlsError> {
        let pair = read_pair(&self.cert, &self.key, &self.provider)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(pair);
        Ok(())
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

/// The rustls configuration of `tls` and the handle that reloads its certificate.
pub fn server_config(tls: &TlsConfig) -> Result<(ServerConfig, Arc<Certificates>), TlsError> {
    let (Some(cert), Some(key)) = (&tls.cert, &tls.key) else {
        return Err(TlsError::Rustls(
            "tls.cert and tls.key are both needed".into(),
        ));
    };
    let provider = provider();
    let certificates = Arc::new(Certificates::load(cert, key, provider.clone())?);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match &tls.admin_client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in read_chain(ca)? {
                roots
                    .add(c)
                    .map_err(|e| TlsError::Rustls(format!("{}: {e}", ca.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Rustls(format!("{}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_cert_resolver(certificates.clone());
    Ok((config, certificates))
}

/// Marks a connection whose client presented a certificate the verifier accepted.
#[derive(Debug, Clone, Copy)]
pub struct ClientCertificate;

/// `HttpServer::on_connect`: notes a verified client certificate on the connection.
pub fn on_connect(conn: &dyn Any, ext: &mut Extensions) {
    type Tls = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;
    if let Some(stream) = conn.downcast_ref::<Tls>() {
        let (_, session) = stream.get_ref();
        if session.peer_certificates().is_some_and(|c| !c.is_empty()) {
            ext.insert(ClientCertificate);
        }
    }
}

/// Reloads `certificates` on every SIGHUP, for as long as the server runs.
pub async fn reload_on_sighup(certificates: Arc<Certificates>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP: the certificate will not reload");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        let c = certificates.clone();
        match tokio::task::spawn_blocking(move || c.reload()).await {
            Ok(Ok(())) => tracing::info!("SIGHUP: TLS certificate reloaded"),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "SIGHUP: TLS certificate kept, the new one does not load")
            }
            Err(e) => tracing::error!(error = %e, "SIGHUP: reload task failed"),
        }
    }
}
