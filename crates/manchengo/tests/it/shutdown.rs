//! Graceful shutdown (PLATFORM.md §10.2): requests in flight finish, up to `SHUTDOWN_TIMEOUT`; then the rest is cut.

use std::time::{Duration, Instant};

use axum::routing::get;

use crate::support::{Kind, TestDb, TestServer, client, config_for};

async fn server_with_slow_route(t: &TestDb, shutdown_timeout: &str, slow: Duration) -> TestServer {
    let cfg = config_for(&t.url, t.dir.path(), &[("SHUTDOWN_TIMEOUT", shutdown_timeout)]);
    let extra = axum::Router::new().route(
        "/api/test/lent",
        get(move || async move {
            tokio::time::sleep(slow).await;
            "terminé"
        }),
    );
    let opts = app::server::Options { extra_routes: Some(extra), ..Default::default() };
    TestServer::start_with(cfg, opts).await
}

#[tokio::test]
async fn a_request_in_flight_finishes_after_the_stop_signal() {
    let t = TestDb::new(Kind::Sqlite).await.unwrap();
    let srv = server_with_slow_route(&t, "20s", Duration::from_secs(2)).await;
    let url = srv.url("/api/test/lent");
    let base = srv.url("/api/health");
    let in_flight = tokio::spawn(async move { client().get(url).send().await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    srv.stop().await;
    assert_eq!(in_flight.await.unwrap().unwrap(), 200, "the request in flight completed");
    assert!(started.elapsed() >= Duration::from_millis(1_000), "the server waited for it");
    assert!(client().get(base).send().await.is_err(), "no new connection after the stop");
}

#[tokio::test]
async fn the_drain_is_cut_at_the_shutdown_timeout() {
    let t = TestDb::new(Kind::Sqlite).await.unwrap();
    let srv = server_with_slow_route(&t, "1s", Duration::from_secs(30)).await;
    let url = srv.url("/api/test/lent");
    let in_flight = tokio::spawn(async move { client().get(url).send().await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    srv.stop().await;
    assert!(started.elapsed() < Duration::from_secs(10), "stopped after the 1 s budget, not after 30 s");
    let outcome =
        tokio::time::timeout(Duration::from_secs(5), in_flight).await.expect("cut, not left to its client timeout");
    assert!(outcome.unwrap().is_err(), "the request past the budget was aborted");
}
