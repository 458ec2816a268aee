//! Platform plumbing (PLATFORM.md): configuration lives in `crate::config`; here the pieces every request and every
//! instance rely on.

pub mod cache;
pub mod dbstate;
pub mod errors;
pub mod jobs;
pub mod pipeline;
pub mod ratelimit;
pub mod redis_link;
pub mod telemetry;
