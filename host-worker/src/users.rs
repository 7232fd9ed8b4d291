//! `mp3edge users add|list|passwd|disable|enable`: account administration on a data directory,
//! for an operator at the server's console (the first administrator lost their password, a
//! script creating accounts). It writes the same SQLite database the auth component uses, with
//! the same schema (`edge_http::schema`), the same rules (`edge_auth::check_email`,
//! `check_password`) and the same argon2id hashes, so a running server sees changes at once.
//! The data directory is found as `up` finds it (`--data-dir`, else the application
//! directory's `.mp3edge`), and the database it opened is named on standard error, so an
//! operator sees which server's accounts they are changing.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use rusqlite::{Connection, OptionalExtension, params};

use crate::app_dir::{self, AppDir};
use spin_host::runtime_config::RuntimeConfig;

/// `mp3edge users`.
#[derive(Parser, Debug)]
pub struct UsersArgs {
    #[command(subcommand)]
    pub command: UsersCommand,
    /// The server's state directory (default: APP_DIR/.mp3edge).
    #[arg(long, global = true, help_heading = "Files")]
    pub data_dir: Option<PathBuf>,
    /// Spin runtime-config file, when the server runs with one (its `default` database).
    #[arg(long, global = true, help_heading = "Files")]
    pub runtime_config_file: Option<PathBuf>,
    /// The application directory (see `up --help`).
    #[arg(long, global = true, help_heading = "Files")]
    pub app_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Create an account; the password is asked for (or read from standard input's first line).
    Add {
        email: String,
        /// Make the account an administrator.
        #[arg(long)]
        admin: bool,
    },
    /// List the accounts.
    List,
    /// Set an account's password (asked for, or read from standard input's first line).
    Passwd { email: String },
    /// Deactivate an account: it can no longer sign in, and its tokens stop working at once.
    Disable { email: String },
    /// Reactivate a deactivated account.
    Enable { email: String },
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn open(args: &UsersArgs) -> Result<Connection> {
    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => AppDir::locate(args.app_dir.as_deref())?.or_default(None, app_dir::DATA_DIR),
    };
    if !data_dir.is_dir() {
        bail!("no data directory at {}\nhint: pass --data-dir DIR (the one `mp3edge up` uses)", data_dir.display());
    }
    // As `up` resolves it, so a runtime config's relative paths name the same files.
    let data_dir = data_dir.canonicalize()?;
    let config = RuntimeConfig::load(args.runtime_config_file.as_deref(), &data_dir)?;
    let path = config.sqlite_databases.get("default").context("the runtime config has no default database")?;
    let db = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    eprintln!("accounts of {} (data directory {})", path.display(), data_dir.display());
    db.busy_timeout(std::time::Duration::from_secs(5))?;
    for statement in edge_http::schema::STATEMENTS {
        db.execute_batch(statement)?;
    }
    Ok(db)
}

/// `2026-12-07 13:05 UTC`: a record's Unix seconds as a person reads them.
fn utc_minute(unix_secs: i64) -> String {
    match chrono::DateTime::from_timestamp(unix_secs, 0) {
        Some(time) => time.format("%Y-%m-%d %H:%M UTC").to_string(),
        None => format!("{unix_secs} (Unix seconds)"),
    }
}

/// A new password: asked twice without echo on a terminal, else standard input's first line.
fn read_password(email: &str) -> Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("New password for {email}: "))?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            bail!("the passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    edge_auth::check_password(&password, email).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(password)
}

fn hash(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(edge_auth::hash_password(password, &salt))
}

fn normalized(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    edge_auth::check_email(&email).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(email)
}

fn exists(db: &Connection, email: &str) -> Result<bool> {
    Ok(db.query_row("SELECT 1 FROM users WHERE email = ?1", params![email], |_| Ok(())).optional()?.is_some())
}

/// Runs one `users` subcommand and prints what it did.
pub fn run(args: UsersArgs) -> Result<()> {
    let db = open(&args)?;
    match &args.command {
        UsersCommand::Add { email, admin } => {
            let email = normalized(email)?;
            if exists(&db, &email)? {
                bail!("{email} already has an account\nhint: `mp3edge users passwd {email}` sets its password");
            }
            let hash = hash(&read_password(&email)?)?;
            db.execute(
                "INSERT INTO users (email, password_hash, admin, active, created_at) VALUES (?1, ?2, ?3, 1, ?4)",
                params![email, hash, *admin as i64, now()],
            )?;
            println!("added {email}{}", if *admin { " (administrator)" } else { "" });
        }
        UsersCommand::List => {
            let mut statement = db.prepare("SELECT email, admin, active, created_at FROM users ORDER BY email")?;
            let rows = statement.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? != 0, row.get::<_, i64>(2)? != 0, row.get::<_, i64>(3)?))
            })?;
            println!("{:<40} {:<6} {:<8} created", "email", "admin", "active");
            for row in rows {
                let (email, admin, active, created) = row?;
                println!("{email:<40} {:<6} {:<8} {}", if admin { "yes" } else { "no" }, if active { "yes" } else { "no" }, utc_minute(created));
            }
        }
        UsersCommand::Passwd { email } => {
            let email = normalized(email)?;
            if !exists(&db, &email)? {
                bail!("no account {email}");
            }
            let hash = hash(&read_password(&email)?)?;
            db.execute("UPDATE users SET password_hash = ?2 WHERE email = ?1", params![email, hash])?;
            // A forgotten password is often why an operator is here: lift the log-in throttle.
            let (account, pairs) = (edge_auth::throttle::account_subject(&email), edge_auth::throttle::pair_prefix(&email));
            db.execute("DELETE FROM login_failures WHERE subject = ?1 OR substr(subject, 1, length(?2)) = ?2", params![account, pairs])?;
            println!("password of {email} set");
        }
        UsersCommand::Disable { email } => {
            let email = normalized(email)?;
            let admin: Option<(i64, i64)> =
                db.query_row("SELECT admin, active FROM users WHERE email = ?1", params![email], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
            let Some((admin, _)) = admin else { bail!("no account {email}") };
            let other_admins: i64 =
                db.query_row("SELECT COUNT(*) FROM users WHERE admin = 1 AND active = 1 AND email != ?1", params![email], |r| r.get(0))?;
            if admin != 0 && other_admins == 0 {
                bail!("{email} is the last active administrator; make another one first");
            }
            db.execute("UPDATE users SET active = 0 WHERE email = ?1", params![email])?;
            println!("disabled {email}: it cannot sign in and its tokens no longer work");
        }
        UsersCommand::Enable { email } => {
            let email = normalized(email)?;
            if db.execute("UPDATE users SET active = 1 WHERE email = ?1", params![email])? == 0 {
                bail!("no account {email}");
            }
            println!("enabled {email}");
        }
    }
    Ok(())
}
