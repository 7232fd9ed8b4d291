//! HTTP decisions shared by the `auth` and `gateway` components, with no I/O so that they are
//! unit-tested natively:
//!
//! * [`client`]: the client's address for throttling (the runtime's value, or `x-forwarded-for`
//!   behind trusted proxies);
//! * [`cors`]: which origins may read the API from a browser, and the headers that say so;
//! * [`sse`]: Server-Sent Events frames, and when a live stream sends, keeps alive or gives up.

pub mod accept;
pub mod client;
pub mod cors;
pub mod query;
pub mod schema;
pub mod sse;
pub mod tus;
