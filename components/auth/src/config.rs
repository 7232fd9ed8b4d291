//! The component's variables, read and checked on every request (a bad value is a 500 with a
//! clear detail, never a panic).

use edge_auth::TokenAuthority;
use edge_auth::devices::DeviceSigner;
use edge_auth::throttle::Limits;
use edge_http::client::TrustedProxies;
use edge_spin::ApiError;
use std::str::FromStr;

pub struct Config {
    pub tokens: TokenAuthority,
    /// Issues and checks device tokens (log-in throttling tells the owner's devices by them).
    pub devices: DeviceSigner,
    pub admin_email: String,
    pub admin_password: String,
    pub limits: Limits,
    /// Reverse proxies whose `x-forwarded-for` names the client.
    pub trusted_proxies: TrustedProxies,
    /// Private webhook targets users may still name (SSRF allow-list, as the gateway's).
    pub webhook_allowed_hosts: String,
    /// `host:port` of the job queue's Redis, which keeps the storage accounting.
    pub redis_host: String,
    /// Bytes one user may hold (0 = unlimited), shown by `GET /users/me`.
    pub user_quota_bytes: u64,
    /// The largest upload, shown by `GET /users/me` (the gateway enforces it).
    pub max_upload_bytes: u64,
}

impl Config {
    pub fn load() -> Result<Config, ApiError> {
        let secret = var("jwt_secret")?;
        let tokens = TokenAuthority::new(secret.as_bytes(), number("jwt_lifetime_secs")?)
            .map_err(|e| misconfigured(format!("jwt_secret / jwt_lifetime_secs: {e}")))?;
        let window_secs: u32 = number("login_window_secs")?;
        if window_secs == 0 {
            return Err(misconfigured("login_window_secs must be at least 1".into()));
        }
        Ok(Config {
            tokens,
            devices: DeviceSigner::new(secret.as_bytes()),
            admin_email: var("admin_email")?.trim().to_lowercase(),
            admin_password: var("admin_password")?,
            limits: Limits {
                per_pair: number("login_max_failures_per_pair")?,
                first_delay_secs: u64::from(number::<u32>("login_delay_secs")?),
                per_account: number("login_max_failures_per_account")?,
                per_client: number("login_max_failures_per_client")?,
                window_secs: u64::from(window_secs),
            },
            trusted_proxies: TrustedProxies::parse(&var("trusted_proxies")?).map_err(misconfigured)?,
            webhook_allowed_hosts: var("webhook_allowed_hosts")?,
            redis_host: var("redis_host")?.trim().to_string(),
            user_quota_bytes: number("user_quota_bytes")?,
            max_upload_bytes: number("max_upload_bytes")?,
        })
    }
}

fn misconfigured(detail: String) -> ApiError {
    eprintln!("configuration error: {detail}");
    ApiError::new(500, "misconfigured", detail)
}

fn var(name: &str) -> Result<String, ApiError> {
    spin_sdk::variables::get(name).map_err(|e| misconfigured(format!("variable {name} is not available: {e}")))
}

fn number<T: FromStr>(name: &str) -> Result<T, ApiError> {
    let raw = var(name)?;
    raw.trim()
        .parse()
        .map_err(|_| misconfigured(format!("variable {name} must be a non-negative whole number, got {raw:?}")))
}
