//! `spawn_app`: the production app on an ephemeral port, and a client with a cookie jar.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;
use hit_counter::config::{Args, Settings};
use hit_counter::startup::Application;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    /// A browser-like client: keeps the cookies the server sets.
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    /// Holds the database folder for the test's lifetime.
    pub dir: TestDir,
}

/// The folder holding a test's database; removed when the last holder drops it.
pub struct TestDir(std::sync::Arc<tempfile::TempDir>);

impl TestDir {
    pub fn new() -> Self {
        Self(std::sync::Arc::new(tempfile::tempdir().expect("temp dir")))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn db(&self) -> PathBuf {
        self.path().join("hits.db")
    }
}

impl Clone for TestDir {
    fn clone(&self) -> Self {
        Self(std::sync::Arc::clone(&self.0))
    }
}

/// Starts the app on a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_in(TestDir::new(), &[]).await
}

/// Starts the app on the database in `dir`, with extra command-line flags.
pub async fn spawn_app_in(dir: TestDir, flags: &[&str]) -> TestApp {
    let db = dir.db();
    let mut argv = vec!["hit-counter", "--host", "127.0.0.1", "--port", "0"];
    argv.extend(["--sqlite-path", db.to_str().expect("utf-8 path")]);
    argv.extend(flags);
    let args = Args::try_parse_from(argv).expect("test flags parse");
    let settings = Settings::from_args(args, |_| None).expect("test settings are valid");

    let app = Application::build(settings).await.expect("app starts");
    let addr = app.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        app.run_until(shutdown).await.expect("server runs");
    });

    TestApp {
        addr,
        client: browser(),
        stop: Some(stop),
        server: Some(server),
        dir,
    }
}

/// A client that keeps cookies, like a browser.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client builds")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request is answered")
    }

    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .send()
            .await
            .expect("request is answered")
    }

    /// Stops the server gracefully and waits until it and its store are closed.
    pub async fn stop(mut self) -> TestDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task ends cleanly");
        }
        self.dir.clone()
    }
}

/// The body of `GET url` as `client` (with its cookies) sees it.
pub async fn page_text(client: &reqwest::Client, url: &str) -> String {
    let response = client.get(url).send().await.expect("request is answered");
    response.text().await.expect("body arrives")
}

/// The number inside the element with `id`, as rendered in `html`.
pub fn number(html: &str, id: &str) -> i64 {
    let marker = format!("id=\"{id}\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in:\n{html}"));
    let after_tag = &html[start..];
    let open = after_tag.find('>').expect("tag closes") + 1;
    let text: String = after_tag[open..]
        .chars()
        .take_while(|c| *c != '<')
        .collect();
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("#{id} holds {text:?}, not a number"))
}

/// The value of the visitor cookie the response sets, if it sets one.
pub fn visitor_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("hc_visitor="))
        .map(str::to_owned)
}
