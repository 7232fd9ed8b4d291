//! A timer on the WASI monotonic clock driven by the Spin executor (`spin-sdk` has none).

use futures::future;
use spin_executor::{CancelOnDropToken, push_waker_and_get_token};
use std::task::Poll;
use std::time::Duration;
use wasi::clocks::monotonic_clock;

/// Resolves after `duration` on the WASI monotonic clock: the task registers a
/// `subscribe-duration` pollable with the Spin executor, which blocks in `wasi:io/poll` until it
/// is ready (no busy-waiting). Dropping the future cancels the registration.
pub fn sleep(duration: Duration) -> impl Future<Output = ()> {
    let deadline = monotonic_clock::now().saturating_add(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
    let mut registration: Option<CancelOnDropToken> = None;
    future::poll_fn(move |cx| {
        let now = monotonic_clock::now();
        if now >= deadline {
            return Poll::Ready(());
        }
        // Replacing the registration drops, and so cancels, the previous one.
        let pollable = monotonic_clock::subscribe_duration(deadline - now);
        registration.replace(push_waker_and_get_token(pollable, cx.waker().clone()).into());
        Poll::Pending
    })
}

/// The wall-clock time in Unix seconds (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    unix_now_millis() / 1000
}

/// The wall-clock time in Unix milliseconds.
pub fn unix_now_millis() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
