//! `hit-counter --healthcheck`: asks a running server's `/status` over loopback, so a
//! container image can check itself without curl.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// How long the probe waits for the server.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Longest answer read: the status line is all that matters.
const MAX_ANSWER: u64 = 4096;

/// Why the server is not healthy.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Nothing answered, or the connection broke.
    #[error("no answer from 127.0.0.1:{port}: {source}")]
    Unreachable {
        /// The port probed.
        port: u16,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The server answered with something other than 200.
    #[error("unhealthy: {0}")]
    Unhealthy(String),
}

/// Succeeds when `GET /status` on the local server answers 200.
pub fn probe(port: u16) -> Result<(), ProbeError> {
    let unreachable = |source| ProbeError::Unreachable { port, source };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(unreachable)?;
    stream
        .write_all(b"GET /status HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .map_err(unreachable)?;

    let mut answer = String::new();
    stream
        .take(MAX_ANSWER)
        .read_to_string(&mut answer)
        .map_err(unreachable)?;
    let status_line = answer.lines().next().unwrap_or_default();
    if status_line.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or(status_line);
        Err(ProbeError::Unhealthy(body.trim().to_owned()))
    }
}
