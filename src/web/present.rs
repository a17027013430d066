//! The projector: its page with the QR code and live totals, its fragment, and the QR
//! image itself.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;

use poem::http::{StatusCode, header};

use poem::web::{Data, Html, Query};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::{AppError, AppState, Poll, no_store};
use crate::chart;
use crate::join_url::{self, JoinUrl};
use crate::qr::{self, QrCache, QrImage};
use crate::store;
use crate::views::{PresentView, RoomView};

/// Query of `/present` and `/qr.png`.
#[derive(Debug, Deserialize)]
pub(super) struct JoinParams {
    url: Option<String>,
    size: Option<String>,
}

/// `GET /present`: the projector page; counts nothing.
#[handler]
pub(super) async fn page(
    Data(app): Data<&AppState>,
    req: &Request,
    Query(params): Query<JoinParams>,
) -> Result<Response, AppError> {
    let join = resolve_join_url(app, req, params.url.as_deref())?;
    let room = room_view(app).await?;
    let page = PresentView {
        join_url: join.url.as_str(),
        lan_address: join.lan_address.map(|ip| ip.to_string()),
    };
    Ok(no_store(Html(app.views.present(&page, &room)?)))
}

/// `GET /present/live`: the projector's numbers and chart; 204 when nothing changed.
#[handler]
pub(super) async fn live(
    Data(app): Data<&AppState>,
    Query(poll): Query<Poll>,
) -> Result<Response, AppError> {
    let room = room_view(app).await?;
    if poll.v.as_deref() == Some(room.version.as_str()) {
        return Ok(no_store(StatusCode::NO_CONTENT));
    }
    Ok(no_store(Html(app.views.room(&room)?)))
}

/// `GET /qr.png`: a PNG QR code of the join URL, from a small cache.
#[handler]
pub(super) async fn image(
    Data(app): Data<&AppState>,
    req: &Request,
    Query(params): Query<JoinParams>,
) -> Result<Response, AppError> {
    let size = qr::parse_size(params.size.as_deref()).map_err(AppError::bad_input)?;
    let join = resolve_join_url(app, req, params.url.as_deref())?;
    let rendered = match app.qr.cached(&join.url, size) {
        Some(hit) => hit,
        None => render(Arc::clone(&app.qr), join.url, size).await?,
    };

    let cache_control = "public, max-age=3600";
    let response = if already_has(req, &rendered.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let png = Bytes::from_owner(Arc::clone(&rendered.png));
        Response::builder().content_type("image/png").body(png)
    };
    Ok(response
        .with_header(header::ETAG, rendered.etag.as_str())
        .with_header(header::CACHE_CONTROL, cache_control)
        // Without `url`, the code depends on the headers that name this host.
        .with_header(
            header::VARY,
            "Host, Forwarded, X-Forwarded-Host, X-Forwarded-Proto",
        )
        .into_response())
}

/// Renders (and caches) a QR code on the blocking pool: a render takes milliseconds.
async fn render(cache: Arc<QrCache>, url: JoinUrl, size: u32) -> Result<QrImage, AppError> {
    let rendered = tokio::task::spawn_blocking(move || cache.get_or_render(&url, size)).await?;
    Ok(rendered?)
}

/// Whether `If-None-Match` lists `etag` (weak or strong, or `*`).
fn already_has(req: &Request, etag: &str) -> bool {
    let Some(listed) = req.headers().get(header::IF_NONE_MATCH) else {
        return false;
    };
    let listed = listed.to_str().unwrap_or_default();
    listed
        .split(',')
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

/// The URL a QR code points to, and the LAN address used in it, if one was.
struct Join {
    url: JoinUrl,
    lan_address: Option<IpAddr>,
}

/// The join URL: the `url` parameter; else PUBLIC_URL; else the site the request came
/// to, with a loopback host replaced by this machine's LAN address so phones can reach it.
fn resolve_join_url(app: &AppState, req: &Request, param: Option<&str>) -> Result<Join, AppError> {
    let fixed = match param {
        Some(raw) => Some(JoinUrl::parse(raw).map_err(AppError::bad_input)?),
        None => app.public_url.clone(),
    };
    if let Some(url) = fixed {
        return Ok(Join {
            url,
            lan_address: None,
        });
    }

    let (scheme, host) = join_url::forwarded_origin(req.headers(), app.tls)
        .ok_or_else(|| AppError::bad_input("the request names no usable host"))?;
    let url =
        JoinUrl::from_request_parts(Some(&scheme), &host, "/").map_err(AppError::bad_input)?;
    if url.host_is_loopback()
        && let Some(lan) = join_url::lan_address()
    {
        return Ok(Join {
            url: url.with_host(lan),
            lan_address: Some(lan),
        });
    }
    Ok(Join {
        url,
        lan_address: None,
    })
}

/// Reads the room's numbers and the last half hour, per minute.
async fn room_view(app: &AppState) -> Result<RoomView, AppError> {
    let now = store::now();
    let counts = app.store.counts(None).await?;
    let minutes = app.store.minutes(chart::first_minute(now), now).await?;
    let chart = chart::layout(&minutes, now);
    Ok(RoomView::new(counts.totals, chart, now, app.poll_seconds))
}
