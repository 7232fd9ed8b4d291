//! The component's variables, read and checked on every request (a bad value is a 500 with a
//! clear detail, never a panic).

use edge_auth::TokenAuthority;
use edge_auth::links::LinkSigner;
use edge_spin::ApiError;
use job_model::JobPolicy;
use job_model::layout::CHUNK_SIZE_RANGE;
use job_model::naming::is_valid_format_name;

pub struct Config {
    pub tokens: TokenAuthority,
    /// Signs and checks download links (`POST /jobs/{id}/link`).
    pub links: LinkSigner,
    /// How long a download link works, in seconds.
    pub download_link_secs: u64,
    pub max_upload_bytes: u64,
    /// Output formats users may ask for.
    pub formats: Vec<String>,
    /// `host:port` of the Redis server carrying the job queue.
    pub redis_host: String,
    /// Hosts (`host` or `host:port`, comma-separated) that upload callbacks may name even when
    /// they are loopback or private addresses.
    pub webhook_allowed_hosts: String,
    /// Bytes one user may hold (uploads not yet freed + outputs); 0 = unlimited.
    pub user_quota_bytes: u64,
    /// Jobs one user may have in flight (uploading, queued or converting); 0 = unlimited.
    pub user_max_active_jobs: u32,
    /// Size of the key-value chunks new uploads and outputs are stored in.
    pub chunk_size_bytes: u32,
    /// What new jobs are held to: retention, quota, output and duration caps.
    pub policy: JobPolicy,
    /// Seconds without progress after which an upload in progress counts as abandoned.
    pub upload_stale_secs: u64,
    /// The same for a resumable upload (`/uploads`), whose client may come back much later.
    pub resumable_upload_expiry_secs: u64,
    /// Event streams one user may hold open at once; 0 = unlimited.
    pub user_max_event_streams: u32,
}

impl Config {
    pub fn load() -> Result<Config, ApiError> {
        let lifetime = var("jwt_lifetime_secs")?;
        let lifetime = lifetime.trim().parse().map_err(|_| {
            misconfigured(format!("variable jwt_lifetime_secs must be a whole number, got {lifetime:?}"))
        })?;
        let secret = var("jwt_secret")?;
        let tokens = TokenAuthority::new(secret.as_bytes(), lifetime)
            .map_err(|e| misconfigured(format!("jwt_secret / jwt_lifetime_secs: {e}")))?;
        let links = LinkSigner::new(secret.as_bytes());
        let max = var("max_upload_bytes")?;
        let max_upload_bytes = max.trim().parse().ok().filter(|&n: &u64| n > 0).ok_or_else(|| {
            misconfigured(format!("variable max_upload_bytes must be a positive whole number, got {max:?}"))
        })?;
        let formats: Vec<String> =
            var("formats")?.split(',').map(str::trim).filter(|f| !f.is_empty()).map(String::from).collect();
        if let Some(bad) = formats.iter().find(|f| !is_valid_format_name(f)) {
            return Err(misconfigured(format!("variable formats lists an invalid format name {bad:?}")));
        }
        if formats.is_empty() {
            return Err(misconfigured("variable formats lists no format".into()));
        }
        let redis_host = var("redis_host")?.trim().to_string();
        if redis_host.is_empty() {
            return Err(misconfigured("variable redis_host is empty".into()));
        }
        let webhook_allowed_hosts = var("webhook_allowed_hosts")?;
        let chunk_size_bytes = number("chunk_size_bytes")?;
        if !CHUNK_SIZE_RANGE.contains(&chunk_size_bytes) {
            return Err(misconfigured(format!(
                "variable chunk_size_bytes must be from {} to {}, got {chunk_size_bytes}",
                CHUNK_SIZE_RANGE.start(),
                CHUNK_SIZE_RANGE.end()
            )));
        }
        let user_quota_bytes = number("user_quota_bytes")?;
        let policy = JobPolicy {
            retention_secs: number("job_retention_secs")?,
            quota_bytes: user_quota_bytes,
            max_output_bytes: number("max_output_bytes")?,
            max_duration_secs: number("max_duration_secs")?,
            max_source_bytes: max_upload_bytes,
        };
        let upload_stale_secs = number("upload_stale_secs")?.max(1);
        Ok(Config {
            tokens,
            links,
            download_link_secs: number("download_link_secs")?.max(1),
            max_upload_bytes,
            formats,
            redis_host,
            webhook_allowed_hosts,
            user_quota_bytes,
            user_max_active_jobs: u32::try_from(number("user_max_active_jobs")?).unwrap_or(u32::MAX),
            chunk_size_bytes: chunk_size_bytes as u32,
            policy,
            upload_stale_secs,
            resumable_upload_expiry_secs: number("resumable_upload_expiry_secs")?.max(1),
            user_max_event_streams: u32::try_from(number("user_max_event_streams")?).unwrap_or(u32::MAX),
        })
    }
}

fn misconfigured(detail: String) -> ApiError {
    eprintln!("configuration error: {detail}");
    ApiError::new(500, "misconfigured", detail)
}

/// A whole-number variable.
fn number(name: &str) -> Result<u64, ApiError> {
    let raw = var(name)?;
    raw.trim().parse().map_err(|_| misconfigured(format!("variable {name} must be a non-negative whole number, got {raw:?}")))
}

fn var(name: &str) -> Result<String, ApiError> {
    spin_sdk::variables::get(name).map_err(|e| misconfigured(format!("variable {name} is not available: {e}")))
}
