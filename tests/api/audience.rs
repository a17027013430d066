//! Audience mode: QR codes of the join URL and the projector page.

use crate::helpers::{TestDir, number, spawn_app, spawn_app_in};

/// Decodes the QR code in a PNG and returns its text.
fn decode_qr(png: &[u8]) -> String {
    let image = image::load_from_memory(png).expect("a PNG").to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "exactly one QR code in the image");
    grids[0].decode().expect("the QR code decodes").1
}

#[tokio::test]
async fn the_qr_code_encodes_exactly_the_url_parameter() {
    let app = spawn_app().await;
    let join = "https://talk.example.org/room?id=42";

    let response = app
        .client
        .get(app.url("/qr.png"))
        .query(&[("url", join), ("size", "300")])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert!(response.headers().contains_key("etag"));
    assert!(
        response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let png = response.bytes().await.unwrap();
    assert_eq!(image::load_from_memory(&png).unwrap().width(), 300);
    assert_eq!(decode_qr(&png), join);
}

#[tokio::test]
async fn the_qr_code_points_to_public_url_when_it_is_set() {
    let app = spawn_app_in(
        TestDir::new(),
        &["--public-url", "https://hits.example.net/"],
    )
    .await;

    let png = app.get("/qr.png").await.bytes().await.unwrap();

    assert_eq!(decode_qr(&png), "https://hits.example.net/");
}

#[tokio::test]
async fn the_qr_code_follows_the_forwarded_host_behind_a_proxy() {
    let app = spawn_app().await;

    let forwarded = app
        .client
        .get(app.url("/qr.png"))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "counter.example.com")
        .send()
        .await
        .unwrap();
    let rfc7239 = app
        .client
        .get(app.url("/qr.png"))
        .header(
            "forwarded",
            "for=10.0.0.1;proto=https;host=\"hits.example.org:8443\"",
        )
        .send()
        .await
        .unwrap();

    assert_eq!(
        decode_qr(&forwarded.bytes().await.unwrap()),
        "https://counter.example.com/"
    );
    assert_eq!(
        decode_qr(&rfc7239.bytes().await.unwrap()),
        "https://hits.example.org:8443/"
    );
}

#[tokio::test]
async fn a_repeated_qr_request_with_its_etag_is_not_modified() {
    let app = spawn_app().await;
    let url = app.url("/qr.png?url=https%3A%2F%2Fexample.org%2F");
    let first = app.client.get(&url).send().await.unwrap();
    let etag = first.headers()["etag"].clone();

    let again = app
        .client
        .get(&url)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();

    assert_eq!(again.status(), 304);
}

#[tokio::test]
async fn unusable_join_urls_and_sizes_are_refused_with_a_plain_message() {
    let app = spawn_app().await;
    let long = format!("https://example.org/{}", "a".repeat(2048));
    let cases = [
        ("url", "javascript:alert(1)"),
        ("url", "data:text/html,hi"),
        ("url", "/relative/path"),
        ("url", long.as_str()),
        ("url", "https://user:secret@example.org/"),
        ("url", "https://example.org/\r\nSet-Cookie: x=1"),
        ("size", "huge"),
        ("size", "-5"),
    ];

    for (name, value) in cases {
        let response = app
            .client
            .get(app.url("/qr.png"))
            .query(&[(name, value)])
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 400, "{name}={value:.40}");
        let message = response.text().await.unwrap();
        assert!(
            message.starts_with("the "),
            "a plain sentence, got {message:?}"
        );
        assert!(
            !message.contains("secret") && !message.contains("alert"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn sizes_outside_the_range_are_clamped() {
    let app = spawn_app().await;

    let tiny = app
        .get("/qr.png?size=3&url=https%3A%2F%2Fexample.org%2F")
        .await;
    let large = app
        .get("/qr.png?size=5000&url=https%3A%2F%2Fexample.org%2F")
        .await;

    let width = |png: &[u8]| image::load_from_memory(png).unwrap().width();
    assert_eq!(width(&tiny.bytes().await.unwrap()), 128);
    assert_eq!(width(&large.bytes().await.unwrap()), 1024);
}

#[tokio::test]
async fn a_script_in_the_join_url_is_escaped_on_the_projector_page() {
    let app = spawn_app().await;

    let response = app
        .client
        .get(app.url("/present"))
        .query(&[("url", "https://example.org/?q=<script>alert(1)</script>")])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(html.contains("id=\"join-url\""));
}

#[tokio::test]
async fn the_projector_page_shows_totals_that_rise_as_visitors_arrive() {
    let app = spawn_app().await;
    let before = app.get("/present").await.text().await.unwrap();

    for _ in 0..3 {
        crate::helpers::browser()
            .get(app.url("/"))
            .send()
            .await
            .unwrap();
    }
    let after = app.get("/present/live").await.text().await.unwrap();

    assert_eq!(number(&before, "total-hits"), 0);
    assert_eq!(number(&after, "total-hits"), 3);
    assert_eq!(number(&after, "total-visitors"), 3);
    assert_eq!(number(&after, "active-visitors"), 3);
    assert!(after.contains("id=\"chart\"") && after.contains("class=\"bar\""));
    assert_eq!(
        number(
            &app.get("/present").await.text().await.unwrap(),
            "total-hits"
        ),
        3
    );
}

#[tokio::test]
async fn the_projector_counts_nothing_and_its_poll_answers_204_when_nothing_changed() {
    let app = spawn_app().await;
    let live = app.get("/present/live").await.text().await.unwrap();
    let poll_url = live
        .split("hx-get=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();

    let unchanged = app.get(&poll_url).await;

    assert_eq!(unchanged.status(), 204);
    assert_eq!(
        number(
            &app.get("/present/live").await.text().await.unwrap(),
            "total-hits"
        ),
        0
    );
}

#[tokio::test]
async fn the_visitor_page_shows_a_small_qr_code_of_the_join_url() {
    let app = spawn_app().await;

    let html = app.get("/").await.text().await.unwrap();

    assert!(html.contains("src=\"/qr.png?size=256\""), "{html}");
}
