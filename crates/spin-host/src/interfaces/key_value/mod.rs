//! Key-value stores: the `fermyon:spin/key-value` host interface and its backends.
//!
//! Each label of the runtime config maps to one backend behind [`KeyValueBackend`]: Spin's
//! SQLite layout ([`sqlite::SqliteKeyValue`]) or raw keys on Redis ([`redis::RedisKeyValue`]).
//! A component may open only the labels its manifest lists; anything else is `access-denied`.
//! The worker uses the same backends natively to read sources and write outputs.

pub mod redis;
pub mod sqlite;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;
use wasmtime::component::Resource;

use crate::handles::HandleTable;

use host_world::fermyon::spin::key_value::{self, Error};
use crate::runtime_config::KeyValueLocation;
use crate::state::ComponentState;

/// Part of a stored value ([`KeyValueBackend::get_range`]).
#[derive(Debug, PartialEq, Eq)]
pub struct ValueRange {
    /// The bytes asked for; fewer where the value ends first.
    pub bytes: Vec<u8>,
    /// The whole value's length.
    pub value_len: u64,
}

impl ValueRange {
    /// Where `len` bytes from `offset` lie in a value of `value_len` bytes, cut at its end.
    pub fn span(value_len: u64, offset: u64, len: usize) -> std::ops::Range<u64> {
        let start = offset.min(value_len);
        start..start + (len as u64).min(value_len - start)
    }

    /// `value[offset..offset + len]`, cut at the value's end, from a value held whole.
    pub fn of(value: &[u8], offset: u64, len: usize) -> ValueRange {
        let span = Self::span(value.len() as u64, offset, len);
        ValueRange { bytes: value[span.start as usize..span.end as usize].to_vec(), value_len: value.len() as u64 }
    }
}

/// One store's storage. Errors are backend failures (I/O, connection), never "not found".
#[async_trait]
pub trait KeyValueBackend: Send + Sync {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Up to `len` bytes of the value under `key` from byte `offset`, without holding the whole
    /// value in memory where the backend can (the decoders read 1 MiB source chunks a window
    /// at a time). `None`: no such key.
    async fn get_range(&self, key: &str, offset: u64, len: usize) -> Result<Option<ValueRange>>;
    async fn set(&self, key: &str, value: &[u8]) -> Result<()>;
    async fn delete(&self, key: &str) -> Result<()>;
    async fn exists(&self, key: &str) -> Result<bool>;
    async fn get_keys(&self) -> Result<Vec<String>>;
    /// Whether other processes (other workers) can reach this store too.
    fn is_shared(&self) -> bool {
        false
    }
}

/// Every configured store, by label.
#[derive(Clone, Default)]
pub struct KeyValueStores {
    stores: BTreeMap<String, Arc<dyn KeyValueBackend>>,
}

impl KeyValueStores {
    pub async fn open(config: &BTreeMap<String, KeyValueLocation>) -> Result<KeyValueStores> {
        let mut stores: BTreeMap<String, Arc<dyn KeyValueBackend>> = BTreeMap::new();
        for (label, location) in config {
            let backend: Arc<dyn KeyValueBackend> = match location {
                KeyValueLocation::Sqlite(path) => Arc::new(sqlite::SqliteKeyValue::open(path, label)?),
                KeyValueLocation::Redis(url) => Arc::new(redis::RedisKeyValue::connect(url).await?),
            };
            stores.insert(label.clone(), backend);
        }
        Ok(KeyValueStores { stores })
    }

    /// One store under `label` (a one-shot conversion's).
    pub fn single(label: &str, backend: Arc<dyn KeyValueBackend>) -> KeyValueStores {
        KeyValueStores { stores: BTreeMap::from([(label.to_string(), backend)]) }
    }

    pub fn get(&self, label: &str) -> Option<Arc<dyn KeyValueBackend>> {
        self.stores.get(label).cloned()
    }
}

/// The guest's handle to an opened store.
pub struct StoreHandle {
    backend: Arc<dyn KeyValueBackend>,
}

/// Largest value a guest may write (Spin's limit on one key-value read is 128 MiB).
const MAX_VALUE_BYTES: usize = 128 << 20;

fn backend_error(e: anyhow::Error) -> Error {
    tracing::warn!(error = %format!("{e:#}"), "key-value backend error");
    Error::Other(format!("{e:#}"))
}

impl ComponentState {
    fn kv(&self, handle: &Resource<key_value::Store>) -> wasmtime::Result<Arc<dyn KeyValueBackend>> {
        Ok(self.table.handle::<_, StoreHandle>(handle)?.backend.clone())
    }
}

impl key_value::Host for ComponentState {}

impl key_value::HostStore for ComponentState {
    async fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<key_value::Store>, Error>> {
        if !self.grants.key_value_stores.contains(&label) {
            return Ok(Err(Error::AccessDenied));
        }
        let Some(backend) = self.services.key_value.get(&label) else {
            return Ok(Err(Error::NoSuchStore));
        };
        Ok(Ok(self.table.push_handle(StoreHandle { backend })?))
    }

    async fn get(&mut self, this: Resource<key_value::Store>, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        Ok(self.kv(&this)?.get(&key).await.map_err(backend_error))
    }

    async fn set(&mut self, this: Resource<key_value::Store>, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), Error>> {
        if value.len() > MAX_VALUE_BYTES {
            return Ok(Err(Error::Other(format!("value of {} bytes exceeds the {MAX_VALUE_BYTES}-byte limit", value.len()))));
        }
        Ok(self.kv(&this)?.set(&key, &value).await.map_err(backend_error))
    }

    async fn delete(&mut self, this: Resource<key_value::Store>, key: String) -> wasmtime::Result<Result<(), Error>> {
        Ok(self.kv(&this)?.delete(&key).await.map_err(backend_error))
    }

    async fn exists(&mut self, this: Resource<key_value::Store>, key: String) -> wasmtime::Result<Result<bool, Error>> {
        Ok(self.kv(&this)?.exists(&key).await.map_err(backend_error))
    }

    async fn get_keys(&mut self, this: Resource<key_value::Store>) -> wasmtime::Result<Result<Vec<String>, Error>> {
        Ok(self.kv(&this)?.get_keys().await.map_err(backend_error))
    }

    async fn drop(&mut self, this: Resource<key_value::Store>) -> wasmtime::Result<()> {
        self.table.delete_handle::<_, StoreHandle>(this)?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Ranges of a 300,000-byte value, its end, past its end and of a missing key, as every
    /// backend must give them.
    pub(crate) async fn ranges_are_read_as_stored(kv: &dyn KeyValueBackend) {
        let value: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        kv.set("chunk", &value).await.unwrap();
        let range = |offset: u64, len: usize| {
            let at = (offset as usize).min(value.len());
            ValueRange { bytes: value[at..(at + len).min(value.len())].to_vec(), value_len: 300_000 }
        };
        for (offset, len) in [(0, 10), (131_072, 131_072), (299_995, 100), (300_000, 10), (400_000, 10), (7, 0)] {
            assert_eq!(kv.get_range("chunk", offset, len).await.unwrap(), Some(range(offset, len)), "{offset}+{len}");
        }
        assert_eq!(kv.get_range("missing", 0, 10).await.unwrap(), None);
        kv.delete("chunk").await.unwrap();
    }

    #[tokio::test]
    async fn ranges_of_a_value_on_redis() {
        let dir = tempfile::tempdir().unwrap();
        let server = redis_support::server::PrivateRedis::start(dir.path(), "range-test").await.unwrap();
        let kv = redis::RedisKeyValue::connect(&format!("redis://{}", server.host())).await.unwrap();
        ranges_are_read_as_stored(&kv).await;
    }
}
