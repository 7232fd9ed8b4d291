//! Outbound PostgreSQL: the `spin:postgres/postgres@4.0.0` host interface, on `tokio-postgres`.
//!
//! A component opens a connection string (`host=... port=... user=...` or a `postgres://` URL)
//! only if its `allowed_outbound_hosts` permits every host and port it names (scheme
//! `postgres`, default port 5432); otherwise `connection-failed("address ... is not
//! permitted")`. Each resource is one connection of its own, without TLS, closed with the
//! resource. Values are converted in `values`.

pub mod values;

use tokio_postgres::config::Host;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};
use wasmtime::component::Resource;

use crate::handles::HandleTable;

use host_world::postgres::spin::postgres::postgres::{self, Column, DbError, Error, ParameterValue, QueryError, RowSet};
use crate::outbound::OutboundPolicy;
use values::{cell, data_type, parameter};
use crate::state::ComponentState;

pub struct ConnectionHandle {
    client: Client,
}

/// Whether every server the connection string names may be reached.
fn allowed(policy: &OutboundPolicy, config: &tokio_postgres::Config) -> bool {
    let ports = config.get_ports();
    !config.get_hosts().is_empty()
        && config.get_hosts().iter().enumerate().all(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(name) => policy.allows("postgres", name, Some(port)),
                Host::Unix(_) => false,
            }
        })
}

fn query_failed(e: tokio_postgres::Error) -> Error {
    Error::QueryFailed(match e.as_db_error() {
        Some(db) => QueryError::DbError(DbError {
            as_text: e.to_string(),
            severity: db.severity().to_string(),
            code: db.code().code().to_string(),
            message: db.message().to_string(),
            detail: db.detail().map(str::to_string),
            extras: db.hint().map(|hint| vec![("hint".to_string(), hint.to_string())]).unwrap_or_default(),
        }),
        None => QueryError::Text(e.to_string()),
    })
}

fn parameters(params: Vec<ParameterValue>) -> Result<Vec<Box<dyn ToSql + Send + Sync>>, Error> {
    params.into_iter().map(parameter).collect::<Result<_, _>>().map_err(Error::BadParameter)
}

fn as_sql(params: &[Box<dyn ToSql + Send + Sync>]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
}

impl postgres::Host for ComponentState {}

impl postgres::HostConnection for ComponentState {
    async fn open(&mut self, address: String) -> wasmtime::Result<Result<Resource<postgres::Connection>, Error>> {
        let config: tokio_postgres::Config = match address.parse() {
            Ok(config) => config,
            Err(e) => return Ok(Err(Error::ConnectionFailed(format!("invalid connection string: {e}")))),
        };
        if !allowed(&self.grants.outbound, &config) {
            tracing::warn!(component = %self.grants.component, "outbound PostgreSQL denied by allowed_outbound_hosts");
            return Ok(Err(Error::ConnectionFailed(format!("address {address} is not permitted"))));
        }
        let (client, connection) = match config.connect(NoTls).await {
            Ok(pair) => pair,
            Err(e) => return Ok(Err(Error::ConnectionFailed(e.to_string()))),
        };
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "PostgreSQL connection ended with an error");
            }
        });
        Ok(Ok(self.table.push_handle(ConnectionHandle { client })?))
    }

    async fn query(
        &mut self,
        this: Resource<postgres::Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<RowSet, Error>> {
        let params = match parameters(params) {
            Ok(params) => params,
            Err(e) => return Ok(Err(e)),
        };
        let client = &self.table.handle::<_, ConnectionHandle>(&this)?.client;
        let prepared = match client.prepare(&statement).await {
            Ok(prepared) => prepared,
            Err(e) => return Ok(Err(query_failed(e))),
        };
        let rows = match client.query(&prepared, &as_sql(&params)).await {
            Ok(rows) => rows,
            Err(e) => return Ok(Err(query_failed(e))),
        };
        let columns = prepared
            .columns()
            .iter()
            .map(|c| Column { name: c.name().to_string(), data_type: data_type(c.type_()) })
            .collect();
        let mut converted = Vec::with_capacity(rows.len());
        for row in &rows {
            match (0..row.len()).map(|i| cell(row, i)).collect::<Result<Vec<_>, _>>() {
                Ok(values) => converted.push(values),
                Err(e) => return Ok(Err(Error::ValueConversionFailed(e.to_string()))),
            }
        }
        Ok(Ok(RowSet { columns, rows: converted }))
    }

    async fn execute(
        &mut self,
        this: Resource<postgres::Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        let params = match parameters(params) {
            Ok(params) => params,
            Err(e) => return Ok(Err(e)),
        };
        let client = &self.table.handle::<_, ConnectionHandle>(&this)?.client;
        Ok(client.execute(&statement, &as_sql(&params)).await.map_err(query_failed))
    }

    async fn drop(&mut self, this: Resource<postgres::Connection>) -> wasmtime::Result<()> {
        self.table.delete_handle::<_, ConnectionHandle>(this)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> OutboundPolicy {
        OutboundPolicy::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn every_named_server_must_be_allowed() {
        let config = |s: &str| s.parse::<tokio_postgres::Config>().unwrap();
        let p = policy(&["*://localhost:5433", "postgres://db.example.com"]);
        assert!(allowed(&p, &config("host=localhost port=5433 user=postgres dbname=spin_dev")));
        assert!(allowed(&p, &config("postgres://u:p@db.example.com/app")));
        assert!(!allowed(&p, &config("host=localhost port=5432 user=postgres")));
        assert!(!allowed(&p, &config("host=localhost,evil.example.org port=5433 user=postgres")));
        assert!(!allowed(&p, &config("host=/var/run/postgresql user=postgres")));
    }
}
