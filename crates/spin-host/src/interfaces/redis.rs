//! Outbound Redis: the `fermyon:spin/redis` host interface.
//!
//! A component opens `redis://host:port` only if its `allowed_outbound_hosts` permits it; any
//! other address is an `invalid-address` error, as in Spin.
//! Connections are multiplexed and shared per address by all instances ([`RedisClients`]), so a
//! request does not pay a TCP handshake.

use std::collections::HashMap;

use ::redis::aio::ConnectionManager;
use tokio::sync::Mutex;
use wasmtime::component::Resource;

use crate::handles::HandleTable;

use host_world::fermyon::spin::redis::{self, Error, RedisParameter, RedisResult};
use crate::state::ComponentState;

/// Shared connections, one per address.
#[derive(Default)]
pub struct RedisClients {
    connections: Mutex<HashMap<String, ConnectionManager>>,
}

impl RedisClients {
    pub async fn connection(&self, address: &str) -> Result<ConnectionManager, Error> {
        let mut map = self.connections.lock().await;
        if let Some(conn) = map.get(address) {
            return Ok(conn.clone());
        }
        let client = ::redis::Client::open(address).map_err(|_| Error::InvalidAddress)?;
        let conn = ConnectionManager::new_with_config(client, redis_support::client::manager_config()).await.map_err(other)?;
        map.insert(address.to_string(), conn.clone());
        Ok(conn)
    }
}

/// An address the component's `allowed_outbound_hosts` does not name is, as in Spin, an
/// `invalid-address` (not `other`): the component cannot tell it from a malformed one.
fn check_allowed(policy: &crate::outbound::OutboundPolicy, address: &str) -> Result<(), Error> {
    match policy.allows_url(address) {
        true => Ok(()),
        false => Err(Error::InvalidAddress),
    }
}

pub struct ConnectionHandle {
    conn: ConnectionManager,
}

fn other(e: ::redis::RedisError) -> Error {
    Error::Other(e.to_string())
}

/// Flattens a Redis reply into Spin's list of results.
fn flatten(value: ::redis::Value, out: &mut Vec<RedisResult>) {
    use ::redis::Value as V;
    match value {
        V::Nil => out.push(RedisResult::Nil),
        V::Int(i) => out.push(RedisResult::Int64(i)),
        V::BulkString(b) => out.push(RedisResult::Binary(b)),
        V::SimpleString(s) => out.push(RedisResult::Status(s)),
        V::Okay => out.push(RedisResult::Status("OK".into())),
        V::Array(items) | V::Set(items) => items.into_iter().for_each(|v| flatten(v, out)),
        V::Map(pairs) => pairs.into_iter().for_each(|(k, v)| {
            flatten(k, out);
            flatten(v, out)
        }),
        V::Double(d) => out.push(RedisResult::Binary(d.to_string().into_bytes())),
        V::Boolean(b) => out.push(RedisResult::Int64(b as i64)),
        V::VerbatimString { text, .. } => out.push(RedisResult::Binary(text.into_bytes())),
        V::BigNumber(n) => out.push(RedisResult::Binary(n.to_string().into_bytes())),
        other => out.push(RedisResult::Status(format!("{other:?}"))),
    }
}

impl ComponentState {
    fn redis_conn(&self, this: &Resource<redis::Connection>) -> wasmtime::Result<ConnectionManager> {
        Ok(self.table.handle::<_, ConnectionHandle>(this)?.conn.clone())
    }
}

impl redis::Host for ComponentState {}

impl redis::HostConnection for ComponentState {
    async fn open(&mut self, address: String) -> wasmtime::Result<Result<Resource<redis::Connection>, Error>> {
        if let Err(denied) = check_allowed(&self.grants.outbound, &address) {
            tracing::warn!(component = %self.grants.component, %address, "outbound Redis denied by allowed_outbound_hosts");
            return Ok(Err(denied));
        }
        match self.services.redis.connection(&address).await {
            Ok(conn) => Ok(Ok(self.table.push_handle(ConnectionHandle { conn })?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn publish(&mut self, this: Resource<redis::Connection>, channel: String, payload: Vec<u8>) -> wasmtime::Result<Result<(), Error>> {
        let mut conn = self.redis_conn(&this)?;
        Ok(::redis::cmd("PUBLISH").arg(channel).arg(payload).query_async::<i64>(&mut conn).await.map(|_| ()).map_err(other))
    }

    async fn get(&mut self, this: Resource<redis::Connection>, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let mut conn = self.redis_conn(&this)?;
        Ok(::redis::cmd("GET").arg(key).query_async(&mut conn).await.map_err(other))
    }

    async fn set(&mut self, this: Resource<redis::Connection>, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), Error>> {
        let mut conn = self.redis_conn(&this)?;
        Ok(::redis::cmd("SET").arg(key).arg(value).query_async::<()>(&mut conn).await.map_err(other))
    }

    async fn incr(&mut self, this: Resource<redis::Connection>, key: String) -> wasmtime::Result<Result<i64, Error>> {
        let mut conn = self.redis_conn(&this)?;
        Ok(::redis::cmd("INCR").arg(key).query_async(&mut conn).await.map_err(other))
    }

    async fn del(&mut self, this: Resource<redis::Connection>, keys: Vec<String>) -> wasmtime::Result<Result<u32, Error>> {
        let mut conn = self.redis_conn(&this)?;
        Ok(::redis::cmd("DEL").arg(keys).query_async(&mut conn).await.map_err(other))
    }

    async fn sadd(&mut self, this: Resource<redis::Connection>, key: String, values: Vec<String>) -> wasmtime::Result<Result<u32, Error>> {
        let mut conn = self.redis_conn(&this)?;
        Ok(::redis::cmd("SADD").arg(key).arg(values).query_async(&mut conn).await.map_err(other))
    }

    async fn smembers(&mut self, this: Resource<redis::Connection>, key: String) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let mut conn = self.redis_conn(&this)?;
        Ok(::redis::cmd("SMEMBERS").arg(key).query_async(&mut conn).await.map_err(other))
    }

    async fn srem(&mut self, this: Resource<redis::Connection>, key: String, values: Vec<String>) -> wasmtime::Result<Result<u32, Error>> {
        let mut conn = self.redis_conn(&this)?;
        Ok(::redis::cmd("SREM").arg(key).arg(values).query_async(&mut conn).await.map_err(other))
    }

    async fn execute(
        &mut self,
        this: Resource<redis::Connection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<RedisResult>, Error>> {
        let mut conn = self.redis_conn(&this)?;
        let mut cmd = ::redis::cmd(&command);
        for argument in arguments {
            match argument {
                RedisParameter::Int64(i) => cmd.arg(i),
                RedisParameter::Binary(b) => cmd.arg(b),
            };
        }
        let reply: Result<::redis::Value, _> = cmd.query_async(&mut conn).await;
        Ok(match reply {
            Ok(value) => {
                let mut out = Vec::new();
                flatten(value, &mut out);
                Ok(out)
            }
            Err(e) => Err(other(e)),
        })
    }

    async fn drop(&mut self, this: Resource<redis::Connection>) -> wasmtime::Result<()> {
        self.table.delete_handle::<_, ConnectionHandle>(this)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::OutboundPolicy;

    #[test]
    fn a_denied_address_is_an_invalid_address() {
        let policy = OutboundPolicy::parse(&["redis://localhost:6379".to_string()]).unwrap();
        assert!(check_allowed(&policy, "redis://localhost:6379").is_ok());
        assert!(matches!(check_allowed(&policy, "redis://localhost:6380"), Err(Error::InvalidAddress)));
        assert!(matches!(check_allowed(&OutboundPolicy::default(), "redis://localhost:6379"), Err(Error::InvalidAddress)));
    }
}
