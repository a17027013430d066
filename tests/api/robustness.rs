//! Robustness: generated bad input on every route (cookies, query strings, paths,
//! methods, host and proxy headers) never gets a 5xx, a dropped connection or reflected
//! markup, and never passes for another visitor; every page carries the security headers
//! and holds no inline code; the visitor cookie has the right flags.

use std::net::SocketAddr;
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, browser, number, spawn_app, visitor_cookie};

/// Every route of the contract, with the method it takes.
const ROUTES: [(&str, &str); 7] = [
    ("GET", "/"),
    ("GET", "/counter"),
    ("POST", "/hit"),
    ("GET", "/present"),
    ("GET", "/present/live"),
    ("GET", "/qr.png"),
    ("GET", "/status"),
];

/// What each generated input carries in place of a script: it must never come back raw.
const PROBE: &str = "<x-probe-";

/// A fixed number of cases from a fixed seed; failures are shrunk and printed, never
/// written into the repository.
fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 256,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime builds")
}

/// One hand-made request.
#[derive(Debug, Clone)]
struct Probe {
    method: String,
    target: String,
    /// `None` sends no Host header at all.
    host: Option<String>,
    headers: Vec<(&'static str, String)>,
}

impl Probe {
    fn new(method: &str, target: impl Into<String>) -> Self {
        Self {
            method: method.to_owned(),
            target: target.into(),
            host: Some("localhost".to_owned()),
            headers: Vec::new(),
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The bytes on the wire. Generated text may hold anything but line breaks, which
    /// would make two requests of one.
    fn to_bytes(&self) -> Vec<u8> {
        let one_line = |text: &str| text.replace(['\r', '\n'], " ");
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.target);
        if let Some(host) = &self.host {
            head.push_str(&format!("Host: {}\r\n", one_line(host)));
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {}\r\n", one_line(value)));
        }
        head.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
        head.into_bytes()
    }
}

/// A whole response read from the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `probe` on a fresh connection and reads the whole answer; an error means the
/// connection was dropped without a complete response.
async fn send(addr: SocketAddr, probe: &Probe) -> Result<Answer, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        // A server may answer a bad head before reading all of it; the answer is what counts.
        let _ = stream.write_all(&probe.to_bytes()).await;
        let mut wire = Vec::new();
        let read = stream.read_to_end(&mut wire).await;
        parse_answer(&wire, probe.method == "HEAD")
            .map_err(|problem| format!("{problem} (read: {read:?}, {} bytes)", wire.len()))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| "no complete answer within 10 s".to_owned())?
}

fn parse_answer(wire: &[u8], head_only: bool) -> Result<Answer, String> {
    let end = wire
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the connection closed before a complete head")?;
    let head = String::from_utf8_lossy(&wire[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or("no status line")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &wire[end + 4..];

    let answer = |body: Vec<u8>| Answer { status, body };
    if head_only || status == 204 || status == 304 {
        return Ok(answer(Vec::new()));
    }
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        return dechunk(rest).map(answer);
    }
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    match length {
        Some(length) if rest.len() < length => Err(format!(
            "the body was cut off at {} of {length} bytes",
            rest.len()
        )),
        Some(length) => Ok(answer(rest[..length].to_vec())),
        None => Ok(answer(rest.to_vec())),
    }
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk was cut off")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "a bad chunk size")?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            return Err("a chunk was cut off".to_owned());
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// The checks every answer to bad input must pass.
fn assert_answered_safely(
    probe: &Probe,
    answer: &Result<Answer, String>,
) -> Result<(), TestCaseError> {
    let answer = match answer {
        Ok(answer) => answer,
        Err(problem) => return Err(TestCaseError::fail(format!("dropped: {problem}"))),
    };
    prop_assert!(
        answer.status < 500,
        "{} {:.120} got {}: {:.300}",
        probe.method,
        probe.target,
        answer.status,
        answer.text()
    );
    let text = answer.text();
    prop_assert!(
        !text.contains(PROBE),
        "markup from the input came back raw ({}):\n{:.2000}",
        answer.status,
        text
    );
    Ok(())
}

/// Runs `cases` generated probes against one app.
fn probe_many(cases: u32, strategy: impl Strategy<Value = Probe>) {
    let rt = runtime();
    let app = rt.block_on(spawn_app());

    let outcome = runner(cases).run(&strategy, |probe| {
        let answer = rt.block_on(send(app.addr, &probe));
        assert_answered_safely(&probe, &answer)
    });

    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

fn marker() -> impl Strategy<Value = String> {
    (0..10_000_u32).prop_map(|n| format!("{PROBE}{n}>"))
}

/// Text a hostile or broken client might send in any field.
fn nasty() -> BoxedStrategy<String> {
    let fixed = [
        "",
        "%00",
        "%zz",
        "%",
        "../..",
        "\"';--",
        "javascript:alert(1)",
        "https://<x-probe-1>.example/",
        "https://example.org/<x-probe-2>",
        "https://example.org/?q=<x-probe-3>#<x-probe-4>",
        "%3Cx-probe-5%3E",
        "&&==",
        "\u{202e}",
        "0",
        "-1",
        "99999999999999999999",
        "1e9",
        "NaN",
        "null",
        "\t",
    ];
    prop_oneof![
        3 => marker(),
        2 => "[ -~]{0,40}",
        2 => "\\PC{0,24}",
        1 => (1000..9000_usize).prop_map(|n| "a".repeat(n)),
        1 => marker().prop_map(|m| format!("https://example.org/{m}")),
        2 => select(fixed.to_vec()).prop_map(str::to_owned),
    ]
    .boxed()
}

/// Percent-encodes everything but unreserved characters.
fn encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Leaves the text raw except what would end the request line: spaces and controls.
fn raw_target(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ' ' => "%20".to_owned(),
            c if c.is_control() => encoded(&c.to_string()),
            c => c.to_string(),
        })
        .collect()
}

fn route() -> impl Strategy<Value = (&'static str, &'static str)> {
    select(ROUTES.to_vec())
}

fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        3 => select(vec!["v", "url", "size", "v[]", "url[0]", ""]).prop_map(str::to_owned),
        1 => "[a-z%&=]{1,8}",
    ];
    let pair = (key, nasty(), any::<bool>()).prop_map(|(key, value, encode)| {
        if encode {
            format!("{}={}", encoded(&key), encoded(&value))
        } else {
            raw_target(&format!("{key}={value}"))
        }
    });
    prop::collection::vec(pair, 0..5).prop_map(|pairs| pairs.join("&"))
}

#[test]
fn generated_query_strings_on_every_route_never_get_a_server_error_or_reflected_markup() {
    let probes = (route(), query())
        .prop_map(|((method, path), query)| Probe::new(method, format!("{path}?{query}")));

    probe_many(900, probes);
}

fn odd_path() -> impl Strategy<Value = String> {
    let fixed = [
        "..",
        ".",
        "%2e%2e",
        "%2E%2E%2F",
        "%00",
        "%2F",
        "",
        "static",
        "present",
        "live",
        "counter",
        "hit",
        "qr.png",
        "status",
        "app.css",
        "htmx-2.0.11.min.js",
        "ü",
        "日本語",
        "%C3%BC",
        "%FF%FE",
        "\u{feff}",
        ";",
        "a;b=c",
        "~",
        "*",
        "%3Cx-probe-6%3E",
    ];
    let segment = prop_oneof![
        4 => select(fixed.to_vec()).prop_map(str::to_owned),
        2 => marker(),
        2 => "\\PC{1,8}",
        1 => (256..4096_usize).prop_map(|n| "a".repeat(n)),
    ];
    (
        prop::collection::vec(segment, 0..8),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(segments, double, trailing)| {
            let start = if double { "//" } else { "/" };
            let end = if trailing { "/" } else { "" };
            raw_target(&format!("{start}{}{end}", segments.join("/")))
        })
}

fn method() -> impl Strategy<Value = &'static str> {
    select(vec![
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "FOO-BAR",
        "M-SEARCH", "get",
    ])
}

#[test]
fn odd_paths_and_methods_never_get_a_server_error_or_reflected_markup() {
    let probes = prop_oneof![
        (method(), odd_path()).prop_map(|(method, path)| Probe::new(method, path)),
        (method(), route()).prop_map(|(method, (_, path))| Probe::new(method, path)),
    ];

    probe_many(700, probes);
}

fn odd_host() -> BoxedStrategy<String> {
    let fixed = [
        "",
        "localhost",
        "127.0.0.1",
        "[::1]",
        "[::1]:8080",
        "a:b:c",
        "example.org:99999",
        "example.org:0",
        "exa mple.org",
        "ünïcödé.example",
        "_",
        ".",
        "..",
        "example.org.",
        "user@example.org",
        "example.org/path",
        "example.org?x",
        "1.2.3.4.5",
        "[fe80::1%25eth0]",
        "0x7f.1",
        "<x-probe-7>.example",
    ];
    prop_oneof![
        3 => select(fixed.to_vec()).prop_map(str::to_owned),
        2 => nasty(),
        1 => (300..3000_usize).prop_map(|n| format!("{}.example", "a".repeat(n))),
    ]
    .boxed()
}

fn forwarded() -> BoxedStrategy<String> {
    let fixed = [
        "proto=https",
        "proto=http;host=example.org",
        "for=1.2.3.4",
        "host=\"unterminated",
        "proto=javascript",
        ";;;",
        "host=",
        "for=\"[::1]\";proto=https;host=\"[::1]:8443\"",
        "proto=https, proto=http",
    ];
    prop_oneof![
        2 => select(fixed.to_vec()).prop_map(str::to_owned),
        1 => odd_host().prop_map(|host| format!("proto=https;host=\"{host}\"")),
        1 => odd_host().prop_map(|host| format!("host={host}")),
        1 => nasty(),
    ]
    .boxed()
}

fn forwarded_proto() -> BoxedStrategy<String> {
    let fixed = [
        "https",
        "HTTPS",
        "http",
        "javascript",
        "",
        "https, http",
        "ftp",
    ];
    prop_oneof![
        3 => select(fixed.to_vec()).prop_map(str::to_owned),
        1 => nasty(),
    ]
    .boxed()
}

#[test]
fn odd_host_and_proxy_headers_never_get_a_server_error_or_reflected_markup() {
    let probes = (
        route(),
        prop::option::weighted(0.9, odd_host()),
        prop::option::of(forwarded()),
        prop::option::of(odd_host()),
        prop::option::of(forwarded_proto()),
    )
        .prop_map(|((method, path), host, forwarded, x_host, x_proto)| {
            let mut probe = Probe::new(method, path);
            probe.host = host;
            let optional = [
                ("Forwarded", forwarded),
                ("X-Forwarded-Host", x_host),
                ("X-Forwarded-Proto", x_proto),
            ];
            for (name, value) in optional {
                if let Some(value) = value {
                    probe = probe.header(name, value);
                }
            }
            probe
        });

    probe_many(700, probes);
}

/// Percent-decodes leniently, as the cookie parser does: a bad escape stays as it is.
fn percent_decoded(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// Whether a cookie value still means the real one to a lenient parser (same bytes once
/// decoded, trimmed of blanks and quotes): such an "alteration" is no forgery.
fn same_cookie_value(candidate: &str, real: &str) -> bool {
    let normal = |value: &str| {
        let decoded = String::from_utf8_lossy(&percent_decoded(value)).into_owned();
        decoded.trim().trim_matches('"').to_owned()
    };
    normal(candidate) == normal(real)
}

/// Cookie headers that must all make a new visitor: garbage, huge values, the real
/// cookie with bytes altered, cut or added, its signature on another id, and many
/// cookies at once.
fn not_the_real_cookie(real: String) -> BoxedStrategy<String> {
    let symbols: Vec<char> = "AZaz09+/=%-_.;,\" \t~!\u{e9}".chars().collect();
    let decoded = String::from_utf8_lossy(&percent_decoded(&real)).into_owned();
    let split = decoded.len().saturating_sub(32);
    let signature = decoded[..split].to_owned();

    let altered = {
        let real = real.clone();
        (any::<Index>(), select(symbols.clone())).prop_filter_map(
            "a no-op change",
            move |(at, c)| {
                let mut chars: Vec<char> = real.chars().collect();
                let at = at.index(chars.len());
                chars[at] = c;
                let value: String = chars.into_iter().collect();
                (!same_cookie_value(&value, &real)).then(|| format!("hc_visitor={value}"))
            },
        )
    };
    let inserted = {
        let real = real.clone();
        (any::<Index>(), select(symbols)).prop_filter_map("a no-op change", move |(at, c)| {
            let mut value = real.clone();
            let at = at.index(real.len() + 1);
            if !value.is_char_boundary(at) {
                return None;
            }
            value.insert(at, c);
            (!same_cookie_value(&value, &real)).then(|| format!("hc_visitor={value}"))
        })
    };
    let cut = {
        let real = real.clone();
        (any::<Index>(), any::<bool>()).prop_map(move |(at, head)| {
            let at = at.index(real.len());
            let value = if head { &real[..at] } else { &real[at + 1..] };
            format!("hc_visitor={value}")
        })
    };
    let spliced = "[0-9a-f]{32}".prop_map(move |id| format!("hc_visitor={signature}{id}"));
    let many = (
        prop::collection::vec(("[a-z]{1,6}", "[A-Za-z0-9]{0,10}"), 1..300),
        prop::option::of(nasty()),
    )
        .prop_map(|(pairs, visitor)| {
            let mut all: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
            if let Some(value) = visitor {
                all.insert(all.len() / 2, format!("hc_visitor={value}"));
                all.push("hc_visitor=".to_owned());
            }
            all.join("; ")
        });

    prop_oneof![
        2 => nasty().prop_map(|v| format!("hc_visitor={v}")),
        1 => (300..12_000_usize).prop_map(|n| format!("hc_visitor={}", "A".repeat(n))),
        4 => altered,
        2 => inserted,
        2 => cut,
        2 => spliced,
        1 => "[0-9a-f]{32}".prop_map(|id| format!("hc_visitor={id}")),
        2 => many,
    ]
    .boxed()
}

#[test]
fn garbage_and_forged_cookies_never_break_a_route_nor_pass_for_the_real_visitor() {
    let rt = runtime();
    let app = rt.block_on(spawn_app());
    let set_cookie = rt
        .block_on(app.get("/"))
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .expect("the first visit sets a cookie");
    let real = set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.strip_prefix("hc_visitor="))
        .unwrap()
        .to_owned();
    let probes = (route(), not_the_real_cookie(real.clone()))
        .prop_map(|((method, path), cookie)| Probe::new(method, path).header("Cookie", cookie));

    let outcome = runner(900).run(&probes, |probe| {
        let answer = rt.block_on(send(app.addr, &probe));
        assert_answered_safely(&probe, &answer)?;
        let answer = answer.expect("checked above");
        let expected = match probe.target.as_str() {
            "/counter" => Some(0),
            "/" | "/hit" => Some(1),
            _ => None,
        };
        if let Some(expected) = expected {
            prop_assert_eq!(answer.status, 200);
            prop_assert_eq!(
                number(&answer.text(), "visitor-hits"),
                expected,
                "a cookie that is not the real one counts as a new visitor"
            );
        }
        Ok(())
    });
    let real_count = rt.block_on(async {
        let html = app.get("/counter").await.text().await.unwrap();
        number(&html, "visitor-hits")
    });

    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    assert_eq!(
        real_count, 1,
        "no forged cookie counted for the real visitor"
    );
}

/// Where the page breaks its own Content-Security-Policy: inline scripts or styles,
/// `style=` attributes, event-handler attributes and `javascript:` links.
fn inline_code(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (start, _) in html.match_indices('<') {
        let Some(len) = html[start..].find('>') else {
            continue;
        };
        let tag = &html[start + 1..start + len];
        if tag.starts_with('!') || tag.starts_with('/') {
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        let attributes = attribute_names_and_values(&tag[name.len()..]);
        let has_src = attributes.iter().any(|(n, _)| n == "src");
        if (name == "script" && !has_src) || name == "style" {
            found.push(format!("<{tag}>"));
        }
        for (attribute, value) in &attributes {
            let handler = attribute.starts_with("on") || attribute.starts_with("hx-on");
            let script_link = value
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("javascript:");
            if attribute == "style" || handler || script_link {
                found.push(format!("{attribute} in <{tag}>"));
            }
        }
    }
    found
}

/// The attributes of a tag, names lowercased, quotes honoured.
fn attribute_names_and_values(text: &str) -> Vec<(String, String)> {
    let mut attributes = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let name_end = rest
            .find(|c: char| c.is_whitespace() || c == '=' || c == '/')
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_ascii_lowercase();
        rest = rest[name_end..].trim_start();
        let mut value = String::new();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            let (taken, remaining) = match after.chars().next() {
                Some(quote @ ('"' | '\'')) => {
                    let close = after[1..].find(quote).map_or(after.len(), |i| i + 2);
                    (&after[1..close.saturating_sub(1).max(1)], &after[close..])
                }
                _ => after.split_at(after.find(char::is_whitespace).unwrap_or(after.len())),
            };
            value = taken.to_owned();
            rest = remaining;
        } else if rest.starts_with('/') {
            rest = &rest[1..];
        }
        if !name.is_empty() {
            attributes.push((name, value));
        }
        rest = rest.trim_start();
    }
    attributes
}

/// An HTML response, read whole.
struct Page {
    status: reqwest::StatusCode,
    headers: reqwest::header::HeaderMap,
    html: String,
}

async fn fetch(app: &TestApp, path: &str) -> Page {
    let response = app.get(path).await;
    Page {
        status: response.status(),
        headers: response.headers().clone(),
        html: response.text().await.unwrap(),
    }
}

/// The security headers an HTML response must carry, and the inline code it must not.
fn assert_html_is_locked_down(what: &str, page: &Page) {
    let header = |name: &str| {
        page.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let csp = header("content-security-policy")
        .unwrap_or_else(|| panic!("{what} ({}) has no Content-Security-Policy", page.status));
    let script_src = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src"))
        .unwrap_or_else(|| panic!("{what}: no script-src in {csp}"));
    assert!(script_src.contains("'self'"), "{what}: {script_src}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{what}: {csp}"
    );
    assert_eq!(
        header("x-content-type-options").as_deref(),
        Some("nosniff"),
        "{what}"
    );
    assert!(
        header("referrer-policy").is_some(),
        "{what} has no Referrer-Policy"
    );
    assert_eq!(
        inline_code(&page.html),
        Vec::<String>::new(),
        "{what} has inline code"
    );
}

#[tokio::test]
async fn every_page_and_fragment_carries_a_strict_policy_and_holds_no_inline_code() {
    let app = spawn_app().await;

    let pages = [
        ("the visitor page", "/"),
        ("the counter fragment", "/counter"),
        ("the projector page", "/present"),
        ("the projector fragment", "/present/live"),
        ("a page not found", "/no/such/page"),
        ("a static file not found", "/static/nope.js"),
    ];
    let mut fetched = Vec::new();
    for (what, path) in pages {
        fetched.push((what, fetch(&app, path).await));
    }

    for (what, page) in &fetched {
        assert_html_is_locked_down(what, page);
    }
}

#[tokio::test]
async fn the_page_shown_when_the_store_is_busy_is_a_503_with_the_same_protection() {
    let app = spawn_app().await;
    let lock = rusqlite::Connection::open(app.dir.db()).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();

    let page = fetch(&app, "/").await;
    lock.execute_batch("ROLLBACK").unwrap();

    assert_eq!(
        page.status, 503,
        "a hit while another writer holds the file"
    );
    let lowered = page.html.to_lowercase();
    assert!(
        !lowered.contains("sqlite") && !lowered.contains("locked"),
        "{}",
        page.html
    );
    assert_html_is_locked_down("the 503 page", &page);
}

/// The attributes of a `Set-Cookie` value, lowercased, without the name and value.
fn cookie_attributes(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test]
async fn the_visitor_cookie_is_http_only_lax_site_wide_long_lived_and_not_secure_over_http() {
    let app = spawn_app().await;

    let page = app.get("/").await;
    let hit = browser().post(app.url("/hit")).send().await.unwrap();

    for response in [&page, &hit] {
        let cookie = visitor_cookie(response).expect("a new visitor gets the cookie");
        let attributes = cookie_attributes(&cookie);
        for wanted in ["httponly", "samesite=lax", "path=/"] {
            assert!(
                attributes.iter().any(|a| a == wanted),
                "{wanted} in {cookie}"
            );
        }
        let max_age = attributes
            .iter()
            .find_map(|a| a.strip_prefix("max-age="))
            .and_then(|seconds| seconds.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no Max-Age in {cookie}"));
        assert!(
            max_age >= 30 * 24 * 3600,
            "lives at least a month: {cookie}"
        );
        assert!(
            !attributes.iter().any(|a| a == "secure"),
            "not Secure over HTTP: {cookie}"
        );
    }
}

#[tokio::test]
async fn the_visitor_cookie_is_secure_when_a_proxy_says_the_visit_came_over_https() {
    let app = spawn_app().await;
    let stranger = reqwest::Client::new();

    let via_x_forwarded = stranger
        .get(app.url("/"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let via_forwarded = stranger
        .post(app.url("/hit"))
        .header("forwarded", "for=10.0.0.1;proto=https")
        .send()
        .await
        .unwrap();
    let via_plain = stranger
        .get(app.url("/"))
        .header("x-forwarded-proto", "http")
        .send()
        .await
        .unwrap();

    for response in [&via_x_forwarded, &via_forwarded] {
        let cookie = visitor_cookie(response).unwrap();
        let attributes = cookie_attributes(&cookie);
        assert!(attributes.iter().any(|a| a == "secure"), "{cookie}");
        assert!(attributes.iter().any(|a| a == "httponly"), "{cookie}");
    }
    let plain = visitor_cookie(&via_plain).unwrap();
    assert!(
        !cookie_attributes(&plain).iter().any(|a| a == "secure"),
        "{plain}"
    );
}

#[test]
fn the_inline_code_check_finds_what_the_policy_forbids() {
    let allowed = r#"<script src="/static/app.js" defer></script>
        <meta name="htmx-config" content='{"a": "<b>"}'><a href="/" class="x">ok</a>"#;
    let forbidden = r#"<script>alert(1)</script><style>p{}</style><p style="color:red">
        <button onclick="go()">x</button><div hx-on:click="go()"></div>
        <a href=" javascript:go()">y</a>"#;

    let found = inline_code(forbidden);

    assert_eq!(inline_code(allowed), Vec::<String>::new());
    assert_eq!(found.len(), 6, "{found:#?}");
}
