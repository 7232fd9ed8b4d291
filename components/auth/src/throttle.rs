//! Failed-login throttling: a fixed window of failures per subject (`account:<email>` or
//! `client:<ip>`), kept in the `login_failures` table.

use crate::db::db_error;
use edge_spin::ApiError;
use spin_sdk::sqlite::{Connection, Value};

pub struct Limits {
    /// Failures allowed per account within the window (0 disables the check).
    pub per_account: u32,
    /// Failures allowed per client address within the window (0 disables the check).
    pub per_client: u32,
    pub window_secs: u64,
}

/// Seconds until a subject with `failures` failures in the window that started at
/// `window_start` may try again; `None` when it may try now.
pub fn retry_after(failures: u64, window_start: u64, max: u32, window_secs: u64, now: u64) -> Option<u64> {
    let end = window_start.saturating_add(window_secs);
    (max > 0 && failures >= u64::from(max) && now < end).then(|| end - now)
}

/// The subject part of a `spin-client-addr` (`ip:port`, `[ipv6]:port`) value.
pub fn client_ip(addr: &str) -> &str {
    let addr = addr.trim();
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match addr.split_once(':') {
        Some((ip, port)) if !port.contains(':') => ip,
        _ => addr,
    }
}

/// The longest wait imposed by any of `subjects` (each with its own limit), if any.
pub fn blocked(db: &Connection, subjects: &[(&str, u32)], window_secs: u64, now: u64) -> Result<Option<u64>, ApiError> {
    let mut wait = None;
    for &(subject, max) in subjects {
        let result = db
            .execute(
                "SELECT failures, window_start FROM login_failures WHERE subject = ?1",
                &[Value::Text(subject.to_string())],
            )
            .map_err(db_error)?;
        for row in result.rows() {
            if let (Some(failures), Some(start)) = (row.get::<u64>("failures"), row.get::<u64>("window_start")) {
                wait = wait.max(retry_after(failures, start, max, window_secs, now));
            }
        }
    }
    Ok(wait)
}

/// Counts one failure for `subject`, opening a new window when the last one has ended.
pub fn record_failure(db: &Connection, subject: &str, window_secs: u64, now: u64) -> Result<(), ApiError> {
    db.execute(
        "INSERT INTO login_failures (subject, failures, window_start) VALUES (?1, 1, ?2)
         ON CONFLICT (subject) DO UPDATE SET
           failures = CASE WHEN window_start + ?3 <= ?2 THEN 1 ELSE failures + 1 END,
           window_start = CASE WHEN window_start + ?3 <= ?2 THEN ?2 ELSE window_start END",
        &[Value::Text(subject.to_string()), Value::Integer(now as i64), Value::Integer(window_secs as i64)],
    )
    .map_err(db_error)?;
    Ok(())
}

pub fn clear(db: &Connection, subject: &str) -> Result<(), ApiError> {
    db.execute("DELETE FROM login_failures WHERE subject = ?1", &[Value::Text(subject.to_string())])
        .map_err(db_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        assert_eq!(retry_after(5, 100, 5, 60, 130), Some(30));
        assert_eq!(retry_after(4, 100, 5, 60, 130), None);
        assert_eq!(retry_after(9, 100, 5, 60, 160), None);
        assert_eq!(retry_after(9, 100, 0, 60, 130), None);
    }

    #[test]
    fn client_addresses() {
        assert_eq!(client_ip("10.0.0.1:5000"), "10.0.0.1");
        assert_eq!(client_ip("[::1]:5000"), "::1");
        assert_eq!(client_ip("::1"), "::1");
        assert_eq!(client_ip("10.0.0.1"), "10.0.0.1");
    }
}
