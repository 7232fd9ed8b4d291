//! Failed-login throttling over the `login_failures` table (the decisions themselves are
//! `edge_auth::throttle`'s): an attempt is recorded as a failure of the subjects it counts
//! against (its pair, and as the client's trust says, its account and its client) BEFORE the
//! password is checked, in one statement that records nothing when any of them is throttled,
//! so parallel attempts cannot all pass a check made before any of them was counted. A
//! successful log-in takes its attempt back and remembers the address it came from
//! (`login_known_clients`). Log-ins and password changes (`PUT /users/me/password`, which
//! guesses the current password as a log-in guesses it) are throttled alike. Expired rows are
//! purged a bounded batch at a time, and an administrator can unlock an account.

use crate::Ctx;
use crate::db::db_error;
use edge_auth::devices;
use edge_auth::throttle::{KNOWN_CLIENT_SECS, Kind, Limits, Subjects, Trust, account_subject, pair_prefix, retry_after};
use edge_http::client::{client_address, throttle_key};
use edge_spin::{ApiError, Head};
use spin_sdk::sqlite::{Connection, Value};

/// Most expired rows deleted per log-in.
const PURGE_BATCH: i64 = 100;

/// Records the attempt for every subject it counts against (an absent one is passed as '')
/// if none of them is throttled, atomically; a row is returned per subject recorded. Mirrors
/// `edge_auth::throttle::retry_after` (?1 pair, ?2 account, ?3 client, ?4 now, ?5 window, ?6 per
/// pair, ?7 first delay, ?8 per account, ?9 per client; a pair's `window_start` is its last
/// failure).
const ADMIT: &str = "INSERT INTO login_failures (subject, failures, window_start)
     SELECT s.column1, 1, ?4 FROM (VALUES (?1), (?2), (?3)) AS s
     WHERE s.column1 <> '' AND NOT EXISTS (
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

/// Who is trying an account's password: the client's throttling key, the device it showed
/// (a valid device token of the account), and so the subjects the attempt counts against.
pub struct Attempt {
    pub client: String,
    pub device: Option<String>,
    pub subjects: Subjects,
}

impl Attempt {
    /// Reads who is trying `email`'s password from the request: the address the runtime saw
    /// (never a value the client wrote in front of it), the device tokens it carries, and
    /// whether the account logged in successfully from that address lately.
    pub fn of(ctx: &Ctx, head: &Head, email: &str) -> Result<Attempt, ApiError> {
        let client = client_key(ctx, head);
        let headers: Vec<&str> = head.header_values(devices::DEVICE_HEADER).collect();
        let cookies: Vec<&str> = head.header_values("cookie").collect();
        let device = devices::presented(&headers, &cookies)
            .into_iter()
            .find_map(|token| ctx.config.devices.verify(token, email, ctx.now));
        let trust = match &device {
            Some(device) => Trust::Device(device.clone()),
            None if is_known_client(&ctx.db, email, &client, ctx.now)? => Trust::KnownAddress,
            None => Trust::Stranger,
        };
        let subjects = Subjects::new(email, &client, &trust);
        Ok(Attempt { client, device, subjects })
    }

    /// Purges expired rows, then records the attempt, or answers 429 with `Retry-After` when
    /// one of its subjects is throttled (`what` says what was attempted).
    pub fn admit(&self, ctx: &Ctx, what: &str) -> Result<(), ApiError> {
        let limits = &ctx.config.limits;
        purge(&ctx.db, limits.window_secs, ctx.now)?;
        match admit(&ctx.db, &self.subjects, limits, ctx.now)? {
            None => Ok(()),
            Some(secs) => Err(ApiError::new(429, "too many attempts", format!("too many failed {what}; retry in {secs} s"))
                .header("retry-after", secs.to_string())),
        }
    }

    /// The password was right: the attempt is taken back and the address is remembered as the
    /// account's.
    pub fn succeeded(&self, ctx: &Ctx, email: &str) -> Result<(), ApiError> {
        succeeded(&ctx.db, &self.subjects)?;
        if self.client != UNKNOWN_CLIENT {
            ctx.db
                .execute(
                    "INSERT INTO login_known_clients (email, client, last_success) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (email, client) DO UPDATE SET last_success = excluded.last_success",
                    &[Value::Text(email.into()), Value::Text(self.client.clone()), int(ctx.now)],
                )
                .map_err(db_error)?;
        }
        Ok(())
    }
}

/// The throttling key of a client the runtime gave no readable address for.
const UNKNOWN_CLIENT: &str = "unknown";

/// The client's throttling key: the address the runtime saw (the LAST `spin-client-addr`, as
/// Spin appends its own after any a client sends), or behind a trusted proxy the address it
/// forwarded for.
fn client_key(ctx: &Ctx, head: &Head) -> String {
    let peer: Vec<&str> = head.header_values("spin-client-addr").collect();
    let forwarded: Vec<&str> = head.header_values("x-forwarded-for").collect();
    client_address(&peer, &forwarded, &ctx.config.trusted_proxies).map_or_else(|| UNKNOWN_CLIENT.to_string(), throttle_key)
}

/// Whether `email` logged in successfully from `client` within `KNOWN_CLIENT_SECS`.
fn is_known_client(db: &Connection, email: &str, client: &str, now: u64) -> Result<bool, ApiError> {
    if client == UNKNOWN_CLIENT {
        return Ok(false);
    }
    let result = db
        .execute(
            "SELECT 1 FROM login_known_clients WHERE email = ?1 AND client = ?2 AND last_success + ?3 > ?4",
            &[Value::Text(email.into()), Value::Text(client.into()), int(KNOWN_CLIENT_SECS), int(now)],
        )
        .map_err(db_error)?;
    Ok(result.rows().next().is_some())
}

fn int(n: u64) -> Value {
    Value::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Records the attempt as a failure and returns `None`, or, when one of its subjects is
/// throttled, records nothing and returns the seconds to wait.
fn admit(db: &Connection, subjects: &Subjects, limits: &Limits, now: u64) -> Result<Option<u64>, ApiError> {
    let params = [
        Value::Text(subjects.pair.clone()),
        Value::Text(subjects.account.clone().unwrap_or_default()),
        Value::Text(subjects.client.clone().unwrap_or_default()),
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
fn succeeded(db: &Connection, subjects: &Subjects) -> Result<(), ApiError> {
    db.execute("DELETE FROM login_failures WHERE subject = ?1", &[Value::Text(subjects.pair.clone())])
        .map_err(db_error)?;
    db.execute(
        "UPDATE login_failures SET failures = failures - 1 WHERE subject IN (?1, ?2) AND failures > 0",
        &[Value::Text(subjects.account.clone().unwrap_or_default()), Value::Text(subjects.client.clone().unwrap_or_default())],
    )
    .map_err(db_error)?;
    Ok(())
}

/// Deletes up to [`PURGE_BATCH`] rows whose window has passed (they no longer count), and as
/// many known addresses unused for [`KNOWN_CLIENT_SECS`].
fn purge(db: &Connection, window_secs: u64, now: u64) -> Result<(), ApiError> {
    db.execute(
        "DELETE FROM login_failures WHERE rowid IN \
         (SELECT rowid FROM login_failures WHERE window_start <= ?1 LIMIT ?2)",
        &[int(now.saturating_sub(window_secs)), Value::Integer(PURGE_BATCH)],
    )
    .map_err(db_error)?;
    db.execute(
        "DELETE FROM login_known_clients WHERE rowid IN \
         (SELECT rowid FROM login_known_clients WHERE last_success <= ?1 LIMIT ?2)",
        &[int(now.saturating_sub(KNOWN_CLIENT_SECS)), Value::Integer(PURGE_BATCH)],
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

/// Unix seconds until which `email` is throttled (its account, or one of its address pairs:
/// what an administrator's unlock clears), or `None` when nothing of it is throttled now.
pub fn locked_until(db: &Connection, email: &str, limits: &Limits, now: u64) -> Result<Option<u64>, ApiError> {
    let account = account_subject(email);
    let prefix = pair_prefix(email);
    let result = db
        .execute(
            "SELECT subject, failures, window_start FROM login_failures \
             WHERE (subject = ?1 OR substr(subject, 1, length(?2)) = ?2) AND window_start + ?3 > ?4",
            &[Value::Text(account.clone()), Value::Text(prefix), int(limits.window_secs), int(now)],
        )
        .map_err(db_error)?;
    let mut until = None;
    for row in result.rows() {
        let (Some(subject), Some(failures), Some(start)) =
            (row.get::<&str>("subject"), row.get::<u64>("failures"), row.get::<u64>("window_start"))
        else {
            continue;
        };
        let kind = if subject == account { Kind::Account } else { Kind::Pair };
        if let Some(wait) = retry_after(kind, failures, start, limits, now) {
            until = until.max(Some(now + wait));
        }
    }
    Ok(until)
}
