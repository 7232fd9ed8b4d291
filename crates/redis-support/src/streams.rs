//! Redis streams as a work queue shared by workers: an entry stays claimed while its worker
//! lives (a heartbeat) and is taken over once its worker stops answering. Used for jobs, URL
//! imports and segments alike.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::streams::{StreamAutoClaimReply, StreamId};
use tokio_util::sync::CancellationToken;

/// Claims `entry_id` of `stream` for `consumer` again every `every` until the token is
/// cancelled, so that its idle time stays low while it is worked on and no other worker takes
/// it over as abandoned.
pub fn keep_claimed(
    mut redis: ConnectionManager,
    stream: &'static str,
    group: &'static str,
    consumer: String,
    entry_id: String,
    every: Duration,
) -> CancellationToken {
    let token = CancellationToken::new();
    let stop = token.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {
                    let claimed: redis::RedisResult<redis::Value> = redis::cmd("XCLAIM")
                        .arg(stream).arg(group).arg(&consumer).arg(0).arg(&entry_id).arg("JUSTID")
                        .query_async(&mut redis).await;
                    if let Err(e) = claimed {
                        tracing::warn!(%stream, entry = %entry_id, error = %e, "heartbeat failed");
                    }
                }
            }
        }
    });
    token
}

/// One entry of `stream` that a consumer of `group` has held idle for `idle_ms` (its worker
/// stopped answering), now `consumer`'s.
pub async fn claim_idle_entry(
    redis: &mut ConnectionManager,
    stream: &str,
    group: &str,
    consumer: &str,
    idle_ms: u64,
) -> redis::RedisResult<Option<StreamId>> {
    let reclaimed: StreamAutoClaimReply =
        redis::cmd("XAUTOCLAIM").arg(stream).arg(group).arg(consumer).arg(idle_ms).arg("0-0").arg("COUNT").arg(1).query_async(redis).await?;
    Ok(reclaimed.claimed.into_iter().next())
}
