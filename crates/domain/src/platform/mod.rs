//! Platform rules (PLATFORM.md): configuration values, client IP, rate-limit windows, health status.

pub mod backup;
pub mod config_values;
pub mod health;
pub mod idempotency;
pub mod net;
pub mod ratelimit;
pub mod request_id;
pub mod schedule;
pub mod version;
