//! The work a request's component does, which `--request-timeout-secs` bounds, and the reasons
//! the host stops a component.
//!
//! **Work** is the time the host's threads spend running the component's call: its wasm and the
//! host functions that run in place (instantiation included), measured around every poll of the
//! call's future. Whatever the call waits for — its client's bytes or its client taking bytes (a
//! slow link), a timer (the event stream sleeps between reads of the job record), a backend's
//! answer — is not work. A component that loops busily spends its budget at the rate of a core;
//! one that sleeps cheaply or streams to a slow reader spends next to nothing.
//!
//! A poll counts by the wall clock until it has run for an epoch tick (10 ms); from then on, by
//! the thread's CPU clock (`CLOCK_THREAD_CPUTIME_ID`), so that on a busy machine the time other
//! processes take from a long computation is not counted against it. Short polls, which are
//! nearly all of them, skip the CPU clock: reading it is a system call (0.2 µs), and a trivial
//! request polls several times (measured: 3% of `GET /`'s throughput when every poll read it).
//!
//! The budget is checked from the store's epoch callback, which runs on the polling thread each
//! tick the guest executes, so a busy guest is stopped within a tick of its budget. The time a
//! request is open has no part in it; `http_trigger` keeps a separate, generous absolute bound.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Why the host stopped a request's component before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Its work passed `--request-timeout-secs`.
    WorkBudget(Duration),
    /// The request passed `--request-max-secs` of wall-clock time, waiting included.
    TimeLimit(Duration),
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stopped::WorkBudget(budget) => write!(f, "deadline of {} s of work exceeded", budget.as_secs_f64()),
            Stopped::TimeLimit(limit) => write!(f, "deadline of {} s in all exceeded", limit.as_secs_f64()),
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

/// "No value" in the clock's atomic fields.
const UNSET: u64 = u64::MAX;

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(UNSET - 1)
}

/// The work one component call has done, against its budget. Its fields are written by the
/// thread polling the call and by the epoch callback inside that poll, never at once.
#[derive(Debug)]
pub struct WorkClock {
    budget: Duration,
    /// Where the wall-clock readings below count from.
    origin: Instant,
    /// Work of the polls that have ended, in nanoseconds.
    spent: AtomicU64,
    /// When the current poll began, on the wall clock (`UNSET` between polls).
    poll_began: AtomicU64,
    /// The polling thread's CPU clock when the current poll switched to it (`UNSET`: not yet).
    cpu_mark: AtomicU64,
    /// The wall clock at that switch.
    wall_mark: AtomicU64,
}

impl WorkClock {
    pub fn new(budget: Duration) -> Arc<WorkClock> {
        Arc::new(WorkClock {
            budget,
            origin: Instant::now(),
            spent: AtomicU64::new(0),
            poll_began: AtomicU64::new(UNSET),
            cpu_mark: AtomicU64::new(UNSET),
            wall_mark: AtomicU64::new(0),
        })
    }

    fn wall(&self) -> u64 {
        nanos(self.origin.elapsed())
    }

    /// The current poll's work so far; on the polling thread only. Switches the poll to the CPU
    /// clock when `switch` and it has not switched yet.
    fn this_poll(&self, switch: bool) -> u64 {
        let began = self.poll_began.load(Ordering::Relaxed);
        if began == UNSET {
            return 0;
        }
        match self.cpu_mark.load(Ordering::Relaxed) {
            UNSET => {
                let now = self.wall();
                if switch {
                    self.cpu_mark.store(nanos(thread_cpu_time()), Ordering::Relaxed);
                    self.wall_mark.store(now, Ordering::Relaxed);
                }
                now.saturating_sub(began)
            }
            mark => {
                let before = self.wall_mark.load(Ordering::Relaxed).saturating_sub(began);
                before + nanos(thread_cpu_time()).saturating_sub(mark)
            }
        }
    }

    /// The work done so far. Inside a poll, call it on the polling thread (the epoch callback
    /// does): from then on the poll counts by that thread's CPU clock.
    pub fn spent(&self) -> Duration {
        Duration::from_nanos(self.spent.load(Ordering::Relaxed) + self.this_poll(true))
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
        Metered { call, clock: self.clone() }
    }
}

pin_project_lite::pin_project! {
    /// A future whose polls count as work on a [`WorkClock`].
    pub struct Metered<F> {
        #[pin]
        call: F,
        clock: Arc<WorkClock>,
    }
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let clock: &WorkClock = this.clock;
        clock.poll_began.store(clock.wall(), Ordering::Relaxed);
        let result = this.call.poll(cx);
        let used = clock.this_poll(false);
        clock.poll_began.store(UNSET, Ordering::Relaxed);
        clock.cpu_mark.store(UNSET, Ordering::Relaxed);
        clock.spent.fetch_add(used, Ordering::Relaxed);
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
        // 100 ms of work; the half second asleep would make it 600 ms or more. The margin is
        // for a loaded machine, where a poll's 50 ms of CPU takes longer (seen: 177 ms in all).
        assert!(spent >= Duration::from_millis(100) && spent < Duration::from_millis(400), "{spent:?}");
        assert_eq!(clock.check(), Ok(()));
    }

    #[tokio::test]
    async fn a_long_poll_counts_by_the_cpu_clock_once_it_has_switched() {
        let clock = WorkClock::new(Duration::from_secs(10));
        let inner = clock.clone();
        clock
            .meter(async move {
                burn(Duration::from_millis(20));
                // The epoch callback's first look switches the poll to the CPU clock.
                inner.spent();
                // Asleep without yielding (the thread is off the CPU): not work any more.
                std::thread::sleep(Duration::from_millis(300));
                burn(Duration::from_millis(20));
            })
            .await;
        let spent = clock.spent();
        assert!(spent >= Duration::from_millis(40) && spent < Duration::from_millis(150), "{spent:?}");
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
