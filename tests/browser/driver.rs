//! A headless Chromium session behind a chromedriver that the test starts and stops itself.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::{Mutex, MutexGuard};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Flags that keep Chromium headless, quiet and off the network: the tests reach only the app
/// on loopback.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
];

/// One browser at a time: on two cores, parallel Chromiums starve the app they are timing.
static ONE_BROWSER: Mutex<()> = Mutex::const_new(());

/// The size of the browser window in CSS pixels. Headless Chromium keeps room for its (unseen)
/// toolbars, so the page gets the full width but about 140 px less height: a phone's browser
/// and a projector's windowed browser lose about as much.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub width: u32,
    pub height: u32,
}

/// A phone held upright (the size of a recent iPhone).
pub const PHONE: Window = Window {
    width: 390,
    height: 844,
};

/// A full-HD projector.
pub const PROJECTOR: Window = Window {
    width: 1920,
    height: 1080,
};

/// A headless Chromium with its own chromedriver and a fresh profile.
///
/// Fields drop in order: the WebDriver client, then chromedriver (which closes Chromium), then
/// the profile folder Chromium was writing to, and last the turn that lets the next test start
/// its browser.
pub struct Browser {
    pub client: Client,
    driver: Chromedriver,
    session: String,
    _profile: TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl Browser {
    /// Starts a browser with JavaScript on, or `None` (after saying why) where none is installed.
    pub async fn launch(window: Window) -> Option<Browser> {
        Self::start(window, true).await
    }

    /// Starts a browser that runs no page scripts, as a visitor who turned JavaScript off.
    pub async fn launch_without_javascript(window: Window) -> Option<Browser> {
        Self::start(window, false).await
    }

    async fn start(window: Window, javascript: bool) -> Option<Browser> {
        if let Some(why) = missing_browser() {
            skipped(&why);
            return None;
        }

        let turn = ONE_BROWSER.lock().await;
        let driver = Chromedriver::start().await;
        let profile = tempfile::tempdir().expect("profile dir");

        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|&flag| flag.to_owned()).collect();
        args.push(format!("--window-size={},{}", window.width, window.height));
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut chrome = json!({ "binary": CHROMIUM, "args": args });
        if !javascript {
            chrome["prefs"] = json!({ "profile.managed_default_content_settings.javascript": 2 });
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": chrome,
            // Every session keeps its console log, so any test can check it for errors.
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("capabilities are a JSON object")
        };

        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url(""))
            .await
            .expect("chromedriver opens a Chromium session");
        let session = client
            .session_id()
            .await
            .expect("session id")
            .expect("a session is open");
        client
            .set_window_size(window.width, window.height)
            .await
            .expect("window resizes");

        Some(Browser {
            client,
            driver,
            session,
            _profile: profile,
            _turn: turn,
        })
    }

    /// The browser's console messages since the last call: chromedriver hands each out once.
    ///
    /// W3C WebDriver has no log command; chromedriver keeps Selenium's under `/se/log`.
    pub async fn console_log(&self) -> Vec<LogEntry> {
        let url = self
            .driver
            .url(&format!("/session/{}/se/log", self.session));
        let body = reqwest::Client::new()
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(json!({ "type": "browser" }).to_string())
            .send()
            .await
            .expect("chromedriver answers")
            .text()
            .await
            .expect("log body");
        let mut reply: Value = serde_json::from_str(&body).expect("log is JSON");
        serde_json::from_value(reply["value"].take())
            .unwrap_or_else(|err| panic!("log entries ({err}) in: {body}"))
    }
}

/// One message from the browser's console.
#[derive(Debug, serde::Deserialize)]
pub struct LogEntry {
    pub level: String,
    pub message: String,
}

/// Why browser tests cannot run on this machine, if they cannot.
fn missing_browser() -> Option<String> {
    [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .find(|program| !Path::new(program).exists())
        .map(|program| format!("{program} is not installed"))
}

/// A chromedriver process on a free loopback port.
struct Chromedriver {
    child: Child,
    addr: SocketAddr,
}

impl Chromedriver {
    /// Starts chromedriver and waits until it takes sessions.
    async fn start() -> Chromedriver {
        let addr = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={}", addr.port()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        // Built before waiting, so that a chromedriver that never gets ready is still killed.
        let driver = Chromedriver { child, addr };

        let deadline = Instant::now() + Duration::from_secs(10);
        let client = reqwest::Client::new();
        loop {
            let status = client.get(driver.url("/status")).send().await;
            if status.is_ok_and(|reply| reply.status().is_success()) {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer on {addr} within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Chromedriver {
    /// Asks chromedriver to shut down, which also closes its Chromium: killing it alone would
    /// leave the browser running after a failed test. Kills it if it does not go in time.
    fn drop(&mut self) {
        let timeout = Duration::from_secs(5);
        if let Ok(mut stream) = TcpStream::connect_timeout(&self.addr, timeout) {
            let _ = stream.set_read_timeout(Some(timeout));
            let request = format!(
                "GET /shutdown HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                self.addr
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }

        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that nothing listens on right now.
fn free_port() -> SocketAddr {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
}

/// Says why a test did not run. It writes to the stderr handle itself, which the test
/// harness does not capture (unlike `println!`), so the line shows in every run.
fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}
