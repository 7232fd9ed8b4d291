//! Running the converter component for one delivery: a fresh instance per attempt, with the
//! key-value store, the job channel's Redis, and the demux and codec services.

use std::sync::Arc;

use anyhow::{Context, Result};
use job_model::Delivery;
use wasmtime::component::Component;

use host_world::worker::{Converter as ConverterBindings, ConverterPre};
use codec_host::CodecRegistry;
use spin_host::engine::Runtime;
use spin_host::state::{ComponentState, Grants, Services};

pub struct Converter {
    runtime: Arc<Runtime>,
    pre: ConverterPre<ComponentState>,
    grants: Arc<Grants>,
    services: Arc<Services>,
    codecs: Arc<CodecRegistry>,
}

impl Converter {
    pub fn new(
        runtime: Arc<Runtime>,
        component: &Component,
        grants: Grants,
        services: Arc<Services>,
        codecs: Arc<CodecRegistry>,
    ) -> Result<Converter> {
        let mut linker = runtime.linker.clone();
        media::host::add_to_linker(&mut linker)?;
        codec_host::add_to_linker(&mut linker)?;
        let instance_pre = linker
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)
            .context("the converter imports something the worker does not provide")?;
        let pre = ConverterPre::new(instance_pre)
            .map_err(anyhow::Error::from)
            .context("the converter does not export fermyon:spin/inbound-redis")?;
        Ok(Converter { runtime, pre, grants: Arc::new(grants), services, codecs })
    }

    /// One attempt. `Err` carries the reason the attempt failed.
    pub async fn run(&self, delivery: &Delivery) -> Result<(), String> {
        let started = std::time::Instant::now();
        let mut store = self.runtime.new_store(self.grants.clone(), self.services.clone(), &[]);
        codec_host::provide(store.data_mut(), self.codecs.clone());
        let outcome = async {
            let converter: ConverterBindings = self.pre.instantiate_async(&mut store).await?;
            converter.fermyon_spin_inbound_redis().call_handle_message(&mut store, &delivery.to_json()).await
        }
        .await;
        let peak = store.data().memory.peak_memory_bytes;
        tracing::info!(
            job = %delivery.job_id, attempt = delivery.attempt, peak_memory_bytes = peak,
            elapsed_ms = started.elapsed().as_millis() as u64, ok = matches!(outcome, Ok(Ok(()))), "converter finished"
        );
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err("the conversion attempt failed".into()),
            Err(trap) => {
                tracing::warn!(job = %delivery.job_id, error = %format!("{trap:?}"), "the converter crashed");
                Err(format!("the converter crashed: {}", spin_host::engine::short_reason(&trap)))
            }
        }
    }
}
