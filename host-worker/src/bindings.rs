//! Host-side bindings of the WIT worlds in `wit/`. Every import is async (backends do I/O) and
//! trappable (a broken backend traps the guest instead of lying to it).

// Spin's interfaces (key-value, SQLite, Redis, MQTT, variables) for every component.
wasmtime::component::bindgen!({
    path: "../wit/spin",
    world: "fermyon:spin/host",
    imports: { default: async | trappable },
    with: {
        "fermyon:spin/key-value.store": crate::key_value::StoreHandle,
        "fermyon:spin/sqlite.connection": crate::sqlite::ConnectionHandle,
        "fermyon:spin/redis.connection": crate::redis_outbound::ConnectionHandle,
        "fermyon:spin/mqtt.connection": crate::mqtt_outbound::ConnectionHandle,
    },
});

/// Spin's PostgreSQL interface (`spin:postgres/postgres@4.0.0`), a package of its own.
pub mod postgres {
    wasmtime::component::bindgen!({
        path: "../wit/spin-postgres",
        world: "spin:postgres/host",
        imports: { default: async | trappable },
        with: {
            "spin:postgres/postgres.connection": crate::postgres_outbound::ConnectionHandle,
        },
    });
}

/// The converter: Spin's Redis-trigger export plus the worker's demux and codec services.
pub mod worker {
    wasmtime::component::bindgen!({
        path: "../wit/worker",
        world: "mp3edge:worker/converter",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "fermyon:spin/key-value": crate::bindings::fermyon::spin::key_value,
            "fermyon:spin/redis": crate::bindings::fermyon::spin::redis,
            "mp3edge:worker/demux.decoder": crate::demux::host::DecoderHandle,
            "mp3edge:worker/codecs.encoder": crate::codecs::EncoderHandle,
            "mp3edge:worker/codecs.segmented-encoder": crate::codecs::SegmentedHandle,
        },
    });
}

/// A codec plugin's export, called by the host on the converter's behalf.
pub mod plugin {
    wasmtime::component::bindgen!({
        path: "../wit/codec",
        world: "mp3edge:codec/codec-plugin",
        exports: { default: async },
        with: {
            "mp3edge:codec/types": crate::bindings::worker::mp3edge::codec::types,
        },
    });
}

/// A codec plugin that also exports `segments` (see `codecs::segmented`).
pub mod segmented_plugin {
    wasmtime::component::bindgen!({
        path: "../wit/codec",
        world: "mp3edge:codec/segmented-codec-plugin",
        exports: { default: async },
        with: {
            "mp3edge:codec/types": crate::bindings::worker::mp3edge::codec::types,
        },
    });
}
