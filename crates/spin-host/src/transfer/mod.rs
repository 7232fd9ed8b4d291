//! Transfers paced by their client: the rules that end a request body or a response body whose
//! client has stopped or crawls, and the clock that applies them. No wall clock is involved: a
//! transfer that keeps to the rules goes on for as long as it takes.
//!
//! Only **client time** counts: the time a transfer is blocked on its client, and nothing else.
//! - A request body (`request`): from the moment the component asks for bytes that have not
//!   arrived until they arrive. Time the component spends elsewhere (working, on its backends,
//!   sleeping) is not the client's.
//! - A response (`response`): from the moment the connection's socket refuses bytes (the
//!   client's receive window and the kernel's send buffer are full) until it takes some again.
//!   Time the component takes to produce the next bytes is not the client's.
//!
//! Two rules, both over client time, for each direction on its own:
//! - **idle**: one wait that brings no byte for [`TransferRules::idle`]
//!   (`--body-idle-timeout-secs`, 30 s) ends the transfer;
//! - **rate floor**: client time is cut into consecutive windows of [`TransferRules::window`]
//!   (`--transfer-rate-window-secs`, 30 s), and in each window at least
//!   [`TransferRules::min_bytes_per_sec`] × window bytes must move
//!   (`--transfer-min-bytes-per-sec`, 16 KiB/s: 480 KiB in each 30 s the client keeps the
//!   transfer waiting). Bytes count in the window in which their wait ended. 0 turns it off.
//!
//! A fast client never accrues client time and is never judged; a slow one is judged only on
//! what it moves while the transfer waits for it.

pub mod request;
pub mod response;

use std::fmt;
use std::time::{Duration, Instant};

/// How slow a client may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferRules {
    /// Longest single wait for the client that brings no byte.
    pub idle: Duration,
    /// The rate floor, in bytes a second of client time; 0: none.
    pub min_bytes_per_sec: u64,
    /// The length of the windows the floor is checked over (at least 1 ms).
    pub window: Duration,
}

impl TransferRules {
    /// The bytes each window must move.
    pub fn floor_bytes(&self) -> u64 {
        let bytes = u128::from(self.min_bytes_per_sec) * self.window.as_nanos() / 1_000_000_000;
        u64::try_from(bytes).unwrap_or(u64::MAX)
    }
}

/// Why a transfer was ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// One wait brought nothing for the idle time.
    Stalled { waited: Duration },
    /// A window of client time moved fewer bytes than the floor asks.
    TooSlow { moved: u64, floor: u64, window: Duration },
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cut::Stalled { waited } => write!(f, "nothing moved for {:.1} s", waited.as_secs_f64()),
            Cut::TooSlow { moved, floor, window } => {
                write!(f, "{moved} bytes moved in {:.1} s of waiting on the client, below the floor of {floor}", window.as_secs_f64())
            }
        }
    }
}

/// The client time and bytes of one transfer, judged by its rules.
#[derive(Debug, Clone)]
pub struct ClientClock {
    rules: TransferRules,
    /// Client time of the waits that have ended.
    client_time: Duration,
    /// Bytes moved in the window `client_time` is in.
    window_bytes: u64,
    /// Bytes moved in all.
    moved: u64,
}

impl ClientClock {
    pub fn new(rules: TransferRules) -> ClientClock {
        ClientClock { rules, client_time: Duration::ZERO, window_bytes: 0, moved: 0 }
    }

    /// Bytes moved so far.
    pub fn moved(&self) -> u64 {
        self.moved
    }

    fn window_nanos(&self) -> u128 {
        self.rules.window.as_nanos().max(1_000_000)
    }

    fn floor_applies(&self) -> bool {
        self.rules.min_bytes_per_sec > 0
    }

    /// The window a wait that ended at client time `at` is in: a wait that ends exactly at a
    /// window's end still counts in it.
    fn window_of(&self, at: Duration) -> u128 {
        at.as_nanos().saturating_sub(1) / self.window_nanos()
    }

    /// Records a wait of `waited` that ended with `bytes` moving (a wait of zero when the bytes
    /// were there at once). An error ends the transfer.
    pub fn record(&mut self, waited: Duration, bytes: u64) -> Result<(), Cut> {
        let before = self.window_of(self.client_time);
        self.client_time += waited;
        let after = self.window_of(self.client_time);
        self.moved += bytes;
        if after == before {
            self.window_bytes += bytes;
            return Ok(());
        }
        // The wait closed one window or more; its bytes belong to the one it ended in.
        let closed = std::mem::replace(&mut self.window_bytes, bytes);
        if !self.floor_applies() {
            return Ok(());
        }
        let floor = self.rules.floor_bytes();
        if closed < floor {
            return Err(Cut::TooSlow { moved: closed, floor, window: self.rules.window });
        }
        if after > before + 1 {
            return Err(Cut::TooSlow { moved: 0, floor, window: self.rules.window });
        }
        Ok(())
    }

    /// Client time left in the current window, and whether that window already has its bytes
    /// (then the next one, which the wait would leave empty, is the one that can fail).
    fn window_left(&self) -> (u128, bool) {
        let window = self.window_nanos();
        let end = (self.window_of(self.client_time) + 1) * window;
        (end - self.client_time.as_nanos(), self.window_bytes >= self.rules.floor_bytes())
    }

    /// Whether a wait that has lasted `waiting` so far, with nothing moved yet, ends the
    /// transfer now.
    pub fn check_waiting(&self, waiting: Duration) -> Option<Cut> {
        if waiting >= self.rules.idle {
            return Some(Cut::Stalled { waited: waiting });
        }
        if !self.floor_applies() {
            return None;
        }
        let (left, has_its_bytes) = self.window_left();
        let waiting = waiting.as_nanos();
        let floor = self.rules.floor_bytes();
        let window = self.rules.window;
        match has_its_bytes {
            false if waiting >= left => Some(Cut::TooSlow { moved: self.window_bytes, floor, window }),
            true if waiting >= left + self.window_nanos() => Some(Cut::TooSlow { moved: 0, floor, window }),
            _ => None,
        }
    }

    /// When a wait that began at `since` ends the transfer if nothing moves before.
    pub fn due(&self, since: Instant) -> Instant {
        let mut limit = self.rules.idle;
        if self.floor_applies() {
            let (left, has_its_bytes) = self.window_left();
            let left = if has_its_bytes { left + self.window_nanos() } else { left };
            limit = limit.min(Duration::from_nanos(u64::try_from(left).unwrap_or(u64::MAX)));
        }
        since + limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn rules(idle: u64, rate: u64, window: u64) -> TransferRules {
        TransferRules { idle: SEC * idle as u32, min_bytes_per_sec: rate, window: SEC * window as u32 }
    }

    #[test]
    fn a_fast_client_accrues_no_client_time_and_is_never_judged() {
        let mut clock = ClientClock::new(rules(30, 16 << 10, 30));
        for _ in 0..100_000 {
            clock.record(Duration::ZERO, 1).unwrap();
        }
        assert_eq!(clock.moved(), 100_000);
        assert_eq!(clock.check_waiting(SEC * 29), None);
        assert_eq!(clock.check_waiting(SEC * 30), Some(Cut::Stalled { waited: SEC * 30 }));
    }

    #[test]
    fn a_client_at_the_floor_goes_on_for_ever_and_one_below_it_is_cut_at_the_window_end() {
        // 16 KiB every second of waiting: exactly the floor, for an hour of client time.
        let mut clock = ClientClock::new(rules(30, 16 << 10, 30));
        for _ in 0..3600 {
            clock.record(SEC, 16 << 10).unwrap();
        }
        // 15 KiB a second: the first window is short, which the 31st wait finds.
        let mut clock = ClientClock::new(rules(30, 16 << 10, 30));
        let mut cut = None;
        for second in 1..=60 {
            if let Err(c) = clock.record(SEC, 15 << 10) {
                cut = Some((second, c));
                break;
            }
        }
        assert_eq!(cut, Some((31, Cut::TooSlow { moved: 30 * (15 << 10), floor: 30 * (16 << 10), window: SEC * 30 })));
        // Waiting, the same client is cut the moment its window ends.
        let mut clock = ClientClock::new(rules(30, 16 << 10, 30));
        for _ in 0..29 {
            clock.record(SEC, 15 << 10).unwrap();
        }
        assert_eq!(clock.check_waiting(SEC - Duration::from_nanos(1)), None);
        assert_eq!(clock.check_waiting(SEC), Some(Cut::TooSlow { moved: 29 * (15 << 10), floor: 30 * (16 << 10), window: SEC * 30 }));
    }

    #[test]
    fn time_the_client_is_not_waited_on_does_not_count() {
        // A component that reads slowly never puts its client in the wrong: no waits, no window.
        let mut clock = ClientClock::new(rules(2, 1 << 20, 2));
        clock.record(Duration::ZERO, 1).unwrap();
        assert_eq!(clock.check_waiting(Duration::from_millis(1999)), None);
    }

    #[test]
    fn a_wait_ends_the_transfer_at_the_first_rule_it_breaks() {
        let start = Instant::now();
        // Idle first: an idle time shorter than the window.
        let clock = ClientClock::new(rules(3, 100, 10));
        assert_eq!(clock.due(start), start + SEC * 3);
        assert_eq!(clock.check_waiting(SEC * 3), Some(Cut::Stalled { waited: SEC * 3 }));
        // The window first: its end comes before the idle time and it lacks bytes.
        let mut clock = ClientClock::new(rules(20, 100, 5));
        clock.record(SEC * 2, 150).unwrap();
        assert_eq!(clock.due(start), start + SEC * 3);
        assert_eq!(clock.check_waiting(SEC * 3 - Duration::from_nanos(1)), None);
        assert_eq!(clock.check_waiting(SEC * 3), Some(Cut::TooSlow { moved: 150, floor: 500, window: SEC * 5 }));
        // A window that already has its bytes passes; the next, empty, fails at its end.
        let mut clock = ClientClock::new(rules(20, 100, 5));
        clock.record(SEC * 2, 600).unwrap();
        assert_eq!(clock.due(start), start + SEC * 8);
        assert_eq!(clock.check_waiting(SEC * 7), None);
        assert_eq!(clock.check_waiting(SEC * 8), Some(Cut::TooSlow { moved: 0, floor: 500, window: SEC * 5 }));
    }

    #[test]
    fn a_wait_over_a_whole_window_fails_it_whatever_comes_at_its_end() {
        let mut clock = ClientClock::new(rules(60, 100, 5));
        clock.record(SEC, 1000).unwrap();
        assert_eq!(clock.record(SEC * 10, 1 << 20), Err(Cut::TooSlow { moved: 0, floor: 500, window: SEC * 5 }));
    }

    #[test]
    fn without_a_floor_only_the_idle_rule_holds() {
        let mut clock = ClientClock::new(rules(30, 0, 30));
        for _ in 0..1000 {
            clock.record(SEC * 29, 1).unwrap();
        }
        let start = Instant::now();
        assert_eq!(clock.due(start), start + SEC * 30);
        assert_eq!(clock.check_waiting(SEC * 29), None);
    }
}
