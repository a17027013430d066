//! The visitor page on a phone: counting, the tap button, live updates without reloads.

use std::time::Duration;

use reqwest::header::COOKIE;
use serde::Deserialize;

use crate::driver::{Browser, PHONE};
use crate::helpers::{number, spawn_app};

/// Where an element sits in the viewport, in CSS pixels.
#[derive(Debug, Deserialize)]
struct Placement {
    top: f64,
    bottom: f64,
    inner_width: f64,
    inner_height: f64,
}

const TAP_PLACEMENT: &str = "const r = document.querySelector('a.tap').getBoundingClientRect();
    return { top: r.top, bottom: r.bottom,
             inner_width: window.innerWidth, inner_height: window.innerHeight };";

#[tokio::test(flavor = "multi_thread")]
async fn a_phone_sees_its_count_and_tapping_the_button_counts_again_without_a_reload() {
    let Some(browser) = Browser::launch(PHONE).await else {
        return;
    };
    let app = spawn_app().await;

    browser.open(&app.url("/")).await;

    assert_eq!(browser.number("visitor-hits").await, Ok(1));
    let tap: Placement = browser.script(TAP_PLACEMENT).await;
    assert_eq!(
        tap.inner_width,
        f64::from(PHONE.width),
        "the viewport is phone-wide"
    );
    assert!(
        tap.top >= 0.0 && tap.bottom <= tap.inner_height,
        "the hit button is on the first screen: {tap:?}"
    );

    browser.script::<()>("window.__marker = 42;").await;
    browser.click("a.tap").await;

    browser
        .wait_for_number("visitor-hits", 2, Duration::from_secs(5))
        .await;
    let marker: Option<i64> = browser.script("return window.__marker ?? null;").await;
    assert_eq!(marker, Some(42), "the page was not reloaded");
    let shot = browser.screenshot("phone").await;
    assert!(shot.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hit_from_elsewhere_by_the_same_visitor_shows_up_on_the_open_page_without_a_reload() {
    let Some(browser) = Browser::launch(PHONE).await else {
        return;
    };
    let (app, within) = crate::app_polling_every_second().await;
    browser.open(&app.url("/")).await;
    assert_eq!(browser.number("visitor-hits").await, Ok(1));
    browser.script::<()>("window.__marker = 42;").await;
    // Another client of the same visitor, say a second tab: it carries the browser's cookie.
    let visitor = format!("hc_visitor={}", browser.cookie("hc_visitor").await);
    let other_tab = reqwest::Client::new();

    for expected in [2, 3] {
        let reply = other_tab
            .post(app.url("/hit"))
            .header(COOKIE, &visitor)
            .send()
            .await
            .expect("hit answered");
        assert!(reply.status().is_success(), "hit: {}", reply.status());
        let fragment = reply.text().await.expect("fragment");
        assert_eq!(number(&fragment, "visitor-hits"), expected, "same visitor");
    }

    // Two poll intervals, plus slack for a busy machine.
    browser.wait_for_number("visitor-hits", 3, within).await;
    let marker: Option<i64> = browser.script("return window.__marker ?? null;").await;
    assert_eq!(marker, Some(42), "the page was not reloaded");
}
