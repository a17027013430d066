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

mod console;
mod no_script;
mod phone;
mod projector;
