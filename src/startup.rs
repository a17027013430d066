//! Start-up and shutdown: opens the store, loads the signing key and templates, binds
//! the listener, and serves until told to stop.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use poem::listener::{
    Acceptor, AcceptorExt, BoxAcceptor, Listener, RustlsCertificate, RustlsConfig, TcpListener,
};
use poem::web::cookie::CookieKey;
use poem::{EndpointExt, Server};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{MIN_SESSION_KEY_BYTES, Secret, Settings, StoreSettings, TlsFiles};
use crate::listener::HeadDeadline;
use crate::qr::QrCache;
use crate::store::sqlite::Sqlite;
use crate::store::{Store, StoreError};
use crate::views::Views;
use crate::web::{self, AppState};

/// How long requests in flight may take to finish after a stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// How long a client may take to send a request head (slowloris protection).
const HEAD_DEADLINE: Duration = Duration::from_secs(10);

/// How long a keep-alive connection may sit idle; a phone polls far more often.
const IDLE_TIMEOUT: Duration = Duration::from_secs(75);

/// Rendered QR codes kept: a few sizes of a few join URLs.
const QR_CACHE_ENTRIES: usize = 32;

/// Bytes of key material created for a store that has no signing key yet.
const NEW_KEY_BYTES: usize = 64;

/// Why the server could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be opened.
    #[error("cannot open the store ({store})")]
    Store {
        /// Which store, without secrets.
        store: String,
        /// What went wrong.
        #[source]
        source: StoreError,
    },
    /// The cookie-signing key could not be read or made.
    #[error("cannot get the cookie-signing key")]
    SessionKey(#[source] StoreError),
    /// The operating system gave no random bytes.
    #[error("no random bytes for a new signing key")]
    Random(#[from] getrandom::Error),
    /// A compiled-in template does not parse.
    #[error("the page templates do not load")]
    Templates(#[from] minijinja::Error),
    /// The address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// The TLS certificate or key could not be read or used.
    #[error("cannot use the TLS certificate and key")]
    Tls {
        /// The setting naming the file at fault.
        setting: &'static str,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// The server stopped with an error.
    #[error("the server failed")]
    Serve(#[source] io::Error),
}

impl StartupError {
    /// The setting to blame, when the error is a bad setting rather than a failure.
    pub fn setting(&self) -> Option<&'static str> {
        match self {
            Self::Bind { .. } => Some("PORT"),
            Self::Tls { setting, .. } => Some(setting),
            Self::Store { store, .. } if store.starts_with("sqlite") => Some("SQLITE_PATH"),
            _ => None,
        }
    }
}

/// A bound, ready-to-serve application.
pub struct Application {
    acceptor: BoxAcceptor,
    local_addr: SocketAddr,
    endpoint: poem::endpoint::BoxEndpoint<'static>,
    store: String,
}

impl Application {
    /// Opens the store and binds the listener; serving starts with [`Application::run_until`].
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let store = open_store(&settings.store).await?;
        let cookie_key = signing_key(&store, settings.session_key.as_ref()).await?;
        let state = AppState {
            store: store.clone(),
            views: Arc::new(Views::new()?),
            cookie_key: Arc::new(cookie_key),
            poll_seconds: settings.poll_interval.as_secs(),
            tls: settings.tls.is_some(),
            public_url: settings.public_url.clone(),
            qr: Arc::new(QrCache::new(QR_CACHE_ENTRIES)),
        };

        let acceptor = bind(settings.listen, settings.tls.as_ref()).await?;
        let local_addr = acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().copied())
            .unwrap_or(settings.listen);

        Ok(Self {
            acceptor,
            local_addr,
            endpoint: web::app(state).map_to_response().boxed(),
            store: store.describe(),
        })
    }

    /// The address actually bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets requests in flight
    /// finish, and closes the store once the last of them has let go of it.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        tracing::info!(address = %self.local_addr, store = %self.store, "listening");
        Server::new_with_acceptor(self.acceptor)
            .idle_timeout(IDLE_TIMEOUT)
            .run_with_graceful_shutdown(self.endpoint, shutdown, Some(SHUTDOWN_GRACE))
            .await
            .map_err(StartupError::Serve)?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Binds the listener, with TLS when certificate files are given, and the deadline
/// for request heads on every connection.
async fn bind(addr: SocketAddr, tls: Option<&TlsFiles>) -> Result<BoxAcceptor, StartupError> {
    let bind_error = |source| StartupError::Bind { addr, source };
    let tcp = TcpListener::bind(addr);
    let Some(files) = tls else {
        let acceptor = tcp.into_acceptor().await.map_err(bind_error)?;
        return Ok(HeadDeadline::new(acceptor, HEAD_DEADLINE).boxed());
    };

    // rustls needs one process-wide crypto provider; naming it keeps TLS working even if
    // another crate enables a second one. An error means one is installed already.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let certificate = checked_certificate(files)?;
    let acceptor = tcp
        .rustls(RustlsConfig::new().fallback(certificate))
        .into_acceptor()
        .await
        .map_err(bind_error)?;
    Ok(HeadDeadline::new(acceptor, HEAD_DEADLINE).boxed())
}

/// Reads the PEM files and checks that they make a usable certificate and key. Poem
/// would only log a bad pair and then fail every connection, so it is checked here and
/// stops start-up instead.
fn checked_certificate(files: &TlsFiles) -> Result<RustlsCertificate, StartupError> {
    let tls_error = |setting, problem: String| StartupError::Tls {
        setting,
        source: io::Error::new(io::ErrorKind::InvalidData, problem),
    };
    let read = |setting, path: &std::path::Path| {
        std::fs::read(path).map_err(|err| tls_error(setting, format!("{}: {err}", path.display())))
    };
    let cert_pem = read("TLS_CERT", &files.cert)?;
    let key_pem = read("TLS_KEY", &files.key)?;

    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| tls_error("TLS_CERT", format!("not a PEM certificate: {err}")))?;
    if chain.is_empty() {
        return Err(tls_error("TLS_CERT", "holds no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|err| tls_error("TLS_KEY", format!("not a PEM private key: {err}")))?;
    rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|err| tls_error("TLS_KEY", format!("does not fit the certificate: {err}")))?;

    Ok(RustlsCertificate::new().cert(cert_pem).key(key_pem))
}

/// Opens the configured store; connecting may block, so it runs on the blocking pool.
async fn open_store(settings: &StoreSettings) -> Result<Store, StartupError> {
    let settings = settings.clone();
    let opened = tokio::task::spawn_blocking(move || match settings {
        StoreSettings::Sqlite(path) => {
            let sqlite = Sqlite::new(path);
            let name = crate::store::Backend::describe(&sqlite);
            Store::open(sqlite).map_err(|source| (name, source))
        }
        StoreSettings::Oracle(oracle) => open_oracle(&oracle),
    })
    .await
    .map_err(|err| StartupError::Store {
        store: "the store".into(),
        source: StoreError::unavailable("start-up task failed", err),
    })?;
    opened.map_err(|(store, source)| StartupError::Store { store, source })
}

#[cfg(feature = "oracle")]
fn open_oracle(settings: &crate::config::OracleSettings) -> Result<Store, (String, StoreError)> {
    let name = format!("oracle at {}", settings.connect_string);
    crate::store::oracle::Oracle::open(settings)
        .and_then(Store::open)
        .map_err(|source| (name, source))
}

#[cfg(not(feature = "oracle"))]
fn open_oracle(settings: &crate::config::OracleSettings) -> Result<Store, (String, StoreError)> {
    // Settings refuse an Oracle connect string in a build without Oracle; this is the
    // same refusal for a caller that built `Settings` by hand.
    let reason = "this binary was built without Oracle support (--features oracle)";
    Err((
        format!("oracle at {}", settings.connect_string),
        StoreError::unavailable(reason, io::Error::other(reason)),
    ))
}

/// The key that signs visitor cookies: from SESSION_KEY_FILE, or the one kept in the
/// store (made on first start), so that cookies outlive restarts and work on every
/// instance that shares the store.
async fn signing_key(
    store: &Store,
    from_file: Option<&Secret<Vec<u8>>>,
) -> Result<CookieKey, StartupError> {
    let material = match from_file {
        Some(secret) => secret.expose().clone(),
        None => {
            let mut candidate = vec![0_u8; NEW_KEY_BYTES];
            getrandom::fill(&mut candidate)?;
            store
                .session_key(candidate)
                .await
                .map_err(StartupError::SessionKey)?
        }
    };
    if material.len() < MIN_SESSION_KEY_BYTES {
        let reason = "the stored signing key is too short";
        return Err(StartupError::SessionKey(StoreError::unavailable(
            reason,
            io::Error::other(reason),
        )));
    }
    Ok(CookieKey::derive_from(&material))
}
