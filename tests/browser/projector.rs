//! The projector page on a full-HD screen: a QR code the room can scan, totals that climb live,
//! and a chart of hits per minute.

use serde::Deserialize;

use crate::driver::{Browser, PROJECTOR};
use crate::helpers::browser as http_visitor;
use crate::page::{eventually, holds};

/// The QR image as the browser laid it out, in CSS pixels.
#[derive(Debug, Deserialize)]
struct QrImage {
    src: String,
    /// The `url` the image's query asks the QR code to hold, decoded.
    encodes: Option<String>,
    complete: bool,
    natural_width: f64,
    top: f64,
    left: f64,
    bottom: f64,
    right: f64,
    height: f64,
    inner_width: f64,
    inner_height: f64,
}

const QR_IMAGE: &str = "const img = document.querySelector('img#qr');
    if (!img) { return null; }
    const r = img.getBoundingClientRect();
    return { src: img.getAttribute('src') || '',
             encodes: new URL(img.src, location.href).searchParams.get('url'),
             complete: img.complete,
             natural_width: img.naturalWidth, top: r.top, left: r.left, bottom: r.bottom,
             right: r.right, height: r.height,
             inner_width: window.innerWidth, inner_height: window.innerHeight };";

const CHART_HAS_A_BAR: &str = "return [...document.querySelectorAll('svg#chart rect.bar')]
    .some((bar) => bar.getBoundingClientRect().height > 0);";

#[tokio::test(flavor = "multi_thread")]
async fn the_projector_shows_a_large_qr_code_and_totals_and_a_chart_that_climb_live() {
    let Some(browser) = Browser::launch(PROJECTOR).await else {
        return;
    };
    let (app, within) = crate::app_polling_every_second().await;

    browser.open(&app.url("/present")).await;

    let qr = eventually("the QR image to load", within, async || {
        match browser.script::<Option<QrImage>>(QR_IMAGE).await {
            Some(qr) if qr.complete && qr.natural_width > 0.0 => Ok(qr),
            Some(qr) => Err(format!("not loaded: {qr:?}")),
            None => Err("no img#qr".to_owned()),
        }
    })
    .await;
    // Taken now as well, so that a run failing below still leaves a picture of the page.
    browser.screenshot("projector").await;
    assert!(qr.src.starts_with("/qr.png?"), "QR source: {}", qr.src);
    assert!(qr.height >= 600.0, "the QR code is large: {qr:?}");
    assert!(
        qr.left >= 0.0
            && qr.top >= 0.0
            && qr.right <= qr.inner_width
            && qr.bottom <= qr.inner_height,
        "the QR code is fully on screen: {qr:?}"
    );
    let join_url = browser.text("#join-url").await.expect("join URL shown");
    // Opened on loopback, the page may name the machine's LAN address instead: only the port
    // is sure to be the app's.
    assert!(
        join_url.starts_with("http") && join_url.contains(&format!(":{}", app.addr.port())),
        "the join URL {join_url:?} points at the app on port {}",
        app.addr.port()
    );
    assert_eq!(
        qr.encodes.as_deref(),
        Some(join_url.as_str()),
        "the QR code holds the join URL"
    );
    assert_eq!(
        browser.number("total-hits").await,
        Ok(0),
        "the projector counts nothing"
    );

    for _ in 0..3 {
        let reply = http_visitor().get(app.url("/")).send().await.expect("page");
        assert!(reply.status().is_success(), "visit: {}", reply.status());
    }

    for total in ["total-hits", "total-visitors", "active-visitors"] {
        browser.wait_for_number(total, 3, within).await;
    }
    eventually("a bar in the chart", within, async || {
        holds(&browser, CHART_HAS_A_BAR).await
    })
    .await;
    browser.screenshot("projector").await;
}
