//! Start-up and shutdown: opens the store, loads the signing key and templates, binds
//! the listener, and serves until told to stop.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use poem::listener::{Acceptor, AcceptorExt, BoxAcceptor, Listener, TcpListener};
use poem::web::cookie::CookieKey;
use poem::{EndpointExt, Server};

use crate::config::{MIN_SESSION_KEY_BYTES, Secret, Settings, StoreSettings};
use crate::qr::QrCache;
use crate::store::sqlite::Sqlite;
use crate::store::{Store, StoreError};
use crate::views::Views;
use crate::web::{self, AppState};

/// How long requests in flight may take to finish after a stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

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
    /// The server stopped with an error.
    #[error("the server failed")]
    Serve(#[source] io::Error),
}

impl StartupError {
    /// The setting to blame, when the error is a bad setting rather than a failure.
    pub fn setting(&self) -> Option<&'static str> {
        match self {
            Self::Bind { .. } => Some("PORT"),
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

        let acceptor = TcpListener::bind(settings.listen)
            .into_acceptor()
            .await
            .map_err(|source| StartupError::Bind {
                addr: settings.listen,
                source,
            })?;
        let local_addr = acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().copied())
            .unwrap_or(settings.listen);

        Ok(Self {
            acceptor: acceptor.boxed(),
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
            .run_with_graceful_shutdown(self.endpoint, shutdown, Some(SHUTDOWN_GRACE))
            .await
            .map_err(StartupError::Serve)?;
        tracing::info!("stopped");
        Ok(())
    }
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
