//! The join URL that QR codes point phones to: parsed and checked once, at the boundary.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use poem::http::HeaderMap;
use url::{Host, Url};

/// The longest join URL accepted, in bytes; longer ones make QR codes too dense to scan.
pub const MAX_LEN: usize = 1024;

/// An absolute `http` or `https` URL with a host, without credentials or control characters.
///
/// The string is kept in the `url` crate's normalised form, so two spellings of the same
/// address compare equal and encode to the same QR code.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct JoinUrl(String);

/// Why a string was refused as a join URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinUrlError {
    /// The scheme is missing (a relative URL) or is not `http` or `https`.
    #[error("the URL must start with http:// or https://")]
    BadScheme,
    /// The URL, as given or once normalised, is longer than [`MAX_LEN`].
    #[error("the URL is longer than 1024 bytes")]
    TooLong,
    /// The URL carries a `user:password@` part, which would end up printed on a projector.
    #[error("the URL must not contain a user name or password")]
    Credentials,
    /// The URL contains a character below 0x20 or DEL.
    #[error("the URL contains control characters")]
    ControlCharacters,
    /// The URL has an empty host.
    #[error("the URL has no host")]
    NoHost,
    /// The host (with its optional port) is not a plausible host name or IP address.
    #[error("the URL's host is not a valid host name")]
    BadHost,
    /// The URL could not be parsed for another reason, such as an invalid port.
    #[error("the URL is not well formed")]
    Malformed,
}

impl JoinUrl {
    /// Parses and checks a join URL, e.g. from `PUBLIC_URL` or a `?url=` query parameter.
    pub fn parse(raw: &str) -> Result<JoinUrl, JoinUrlError> {
        // Checked before parsing because the URL parser silently drops tabs and newlines,
        // which would hide a header-injection attempt instead of refusing it.
        if raw.len() > MAX_LEN {
            return Err(JoinUrlError::TooLong);
        }
        if raw.chars().any(|c| c < ' ' || c == '\u{7f}') {
            return Err(JoinUrlError::ControlCharacters);
        }

        let url = Url::parse(raw).map_err(|err| match err {
            url::ParseError::RelativeUrlWithoutBase => JoinUrlError::BadScheme,
            url::ParseError::EmptyHost => JoinUrlError::NoHost,
            url::ParseError::IdnaError
            | url::ParseError::InvalidIpv4Address
            | url::ParseError::InvalidIpv6Address
            | url::ParseError::InvalidDomainCharacter => JoinUrlError::BadHost,
            _ => JoinUrlError::Malformed,
        })?;

        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(JoinUrlError::BadScheme);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(JoinUrlError::Credentials);
        }
        match url.host_str() {
            None | Some("") => return Err(JoinUrlError::NoHost),
            Some(_) => {}
        }
        // Normalising percent-encodes some characters, so the limit is checked again.
        if url.as_str().len() > MAX_LEN {
            return Err(JoinUrlError::TooLong);
        }

        Ok(JoinUrl(url.into()))
    }

    /// Builds the URL a request came in on from its effective scheme, host and a path.
    ///
    /// The scheme and host are those found by [`forwarded_origin`]; a missing scheme means
    /// `http`. A path without a leading slash gets one.
    pub fn from_request_parts(
        scheme_hint: Option<&str>,
        host: &str,
        path: &str,
    ) -> Result<JoinUrl, JoinUrlError> {
        let scheme = match scheme_hint {
            None => "http",
            Some(s) if s.eq_ignore_ascii_case("http") => "http",
            Some(s) if s.eq_ignore_ascii_case("https") => "https",
            Some(_) => return Err(JoinUrlError::BadScheme),
        };
        // Without this check a host such as `evil.example/x` or `a@b` would be re-read by the
        // URL parser as a path or as credentials.
        if !is_plausible_host(host) {
            return Err(JoinUrlError::BadHost);
        }
        let slash = if path.starts_with('/') { "" } else { "/" };
        JoinUrl::parse(&format!("{scheme}://{host}{slash}{path}"))
    }

    /// The normalised URL, as it goes into a QR code or a link.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the host is this machine only (`localhost`, `*.localhost`, 127.0.0.0/8, `::1`),
    /// so that phones in the room could not reach it.
    pub fn host_is_loopback(&self) -> bool {
        let Some(url) = self.url() else {
            return false;
        };
        match url.host() {
            Some(Host::Domain(name)) => {
                // A trailing dot names the same host in DNS.
                let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
                name == "localhost" || name.ends_with(".localhost")
            }
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => {
                ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
            None => false,
        }
    }

    /// The same URL (scheme, port, path, query) with the host replaced by `ip`.
    ///
    /// Used to point phones at the machine's LAN address when the presenter opened a
    /// `localhost` URL. Should the result break a rule of [`JoinUrl::parse`] (only possible
    /// when an IPv6 address pushes a URL near the length limit), the URL is returned unchanged.
    pub fn with_host(&self, ip: IpAddr) -> JoinUrl {
        let Some(mut url) = self.url() else {
            return self.clone();
        };
        if url.set_ip_host(ip).is_err() {
            return self.clone();
        }
        JoinUrl::parse(url.as_str()).unwrap_or_else(|_| self.clone())
    }

    /// Re-parses the stored string; it was produced by the parser, so this only fails if the
    /// `url` crate changed its mind, in which case callers fall back to a safe answer.
    fn url(&self) -> Option<Url> {
        Url::parse(&self.0).ok()
    }
}

impl fmt::Display for JoinUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for JoinUrl {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The scheme and host (with optional port) a client used to reach us, seen through proxies.
///
/// Each of the two is taken from the first of these that carries it: the first element of an
/// RFC 7239 `Forwarded` header (`proto=`, `host=`), then the first value of
/// `X-Forwarded-Proto` / `X-Forwarded-Host`, then `Host`. The scheme defaults to `https` when
/// the connection itself is TLS, else `http`. The scheme is returned in lower case.
///
/// Returns `None` when no host is found, or when the source that supplies the scheme or host
/// holds something implausible (a scheme other than http or https, a host with spaces, a
/// slash, an `@` and so on): a bad header is refused, not passed on to a QR code.
pub fn forwarded_origin(headers: &HeaderMap, tls: bool) -> Option<(String, String)> {
    let forwarded = match headers.get("forwarded") {
        Some(value) => Some(parse_forwarded(value.to_str().ok()?)?),
        None => None,
    };
    let (fwd_proto, fwd_host) = forwarded.unwrap_or_default();

    let scheme = match fwd_proto {
        Some(proto) => proto,
        None => match first_value(headers, "x-forwarded-proto")? {
            Some(proto) => proto,
            None if tls => "https".to_owned(),
            None => "http".to_owned(),
        },
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }

    let host = match fwd_host {
        Some(host) => host,
        None => match first_value(headers, "x-forwarded-host")? {
            Some(host) => host,
            None => first_value(headers, "host")??,
        },
    };
    if !is_plausible_host(&host) {
        return None;
    }

    Some((scheme, host))
}

/// The first comma-separated value of a header: `Some(None)` when the header is absent,
/// `None` when it is present but not readable text.
fn first_value(headers: &HeaderMap, name: &str) -> Option<Option<String>> {
    let Some(value) = headers.get(name) else {
        return Some(None);
    };
    let text = value.to_str().ok()?;
    let first = text.split(',').next().unwrap_or("").trim();
    if first.is_empty() {
        return Some(None);
    }
    Some(Some(first.to_owned()))
}

/// Reads `proto` and `host` from the first element of a `Forwarded` header value.
///
/// Returns `None` for a value that does not follow the RFC 7239 grammar, so that a garbled
/// header is refused rather than half-read.
fn parse_forwarded(value: &str) -> Option<(Option<String>, Option<String>)> {
    let mut proto = None;
    let mut host = None;
    let mut rest = value.trim_start();

    loop {
        let (name, after_name) = rest.split_once('=')?;
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return None;
        }
        let (param, after_value) = read_forwarded_value(after_name.trim_start())?;
        if name.eq_ignore_ascii_case("proto") && proto.is_none() {
            proto = Some(param);
        } else if name.eq_ignore_ascii_case("host") && host.is_none() {
            host = Some(param);
        }

        let after_value = after_value.trim_start();
        match after_value.chars().next() {
            // Only the first element counts: it was added by the proxy nearest the client.
            None | Some(',') => break,
            Some(';') => rest = after_value[1..].trim_start(),
            Some(_) => return None,
        }
    }

    Some((proto, host))
}

/// Reads one parameter value, a token or a quoted string, and returns it with the rest.
fn read_forwarded_value(input: &str) -> Option<(String, &str)> {
    let Some(quoted) = input.strip_prefix('"') else {
        let end = input
            .bytes()
            .position(|b| !is_token_byte(b))
            .unwrap_or(input.len());
        if end == 0 {
            return None;
        }
        return Some((input[..end].to_owned(), &input[end..]));
    };

    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &quoted[i + 1..])),
            '\\' => value.push(chars.next()?.1),
            _ => value.push(c),
        }
    }
    // No closing quote.
    None
}

/// RFC 7230 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether `host` looks like `name[:port]`, `ipv4[:port]` or `[ipv6][:port]` and nothing else.
fn is_plausible_host(host: &str) -> bool {
    if host.is_empty() || host.len() > 262 {
        return false;
    }
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        if inside.parse::<Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return false,
            },
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (Some(name), Some(port)),
            None => (Some(host), None),
        }
    };

    let name_ok = name.is_none_or(|name| {
        !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
            && !name.starts_with('.')
            && !name.contains("..")
            // The URL parser reads a name ending in a number as an IPv4 address, so `h.1` or
            // `1.2.3.999` would be refused later; refuse them here too.
            && Host::parse(name).is_ok()
    });
    let port_ok = port.is_none_or(|port| {
        !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok()
    });
    name_ok && port_ok
}

/// This machine's own non-loopback address on the local network, if it has one.
///
/// Found without sending anything: connecting a UDP socket only asks the kernel which route
/// (and so which local address) it would use for a private-range peer; no packet leaves.
pub fn lan_address() -> Option<IpAddr> {
    let candidates: [(SocketAddr, SocketAddr); 2] = [
        (
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            SocketAddr::from((Ipv4Addr::new(10, 254, 254, 254), 9)),
        ),
        (
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
            SocketAddr::from((Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1), 9)),
        ),
    ];
    candidates.into_iter().find_map(|(local, peer)| {
        let socket = UdpSocket::bind(local).ok()?;
        socket.connect(peer).ok()?;
        let ip = socket.local_addr().ok()?.ip();
        (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
    })
}

#[cfg(test)]
mod tests {
    use poem::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn origin(scheme: &str, host: &str) -> Option<(String, String)> {
        Some((scheme.to_owned(), host.to_owned()))
    }

    #[test]
    fn good_urls_are_accepted_in_normalised_form() {
        let cases = [
            ("http://example.com", "http://example.com/"),
            (
                "https://example.com/join?room=1",
                "https://example.com/join?room=1",
            ),
            ("HTTP://Example.COM:8080/", "http://example.com:8080/"),
            ("http://192.168.1.20:8080/", "http://192.168.1.20:8080/"),
            ("http://[::1]:8080/present", "http://[::1]:8080/present"),
            ("https://example.com:443/", "https://example.com/"),
        ];
        for (raw, normalised) in cases {
            let url = JoinUrl::parse(raw).unwrap();
            assert_eq!(url.as_str(), normalised, "{raw}");
            assert_eq!(url.to_string(), normalised, "{raw}");
        }
    }

    #[test]
    fn other_schemes_and_relative_urls_are_rejected_as_bad_scheme() {
        let cases = [
            "javascript:alert(1)",
            "JavaScript:alert(document.cookie)",
            "data:text/html,<script>alert(1)</script>",
            "ftp://example.com/",
            "/present",
            "present",
            "//example.com/",
            "",
        ];
        for raw in cases {
            assert_eq!(JoinUrl::parse(raw), Err(JoinUrlError::BadScheme), "{raw}");
        }
    }

    #[test]
    fn a_two_kilobyte_url_is_rejected_as_too_long() {
        let raw = format!("https://example.com/{}", "a".repeat(2048));
        assert_eq!(JoinUrl::parse(&raw), Err(JoinUrlError::TooLong));
    }

    #[test]
    fn a_url_that_grows_past_the_limit_when_normalised_is_rejected() {
        // Each "é" is two bytes as given and six once percent-encoded.
        let raw = format!("https://example.com/{}", "é".repeat(300));
        assert!(raw.len() <= MAX_LEN);
        assert_eq!(JoinUrl::parse(&raw), Err(JoinUrlError::TooLong));
    }

    #[test]
    fn a_url_of_exactly_the_limit_is_accepted() {
        let prefix = "https://example.com/";
        let raw = format!("{prefix}{}", "a".repeat(MAX_LEN - prefix.len()));
        assert_eq!(JoinUrl::parse(&raw).unwrap().as_str().len(), MAX_LEN);
    }

    #[test]
    fn urls_with_credentials_are_rejected() {
        for raw in [
            "https://user:secret@example.com/",
            "https://user@example.com/",
        ] {
            assert_eq!(JoinUrl::parse(raw), Err(JoinUrlError::Credentials), "{raw}");
        }
    }

    #[test]
    fn urls_with_control_characters_are_rejected() {
        let cases = [
            "https://example.com/\r\nSet-Cookie: a=b",
            "https://example.com/\n",
            "https://exa\tmple.com/",
            "https://example.com/\0",
            "https://example.com/\u{7f}",
            "https://example.com/\u{1b}[31m",
        ];
        for raw in cases {
            assert_eq!(
                JoinUrl::parse(raw),
                Err(JoinUrlError::ControlCharacters),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn urls_without_a_host_or_with_a_bad_one_are_rejected() {
        assert_eq!(JoinUrl::parse("http://"), Err(JoinUrlError::NoHost));
        assert_eq!(JoinUrl::parse("https://:8080/"), Err(JoinUrlError::NoHost));
        assert_eq!(
            JoinUrl::parse("http://exa mple.com/"),
            Err(JoinUrlError::BadHost)
        );
        assert_eq!(JoinUrl::parse("http://[::1/"), Err(JoinUrlError::BadHost));
        assert_eq!(
            JoinUrl::parse("http://example.com:99999/"),
            Err(JoinUrlError::Malformed)
        );
    }

    #[test]
    fn error_messages_are_plain_sentences() {
        assert_eq!(
            JoinUrlError::BadScheme.to_string(),
            "the URL must start with http:// or https://"
        );
        assert_eq!(
            JoinUrlError::TooLong.to_string(),
            "the URL is longer than 1024 bytes"
        );
    }

    #[test]
    fn loopback_hosts_are_detected() {
        let loopback = [
            "http://localhost:8080/present",
            "http://LOCALHOST/",
            "http://localhost./",
            "http://demo.localhost/",
            "http://127.0.0.1/",
            "http://127.8.9.10:8080/",
            "http://[::1]:8080/",
            "http://[::ffff:127.0.0.1]/",
        ];
        for raw in loopback {
            assert!(JoinUrl::parse(raw).unwrap().host_is_loopback(), "{raw}");
        }

        let reachable = [
            "http://192.168.1.20:8080/",
            "https://example.com/",
            "http://localhost.example.com/",
            "http://mylocalhost/",
            "http://[fd00::1]/",
            "http://0.0.0.0/",
        ];
        for raw in reachable {
            assert!(!JoinUrl::parse(raw).unwrap().host_is_loopback(), "{raw}");
        }
    }

    #[test]
    fn with_host_keeps_scheme_port_path_and_query() {
        let url = JoinUrl::parse("http://localhost:8080/present?room=a").unwrap();

        let v4 = url.with_host(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20)));
        let v6 = url.with_host(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 7)));

        assert_eq!(v4.as_str(), "http://192.168.1.20:8080/present?room=a");
        assert_eq!(v6.as_str(), "http://[fd00::7]:8080/present?room=a");
        assert!(!v4.host_is_loopback());
    }

    #[test]
    fn with_host_keeps_a_default_port_implicit() {
        let url = JoinUrl::parse("https://localhost/").unwrap();
        let lan = url.with_host(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)));
        assert_eq!(lan.as_str(), "https://10.0.0.5/");
    }

    #[test]
    fn from_request_parts_builds_the_url_the_request_came_in_on() {
        let url = JoinUrl::from_request_parts(Some("https"), "demo.example.com", "/").unwrap();
        assert_eq!(url.as_str(), "https://demo.example.com/");

        let url = JoinUrl::from_request_parts(None, "localhost:8080", "present").unwrap();
        assert_eq!(url.as_str(), "http://localhost:8080/present");

        let url = JoinUrl::from_request_parts(Some("HTTP"), "[::1]:8080", "/").unwrap();
        assert_eq!(url.as_str(), "http://[::1]:8080/");
    }

    #[test]
    fn from_request_parts_refuses_hosts_that_would_change_the_url() {
        for host in [
            "evil.example/x",
            "user@example.com",
            "a b",
            "",
            "example.com:port",
        ] {
            assert_eq!(
                JoinUrl::from_request_parts(Some("http"), host, "/"),
                Err(JoinUrlError::BadHost),
                "{host}"
            );
        }
        assert_eq!(
            JoinUrl::from_request_parts(Some("gopher"), "example.com", "/"),
            Err(JoinUrlError::BadScheme)
        );
    }

    #[test]
    fn forwarded_header_with_quoted_host_is_read() {
        let map = headers(&[
            (
                "forwarded",
                r#"for=192.0.2.60;proto=https;host="demo.example.com:8443""#,
            ),
            ("host", "internal:8080"),
        ]);
        assert_eq!(
            forwarded_origin(&map, false),
            origin("https", "demo.example.com:8443")
        );
    }

    #[test]
    fn forwarded_header_with_plain_values_uses_only_the_first_element() {
        let map = headers(&[
            (
                "forwarded",
                "Proto=HTTPS;Host=first.example, proto=http;host=second.example",
            ),
            ("host", "internal:8080"),
        ]);
        assert_eq!(
            forwarded_origin(&map, false),
            origin("https", "first.example")
        );
    }

    #[test]
    fn forwarded_header_with_an_ipv6_host_is_read() {
        let map = headers(&[("forwarded", r#"host="[2001:db8::1]:8080";proto=http"#)]);
        assert_eq!(
            forwarded_origin(&map, true),
            origin("http", "[2001:db8::1]:8080")
        );
    }

    #[test]
    fn forwarded_header_without_host_falls_back_to_the_other_headers() {
        let map = headers(&[
            ("forwarded", "for=192.0.2.60;proto=https"),
            ("host", "a.example"),
        ]);
        assert_eq!(forwarded_origin(&map, false), origin("https", "a.example"));
    }

    #[test]
    fn x_forwarded_headers_are_read_when_there_is_no_forwarded_header() {
        let map = headers(&[
            ("x-forwarded-proto", "https, http"),
            ("x-forwarded-host", "demo.example.com, proxy.internal"),
            ("host", "internal:8080"),
        ]);
        assert_eq!(
            forwarded_origin(&map, false),
            origin("https", "demo.example.com")
        );
    }

    #[test]
    fn host_alone_is_used_with_a_scheme_from_the_connection() {
        let map = headers(&[("host", "localhost:8080")]);
        assert_eq!(
            forwarded_origin(&map, false),
            origin("http", "localhost:8080")
        );
        assert_eq!(
            forwarded_origin(&map, true),
            origin("https", "localhost:8080")
        );
    }

    #[test]
    fn no_host_at_all_gives_nothing() {
        assert_eq!(forwarded_origin(&HeaderMap::new(), false), None);
    }

    #[test]
    fn garbage_hosts_and_schemes_are_refused() {
        let cases: [&[(&'static str, &str)]; 9] = [
            &[("host", "evil.example/path")],
            &[("host", "user@evil.example")],
            &[("host", "a b")],
            &[("host", "<script>")],
            &[("host", "example.com:99999")],
            &[("x-forwarded-host", "a\"b"), ("host", "ok.example")],
            &[("forwarded", r#"host="a/b""#), ("host", "ok.example")],
            &[("forwarded", "host=\"unterminated"), ("host", "ok.example")],
            &[("x-forwarded-proto", "javascript"), ("host", "ok.example")],
        ];
        for pairs in cases {
            assert_eq!(forwarded_origin(&headers(pairs), false), None, "{pairs:?}");
        }
    }

    #[test]
    fn non_text_header_values_are_refused() {
        let mut map = HeaderMap::new();
        map.insert(
            "host",
            HeaderValue::from_bytes(b"caf\xc3\xa9.example").unwrap(),
        );
        assert_eq!(forwarded_origin(&map, false), None);
    }

    #[test]
    fn lan_address_is_never_loopback_or_unspecified() {
        if let Some(ip) = lan_address() {
            assert!(!ip.is_loopback() && !ip.is_unspecified(), "{ip}");
        }
    }
}
