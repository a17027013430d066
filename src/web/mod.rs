//! HTTP routes: the visitor page, its htmx fragments, the health check and assets.

mod assets;
mod error;
mod logging;
mod present;

use std::sync::Arc;

use poem::http::{StatusCode, header};
use poem::middleware::{CookieJarManager, SetHeader};
use poem::web::cookie::{CookieJar, CookieKey};
use poem::web::{Data, Html, Json, Query};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, handler, post};
use serde::Deserialize;

pub use error::AppError;

use crate::join_url::{self, JoinUrl};
use crate::qr::QrCache;
use crate::store::Store;
use crate::views::{CounterView, Views, version_of};
use crate::visitor::{self, VisitorId};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Where hits are counted.
    pub store: Store,
    /// The loaded templates.
    pub views: Arc<Views>,
    /// Signs visitor cookies.
    pub cookie_key: Arc<CookieKey>,
    /// Seconds between fragment polls.
    pub poll_seconds: u64,
    /// Whether the server itself speaks HTTPS.
    pub tls: bool,
    /// The join URL fixed by PUBLIC_URL.
    pub public_url: Option<JoinUrl>,
    /// Rendered QR codes.
    pub qr: Arc<QrCache>,
}

/// Scripts, styles and images only from this origin, nothing inline: htmx is configured
/// (in base.html) to need neither inline styles nor eval.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// No route takes a body; one declared larger than a small form is refused with 413.
/// Bodies are never read, so an undeclared (chunked) one cannot fill memory either.
const MAX_BODY_BYTES: u64 = 16 * 1024;

/// Request headers beyond this, all together, are refused with 431: a browser sends a
/// few kilobytes at most, and hyper alone would let in hundreds.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The whole application: routes, shared state and middleware.
pub fn app(state: AppState) -> impl Endpoint {
    let routes = Route::new()
        .at("/", get(index))
        .at("/counter", get(counter))
        .at("/hit", post(hit))
        .at("/status", get(status))
        .at("/present", get(present::page))
        .at("/present/live", get(present::live))
        .at("/qr.png", get(present::image))
        .at("/static/:name", get(assets::serve));

    let security_headers = SetHeader::new()
        .overriding(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY)
        .overriding(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .overriding(header::REFERRER_POLICY, "no-referrer");

    // Security headers go on last, so that error pages made by the logging layer get
    // them too.
    let views = Arc::clone(&state.views);
    routes
        .with(CookieJarManager::new())
        .data(state)
        .before(refuse_oversized)
        .around(move |next, req| logging::log_request(next, req, Arc::clone(&views)))
        .with(security_headers)
}

/// Refuses a request whose headers or declared body are too large, before any handler
/// runs.
async fn refuse_oversized(req: Request) -> poem::Result<Request> {
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(poem::Error::from_status(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > MAX_BODY_BYTES => {
            Err(poem::Error::from_status(StatusCode::PAYLOAD_TOO_LARGE))
        }
        _ => Ok(req),
    }
}

/// `GET /`: counts a visit and renders the page.
#[handler]
async fn index(
    Data(app): Data<&AppState>,
    jar: &CookieJar,
    req: &Request,
) -> Result<Response, AppError> {
    let visitor = returning_or_new(app, jar)?;
    let counts = app.store.hit(visitor.clone()).await?;
    visitor::remember(jar, &app.cookie_key, &visitor, is_https(req, app.tls));
    let page = app
        .views
        .index(&CounterView::new(counts, app.poll_seconds))?;
    Ok(no_store(Html(page)))
}

/// Query of `GET /counter`: the version of the numbers the page already shows.
#[derive(Debug, Deserialize)]
struct Poll {
    v: Option<String>,
}

/// `GET /counter`: the counter fragment; 204 when the numbers are those already shown.
#[handler]
async fn counter(
    Data(app): Data<&AppState>,
    jar: &CookieJar,
    Query(poll): Query<Poll>,
) -> Result<Response, AppError> {
    let visitor = visitor::identify(jar, &app.cookie_key);
    let counts = app.store.counts(visitor).await?;
    if poll.v.as_deref() == Some(version_of(&counts).as_str()) {
        return Ok(no_store(StatusCode::NO_CONTENT));
    }
    let fragment = app
        .views
        .counter(&CounterView::new(counts, app.poll_seconds))?;
    Ok(no_store(Html(fragment)))
}

/// `POST /hit`: counts a hit and answers with the fresh counter fragment.
#[handler]
async fn hit(
    Data(app): Data<&AppState>,
    jar: &CookieJar,
    req: &Request,
) -> Result<Response, AppError> {
    let visitor = returning_or_new(app, jar)?;
    let counts = app.store.hit(visitor.clone()).await?;
    visitor::remember(jar, &app.cookie_key, &visitor, is_https(req, app.tls));
    let fragment = app
        .views
        .counter(&CounterView::new(counts, app.poll_seconds))?;
    Ok(no_store(Html(fragment)))
}

/// `GET /status`: 200 when the store can be read and written, else 503 with the reason.
#[handler]
async fn status(Data(app): Data<&AppState>) -> Response {
    let (code, body) = match app.store.check().await {
        Ok(()) => (StatusCode::OK, serde_json::json!({ "status": "healthy" })),
        Err(err) => {
            tracing::warn!(error = %err, cause = ?std::error::Error::source(&err), "status check failed");
            let body = serde_json::json!({ "status": "unavailable", "reason": err.reason() });
            (StatusCode::SERVICE_UNAVAILABLE, body)
        }
    };
    no_store(Json(body).with_status(code))
}

/// The visitor named by the cookie, or a new one.
fn returning_or_new(app: &AppState, jar: &CookieJar) -> Result<VisitorId, AppError> {
    match visitor::identify(jar, &app.cookie_key) {
        Some(known) => Ok(known),
        None => Ok(VisitorId::generate()?),
    }
}

/// Whether the browser reached us over HTTPS: directly, or through a proxy that says so.
fn is_https(req: &Request, tls: bool) -> bool {
    tls || join_url::forwarded_origin(req.headers(), tls)
        .is_some_and(|(scheme, _)| scheme == "https")
}

/// Counts and pages change with every hit: no cache may keep them.
fn no_store(response: impl IntoResponse) -> Response {
    response
        .with_header(header::CACHE_CONTROL, "no-store")
        .into_response()
}
