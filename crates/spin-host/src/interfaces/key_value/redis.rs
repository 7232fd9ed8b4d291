//! Key-value on Redis with raw keys (Spin's Redis key-value layout): the key a component writes
//! is the Redis key, so a worker process or `redis-cli` reads chunks without translation.

use anyhow::{Context, Result};
use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use super::{KeyValueBackend, ValueRange};

pub struct RedisKeyValue {
    conn: ConnectionManager,
}

impl RedisKeyValue {
    pub async fn connect(url: &str) -> Result<RedisKeyValue> {
        let client = redis::Client::open(url).with_context(|| format!("invalid Redis URL {url:?}"))?;
        let conn = redis_support::client::connect(client).await?;
        Ok(RedisKeyValue { conn })
    }
}

#[async_trait]
impl KeyValueBackend for RedisKeyValue {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.conn.clone().get(key).await?)
    }

    /// `GETRANGE`, with the value's length and whether it exists in the same round trip.
    async fn get_range(&self, key: &str, offset: u64, len: usize) -> Result<Option<ValueRange>> {
        let mut pipe = redis::pipe();
        pipe.exists(key).strlen(key);
        // GETRANGE's end is inclusive, so an empty range is not asked for (an end of -1 would
        // mean the value's last byte).
        let (exists, value_len, bytes): (bool, u64, Vec<u8>) = if len == 0 {
            let (exists, value_len) = pipe.query_async(&mut self.conn.clone()).await?;
            (exists, value_len, Vec::new())
        } else {
            let last = offset.saturating_add(len as u64 - 1).min(i64::MAX as u64);
            pipe.cmd("GETRANGE").arg(key).arg(offset.min(i64::MAX as u64)).arg(last);
            pipe.query_async(&mut self.conn.clone()).await?
        };
        Ok(exists.then_some(ValueRange { bytes, value_len }))
    }

    async fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        Ok(self.conn.clone().set(key, value).await?)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        Ok(self.conn.clone().del(key).await?)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.conn.clone().exists(key).await?)
    }

    async fn get_keys(&self) -> Result<Vec<String>> {
        Ok(self.conn.clone().keys("*").await?)
    }

    fn is_shared(&self) -> bool {
        true
    }
}
