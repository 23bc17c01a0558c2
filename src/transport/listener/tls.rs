//! HTTPS for the listener: the certificate and key are read from PEM files and read again
//! whenever either changes (a renewed certificate is served without a restart). A pair that
//! cannot be used is reported and the one in force stays.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate {path}: {why}")]
    Cert { path: PathBuf, why: String },
    #[error("cannot read the TLS key {path}: {why}")]
    Key { path: PathBuf, why: String },
    #[error("the TLS key {key} does not belong to the certificate {cert}: {why}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        why: String,
    },
    #[error("cannot set up TLS: {0}")]
    Config(String),
}

/// The certificate in force, swapped whole when the files change.
#[derive(Debug)]
struct ReloadingCert {
    current: ArcSwap<CertifiedKey>,
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// What serves TLS, and the watch that keeps its certificate fresh (dropping it stops the
/// reloads).
pub(super) struct Tls {
    pub(super) acceptor: tokio_rustls::TlsAcceptor,
    _watch: Option<crate::reload::FileWatcher>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

/// The ring provider, given explicitly: the process-wide default may be unset or another.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert {
            path: cert.to_path_buf(),
            why: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Cert {
            path: cert.to_path_buf(),
            why: "no PEM certificate in it".into(),
        });
    }
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_path_buf(),
        why: e.to_string(),
    })?;
    let signing = provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| TlsError::Key {
            path: key.to_path_buf(),
            why: e.to_string(),
        })?;
    let pair = CertifiedKey::new(certs, signing);
    pair.keys_match().map_err(|e| TlsError::Mismatch {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        why: e.to_string(),
    })?;
    Ok(pair)
}

/// Loads the pair (an unusable one stops start-up) and watches both files.
pub(super) fn serve(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
    let resolver = Arc::new(ReloadingCert {
        current: ArcSwap::from_pointee(load(cert, key)?),
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let (cert, key) = (cert.to_path_buf(), key.to_path_buf());
    let paths = [cert.clone(), key.clone()];
    let mut first = true;
    let watch = crate::reload::watch_files(&paths, "intercept-tls-reload", move || {
        // The first call only confirms the watch is armed; the pair was just loaded.
        if std::mem::take(&mut first) {
            return;
        }
        match load(&cert, &key) {
            Ok(pair) => {
                resolver.current.store(Arc::new(pair));
                tracing::info!(cert = %cert.display(), "TLS certificate reloaded");
            }
            // Mid-renewal (the certificate written, the key not yet) looks the same: the
            // next change brings the whole pair.
            Err(e) => tracing::warn!("{e}; the certificate in force stays"),
        }
    });
    let watch = match watch {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("{e}; the TLS certificate will not be reloaded when it changes");
            None
        }
    };
    Ok(Tls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        _watch: watch,
    })
}
