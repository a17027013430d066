//! Connection limits below HTTP: a deadline for receiving each request head, so idle or
//! trickling clients (slowloris) cannot hold connections open and starve the others.
//!
//! Poem does not hand hyper a timer, so hyper's own header-read timeout never runs; this
//! wrapper gives every accepted connection that deadline instead. The clock starts at the
//! first byte of a request and stops at the blank line that ends its head. Idle
//! keep-alive connections are closed by the server's idle timeout instead.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The end of a request head.
const HEAD_END: &[u8; 4] = b"\r\n\r\n";

/// The first bytes of an HTTP/2 connection; its frames have no head to time.
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// Wraps an acceptor so that each connection must deliver every request head in time.
pub struct HeadDeadline<A> {
    inner: A,
    limit: Duration,
}

impl<A> HeadDeadline<A> {
    /// Gives connections accepted by `inner` at most `limit` per request head.
    pub fn new(inner: A, limit: Duration) -> Self {
        Self { inner, limit }
    }
}

impl<A: Acceptor> Acceptor for HeadDeadline<A> {
    type Io = Guarded<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (io, local, remote, scheme) = self.inner.accept().await?;
        Ok((Guarded::new(io, self.limit), local, remote, scheme))
    }
}

/// A connection whose request heads must arrive within a time limit.
pub struct Guarded<T> {
    io: T,
    limit: Duration,
    /// Armed while a request head is arriving.
    deadline: Option<Pin<Box<Sleep>>>,
    /// How much of [`HEAD_END`] the bytes seen last have matched.
    matched: usize,
    /// The connection's first bytes, until it is known whether it speaks HTTP/2.
    prefix: Vec<u8>,
    /// HTTP/2 is exempt: once its preface is seen the guard steps aside.
    http2: bool,
}

impl<T> Guarded<T> {
    fn new(io: T, limit: Duration) -> Self {
        Self {
            io,
            limit,
            deadline: None,
            matched: 0,
            prefix: Vec::with_capacity(HTTP2_PREFACE.len()),
            http2: false,
        }
    }

    /// Follows the bytes just read: the deadline is armed while a head is arriving and
    /// disarmed when a read ends exactly at a head's end.
    fn observe(&mut self, bytes: &[u8]) {
        if self.http2 || bytes.is_empty() {
            return;
        }
        if self.prefix.len() < HTTP2_PREFACE.len() {
            let take = (HTTP2_PREFACE.len() - self.prefix.len()).min(bytes.len());
            self.prefix.extend_from_slice(&bytes[..take]);
            if self.prefix == HTTP2_PREFACE {
                self.http2 = true;
                self.deadline = None;
                return;
            }
        }

        let mut last_end = None;
        for (index, &byte) in bytes.iter().enumerate() {
            self.matched = match byte {
                _ if byte == HEAD_END[self.matched] => self.matched + 1,
                b'\r' => 1,
                _ => 0,
            };
            if self.matched == HEAD_END.len() {
                last_end = Some(index);
                self.matched = 0;
            }
        }

        let head_complete = last_end == Some(bytes.len() - 1);
        if head_complete {
            self.deadline = None;
        } else if self.deadline.is_none() || last_end.is_some() {
            // A new head (or a body, which must not trickle either) has started.
            let deadline = Instant::now() + self.limit;
            self.deadline = Some(Box::pin(tokio::time::sleep_until(deadline)));
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "request head not received in time")
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                self.observe(&buf.filled()[before..]);
                // A trickling client keeps reads succeeding; the clock still runs.
                if self
                    .deadline
                    .as_ref()
                    .is_some_and(|d| Instant::now() >= d.deadline())
                {
                    self.deadline = None;
                    return Poll::Ready(Err(timed_out()));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => {
                if let Some(deadline) = self.deadline.as_mut() {
                    ready!(deadline.as_mut().poll(cx));
                    self.deadline = None;
                    return Poll::Ready(Err(timed_out()));
                }
                Poll::Pending
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    use super::*;

    const LIMIT: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn a_head_that_stops_halfway_times_out() {
        let (mut client, server) = duplex(1024);
        let mut guarded = Guarded::new(server, LIMIT);
        let mut buf = [0_u8; 64];
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();

        let first = guarded.read(&mut buf).await;
        let second = guarded.read(&mut buf).await;

        assert!(first.is_ok());
        assert_eq!(second.unwrap_err().kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickled_head_is_cut_off_at_the_deadline() {
        let (mut client, server) = duplex(1024);
        let mut guarded = Guarded::new(server, LIMIT);
        let mut buf = [0_u8; 64];
        let started = Instant::now();
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();

        let mut outcome = Ok(0);
        for _ in 0..30 {
            outcome = guarded.read(&mut buf).await;
            if outcome.is_err() {
                break;
            }
            tokio::time::advance(Duration::from_secs(1)).await;
            client.write_all(b"X").await.unwrap();
        }

        assert_eq!(outcome.unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() <= LIMIT + Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_complete_head_leaves_the_connection_idle_without_a_deadline() {
        let (mut client, server) = duplex(1024);
        let mut guarded = Guarded::new(server, LIMIT);
        let mut buf = [0_u8; 64];
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert!(guarded.read(&mut buf).await.unwrap() > 0);

        let idle = tokio::time::timeout(LIMIT * 3, guarded.read(&mut buf)).await;

        assert!(
            idle.is_err(),
            "still waiting for the next request, not cut off"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_end_split_across_reads_is_recognised() {
        let (mut client, server) = duplex(1024);
        let mut guarded = Guarded::new(server, LIMIT);
        let mut buf = [0_u8; 64];
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r")
            .await
            .unwrap();
        assert!(guarded.read(&mut buf).await.unwrap() > 0);
        client.write_all(b"\n").await.unwrap();
        assert!(guarded.read(&mut buf).await.unwrap() > 0);

        let idle = tokio::time::timeout(LIMIT * 3, guarded.read(&mut buf)).await;

        assert!(idle.is_err(), "the head was complete; no deadline runs");
    }

    #[tokio::test(start_paused = true)]
    async fn http2_connections_are_left_alone() {
        let (mut client, server) = duplex(1024);
        let mut guarded = Guarded::new(server, LIMIT);
        let mut buf = [0_u8; 64];
        client
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00")
            .await
            .unwrap();
        assert!(guarded.read(&mut buf).await.unwrap() > 0);

        let idle = tokio::time::timeout(LIMIT * 3, guarded.read(&mut buf)).await;

        assert!(idle.is_err());
    }
}
