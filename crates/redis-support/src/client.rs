//! How the host connects to Redis: every connection with timeouts chosen for the calls it
//! carries, never the client library's defaults.
//!
//! The library gives up on a reply after 500 ms. Redis answers in microseconds, but the worker's
//! own runtime is busy on every core while it encodes, and right after a restart it also loads
//! and instantiates its components: a reply read late was counted as a failure, and a job whose
//! three attempts met such a moment was dead-lettered (issue 27). Replies may now take
//! [`REPLY_TIMEOUT`]; that still bounds a connection to a server that stopped answering, after
//! which the connection is made again, with growing pauses.

use std::time::Duration;

use anyhow::{Context, Result};
use redis::AsyncConnectionConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long a command's reply may take.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long making a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a lost connection is made again before a call fails (pauses of 100 ms doubling
/// up to 2 s: about 10 s in all, long enough for a Redis restart).
const RECONNECT_ATTEMPTS: usize = 7;

/// The configuration of a shared, reconnecting connection.
pub fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(REPLY_TIMEOUT))
        .set_number_of_retries(RECONNECT_ATTEMPTS)
        .set_min_delay(Duration::from_millis(100))
        .set_max_delay(Duration::from_secs(2))
}

/// The configuration of a connection whose calls block on the server for up to `blocking`
/// (a stream read with `BLOCK`): its replies may take that much longer.
pub fn blocking_config(blocking: Duration) -> AsyncConnectionConfig {
    AsyncConnectionConfig::new().set_connection_timeout(Some(CONNECT_TIMEOUT)).set_response_timeout(Some(REPLY_TIMEOUT + blocking))
}

/// A shared, reconnecting connection to `url` ([`manager_config`]).
pub async fn connect(client: redis::Client) -> Result<ConnectionManager> {
    let address = client.get_connection_info().addr().to_string();
    ConnectionManager::new_with_config(client, manager_config()).await.with_context(|| format!("connecting to Redis at {address}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_may_take_longer_than_the_library_default() {
        let config = manager_config();
        assert_eq!(config.response_timeout(), Some(REPLY_TIMEOUT));
        assert!(REPLY_TIMEOUT > Duration::from_millis(500));
        assert_eq!(config.connection_timeout(), Some(CONNECT_TIMEOUT));
    }
}
