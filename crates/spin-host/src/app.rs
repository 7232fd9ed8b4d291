//! An application loaded for serving: the manifest, resolved variables, opened backends, and
//! each component's grants and compiled code.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use anyhow::{Context, Result};
use wasmtime::component::Component;

use crate::engine::Runtime;
use crate::interfaces::key_value::KeyValueStores;
use crate::manifest::Manifest;
use crate::outbound::OutboundPolicy;
use crate::interfaces::redis::RedisClients;
use crate::runtime_config::RuntimeConfig;
use crate::interfaces::sqlite::SqliteDatabases;
use crate::state::{Grants, Services};
use crate::interfaces::variables::VariableResolver;

/// A component ready to instantiate: its grants and compiled code.
pub struct LoadedComponent {
    pub name: String,
    pub grants: Arc<Grants>,
    pub environment: Vec<(String, String)>,
    pub component: Component,
}

pub struct App {
    pub manifest: Manifest,
    pub services: Arc<Services>,
    pub components: BTreeMap<String, Arc<LoadedComponent>>,
}

impl App {
    /// Checks variables, opens every backend the runtime config names, and compiles the
    /// components that `wanted` selects (all when `None`).
    pub async fn load(
        runtime: &Runtime,
        manifest: Manifest,
        runtime_config: &RuntimeConfig,
        variables: &VariableResolver,
        wanted: Option<&HashSet<String>>,
    ) -> Result<App> {
        variables.check_required()?;
        let services = Arc::new(Services {
            key_value: KeyValueStores::open(&runtime_config.key_value_stores).await?,
            sqlite: SqliteDatabases::open(&runtime_config.sqlite_databases)?,
            redis: RedisClients::default(),
        });
        let mut components = BTreeMap::new();
        for (name, decl) in &manifest.components {
            if wanted.is_some_and(|w| !w.contains(name)) {
                continue;
            }
            for label in &decl.key_value_stores {
                if !runtime_config.key_value_stores.contains_key(label) {
                    anyhow::bail!("component {name:?} uses key-value store {label:?}, which the runtime config lacks");
                }
            }
            for label in &decl.sqlite_databases {
                if !runtime_config.sqlite_databases.contains_key(label) {
                    anyhow::bail!("component {name:?} uses SQLite database {label:?}, which the runtime config lacks");
                }
            }
            let outbound_hosts = decl
                .allowed_outbound_hosts
                .iter()
                .map(|t| variables.expand(t))
                .collect::<Result<Vec<_>>>()?;
            let grants = Grants {
                component: name.clone(),
                key_value_stores: decl.key_value_stores.iter().cloned().collect(),
                sqlite_databases: decl.sqlite_databases.iter().cloned().collect(),
                outbound: OutboundPolicy::parse(&outbound_hosts).with_context(|| format!("component {name:?}"))?,
                variables: variables.component_variables(&manifest, name)?,
            };
            let component = runtime.compile(&manifest.component_source(name)?)?;
            components.insert(
                name.clone(),
                Arc::new(LoadedComponent {
                    name: name.clone(),
                    grants: Arc::new(grants),
                    environment: decl.environment.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    component,
                }),
            );
        }
        Ok(App { manifest, services, components })
    }
}
