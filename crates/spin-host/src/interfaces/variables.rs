//! Application variables: resolution (providers, then manifest defaults) and the
//! `fermyon:spin/variables` host interface.
//!
//! Providers are consulted in order, as in Spin: the environment (`SPIN_VARIABLE_NAME`), then
//! values the host generated and keeps in its state directory (a JWT secret, the first admin's
//! credentials; for the mp3edge application only, see `embedded_defaults`) so that `mp3edge up`
//! runs it on embedded defaults, then the manifest's `default`.
//! A component sees only the variables its manifest entry declares, each expanded once at start.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use host_world::fermyon::spin::variables;
use crate::manifest::{Manifest, check_variable_name, expand_template};
use crate::state::ComponentState;

/// A source of variable values.
pub trait VariableProvider: Send + Sync {
    fn get(&self, name: &str) -> Option<String>;
}

/// `SPIN_VARIABLE_<UPPERCASE NAME>` from the process environment.
pub struct EnvironmentProvider;

impl VariableProvider for EnvironmentProvider {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())).ok()
    }
}

/// Fixed values (host-generated defaults, test overrides).
pub struct StaticProvider(pub BTreeMap<String, String>);

impl VariableProvider for StaticProvider {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// Resolves application variables through the providers, then the manifest defaults.
pub struct VariableResolver {
    manifest_vars: BTreeMap<String, crate::manifest::VariableDecl>,
    providers: Vec<Box<dyn VariableProvider>>,
}

impl VariableResolver {
    pub fn new(manifest: &Manifest, providers: Vec<Box<dyn VariableProvider>>) -> VariableResolver {
        VariableResolver { manifest_vars: manifest.variables.clone(), providers }
    }

    /// The value of application variable `name`.
    pub fn resolve(&self, name: &str) -> Result<String> {
        let decl = self.manifest_vars.get(name).with_context(|| format!("variable {name:?} is not declared"))?;
        if let Some(value) = self.providers.iter().find_map(|p| p.get(name)) {
            return Ok(value);
        }
        match &decl.default {
            Some(value) => Ok(value.clone()),
            None => bail!(
                "variable {name:?} is required: set SPIN_VARIABLE_{} or give it a default",
                name.to_ascii_uppercase()
            ),
        }
    }

    /// Checks that every required variable has a value, before anything is served.
    pub fn check_required(&self) -> Result<()> {
        for name in self.manifest_vars.keys() {
            self.resolve(name)?;
        }
        Ok(())
    }

    /// Expands `{{ name }}` references in a component's template.
    pub fn expand(&self, template: &str) -> Result<String> {
        expand_template(template, |name| self.resolve(name))
    }

    /// The variables a component may read, expanded.
    pub fn component_variables(&self, manifest: &Manifest, component: &str) -> Result<ComponentVariables> {
        let decl = manifest.components.get(component).with_context(|| format!("no component {component:?}"))?;
        let mut values = BTreeMap::new();
        for (name, template) in &decl.variables {
            let value = self.expand(template).with_context(|| format!("component {component:?} variable {name:?}"))?;
            values.insert(name.clone(), value);
        }
        Ok(ComponentVariables(Arc::new(values)))
    }
}

/// The expanded variables of one component.
#[derive(Debug, Clone, Default)]
pub struct ComponentVariables(Arc<BTreeMap<String, String>>);

impl ComponentVariables {
    pub fn new(values: BTreeMap<String, String>) -> ComponentVariables {
        ComponentVariables(Arc::new(values))
    }

    pub fn get(&self, name: &str) -> Result<String, variables::Error> {
        if check_variable_name(name).is_err() {
            return Err(variables::Error::InvalidName(name.to_string()));
        }
        self.0.get(name).cloned().ok_or_else(|| variables::Error::Undefined(name.to_string()))
    }
}

impl variables::Host for ComponentState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, variables::Error>> {
        Ok(self.grants.variables.get(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn manifest() -> Manifest {
        Manifest::parse(
            r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
secret = { required = true }
host = { default = "h:1" }
[[trigger.http]]
route = "/"
component = "c"
[component.c]
source = "c.wasm"
[component.c.variables]
addr = "redis://{{ host }}"
"#,
            PathBuf::new(),
        )
        .unwrap()
    }

    #[test]
    fn providers_come_before_defaults_and_required_is_enforced() {
        let m = manifest();
        let none = VariableResolver::new(&m, vec![]);
        assert!(none.check_required().is_err());
        let fixed = StaticProvider([("secret".to_string(), "s".to_string()), ("host".into(), "x:2".into())].into());
        let some = VariableResolver::new(&m, vec![Box::new(fixed)]);
        some.check_required().unwrap();
        let vars = some.component_variables(&m, "c").unwrap();
        assert_eq!(vars.get("addr").unwrap(), "redis://x:2");
        assert!(matches!(vars.get("secret"), Err(variables::Error::Undefined(_))));
        assert!(matches!(vars.get("Bad-Name"), Err(variables::Error::InvalidName(_))));
    }
}
