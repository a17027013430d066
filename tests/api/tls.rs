//! HTTPS served directly from `TLS_CERT` and `TLS_KEY`, with a certificate made here.

use std::sync::Arc;

use rcgen::CertifiedKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::helpers::{TestDir, number, spawn_app_in};

/// A self-signed certificate for `localhost`, written as PEM files into `dir`.
fn certificate_in(dir: &TestDir) -> (CertifiedKey<rcgen::KeyPair>, String, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let path = |p: std::path::PathBuf| p.to_str().unwrap().to_owned();
    (certified, path(cert), path(key))
}

/// Sends one HTTP/1.1 GET over TLS, trusting only `certified`, and returns the answer.
async fn https_get(port: u16, certified: &CertifiedKey<rcgen::KeyPair>, path: &str) -> String {
    let _ = tokio_rustls::rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut roots = RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(config));

    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .expect("the TLS handshake succeeds");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn the_app_serves_https_and_marks_the_cookie_secure() {
    let dir = TestDir::new();
    let (certified, cert, key) = certificate_in(&dir);
    let app = spawn_app_in(dir, &["--tls-cert", &cert, "--tls-key", &key]).await;

    let answer = https_get(app.addr.port(), &certified, "/").await;

    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let cookie = answer
        .lines()
        .find(|line| {
            line.to_ascii_lowercase()
                .starts_with("set-cookie: hc_visitor=")
        })
        .expect("a visitor cookie");
    assert!(cookie.contains("Secure"), "{cookie}");
    assert_eq!(number(&answer, "visitor-hits"), 1);
}

#[tokio::test]
async fn plain_http_to_the_https_port_gets_no_page() {
    let dir = TestDir::new();
    let (_, cert, key) = certificate_in(&dir);
    let app = spawn_app_in(dir, &["--tls-cert", &cert, "--tls-key", &key]).await;

    let plain = reqwest::get(app.url("/")).await;

    assert!(plain.is_err(), "a TLS server does not answer plain HTTP");
}

#[tokio::test]
async fn a_key_that_does_not_fit_the_certificate_stops_start_up_naming_the_setting() {
    use clap::Parser;
    use hit_counter::config::{Args, Settings};
    use hit_counter::startup::Application;

    let dir = TestDir::new();
    let (_, cert, _) = certificate_in(&dir);
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let wrong_key = dir.path().join("other-key.pem");
    std::fs::write(&wrong_key, other.signing_key.serialize_pem()).unwrap();
    let db = dir.db();
    let argv = [
        "hit-counter",
        "--port",
        "0",
        "--sqlite-path",
        db.to_str().unwrap(),
        "--tls-cert",
        &cert,
        "--tls-key",
        wrong_key.to_str().unwrap(),
    ];
    let settings = Settings::from_args(Args::try_parse_from(argv).unwrap(), |_| None).unwrap();

    let err = Application::build(settings)
        .await
        .err()
        .expect("start-up fails");

    assert_eq!(err.setting(), Some("TLS_KEY"), "{err:?}");
}
