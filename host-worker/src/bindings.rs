//! Host-side bindings of the Spin interfaces in `wit/spin` (key-value, SQLite, Redis,
//! variables). Every import is async (backends do I/O) and trappable (a broken backend traps the
//! guest instead of lying to it).

wasmtime::component::bindgen!({
    path: "../wit/spin",
    world: "fermyon:spin/host",
    imports: { default: async | trappable },
    with: {
        "fermyon:spin/key-value.store": crate::key_value::StoreHandle,
        "fermyon:spin/sqlite.connection": crate::sqlite::ConnectionHandle,
        "fermyon:spin/redis.connection": crate::redis_outbound::ConnectionHandle,
    },
});
