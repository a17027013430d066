//! The browser console stays clean: no script errors, no failed loads and nothing the
//! Content-Security-Policy blocked, on the visitor page and on the projector page.

use std::time::Duration;

use crate::driver::{Browser, LogEntry, PHONE};

use crate::page::eventually;

/// How many requests the page's scripts have sent (htmx uses XMLHttpRequest).
const SCRIPT_REQUESTS: &str = "return performance.getEntriesByType('resource')
    .filter((e) => e.initiatorType === 'xmlhttprequest' || e.initiatorType === 'fetch')
    .length;";

#[tokio::test(flavor = "multi_thread")]
async fn the_visitor_and_projector_pages_log_no_errors_and_break_no_content_security_policy() {
    let Some(browser) = Browser::launch(PHONE).await else {
        return;
    };
    let (app, within) = crate::app_polling_every_second().await;

    browser.open(&app.url("/")).await;
    let sent: u64 = browser.script(SCRIPT_REQUESTS).await;
    browser.click("a.tap").await;
    browser.wait_for_number("visitor-hits", 2, within).await;
    // The hit and a poll after it: the swapped-in fragment has been polled too.
    wait_for_script_requests(&browser, sent + 2, within).await;

    assert_no_complaints("/", browser.console_log().await);

    browser.open(&app.url("/present")).await;
    wait_for_script_requests(&browser, 1, within).await;

    assert_no_complaints("/present", browser.console_log().await);
}

/// Waits until the page's scripts have sent at least `count` requests since it loaded.
async fn wait_for_script_requests(browser: &Browser, count: u64, within: Duration) {
    let what = format!("{count} requests from the page's scripts");
    eventually(&what, within, async || {
        let sent: u64 = browser.script(SCRIPT_REQUESTS).await;
        if sent >= count {
            Ok(())
        } else {
            Err(format!("{sent} sent"))
        }
    })
    .await;
}

/// Fails naming the entries of `log` that a user or the security policy would call a fault.
fn assert_no_complaints(page: &str, log: Vec<LogEntry>) {
    let complaints: Vec<String> = log
        .into_iter()
        .filter(|entry| {
            let message = entry.message.to_ascii_lowercase();
            entry.level == "SEVERE"
                || message.contains("content security policy")
                || message.contains("content-security-policy")
        })
        .map(|entry| format!("{} {}", entry.level, entry.message))
        .collect();
    assert!(
        complaints.is_empty(),
        "the console on {page} has complaints:\n{}",
        complaints.join("\n")
    );
}
