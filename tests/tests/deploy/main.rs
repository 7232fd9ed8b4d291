//! Static checks of the Kubernetes deployment assets in `deploy/` (no cluster needed).
//!
//! The shape of every object is left to the real schemas, made strict (unknown fields rejected,
//! as `kubectl apply`'s default field validation does):
//! * each SpinKube resource (SpinApp, SpinAppExecutor) validates against its spin-operator v0.6.1
//!   CRD in `../shared/schemas/`, and its metadata against Kubernetes' `ObjectMeta`;
//! * each core object validates against the Kubernetes OpenAPI definition of its kind, as
//!   k8s-openapi carries it (its `schemars` feature), required fields included.
//!
//! KEDA's CRD is not available offline, so the `ScaledObject` gets a few hand checks of the fields
//! mp3edge relies on. Everything else here is what no schema can express: what the API server
//! checks beyond its schema (DNS names, selectors, ports and volumes that must resolve), the
//! files agreeing with each other and with the project (`spin.toml`'s variables, routes and
//! labels, the worker's clap flags, its Dockerfile, the Makefile's plugins, `scripts/setup.sh`,
//! `job-model`'s stream names, the Redis Service, the images named in `kustomization.yaml` and
//! `deploy/README.md`), and the project's rules (Secrets are templates only, limits are set).
//! Values that two places must share are rows of one table helper, [`Problems::agree`].
//!
//! The checks live in modules along these lines (loading, the `Problems` table, schemas, the
//! kustomization, Secrets, the edge, the worker, Redis and KEDA), which share this file's
//! imports and each other's helpers (`use super::*`); the tests are declared here, at the root,
//! so that each keeps its name (`cargo test --test deploy NAME`).
//!
//! What kustomize itself would reject (`kubectl apply -k deploy/`) is checked in Rust too
//! (`kustomize`): no kustomize that reads this kustomization can be installed from the
//! project's registries.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use e2e_tests::workspace_root;
use k8s_openapi::api::core::v1::{Container, PodTemplateSpec, Secret, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

pub(crate) const DOCKERFILE: &str = "deploy/worker/Dockerfile";
pub(crate) const SPINKUBE_GROUP: &str = "core.spinkube.dev/";
/// The worker's container, as a place of [`Problems::agree`].
pub(crate) const WORKER_CONTAINER: &str = "Deployment mp3edge-worker /spec/template/spec/containers/0";

mod edge;
mod kustomization;
mod kustomize;
mod load;
mod problems;
mod redis_keda;
mod schemas;
mod secrets;
mod worker;

use load::*;
use problems::*;
use schemas::*;
use worker::*;

/// Declares each `module::check` as the test `check` at the crate root.
macro_rules! tests {
    ($($module:ident::$name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $module::$name()
            }
        )*
    };
}

tests! {
    schemas::every_yaml_file_parses,
    schemas::spinapps_validate_against_the_spin_operator_crd,
    schemas::core_objects_match_the_kubernetes_api,
    kustomization::kustomization_ties_everything_together,
    kustomization::images_agree_with_kustomization_and_readme,
    kustomize::kustomization_builds_as_kustomize_would,
    secrets::secrets_are_templates_only,
    edge::spinapp_provides_what_spin_toml_requires,
    edge::runtime_configs_cover_spin_toml_and_agree,
    worker::worker_ports_probes_and_flags_agree,
    worker::worker_image_builds_what_the_plugins_need,
    redis_keda::redis_settings_agree,
    redis_keda::keda_scales_the_worker_on_the_job_stream,
}
