//! Fault tests on the real binary: killed or stopped under load, out of disk space, slow
//! clients, oversized requests, and what reaches its log. Each test starts `hit-counter`
//! on port 0 with its own SQLite file and learns the port from its JSON "listening" line.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How long the binary may take to start listening.
const START_WITHIN: Duration = Duration::from_secs(30);

/// The real binary serving on a free loopback port; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the binary on `db` with JSON logs and `env` set, and waits for its address.
    fn start(db: &Path, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hit-counter"))
            .args(["--host", "127.0.0.1", "--port", "0", "--sqlite-path"])
            .arg(db)
            .env_clear()
            .env("LOG_FORMAT", "json")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");

        // Keep draining stderr for the whole run, so a chatty log never blocks the server.
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        let (found, address) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                let text = String::from_utf8_lossy(&line).into_owned();
                if let Some(addr) = listening_address(&text) {
                    let _ = found.send(addr);
                }
                sink.lock().unwrap().push_str(&text);
                line.clear();
            }
        });

        let addr = match address.recv_timeout(START_WITHIN) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no \"listening\" line; log:\n{}", log.lock().unwrap());
            }
        };
        Self { child, addr, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything the server wrote to stderr so far.
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL: no chance to finish anything.
    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL is delivered");
        self.child.wait().expect("the killed server is reaped");
    }

    /// SIGTERM: the polite stop that podman, systemd and Kubernetes send.
    fn terminate(&self) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid fits pid_t");
        // SAFETY: kill(2) with a pid of our own child and a valid signal number.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(
            sent,
            0,
            "SIGTERM is delivered: {}",
            io::Error::last_os_error()
        );
    }

    /// The exit status, once the process has ended within `within`.
    fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("the server can be waited on") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `address` of a JSON log line whose message is "listening".
fn listening_address(line: &str) -> Option<SocketAddr> {
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    if event.get("message")?.as_str()? != "listening" {
        return None;
    }
    event.get("address")?.as_str()?.parse().ok()
}

/// A phone: keeps its cookie, and opens a new connection for every request so that a
/// refused connection means exactly "nothing was sent".
fn phone() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client builds")
}

/// The number inside the element with `id`.
fn number(html: &str, id: &str) -> i64 {
    let marker = format!("id=\"{id}\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in:\n{html}"));
    let open = start + html[start..].find('>').expect("tag closes") + 1;
    let text: String = html[open..].chars().take_while(|c| *c != '<').collect();
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("#{id} holds {text:?}, not a number"))
}

/// Makes `count` phones known to the server with one page view each.
async fn join(server: &Server, count: usize) -> Vec<reqwest::Client> {
    let mut phones = Vec::with_capacity(count);
    for _ in 0..count {
        let phone = phone();
        let page = phone.get(server.url("/")).send().await.expect("answered");
        assert_eq!(page.status(), 200);
        assert_eq!(number(&page.text().await.unwrap(), "visitor-hits"), 1);
        phones.push(phone);
    }
    phones
}

/// What one request came to.
#[derive(Debug)]
enum Outcome {
    /// A complete answer, with the visitor count a 2xx showed.
    Answered {
        status: u16,
        visitor_hits: Option<i64>,
    },
    /// The connection was refused, or reset before any answer: nothing was read.
    Refused,
    /// Anything else: a reset, a connection closed early, a body cut off.
    Broken(String),
}

/// One request of a load run.
#[derive(Debug)]
struct Sent {
    phone: usize,
    started: Instant,
    finished: Instant,
    outcome: Outcome,
}

impl Sent {
    fn acknowledged(&self) -> bool {
        matches!(self.outcome, Outcome::Answered { status, .. } if (200..300).contains(&status))
    }
}

/// `POST /hit` from `clients` concurrent tasks spread over `phones`, each task until its
/// first failure or until `bound` has passed.
async fn hammer(server: &Server, phones: &[reqwest::Client], clients: usize) -> Load {
    let bound = Instant::now() + Duration::from_secs(30);
    let tasks = (0..clients).map(|task| {
        let index = task % phones.len();
        let phone = phones[index].clone();
        let url = server.url("/hit");
        tokio::spawn(async move {
            let mut sent = Vec::new();
            while Instant::now() < bound {
                let started = Instant::now();
                let outcome = post_hit(&phone, &url).await;
                let done = !matches!(outcome, Outcome::Answered { .. });
                sent.push(Sent {
                    phone: index,
                    started,
                    finished: Instant::now(),
                    outcome,
                });
                if done {
                    break;
                }
            }
            sent
        })
    });
    Load {
        tasks: tasks.collect(),
    }
}

/// A load run in progress.
struct Load {
    tasks: Vec<tokio::task::JoinHandle<Vec<Sent>>>,
}

impl Load {
    /// Waits for every task to stop (they stop at their first failure).
    async fn finish(self) -> Vec<Sent> {
        let mut all = Vec::new();
        for task in self.tasks {
            all.extend(task.await.expect("load task ends"));
        }
        all
    }
}

/// A connection reset before a single byte of the answer arrived. On SIGTERM Poem closes
/// its listener at once, and the kernel resets connections still waiting in the accept
/// queue: their requests were never read, so for the client this is a refusal, not a
/// half answer. (A reset after the head would surface as a cut-off body instead.)
///
/// Likewise hyper's graceful shutdown closes a connection it accepted but has not read a
/// request from yet (<https://github.com/hyperium/hyper/issues/3792>); the client sees
/// the connection end before any answer, and nothing it sent was counted.
fn reset_before_any_answer(err: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::ConnectionReset;
        }
        if let Some(hyper) = inner.downcast_ref::<hyper::Error>()
            && hyper.is_incomplete_message()
        {
            return true;
        }
        source = inner.source();
    }
    false
}

async fn post_hit(phone: &reqwest::Client, url: &str) -> Outcome {
    let response = match phone.post(url).send().await {
        Ok(response) => response,
        Err(err) if err.is_connect() => return Outcome::Refused,
        Err(err) if reset_before_any_answer(&err) => return Outcome::Refused,
        Err(err) => return Outcome::Broken(format!("{err:?}")),
    };
    let status = response.status();
    match response.text().await {
        Ok(body) if status.is_success() => Outcome::Answered {
            status: status.as_u16(),
            visitor_hits: Some(number(&body, "visitor-hits")),
        },
        Ok(_) => Outcome::Answered {
            status: status.as_u16(),
            visitor_hits: None,
        },
        Err(err) => Outcome::Broken(format!("body cut off after {status}: {err:?}")),
    }
}

/// Checks, after a restart, that every phone's stored count is at least the highest
/// count any acknowledgement showed it, and that the total covers every acknowledgement.
async fn assert_nothing_acknowledged_is_lost(
    server: &Server,
    phones: &[reqwest::Client],
    sent: &[Sent],
) {
    let mut highest = vec![1_i64; phones.len()];
    for request in sent {
        if let Outcome::Answered {
            visitor_hits: Some(shown),
            ..
        } = request.outcome
        {
            highest[request.phone] = highest[request.phone].max(shown);
        }
    }
    let acknowledged = phones.len() + sent.iter().filter(|s| s.acknowledged()).count();
    let attempted = phones.len() + sent.len();

    let mut total = 0;
    for (index, phone) in phones.iter().enumerate() {
        let html = phone
            .get(server.url("/counter"))
            .send()
            .await
            .expect("the restarted server answers")
            .text()
            .await
            .unwrap();
        let stored = number(&html, "visitor-hits");
        assert!(
            stored >= highest[index],
            "phone {index}: stored {stored}, but a response had shown {}",
            highest[index]
        );
        total = number(&html, "total-hits");
    }

    assert!(
        total >= acknowledged as i64,
        "{total} hits stored, {acknowledged} acknowledged"
    );
    assert!(
        total <= attempted as i64,
        "{total} hits stored, only {attempted} sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_killed_under_load_keeps_every_hit_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hits.db");
    let mut server = Server::start(&db, &[]);
    let phones = join(&server, 6).await;

    let load = hammer(&server, &phones, 16).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.kill();
    let sent = load.finish().await;

    let acknowledged = sent.iter().filter(|s| s.acknowledged()).count();
    let cut_off = sent.iter().filter(|s| !s.acknowledged()).count();
    assert!(
        acknowledged > 100,
        "the load ran: {acknowledged} hits acknowledged"
    );
    assert!(cut_off > 0, "the kill landed mid-load");
    let restarted = Server::start(&db, &[]);
    assert_nothing_acknowledged_is_lost(&restarted, &phones, &sent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_stopped_under_load_answers_what_it_accepted_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hits.db");
    let mut server = Server::start(&db, &[]);
    let phones = join(&server, 6).await;

    let load = hammer(&server, &phones, 16).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let signalled = Instant::now();
    server.terminate();
    let sent = load.finish().await;
    let exit = server.wait_exit(Duration::from_secs(25));

    let exit = exit.unwrap_or_else(|| panic!("still running 25 s after SIGTERM"));
    assert_eq!(exit.code(), Some(0), "exit after SIGTERM: {exit}");
    let in_flight = sent
        .iter()
        .filter(|s| s.started < signalled && s.finished > signalled)
        .count();
    assert!(in_flight > 0, "some requests were in flight at the signal");
    let half_answers: Vec<_> = sent
        .iter()
        .filter(|s| s.started < signalled)
        .filter(|s| !s.acknowledged() && !matches!(s.outcome, Outcome::Refused))
        .map(|s| match &s.outcome {
            Outcome::Broken(why) => why.clone(),
            answered => format!("{answered:?}"),
        })
        .collect();
    assert!(
        half_answers.is_empty(),
        "requests sent before SIGTERM must complete or be refused; {} of {} did neither: {:?}",
        half_answers.len(),
        sent.iter().filter(|s| s.started < signalled).count(),
        &half_answers[..half_answers.len().min(5)]
    );
    let refusals_by_status: Vec<_> = sent
        .iter()
        .filter_map(|s| match s.outcome {
            Outcome::Answered { status, .. } if !(200..300).contains(&status) => Some(status),
            _ => None,
        })
        .collect();
    assert!(
        refusals_by_status.is_empty(),
        "answered but not counted: {refusals_by_status:?}"
    );
    let restarted = Server::start(&db, &[]);
    assert_nothing_acknowledged_is_lost(&restarted, &phones, &sent).await;
}

/// A small tmpfs mounted for one test; unmounted when dropped, also when the test fails.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: PathBuf, size: &str) -> Result<Self, String> {
        std::fs::create_dir_all(&path).map_err(|err| err.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .map_err(|err| err.to_string())?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
        }
        Ok(Self { path })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.path).status();
        if !unmounted.is_ok_and(|status| status.success()) {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Writes to `path` until the file system says it is full.
fn fill(path: &Path) {
    let mut filler = std::fs::File::create(path).expect("the filler file is created");
    for chunk in [64 * 1024, 4096, 1] {
        let bytes = vec![0xA5_u8; chunk];
        loop {
            match filler.write_all(&bytes) {
                Ok(()) => continue,
                Err(err) if err.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(err) => panic!("filling the disk failed otherwise: {err}"),
            }
        }
    }
    let _ = filler.sync_all();
}

/// Text that must never reach a visitor: the database's own words.
const DATABASE_WORDS: [&str; 4] = ["database or disk is full", "SQLITE", "sqlite", "rusqlite"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_pauses_counting_with_503_and_counting_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let disk = match Tmpfs::mount(dir.path().join("small"), "2m") {
        Ok(disk) => disk,
        Err(err) => {
            skipped(&format!("cannot mount a tmpfs ({err})"));
            return;
        }
    };
    let mut server = Server::start(&disk.path.join("hits.db"), &[]);
    let phone = phone();
    phone.get(server.url("/")).send().await.unwrap();
    phone.post(server.url("/hit")).send().await.unwrap();
    let mut acknowledged = 2;

    let filler = disk.path.join("filler");
    fill(&filler);
    // The write-ahead log may still have room: count until the store refuses a hit.
    let mut refused = None;
    for _ in 0..500 {
        let response = phone.post(server.url("/hit")).send().await.unwrap();
        if !response.status().is_success() {
            refused = Some(response);
            break;
        }
        let shown = number(&response.text().await.unwrap(), "visitor-hits");
        assert_eq!(shown, acknowledged + 1, "hits count one by one");
        acknowledged = shown;
    }
    let refused = refused.expect("a hit is refused within 500 once the disk is full");
    assert_eq!(refused.status(), 503, "a hit on a full disk");
    let refused_body = refused.text().await.unwrap();
    let page = phone.get(server.url("/")).send().await.unwrap();
    let status = phone.get(server.url("/status")).send().await.unwrap();

    assert_eq!(page.status(), 503, "GET / on a full disk");
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = page.text().await.unwrap();
    assert!(
        page.contains("<h1>") && page.len() < 8192,
        "a short page:\n{page}"
    );
    for body in [&page, &refused_body] {
        for word in DATABASE_WORDS {
            assert!(!body.contains(word), "{word:?} shown to a visitor:\n{body}");
        }
    }
    assert_eq!(status.status(), 503, "GET /status on a full disk");
    let status: serde_json::Value = serde_json::from_str(&status.text().await.unwrap()).unwrap();
    assert_eq!(status["status"], "unavailable", "{status}");
    assert!(status["reason"].is_string(), "{status}");
    assert!(server.is_running(), "the server survives a full disk");

    std::fs::remove_file(&filler).unwrap();
    let healthy = eventually(Duration::from_secs(10), || async {
        let response = phone.get(server.url("/status")).send().await.ok()?;
        (response.status() == 200).then_some(())
    })
    .await;
    assert!(
        healthy.is_some(),
        "/status is 200 within 10 s of freeing space"
    );
    let counted = eventually(Duration::from_secs(10), || async {
        let response = phone.post(server.url("/hit")).send().await.ok()?;
        let ok = response.status().is_success();
        let body = response.text().await.ok()?;
        ok.then_some(body)
    })
    .await
    .expect("a hit counts within 10 s of freeing space");

    assert_eq!(
        number(&counted, "visitor-hits"),
        acknowledged + 1,
        "counting continues from the last acknowledged hit, nothing lost or doubled"
    );
    assert_eq!(number(&counted, "total-hits"), acknowledged + 1);
}

/// Tries `attempt` every 200 ms until it gives a value or `within` has passed.
async fn eventually<T, F, Fut>(within: Duration, mut attempt: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(value) = attempt().await {
            return Some(value);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// Sends a request head one byte a second; returns how long until the server hung up,
/// or `None` when it had not after `give_up`.
fn trickle_head(addr: SocketAddr, give_up: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .expect("the first bytes are sent");
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();

    let mut buf = [0_u8; 1024];
    while started.elapsed() < give_up {
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            // An answer such as 408 before hanging up is fine; keep reading.
            Ok(_) => continue,
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if stream.write_all(b"a").is_err() {
                    return Some(started.elapsed());
                }
            }
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

#[ignore = "slow: run by .ci/run"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_its_head_slowly_is_cut_off_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("hits.db"), &[]);
    let addr = server.addr;
    let other = phone();

    let slow = tokio::task::spawn_blocking(move || trickle_head(addr, Duration::from_secs(20)));
    let mut served = 0;
    while !slow.is_finished() {
        let response = other
            .get(server.url("/"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("a normal visitor is answered within 5 s during the slow client");
        assert_eq!(response.status(), 200);
        served += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let hung_up_after = slow.await.unwrap();

    let hung_up_after = hung_up_after.expect("the slow client is cut off within 20 s");
    assert!(
        hung_up_after <= Duration::from_secs(15),
        "the slow client was cut off only after {hung_up_after:?}"
    );
    assert!(served > 0);
}

/// Sends `head` and `body` on a fresh connection and returns the status line's code, or
/// `None` when the connection closed without one. Write errors are ignored: a server may
/// answer and hang up before it has read everything.
fn raw_status(addr: SocketAddr, head: &[u8], body: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let (head, body) = (head.to_vec(), body.to_vec());
    let sender = std::thread::spawn(move || {
        let _ = writer
            .write_all(&head)
            .and_then(|()| writer.write_all(&body));
    });

    let mut answer = Vec::new();
    let mut buf = [0_u8; 4096];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = sender.join();
    let line = String::from_utf8_lossy(&answer);
    line.split(' ').nth(1).and_then(|code| code.parse().ok())
}

#[test]
fn a_hit_with_a_body_over_the_size_limit_is_refused_with_413() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("hits.db"), &[]);
    let body = vec![b'a'; 1024 * 1024];
    let head = format!(
        "POST /hit HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );

    let status = raw_status(server.addr, head.as_bytes(), &body);

    assert_eq!(status, Some(413), "a 1 MiB body to POST /hit");
}

#[test]
fn a_huge_header_is_refused_with_a_client_error_or_a_hang_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("hits.db"), &[]);
    let head = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Huge: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(100 * 1024)
    );

    let status = raw_status(server.addr, head.as_bytes(), b"");

    assert!(
        status.is_none_or(|code| (400..500).contains(&code)),
        "a 100 KiB header got {status:?}; expected 431, 400 or a closed connection"
    );
}

/// The forms a key could take in a log line.
fn printed_forms(key: &[u8]) -> Vec<String> {
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let debug = format!("{:?}", &key[..8]);
    vec![
        String::from_utf8_lossy(key).into_owned(),
        hex.clone(),
        hex.to_uppercase(),
        base64(key, b'+', b'/'),
        base64(key, b'-', b'_'),
        debug.trim_end_matches(']').to_owned(),
    ]
}

/// Base64 without padding, with the two last symbols given.
fn base64(bytes: &[u8], sym62: u8, sym63: u8) -> String {
    let mut alphabet: Vec<u8> = (b'A'..=b'Z')
        .chain(b'a'..=b'z')
        .chain(b'0'..=b'9')
        .collect();
    alphabet.extend([sym62, sym63]);
    let bits: Vec<bool> = bytes
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1 == 1))
        .collect();
    bits.chunks(6)
        .map(|six| {
            let value = six
                .iter()
                .chain(std::iter::repeat(&false))
                .take(6)
                .fold(0_usize, |acc, bit| (acc << 1) | usize::from(*bit));
            char::from(alphabet[value])
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neither_the_signing_key_nor_any_cookie_value_reaches_the_debug_log() {
    let dir = tempfile::tempdir().unwrap();
    let key = b"faults-test-signing-key:do-not-log-me-0123456789";
    let key_file = dir.path().join("session.key");
    std::fs::write(&key_file, key).unwrap();
    let server = Server::start(
        &dir.path().join("hits.db"),
        &[
            ("RUST_LOG", "debug"),
            ("SESSION_KEY_FILE", key_file.to_str().unwrap()),
        ],
    );
    let phones = [phone(), phone()];

    let mut issued = Vec::new();
    for phone in &phones {
        for (method, path) in [("GET", "/"), ("POST", "/hit"), ("GET", "/counter")] {
            let request = match method {
                "GET" => phone.get(server.url(path)),
                _ => phone.post(server.url(path)),
            };
            let response = request.send().await.unwrap();
            assert!(response.status().is_success());
            issued.extend(
                response
                    .headers()
                    .get_all("set-cookie")
                    .iter()
                    .map(|v| v.to_str().unwrap().to_owned()),
            );
        }
    }
    let forged = format!(
        "hc_visitor={}0123456789abcdef0123456789abcdef",
        "A".repeat(44)
    );
    let stranger = reqwest::Client::new();
    stranger
        .get(server.url("/"))
        .header("cookie", &forged)
        .send()
        .await
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let log = server.log();

    assert!(
        log.lines().filter(|l| l.contains("\"request\"")).count() >= 7,
        "the debug log has a line per request:\n{log}"
    );
    for form in printed_forms(key) {
        assert!(
            !log.contains(&form),
            "the signing key is in the log as {form:?}"
        );
    }
    assert!(!issued.is_empty(), "cookies were set");
    for set_cookie in &issued {
        let value = set_cookie
            .split(';')
            .next()
            .and_then(|pair| pair.split_once('='))
            .map(|(_, value)| value)
            .unwrap();
        let decoded = value
            .replace("%2F", "/")
            .replace("%2B", "+")
            .replace("%3D", "=");
        for form in [value, decoded.as_str()] {
            assert!(!log.contains(form), "a cookie value is in the log: {form}");
        }
    }
    assert!(
        !log.contains(&forged[11..]),
        "a forged cookie value is in the log"
    );
}

/// Says why a test did not run. It writes to the stderr handle itself, which the test
/// harness does not capture (unlike `println!`), so the line shows in every run.
fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}
