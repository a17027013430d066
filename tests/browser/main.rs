//! End-to-end tests in headless Chromium: the real app in-process on port 0, driven over
//! WebDriver by a chromedriver each test starts on loopback. Where Chromium or chromedriver is
//! not installed, each test says `skipped: <why>` and passes. Screenshots land in
//! `target/screenshots/`.

// The API tests' helper, so both binaries start the very same app; this binary uses only part
// of it.
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

mod driver;
mod page;

/// The app, polling every second so that live updates show quickly, and how long two
/// polls may take on a busy machine.
async fn app_polling_every_second() -> (helpers::TestApp, std::time::Duration) {
    let app = helpers::spawn_app_in(helpers::TestDir::new(), &["--poll-seconds", "1"]).await;
    (app, std::time::Duration::from_secs(2 + 3))
}

mod console;
mod no_script;
mod phone;
mod projector;
