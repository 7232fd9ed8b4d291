//! Redis as the host uses it, with no knowledge of what it stores: connections with timeouts
//! chosen for the calls they carry (`client`), a `redis-server` process the host starts and
//! supervises for itself (`server`), and streams as a work queue shared by workers
//! (`streams`).

pub mod client;
pub mod server;
pub mod streams;
