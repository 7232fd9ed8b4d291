//! Responses held to the transfer rules (see the parent module), measured where the client's
//! pace shows: the connection's socket. The response waits for its client from the moment a
//! write finds the socket full until the socket takes bytes again; those bytes end the wait. A
//! response whose component is slow to produce never waits on its client, so it is never judged.
//!
//! "Full" is made to mean "the client is not taking bytes": each socket keeps at most
//! [`UNSENT_BYTES`] that have not been sent (`TCP_NOTSENT_LOWAT`), so a write blocks only while
//! the client's receive window is shut, and the socket takes bytes again as soon as the client
//! reads some. Without it the kernel lets a send buffer grow to megabytes and wakes a writer only
//! once a third of it has drained (1.3 MB of a 4 MB buffer: 85 s for a reader at 16 KiB/s), so a
//! reader keeping the floor would look stalled; and it would hold those megabytes for a reader
//! that stopped.
//!
//! A reader that stops taking bytes for the idle time, or takes fewer than the floor in a
//! window, has its connection cut (reset: the kernel drops what it still holds for it) and the
//! host logs a line saying which response, how far it got and why. The check runs when bytes
//! move (`MeteredIo`) and, for a reader that takes nothing at all, on a timer of the
//! connection's own task (`WatchedConnection`): no task or timer per response.
//!
//! `ResponseEnd` makes a response whose component the host stopped mid-body end as an
//! incomplete one (the connection closes without the body's end), never as a complete one.

use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::{ClientClock, Cut, TransferRules};
use crate::http_trigger::RequestLabel;
use crate::work_clock::Stopped;

/// What one connection's current response has moved, shared by its socket, its watchdog and
/// the trigger that starts each response.
pub struct ConnectionWatch {
    rules: TransferRules,
    state: Mutex<WatchState>,
    /// Whether `state.blocked_since` is set: the connection's task, which looks after every
    /// poll, skips the lock when it is not.
    blocked: AtomicBool,
}

struct WatchState {
    /// The response being written and its clock (`None` before the first request).
    current: Option<(Arc<RequestLabel>, ClientClock, Instant)>,
    /// Since when the socket has refused bytes.
    blocked_since: Option<Instant>,
}

impl ConnectionWatch {
    pub fn new(rules: TransferRules) -> Arc<ConnectionWatch> {
        Arc::new(ConnectionWatch {
            rules,
            state: Mutex::new(WatchState { current: None, blocked_since: None }),
            blocked: AtomicBool::new(false),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, WatchState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A request on this connection is being answered: its response gets a clock of its own.
    pub fn begin(&self, label: Arc<RequestLabel>) {
        let mut state = self.state();
        state.current = Some((label, ClientClock::new(self.rules), Instant::now()));
        state.blocked_since = None;
        self.blocked.store(false, Ordering::Relaxed);
    }

    fn blocked(&self) {
        self.state().blocked_since.get_or_insert_with(Instant::now);
        self.blocked.store(true, Ordering::Relaxed);
    }

    /// The socket took `bytes`; an error when that breaks the rules.
    fn wrote(&self, bytes: usize) -> Result<(), Cut> {
        let mut state = self.state();
        let waited = state.blocked_since.take().map(|since| since.elapsed()).unwrap_or_default();
        self.blocked.store(false, Ordering::Relaxed);
        let Some((label, clock, started)) = &mut state.current else { return Ok(()) };
        let result = clock.record(waited, bytes as u64);
        if let Err(cut) = result {
            log_cut(label, clock, *started, cut);
        }
        result
    }

    /// When the current wait breaks the rules if the socket takes nothing before.
    fn due(&self) -> Option<Instant> {
        if !self.blocked.load(Ordering::Relaxed) {
            return None;
        }
        let state = self.state();
        let since = state.blocked_since?;
        let (_, clock, _) = state.current.as_ref()?;
        Some(clock.due(since.into_std()).into())
    }

    /// Whether the current wait breaks the rules now (logged when it does).
    fn check(&self) -> Option<Cut> {
        let state = self.state();
        let since = state.blocked_since?;
        let (label, clock, started) = state.current.as_ref()?;
        let cut = clock.check_waiting(since.elapsed())?;
        log_cut(label, clock, *started, cut);
        Some(cut)
    }
}

fn log_cut(label: &RequestLabel, clock: &ClientClock, started: Instant, cut: Cut) {
    let reason = match cut {
        Cut::Stalled { .. } => "the client stopped reading",
        Cut::TooSlow { .. } => "the client read below the minimum rate",
    };
    tracing::warn!(
        component = %label.component, route = %label.route, path = %label.path,
        sent_bytes = clock.moved(), elapsed_ms = started.elapsed().as_millis() as u64, detail = %cut,
        "response cut: {reason}"
    );
}

/// The most bytes a connection's socket holds that it has not sent yet (see the module's
/// documentation): what the client has not made room for stays in the component's body.
pub const UNSENT_BYTES: libc::c_int = 128 << 10;

/// Sets an `int` option on a socket; failures are logged (a socket without it still works).
fn set_socket_option(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int, what: &str) {
    // SAFETY: `fd` is an open socket owned by the caller for the duration of the call; the
    // option value is an int that outlives it.
    let rc = unsafe {
        libc::setsockopt(fd, level, name, (&value as *const libc::c_int).cast(), std::mem::size_of::<libc::c_int>() as libc::socklen_t)
    };
    if rc != 0 {
        tracing::debug!(error = %io::Error::last_os_error(), "could not set {what} on a connection");
    }
}

/// Resets a TCP connection when its descriptor closes: with `SO_LINGER` at zero, the kernel
/// drops the bytes a client stopped reading instead of keeping them for it.
fn reset_on_close(fd: RawFd) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: `fd` is an open socket owned by the caller for the duration of the call; the
    // option value is a valid `linger` that outlives it.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// A connection's socket, reporting to its watch what the client takes. A write that breaks
/// the rules fails, which ends the connection.
pub struct MeteredIo<T> {
    io: T,
    fd: RawFd,
    watch: Arc<ConnectionWatch>,
}

impl<T: std::os::fd::AsRawFd> MeteredIo<T> {
    /// Meters the TCP socket `io`, keeping at most [`UNSENT_BYTES`] of it unsent.
    pub fn new(io: T, watch: Arc<ConnectionWatch>) -> MeteredIo<T> {
        let fd = io.as_raw_fd();
        set_socket_option(fd, libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT, UNSENT_BYTES, "TCP_NOTSENT_LOWAT");
        MeteredIo { io, fd, watch }
    }
}

impl<T> MeteredIo<T> {
    fn account(&self, written: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match written {
            Poll::Pending => {
                self.watch.blocked();
                Poll::Pending
            }
            Poll::Ready(Ok(n)) => match self.watch.wrote(n) {
                Ok(()) => Poll::Ready(Ok(n)),
                Err(cut) => {
                    reset_on_close(self.fd);
                    Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, format!("response cut: {cut}"))))
                }
            },
            other => other,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for MeteredIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for MeteredIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        self.account(written)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.account(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A connection's future that ends (with the cut) when its current response waits on a client
/// that breaks the rules; dropping it then resets the connection.
pub struct WatchedConnection<C> {
    conn: Pin<Box<C>>,
    fd: RawFd,
    watch: Arc<ConnectionWatch>,
    timer: Pin<Box<Sleep>>,
    armed_for: Option<Instant>,
}

impl<C> WatchedConnection<C> {
    /// `conn` serves the socket `fd` (which it owns) with `watch` as its meter.
    pub fn new(conn: C, fd: RawFd, watch: Arc<ConnectionWatch>) -> WatchedConnection<C> {
        WatchedConnection { conn: Box::pin(conn), fd, watch, timer: Box::pin(tokio::time::sleep(Duration::ZERO)), armed_for: None }
    }
}

impl<C: Future> Future for WatchedConnection<C> {
    type Output = Result<C::Output, Cut>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(out) = self.conn.as_mut().poll(cx) {
            return Poll::Ready(Ok(out));
        }
        loop {
            let Some(due) = self.watch.due() else { return Poll::Pending };
            if let Some(cut) = self.watch.check() {
                // The socket is still open (the connection owns it until this future is dropped).
                reset_on_close(self.fd);
                return Poll::Ready(Err(cut));
            }
            let due = due.max(Instant::now() + Duration::from_millis(1));
            if self.armed_for != Some(due) {
                self.timer.as_mut().reset(due);
                self.armed_for = Some(due);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

/// A component's response body that ends with an error, not as a complete body, when the host
/// stopped its component (`stopped` is set before the component's body is dropped).
pub struct ResponseEnd {
    inner: HyperOutgoingBody,
    stopped: Arc<OnceLock<Stopped>>,
}

impl ResponseEnd {
    pub fn new(inner: HyperOutgoingBody, stopped: Arc<OnceLock<Stopped>>) -> ResponseEnd {
        ResponseEnd { inner, stopped }
    }
}

impl Body for ResponseEnd {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(None) if self.stopped.get().is_some() => Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpProtocolError))),
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream() && self.stopped.get().is_none()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn label() -> Arc<RequestLabel> {
        Arc::new(RequestLabel { component: "c".into(), route: "/r".into(), path: "/r".into() })
    }

    /// A server socket and its client (returned), whose receive buffer is small; the server's
    /// send buffer is the kernel's, as the host's are.
    async fn pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(16 << 10).unwrap();
        let client = socket.connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (server, client)
    }

    /// Writes `total` bytes (or until an error) through `io`; what it wrote and how it ended.
    async fn write_all<W: AsyncWrite + Unpin>(io: &mut W, total: usize) -> (usize, io::Result<()>) {
        let piece = vec![7u8; 16 << 10];
        let mut written = 0;
        while written < total {
            match io.write(&piece[..piece.len().min(total - written)]).await {
                Ok(n) => written += n,
                Err(e) => return (written, Err(e)),
            }
        }
        (written, Ok(()))
    }

    #[tokio::test]
    async fn a_reader_that_stops_is_cut_after_the_idle_time_and_its_connection_reset() {
        let (server, mut client) = pair().await;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&server);
        let rules = TransferRules { idle: Duration::from_millis(500), min_bytes_per_sec: 0, window: Duration::from_secs(30) };
        let watch = ConnectionWatch::new(rules);
        watch.begin(label());
        let mut io = MeteredIo::new(server, watch.clone());
        let started = std::time::Instant::now();
        // The "connection": writes until its socket is full, then waits for ever.
        let conn = async move { write_all(&mut io, 64 << 20).await };
        let outcome = WatchedConnection::new(conn, fd, watch).await;
        let waited = started.elapsed();
        assert!(matches!(outcome, Err(Cut::Stalled { .. })), "{outcome:?}");
        assert!(waited >= Duration::from_millis(500) && waited < Duration::from_secs(3), "{waited:?}");
        // The client finds the connection reset once it reads what reached it.
        let mut sink = vec![0u8; 1 << 20];
        let ended = loop {
            match client.read(&mut sink).await {
                Ok(0) => break "eof",
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break "reset",
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(ended, "reset");
    }

    #[tokio::test]
    async fn a_reader_that_keeps_the_floor_is_not_cut_and_one_below_it_is() {
        // The reader that keeps the floor has an idle time of a second: a send buffer of
        // megabytes, woken only once a third of it drained, would leave it seconds without
        // progress (`UNSENT_BYTES` is what prevents that).
        for (rate, idle, cut) in [(400u64 << 10, Duration::from_secs(1), false), (20 << 10, Duration::from_secs(30), true)] {
            let (server, mut client) = pair().await;
            let fd = std::os::fd::AsRawFd::as_raw_fd(&server);
            // 100 KiB/s over windows of 0.5 s.
            let rules = TransferRules { idle, min_bytes_per_sec: 100 << 10, window: Duration::from_millis(500) };
            let watch = ConnectionWatch::new(rules);
            watch.begin(label());
            let mut io = MeteredIo::new(server, watch.clone());
            let reader = tokio::spawn(async move {
                // Reads `rate` bytes a second, a tenth every 100 ms, until the end or an error.
                let mut buf = vec![0u8; (rate / 10) as usize];
                let mut total = 0usize;
                loop {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let mut this_tenth = 0;
                    while this_tenth < buf.len() {
                        match client.read(&mut buf[this_tenth..]).await {
                            Ok(0) | Err(_) => return total,
                            Ok(n) => {
                                this_tenth += n;
                                total += n;
                            }
                        }
                    }
                }
            });
            let conn = async move {
                let result = write_all(&mut io, 4 << 20).await;
                drop(io);
                result
            };
            let outcome = WatchedConnection::new(conn, fd, watch).await;
            let read = reader.await.unwrap();
            match cut {
                false => {
                    let (written, result) = outcome.expect("not cut by the watchdog");
                    assert!(result.is_ok(), "{result:?}");
                    assert_eq!((written, read), (4 << 20, 4 << 20));
                }
                true => {
                    // Cut by the watchdog, or by the write that found its window short.
                    let why = match outcome {
                        Err(cut) => cut.to_string(),
                        Ok((_, Err(e))) => e.to_string(),
                        Ok(other) => panic!("not cut: {other:?}"),
                    };
                    assert!(why.contains("below the floor"), "{why}");
                    assert!(read < 4 << 20, "{read}");
                }
            }
        }
    }

    #[tokio::test]
    async fn a_body_whose_component_the_host_stopped_ends_with_an_error_not_as_complete() {
        use http_body_util::BodyExt;
        for stopped_by_host in [false, true] {
            let inner = http_body_util::Full::new(Bytes::from_static(b"part of it"))
                .map_err(|never: std::convert::Infallible| -> wasmtime_wasi_http::Error { match never {} })
                .boxed_unsync();
            let stopped = Arc::new(OnceLock::new());
            if stopped_by_host {
                stopped.set(Stopped::WorkBudget(Duration::from_secs(1))).unwrap();
            }
            let mut body = ResponseEnd::new(inner, stopped);
            assert_eq!(body.frame().await.unwrap().unwrap().into_data().unwrap(), "part of it");
            match stopped_by_host {
                false => assert!(body.frame().await.is_none(), "a finished body ends"),
                true => assert!(body.frame().await.unwrap().is_err(), "a stopped one fails"),
            }
        }
    }
}
