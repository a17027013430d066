//! The visitor page with JavaScript turned off: plain HTML still counts and shows visits.

use std::time::Duration;

use fantoccini::Locator;

use crate::driver::{Browser, PHONE};
use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread")]
async fn without_javascript_the_page_shows_the_count_and_the_hit_link_counts_a_visit() {
    let Some(browser) = Browser::launch_without_javascript(PHONE).await else {
        return;
    };
    let app = spawn_app().await;
    browser.open(&app.url("/")).await;
    assert_eq!(browser.number("visitor-hits").await, Ok(1));
    let first_heading = browser
        .client
        .find(Locator::Css("h1"))
        .await
        .expect("the page has a heading");

    browser.click("a.tap").await;

    browser
        .wait_for_number("visitor-hits", 2, Duration::from_secs(5))
        .await;
    // The link loaded a new document, so the first one's heading is gone. Had htmx run after
    // all, it would have swapped only the counter and kept the heading.
    let gone = first_heading
        .text()
        .await
        .expect_err("the first page was replaced");
    assert!(gone.is_stale_element_reference(), "{gone}");
}
