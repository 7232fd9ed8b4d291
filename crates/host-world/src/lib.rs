//! Host-side bindings of the WIT worlds in `wit/`, generated once for every crate of the host:
//! the runtime implements Spin's interfaces from here, the media and codec crates the worker's,
//! and the worker calls the converter's and the plugins' exports. Nothing here knows a host
//! type, so nothing depends back on the crates that implement it.
//!
//! Every import is async (backends do I/O) and trappable (a broken backend traps the guest
//! instead of lying to it). Resources are the generated placeholder types: the implementing
//! crate keeps its own handle in the store's resource table (`spin_host::handles`).

// Spin's interfaces (key-value, SQLite, Redis, MQTT, variables) for every component.
wasmtime::component::bindgen!({
    path: "../../wit/spin",
    world: "fermyon:spin/host",
    imports: { default: async | trappable },
});

/// Spin's PostgreSQL interface (`spin:postgres/postgres@4.0.0`), a package of its own.
pub mod postgres {
    wasmtime::component::bindgen!({
        path: "../../wit/spin-postgres",
        world: "spin:postgres/host",
        imports: { default: async | trappable },
    });
}

/// The converter: Spin's Redis-trigger export plus the worker's demux and codec services.
pub mod worker {
    wasmtime::component::bindgen!({
        path: "../../wit/worker",
        world: "mp3edge:worker/converter",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "fermyon:spin/key-value": crate::fermyon::spin::key_value,
            "fermyon:spin/redis": crate::fermyon::spin::redis,
        },
    });
}

/// A codec plugin's export, called by the host on the converter's behalf.
pub mod plugin {
    wasmtime::component::bindgen!({
        path: "../../wit/codec",
        world: "mp3edge:codec/codec-plugin",
        exports: { default: async },
        with: {
            "mp3edge:codec/types": crate::worker::mp3edge::codec::types,
        },
    });
}

/// The optional `bitrate-rules` export of a codec plugin, read when the host loads it.
pub mod bitrate_rules {
    wasmtime::component::bindgen!({
        path: "../../wit/codec",
        world: "mp3edge:codec/bitrate-rules-export",
        exports: { default: async },
    });
}

/// A codec plugin that also exports `segments` (see `codec_host::segmented`).
pub mod segmented_plugin {
    wasmtime::component::bindgen!({
        path: "../../wit/codec",
        world: "mp3edge:codec/segmented-codec-plugin",
        exports: { default: async },
        with: {
            "mp3edge:codec/types": crate::worker::mp3edge::codec::types,
        },
    });
}
