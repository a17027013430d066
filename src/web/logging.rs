//! One log line per request, with method, path, status and latency; the place where
//! errors become responses, so a cause is logged once and never shown to the client.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Instant;

use poem::http::{Method, StatusCode, header};
use poem::web::Html;
use poem::{Endpoint, IntoResponse, Request, Response};

use super::error::{AppError, public_message};
use crate::views::Views;

/// Runs the request and logs it. Polls, health checks and assets that succeed log at
/// DEBUG: a room of phones polling every two seconds must not flood the log.
pub async fn log_request<E: Endpoint>(
    next: Arc<E>,
    req: Request,
    views: Arc<Views>,
) -> poem::Result<Response> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let routine = method == Method::GET
        && (matches!(path.as_str(), "/counter" | "/present/live" | "/status")
            || path.starts_with("/static/"));

    let (response, cause) = match next.call(req).await {
        Ok(output) => (output.into_response(), None),
        Err(err) => match err.downcast_ref::<AppError>() {
            // A client mistake is answered with what is wrong, and is not a server error.
            Some(AppError::BadInput(problem)) => (bad_input_response(problem), None),
            Some(app_error) => (
                error_response(err.status(), &views),
                Some(cause_chain(app_error)),
            ),
            None => (error_response(err.status(), &views), None),
        },
    };

    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Some(cause) = cause {
        tracing::error!(%method, ?path, status, latency_ms, %cause, "request failed");
    } else if routine && response.status().is_success() {
        tracing::debug!(%method, ?path, status, latency_ms, "request");
    } else {
        tracing::info!(%method, ?path, status, latency_ms, "request");
    }
    Ok(response)
}

/// The error and every source below it, on one line.
fn cause_chain(err: &AppError) -> String {
    let mut chain = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        chain.push_str(": ");
        chain.push_str(&inner.to_string());
        source = inner.source();
    }
    chain
}

/// A plain-text 400 with the app's own sentence about what is wrong.
fn bad_input_response(problem: &str) -> Response {
    problem
        .to_owned()
        .with_status(StatusCode::BAD_REQUEST)
        .with_header(header::CACHE_CONTROL, "no-store")
        .into_response()
}

/// A generic page in place of whatever the error would have said.
fn error_response(status: StatusCode, views: &Views) -> Response {
    let (title, message) = public_message(status);
    let body = views
        .error(status.as_u16(), title, message)
        .unwrap_or_else(|_| message.to_owned());
    Html(body)
        .with_status(status)
        .with_header(header::CACHE_CONTROL, "no-store")
        .into_response()
}
