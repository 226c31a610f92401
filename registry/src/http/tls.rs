//! TLS with rustls: the certificate chain and key from PEM files, HTTP/2 and
//! HTTP/1.1 offered by ALPN, and both reloaded on SIGHUP (a renewed
//! certificate takes effect for new connections without a restart; a bad
//! file keeps the old one and says so).

use crate::failure::{io_reason, Failure};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// The current TLS configuration, swapped whole on reload.
#[derive(Clone)]
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    current: Arc<RwLock<TlsAcceptor>>,
}

fn load(cert: &Path, key: &Path) -> Result<TlsAcceptor, Failure> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| {
            Failure::operational(format!("cannot read {}: {}", p.display(), io_reason(&e)))
        })
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            Failure::usage(format!(
                "{}: not a PEM certificate chain ({e})",
                cert.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(Failure::usage(format!(
            "{}: no certificate in it",
            cert.display()
        )));
    }
    let key_der = PrivateKeyDer::from_pem_slice(&read(key)?)
        .map_err(|e| Failure::usage(format!("{}: not a PEM private key ({e})", key.display())))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::operational(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| {
            Failure::usage(format!(
                "{} and {}: the key does not fit the certificate ({e})",
                cert.display(),
                key.display()
            ))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

impl Tls {
    pub fn new(cert: &Path, key: &Path) -> Result<Tls, Failure> {
        let acceptor = load(cert, key)?;
        Ok(Tls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: Arc::new(RwLock::new(acceptor)),
        })
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Read the files again; on failure keep serving the old certificate.
    pub fn reload(&self) {
        match load(&self.cert, &self.key) {
            Ok(a) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = a;
                tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
            }
            Err(f) => {
                tracing::error!(error = %f, "TLS reload failed; keeping the previous certificate")
            }
        }
    }

    /// Reload on every SIGHUP.
    pub fn spawn_reload_on_sighup(&self) {
        let tls = self.clone();
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hup.recv().await.is_some() {
                tls.reload();
            }
        });
    }
}
