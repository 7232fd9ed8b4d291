//! Failed-login throttling over the `login_failures` table (the decisions themselves are
//! `edge_auth::throttle`'s): an attempt is recorded as a failure of its (account, client) pair,
//! its account and its client BEFORE the password is checked, in one statement that records
//! nothing when any of the three is throttled, so parallel attempts cannot all pass a check
//! made before any of them was counted. A successful log-in takes its attempt back. Expired
//! rows are purged a bounded batch at a time, and an administrator can unlock an account.

use crate::db::db_error;
use edge_auth::throttle::{Kind, Limits, account_subject, client_subject, pair_prefix, pair_subject, retry_after};
use edge_spin::ApiError;
use spin_sdk::sqlite::{Connection, Value};

/// Most expired rows deleted per log-in.
const PURGE_BATCH: i64 = 100;

/// Records the attempt for all three subjects if none of them is throttled, atomically; a row
/// is returned per subject recorded. Mirrors `edge_auth::throttle::retry_after` (?1 pair,
/// ?2 account, ?3 client, ?4 now, ?5 window, ?6 per pair, ?7 first delay, ?8 per account,
/// ?9 per client; a pair's `window_start` is its last failure).
const ADMIT: &str = "INSERT INTO login_failures (subject, failures, window_start)
     SELECT s.column1, 1, ?4 FROM (VALUES (?1), (?2), (?3)) AS s
     WHERE NOT EXISTS (
       SELECT 1 FROM login_failures f
       WHERE f.subject IN (?1, ?2, ?3) AND f.window_start + ?5 > ?4 AND (
            (f.subject = ?2 AND ?8 > 0 AND f.failures >= ?8)
         OR (f.subject = ?3 AND ?9 > 0 AND f.failures >= ?9)
         OR (f.subject = ?1 AND ?6 > 0 AND f.failures >= ?6
             AND ?4 < f.window_start + MIN(?7 << MIN(f.failures - ?6, 20), ?5))))
     ON CONFLICT (subject) DO UPDATE SET
       failures = CASE WHEN window_start + ?5 <= ?4 THEN 1 ELSE failures + 1 END,
       window_start = CASE WHEN subject = ?1 OR window_start + ?5 <= ?4 THEN ?4 ELSE window_start END
     RETURNING subject";

/// The three subjects one log-in attempt counts against.
pub struct Subjects {
    pair: String,
    account: String,
    client: String,
}

impl Subjects {
    /// `client` is the client's throttling key (`edge_http::client::throttle_key`).
    pub fn new(email: &str, client: &str) -> Subjects {
        Subjects { pair: pair_subject(email, client), account: account_subject(email), client: client_subject(client) }
    }

    fn all(&self) -> [(Kind, &str); 3] {
        [(Kind::Pair, &self.pair), (Kind::Account, &self.account), (Kind::Client, &self.client)]
    }
}

fn int(n: u64) -> Value {
    Value::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Records the attempt as a failure and returns `None`, or, when the pair, the account or the
/// client is throttled, records nothing and returns the seconds to wait.
pub fn admit(db: &Connection, subjects: &Subjects, limits: &Limits, now: u64) -> Result<Option<u64>, ApiError> {
    let params = [
        Value::Text(subjects.pair.clone()),
        Value::Text(subjects.account.clone()),
        Value::Text(subjects.client.clone()),
        int(now),
        int(limits.window_secs),
        int(limits.per_pair.into()),
        int(limits.first_delay_secs),
        int(limits.per_account.into()),
        int(limits.per_client.into()),
    ];
    if db.execute(ADMIT, &params).map_err(db_error)?.rows().next().is_some() {
        return Ok(None);
    }
    // Refused: how long for (read after the fact, so at least a second if it just ended).
    let mut wait = 1;
    for (kind, subject) in subjects.all() {
        let result = db
            .execute("SELECT failures, window_start FROM login_failures WHERE subject = ?1", &[Value::Text(subject.into())])
            .map_err(db_error)?;
        for row in result.rows() {
            if let (Some(failures), Some(start)) = (row.get::<u64>("failures"), row.get::<u64>("window_start")) {
                wait = wait.max(retry_after(kind, failures, start, limits, now).unwrap_or(0));
            }
        }
    }
    Ok(Some(wait))
}

/// Takes back a successful attempt: the pair starts afresh (its owner is proven), the account
/// and client counts lose the one recorded for it (others' failures stay).
pub fn succeeded(db: &Connection, subjects: &Subjects) -> Result<(), ApiError> {
    db.execute("DELETE FROM login_failures WHERE subject = ?1", &[Value::Text(subjects.pair.clone())])
        .map_err(db_error)?;
    db.execute(
        "UPDATE login_failures SET failures = failures - 1 WHERE subject IN (?1, ?2) AND failures > 0",
        &[Value::Text(subjects.account.clone()), Value::Text(subjects.client.clone())],
    )
    .map_err(db_error)?;
    Ok(())
}

/// Deletes up to [`PURGE_BATCH`] rows whose window has passed (they no longer count).
pub fn purge(db: &Connection, window_secs: u64, now: u64) -> Result<(), ApiError> {
    db.execute(
        "DELETE FROM login_failures WHERE rowid IN \
         (SELECT rowid FROM login_failures WHERE window_start <= ?1 LIMIT ?2)",
        &[Value::Integer(now.saturating_sub(window_secs) as i64), Value::Integer(PURGE_BATCH)],
    )
    .map_err(db_error)?;
    Ok(())
}

/// Clears an account's throttling: its account row and the rows of all its pairs.
pub fn unlock(db: &Connection, email: &str) -> Result<(), ApiError> {
    let prefix = pair_prefix(email);
    db.execute(
        "DELETE FROM login_failures WHERE subject = ?1 OR substr(subject, 1, length(?2)) = ?2",
        &[Value::Text(account_subject(email)), Value::Text(prefix)],
    )
    .map_err(db_error)?;
    Ok(())
}
