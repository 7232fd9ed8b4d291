//! HTTP plumbing shared by the Spin edge components (`auth`, `gateway`): the copied request
//! head, replies and JSON error bodies, bounded request-body reads and draining, a timer on the
//! WASI clock, CORS, the shared SQLite database and who is calling ([`session`]). The decisions
//! without I/O live in `edge-http` and `edge-auth`; this crate does the Spin/WASI side.

mod body;
mod cors;
mod database;
mod head;
mod reply;
pub mod session;
mod time;

pub use body::{BodyStream, drain, read_body};
pub use cors::Cors;
pub use database::{db_error, default_callback, open_database};
pub use head::{Head, media_type, query_param};
pub use reply::{ApiError, ApiResult, Body, BodySink, Reply};
pub use time::{sleep, unix_now, unix_now_millis};
