//! Request bodies held to the transfer rules (see the parent module): a body whose client
//! sends nothing for the idle time, or too little for the rate floor, while the component
//! waits for it ends with a read timeout (`connection-read-timeout` in `wasi:http` terms), so
//! the component is released instead of holding its instance until the client leaves, and can
//! answer (the mp3edge gateway answers `408`). The host logs each body it ends.
//!
//! The component waits for the client from the moment it asks for bytes that have not arrived
//! (the body is pending) until they arrive: time in which the component does not ask (it works,
//! talks to its backends, or reads slowly) is never the client's.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::{ClientClock, Cut, TransferRules};
use crate::http_trigger::RequestLabel;

pub struct RequestTransfer<B> {
    inner: B,
    clock: ClientClock,
    /// Since when the component has been waiting for bytes (`None`: it is not waiting).
    waiting_since: Option<Instant>,
    timer: Pin<Box<Sleep>>,
    /// The instant `timer` is set to.
    armed_for: Option<Instant>,
    /// Set once the body was ended; every later read fails the same way.
    cut: bool,
    label: Arc<RequestLabel>,
}

impl<B> RequestTransfer<B> {
    pub fn new(inner: B, rules: TransferRules, label: Arc<RequestLabel>) -> RequestTransfer<B> {
        let now = Instant::now();
        RequestTransfer {
            inner,
            clock: ClientClock::new(rules),
            waiting_since: None,
            timer: Box::pin(tokio::time::sleep_until(now)),
            armed_for: None,
            cut: false,
            label,
        }
    }

    fn end(&mut self, cut: Cut) -> Poll<Option<Result<Frame<Bytes>, wasmtime_wasi_http::Error>>> {
        self.cut = true;
        let label = &self.label;
        tracing::warn!(
            component = %label.component, route = %label.route, path = %label.path,
            received_bytes = self.clock.moved(), reason = %cut,
            "request body ended: the client sent too slowly"
        );
        Poll::Ready(Some(Err(wasmtime_wasi_http::Error::ConnectionReadTimeout)))
    }
}

impl<B> Body for RequestTransfer<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.cut {
            return Poll::Ready(Some(Err(wasmtime_wasi_http::Error::ConnectionReadTimeout)));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let waited = self.waiting_since.take().map(|since| since.elapsed()).unwrap_or_default();
                let bytes = frame.data_ref().map_or(0, |data| data.len() as u64);
                match self.clock.record(waited, bytes) {
                    Ok(()) => Poll::Ready(Some(Ok(frame))),
                    Err(cut) => self.end(cut),
                }
            }
            Poll::Ready(other) => {
                self.waiting_since = None;
                Poll::Ready(other.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let since = *self.waiting_since.get_or_insert_with(Instant::now);
                loop {
                    let now = Instant::now();
                    if let Some(cut) = self.clock.check_waiting(now - since) {
                        return self.end(cut);
                    }
                    // Not due yet; a due instant that rounding put in the past is a moment away.
                    let due = Instant::from_std(self.clock.due(since.into_std())).max(now + Duration::from_millis(1));
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
    }

    fn is_end_stream(&self) -> bool {
        !self.cut && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    type Sent = Result<Frame<Bytes>, std::convert::Infallible>;

    fn label() -> Arc<RequestLabel> {
        Arc::new(RequestLabel { component: "c".into(), route: "/r".into(), path: "/r".into() })
    }

    fn body_from(rx: tokio::sync::mpsc::Receiver<Sent>, rules: TransferRules) -> RequestTransfer<impl Body<Data = Bytes, Error = std::convert::Infallible> + Unpin> {
        let mut rx = rx;
        let stream = Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        RequestTransfer::new(http_body_util::StreamBody::new(stream), rules, label())
    }

    fn rules(idle_ms: u64, rate: u64, window_ms: u64) -> TransferRules {
        TransferRules { idle: Duration::from_millis(idle_ms), min_bytes_per_sec: rate, window: Duration::from_millis(window_ms) }
    }

    #[tokio::test]
    async fn a_silent_body_times_out_and_a_flowing_one_does_not() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Sent>(4);
        let mut body = body_from(rx, rules(100, 0, 1000));
        let feeder = tokio::spawn(async move {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                tx.send(Ok(Frame::data(Bytes::from_static(b"x")))).await.unwrap();
            }
            // Then silence, with the sender kept open.
            tokio::time::sleep(Duration::from_secs(5)).await;
            tx.closed().await;
        });
        for _ in 0..3 {
            assert!(body.frame().await.unwrap().is_ok());
        }
        let started = Instant::now();
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(matches!(err, wasmtime_wasi_http::Error::ConnectionReadTimeout));
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(100) && waited < Duration::from_millis(600), "{waited:?}");
        feeder.abort();
    }

    #[tokio::test]
    async fn time_the_component_does_not_read_is_not_the_clients() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Sent>(4);
        let mut body = body_from(rx, rules(300, 0, 1000));
        tx.send(Ok(Frame::data(Bytes::from_static(b"a")))).await.unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        // The component is busy for a second; the next bytes came long ago and are taken at once.
        tx.send(Ok(Frame::data(Bytes::from_static(b"b")))).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(body.frame().await.unwrap().is_ok());
        // And a wait that starts now gets its whole idle time.
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            tx.send(Ok(Frame::data(Bytes::from_static(b"c")))).await.unwrap();
            tx
        });
        assert!(body.frame().await.unwrap().is_ok());
        drop(sender.await.unwrap());
        assert!(body.frame().await.is_none(), "the body ends when its sender does");
    }

    #[tokio::test]
    async fn a_trickle_below_the_floor_is_cut_at_the_end_of_its_window() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Sent>(4);
        // 100 bytes a second over windows of a second, idle 10 s: 10 bytes every 300 ms is a third.
        let mut body = body_from(rx, rules(10_000, 100, 1000));
        let feeder = tokio::spawn(async move {
            let mut every = tokio::time::interval_at(Instant::now() + Duration::from_millis(300), Duration::from_millis(300));
            loop {
                every.tick().await;
                if tx.send(Ok(Frame::data(Bytes::from_static(&[7; 10])))).await.is_err() {
                    return;
                }
            }
        });
        let started = Instant::now();
        let mut received = 0;
        let err = loop {
            match body.frame().await.unwrap() {
                Ok(frame) => received += frame.into_data().unwrap().len(),
                Err(e) => break e,
            }
        };
        assert!(matches!(err, wasmtime_wasi_http::Error::ConnectionReadTimeout));
        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(1) && waited < Duration::from_millis(1200), "cut when the first window ends: {waited:?}");
        assert_eq!(received, 30, "three pieces came within the window");
        assert!(body.frame().await.unwrap().is_err(), "and it stays ended");
        feeder.abort();
    }
}
