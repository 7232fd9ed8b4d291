//! Server-Sent Events (`text/event-stream`): framing, and the pacing of a stream that follows a
//! changing state by polling it (send on change, keep alive when idle, give up after a while).

use std::time::Duration;

/// One event: `event: <name>` (if any), `id: <id>` (if any), one `data:` line per line of
/// `data`, and the blank line that dispatches it. Line breaks in `name` and `id` would start new
/// fields, so they are removed.
pub fn event(name: &str, id: Option<&str>, data: &str) -> String {
    let single_line = |s: &str| s.chars().filter(|c| *c != '\r' && *c != '\n').collect::<String>();
    let mut frame = String::with_capacity(data.len() + name.len() + 32);
    if !name.is_empty() {
        frame.push_str("event: ");
        frame.push_str(&single_line(name));
        frame.push('\n');
    }
    if let Some(id) = id {
        frame.push_str("id: ");
        frame.push_str(&single_line(id).replace('\0', ""));
        frame.push('\n');
    }
    for line in data.split('\n') {
        frame.push_str("data: ");
        frame.push_str(line.strip_suffix('\r').unwrap_or(line));
        frame.push('\n');
    }
    frame.push('\n');
    frame
}

/// A comment line, ignored by clients: keeps intermediaries from closing an idle stream.
pub fn comment(text: &str) -> String {
    let text: String = text.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    format!(": {text}\n\n")
}

/// What a polling stream does after looking at the state once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The state changed (or is seen for the first time): send it.
    Send,
    /// Nothing was sent for a while: send a keep-alive comment.
    KeepAlive,
    /// The stream has run for its whole allowance: say so and end.
    Timeout,
    /// Nothing to send; wait for the next poll.
    Wait,
}

/// Paces a stream that polls a state `S`. Times are on any monotonic clock, in nanoseconds.
#[derive(Debug, Clone)]
pub struct Pacer<S> {
    started: u64,
    last_write: u64,
    last: Option<S>,
    keep_alive: u64,
    limit: u64,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl<S: PartialEq> Pacer<S> {
    pub fn new(now: u64, keep_alive: Duration, limit: Duration) -> Pacer<S> {
        Pacer { started: now, last_write: now, last: None, keep_alive: nanos(keep_alive), limit: nanos(limit) }
    }

    /// Decides what to do with the state just read (`None` when it could not be read this
    /// time). A change is always sent, even when the time is up; the timeout comes next.
    pub fn step(&mut self, now: u64, state: Option<S>) -> Step {
        if let Some(state) = state
            && self.last.as_ref() != Some(&state)
        {
            self.last = Some(state);
            self.last_write = now;
            return Step::Send;
        }
        if now.saturating_sub(self.started) >= self.limit {
            return Step::Timeout;
        }
        if now.saturating_sub(self.last_write) >= self.keep_alive {
            self.last_write = now;
            return Step::KeepAlive;
        }
        Step::Wait
    }

    /// The state last sent.
    pub fn last(&self) -> Option<&S> {
        self.last.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn frames() {
        assert_eq!(event("done", None, r#"{"a":1}"#), "event: done\ndata: {\"a\":1}\n\n");
        assert_eq!(event("x\ny", Some("7\r"), "a\r\nb\nc"), "event: xy\nid: 7\ndata: a\ndata: b\ndata: c\n\n");
        assert_eq!(event("", None, ""), "data: \n\n");
        assert_eq!(comment("keep-alive"), ": keep-alive\n\n");
        assert_eq!(comment("a\nb"), ": ab\n\n");
    }

    #[test]
    fn sends_changes_keeps_alive_and_times_out() {
        let mut pacer = Pacer::new(0, Duration::from_secs(15), Duration::from_secs(60));
        assert_eq!(pacer.step(0, Some(("queued", 0))), Step::Send);
        assert_eq!(pacer.step(S, Some(("queued", 0))), Step::Wait);
        assert_eq!(pacer.step(2 * S, None), Step::Wait);
        assert_eq!(pacer.step(3 * S, Some(("converting", 0))), Step::Send);
        assert_eq!(pacer.step(4 * S, Some(("converting", 5))), Step::Send);
        assert_eq!(pacer.last(), Some(&("converting", 5)));
        // 15 s after the last write, a keep-alive; then 15 s after that one.
        assert_eq!(pacer.step(18 * S, Some(("converting", 5))), Step::Wait);
        assert_eq!(pacer.step(19 * S, Some(("converting", 5))), Step::KeepAlive);
        assert_eq!(pacer.step(20 * S, None), Step::Wait);
        assert_eq!(pacer.step(34 * S, None), Step::KeepAlive);
        // A change at the limit is still sent, then the stream times out.
        assert_eq!(pacer.step(60 * S, Some(("converting", 10))), Step::Send);
        assert_eq!(pacer.step(60 * S, Some(("converting", 10))), Step::Timeout);
        assert_eq!(pacer.step(61 * S, None), Step::Timeout);
    }
}
