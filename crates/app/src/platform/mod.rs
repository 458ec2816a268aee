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
pub mod tls;

/// Runs `tick` every `period` until `stop` flips (the 5 s probes of Redis).
pub async fn every<F, Fut>(period: std::time::Duration, mut stop: tokio::sync::watch::Receiver<bool>, mut tick: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => tick().await,
            _ = stop.changed() => return,
        }
    }
}
