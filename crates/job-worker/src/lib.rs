//! The conversion worker of mp3edge, on top of the runtime (`spin_host`), FFmpeg (`media`) and
//! the codec plugins (`codec_host`):
//!
//! - `trigger`: takes jobs from the Redis stream and runs the converter component per attempt;
//! - `import`: fetches uploads given by URL into the store;
//! - `lifecycle`: what a job's storage goes through, and the sweeper that ends it;
//! - `notify`: webhooks and e-mail when a job ends;
//! - `admin`, `metrics`: health, readiness and Prometheus metrics for operators.

pub mod admin;
pub mod import;
pub mod lifecycle;
pub mod metrics;
pub mod notify;
pub mod trigger;
