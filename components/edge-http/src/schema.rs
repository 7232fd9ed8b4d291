//! The SQLite schema the edge components share (users, login throttling, the job index,
//! user settings and presets, API tokens and session versions), in one place so auth, gateway and
//! `mp3edge users` can never disagree. Every statement is a cheap no-op once applied, so each
//! component runs them on open.
//!
//! When sessions end is kept by the database itself, in triggers, so it holds whoever changes a
//! user (the auth component or `mp3edge users` at the console): a deactivation or a new password
//! moves the user's session version on (every session token issued before stops working), and
//! a deactivation or deletion deletes the user's API tokens, so a reactivated account starts
//! without any of its old credentials.

pub const STATEMENTS: [&str; 17] = [
    "CREATE TABLE IF NOT EXISTS users (email TEXT PRIMARY KEY, password_hash TEXT NOT NULL, \
     admin INTEGER NOT NULL DEFAULT 0, active INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS login_failures (subject TEXT PRIMARY KEY, failures INTEGER NOT NULL, \
     window_start INTEGER NOT NULL)",
    // Expired throttling rows are purged by `window_start` on every log-in.
    "CREATE INDEX IF NOT EXISTS login_failures_by_start ON login_failures (window_start)",
    "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, owner TEXT NOT NULL, created_at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, created_at)",
    "CREATE TABLE IF NOT EXISTS user_settings (email TEXT PRIMARY KEY, default_callback TEXT)",
    // Addresses each account logged in from successfully, and when last: log-in throttling
    // does not hold them to the account's ceiling (`edge_auth::throttle::Trust`).
    "CREATE TABLE IF NOT EXISTS login_known_clients (email TEXT NOT NULL, client TEXT NOT NULL, \
     last_success INTEGER NOT NULL, PRIMARY KEY (email, client))",
    "CREATE INDEX IF NOT EXISTS login_known_clients_by_time ON login_known_clients (last_success)",
    // A user's saved conversion settings (`/users/me/presets`): upload options as JSON.
    "CREATE TABLE IF NOT EXISTS user_presets (email TEXT NOT NULL, name TEXT NOT NULL, params TEXT NOT NULL, \
     updated_at INTEGER NOT NULL, PRIMARY KEY (email, name))",
    // Personal API tokens: only the secret's SHA-256 is kept (`edge_auth::api_tokens`).
    "CREATE TABLE IF NOT EXISTS api_tokens (id TEXT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL, \
     secret_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL, expires_at INTEGER, last_used_at INTEGER)",
    "CREATE INDEX IF NOT EXISTS api_tokens_by_email ON api_tokens (email, created_at)",
    // A user's session version (0 without a row): session tokens carry the version they were
    // issued under and are refused once it moved on.
    "CREATE TABLE IF NOT EXISTS user_sessions (email TEXT PRIMARY KEY, version INTEGER NOT NULL)",
    // Session tokens ended one by one (`POST /logout`), by their id, until they would have
    // expired anyway (then the row is purged).
    "CREATE TABLE IF NOT EXISTS ended_sessions (jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ended_sessions_by_expiry ON ended_sessions (expires_at)",
    "CREATE TRIGGER IF NOT EXISTS users_deactivated AFTER UPDATE OF active ON users \
     WHEN OLD.active = 1 AND NEW.active = 0 BEGIN \
     DELETE FROM api_tokens WHERE email = NEW.email; \
     INSERT OR IGNORE INTO user_sessions (email, version) VALUES (NEW.email, 0); \
     UPDATE user_sessions SET version = version + 1 WHERE email = NEW.email; END",
    "CREATE TRIGGER IF NOT EXISTS users_password_changed AFTER UPDATE OF password_hash ON users \
     WHEN OLD.password_hash IS NOT NEW.password_hash BEGIN \
     INSERT OR IGNORE INTO user_sessions (email, version) VALUES (NEW.email, 0); \
     UPDATE user_sessions SET version = version + 1 WHERE email = NEW.email; END",
    "CREATE TRIGGER IF NOT EXISTS users_deleted AFTER DELETE ON users BEGIN \
     DELETE FROM api_tokens WHERE email = OLD.email; \
     DELETE FROM user_sessions WHERE email = OLD.email; END",
];

/// The schema's version, derived from its statements (FNV-1a over their text, folded to 31 bits):
/// a database whose `PRAGMA user_version` says this already has every statement applied, so a
/// component's request runs one statement instead of all of them. It changes whenever a
/// statement does, so no one has to remember to bump it.
pub const VERSION: i64 = version_of(&STATEMENTS);

/// [`VERSION`] of any list of statements.
pub const fn version_of(statements: &[&str]) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut s = 0;
    while s < statements.len() {
        let bytes = statements[s].as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            hash ^= bytes[i] as u64;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
            i += 1;
        }
        // A separator, so moving text from one statement to the next changes the version too.
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        s += 1;
    }
    // `user_version` is a signed 32-bit integer; 0 is a database no schema was applied to.
    let folded = ((hash >> 32) ^ hash) & 0x7fff_ffff;
    if folded == 0 { 1 } else { folded as i64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_follows_every_statement() {
        assert_eq!(VERSION, version_of(&STATEMENTS));
        assert!(VERSION > 0 && VERSION <= i64::from(i32::MAX));
        let mut changed = STATEMENTS;
        changed[16] = "CREATE TABLE IF NOT EXISTS other (x)";
        assert_ne!(version_of(&changed), VERSION);
        assert_ne!(version_of(&["ab", "c"]), version_of(&["a", "bc"]));
    }
}
