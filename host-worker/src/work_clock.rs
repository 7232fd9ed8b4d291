//! The work a request's component does, which `--request-timeout-secs` bounds, and the reasons
//! the host stops a component.
//!
//! **Work** is the CPU time of the host's threads while they run the component's call: its wasm
//! and the host functions that run in place (instantiation included). It is measured around
//! every poll of the call's future with the thread's CPU clock (`CLOCK_THREAD_CPUTIME_ID`), so
//! whatever the call waits for — its client's bytes or its client taking bytes (a slow link),
//! a timer (the event stream sleeps between reads of the job record), a backend's answer —
//! is not work, and neither is time the machine gives to other processes. A component that
//! loops busily spends its budget at the rate of a core; one that sleeps cheaply or streams to
//! a slow reader spends next to nothing.
//!
//! The budget is checked from the store's epoch callback, which runs on the polling thread each
//! tick (10 ms) the guest executes, so a busy guest is stopped within a tick of its budget. The
//! wall clock has no part in it; `http_trigger` keeps a separate, generous absolute bound.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

/// Why the host stopped a request's component before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Its work passed `--request-timeout-secs`.
    WorkBudget(Duration),
    /// The request passed `--request-max-secs` of wall-clock time, waiting included.
    TimeLimit(Duration),
    /// The host shut down and the request outlasted the grace it was given.
    Shutdown,
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stopped::WorkBudget(budget) => write!(f, "deadline of {} s of work exceeded", budget.as_secs_f64()),
            Stopped::TimeLimit(limit) => write!(f, "deadline of {} s in all exceeded", limit.as_secs_f64()),
            Stopped::Shutdown => write!(f, "stopped by the host's shutdown"),
        }
    }
}

impl std::error::Error for Stopped {}

/// The CPU time the calling thread has used.
pub fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid clock id and a pointer to a timespec that lives across the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

const NOT_RUNNING: u64 = u64::MAX;

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1)
}

/// The work one component call has done, against its budget.
#[derive(Debug)]
pub struct WorkClock {
    budget: Duration,
    /// Work of the polls that have ended, in nanoseconds.
    spent: AtomicU64,
    /// The polling thread's CPU time when the current poll began (`NOT_RUNNING` between polls).
    poll_began: AtomicU64,
}

impl WorkClock {
    pub fn new(budget: Duration) -> Arc<WorkClock> {
        Arc::new(WorkClock { budget, spent: AtomicU64::new(0), poll_began: AtomicU64::new(NOT_RUNNING) })
    }

    /// The work done so far. Inside a poll, call it on the polling thread (the epoch callback
    /// does): the current poll's share is read from that thread's clock.
    pub fn spent(&self) -> Duration {
        let spent = Duration::from_nanos(self.spent.load(Ordering::Relaxed));
        match self.poll_began.load(Ordering::Relaxed) {
            NOT_RUNNING => spent,
            began => spent + thread_cpu_time().saturating_sub(Duration::from_nanos(began)),
        }
    }

    /// An error once the budget is spent.
    pub fn check(&self) -> Result<(), Stopped> {
        match self.spent() > self.budget {
            true => Err(Stopped::WorkBudget(self.budget)),
            false => Ok(()),
        }
    }

    /// `call`, with the work of each of its polls counted on this clock.
    pub fn meter<F: Future>(self: &Arc<Self>, call: F) -> Metered<F> {
        Metered { call: Box::pin(call), clock: self.clone() }
    }
}

/// A future whose polls count as work on a [`WorkClock`].
pub struct Metered<F> {
    call: Pin<Box<F>>,
    clock: Arc<WorkClock>,
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let began = thread_cpu_time();
        self.clock.poll_began.store(nanos(began), Ordering::Relaxed);
        let result = self.call.as_mut().poll(cx);
        let used = thread_cpu_time().saturating_sub(began);
        self.clock.poll_began.store(NOT_RUNNING, Ordering::Relaxed);
        self.clock.spent.fetch_add(nanos(used), Ordering::Relaxed);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burn(d: Duration) {
        let start = thread_cpu_time();
        let mut x = 0u64;
        while thread_cpu_time() - start < d {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    #[tokio::test]
    async fn busy_polls_count_and_waiting_does_not() {
        let clock = WorkClock::new(Duration::from_millis(200));
        let inner = clock.clone();
        let call = clock.meter(async move {
            burn(Duration::from_millis(50));
            assert!(inner.spent() >= Duration::from_millis(50), "the running poll counts: {:?}", inner.spent());
            // Asleep for half a second: no work.
            tokio::time::sleep(Duration::from_millis(500)).await;
            burn(Duration::from_millis(50));
        });
        call.await;
        let spent = clock.spent();
        assert!(spent >= Duration::from_millis(100) && spent < Duration::from_millis(150), "{spent:?}");
        assert_eq!(clock.check(), Ok(()));
    }

    #[tokio::test]
    async fn the_budget_is_spent_by_busy_work_only() {
        let clock = WorkClock::new(Duration::from_millis(30));
        let inner = clock.clone();
        let outcome = clock
            .meter(async move {
                loop {
                    burn(Duration::from_millis(5));
                    if let Err(stopped) = inner.check() {
                        return stopped;
                    }
                    tokio::task::yield_now().await;
                }
            })
            .await;
        assert_eq!(outcome, Stopped::WorkBudget(Duration::from_millis(30)));
        assert!(clock.spent() < Duration::from_millis(40), "{:?}", clock.spent());
    }
}
