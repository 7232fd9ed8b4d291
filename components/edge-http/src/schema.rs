//! The SQLite schema the edge components share (users, login throttling, the job index and
//! user settings and presets), in one place so auth and gateway can never disagree. Every statement is a
//! cheap no-op once applied, so each component runs them on open.

pub const STATEMENTS: [&str; 9] = [
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
];
