//! What a test does with the open page: read numbers, click, run a script, wait, screenshot.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::driver::Browser;

impl Browser {
    /// Loads `url` and waits for its load event, as WebDriver navigation does.
    pub async fn open(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|err| panic!("{url} opens: {err}"));
    }

    /// The text of the element matching `css`, or why it cannot be read now.
    ///
    /// htmx swaps whole fragments, so an element found a moment ago may be gone: each read
    /// finds it anew, and a failed read is an answer for a poll to retry.
    pub async fn text(&self, css: &str) -> Result<String, String> {
        let element = self
            .client
            .find(Locator::Css(css))
            .await
            .map_err(|err| format!("no {css}: {err}"))?;
        element
            .text()
            .await
            .map_err(|err| format!("{css} unreadable: {err}"))
    }

    /// The number shown in the element with `id`, or why there is none.
    pub async fn number(&self, id: &str) -> Result<i64, String> {
        let text = self.text(&format!("#{id}")).await?;
        text.trim()
            .parse()
            .map_err(|_| format!("#{id} shows {text:?}"))
    }

    /// Waits until the element with `id` shows `want`.
    pub async fn wait_for_number(&self, id: &str, want: i64, within: Duration) {
        let what = format!("#{id} to show {want}");
        eventually(&what, within, async || match self.number(id).await {
            Ok(shown) if shown == want => Ok(()),
            Ok(shown) => Err(format!("it shows {shown}")),
            Err(why) => Err(why),
        })
        .await;
    }

    /// Clicks the element matching `css`, as a user would.
    pub async fn click(&self, css: &str) {
        let element = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("no {css} to click: {err}"));
        element
            .click()
            .await
            .unwrap_or_else(|err| panic!("{css} clicks: {err}"));
    }

    /// Runs `script` in the page and reads what it returns as `T`.
    pub async fn script<T: DeserializeOwned>(&self, script: &str) -> T {
        let value = self
            .client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|err| panic!("script runs: {err}\n{script}"));
        serde_json::from_value(value.clone())
            .unwrap_or_else(|err| panic!("script returned {value} ({err})\n{script}"))
    }

    /// The value of the cookie `name` the browser holds for the current page.
    pub async fn cookie(&self, name: &str) -> String {
        let cookie = self
            .client
            .get_named_cookie(name)
            .await
            .unwrap_or_else(|err| panic!("the browser holds cookie {name}: {err}"));
        cookie.value().to_owned()
    }

    /// Saves what the window shows as `target/screenshots/<name>.png` and returns the path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot taken");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("screenshot written");
        path
    }
}

/// Where screenshots go: beside the build, so `cargo clean` removes them and git ignores them.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("screenshots")
}

/// Retries `probe` until it succeeds and returns its value; panics after `within` with `what`
/// was awaited and the probe's last answer.
pub async fn eventually<T>(
    what: &str,
    within: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("waited {within:?} for {what}; last: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// `Ok` when `script` returns true in the page, for [`eventually`].
pub async fn holds(browser: &Browser, script: &str) -> Result<(), String> {
    match browser.client.execute(script, Vec::new()).await {
        Ok(Value::Bool(true)) => Ok(()),
        Ok(other) => Err(format!("script returned {other}")),
        Err(err) => Err(format!("script failed: {err}")),
    }
}
