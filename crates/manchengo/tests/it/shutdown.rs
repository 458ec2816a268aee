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
    let opts = app::server::Options {
        extra_routes: Some(extra),
        extra_access: vec![("GET", "/api/test/lent", domain::identity::Access::Public)],
        ..Default::default()
    };
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

/// A bug in a handler (a panic) answers `500 INTERNAL_ERROR` in the envelope with the request id to quote, reveals
/// nothing of the panic, and the server keeps serving.
#[tokio::test]
async fn a_panicking_handler_gets_the_internal_error_envelope_and_the_server_survives() {
    let t = TestDb::new(Kind::Sqlite).await.unwrap();
    let cfg = config_for(&t.url, t.dir.path(), &[]);
    let extra = axum::Router::new().route(
        "/api/test/panne",
        get(|| async {
            if std::hint::black_box(true) {
                panic!("détail interne secret");
            }
            "jamais"
        }),
    );
    let opts = app::server::Options {
        extra_routes: Some(extra),
        extra_access: vec![("GET", "/api/test/panne", domain::identity::Access::Public)],
        ..Default::default()
    };
    let srv = TestServer::start_with(cfg, opts).await;
    let r = client().get(srv.url("/api/test/panne")).header("x-request-id", "panne-1").send().await.unwrap();
    assert_eq!(r.status(), 500);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "INTERNAL_ERROR");
    assert_eq!(body["error"]["message"], "Une erreur interne est survenue. Référence : panne-1.");
    assert!(!body.to_string().contains("secret"));
    assert_eq!(client().get(srv.url("/api/health")).send().await.unwrap().status(), 200);
    srv.stop().await;
}
