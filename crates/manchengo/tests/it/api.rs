//! The HTTP surface of the platform: health, envelope, headers, OpenAPI, metrics — on both backends.

use serde_json::Value;

use crate::support::{TestServer, client, get_json, on_both};

#[tokio::test]
async fn health_endpoints_on_both_backends() {
    on_both(|t| async move {
        let srv = TestServer::start(&t, &[]).await;
        let (s, live) = get_json(&srv.url("/api/health")).await;
        assert_eq!((s, live["status"].as_str()), (200, Some("ok")));
        assert!(live.get("version").is_none(), "liveness says nothing about the build");

        let r = client().get(srv.url("/api/health/ready")).send().await.unwrap();
        assert_eq!(r.headers()["cache-control"], "no-store");
        let ready: Value = r.json().await.unwrap();
        assert_eq!(ready["status"], "ready");
        assert_eq!(ready["checks"]["database"]["status"], "up");
        assert_eq!(ready["checks"]["cache"]["mode"], "memory");

        let (s, d) = get_json(&srv.url("/api/health/detailed")).await;
        assert_eq!(s, 200);
        assert_eq!(d["status"], "ok");
        let backend = if t.kind == crate::support::Kind::Sqlite { "sqlite" } else { "postgres" };
        assert_eq!(d["checks"]["database"]["backend"], backend);
        assert_eq!(d["checks"]["database"]["schemaVersion"], 17);
        assert_eq!(d["cache"]["mode"], "memory");
        assert_eq!(d["cache"]["hitRate"], 0.0);
        assert_eq!(d["cache"]["hitRateFormatted"], "0.0%");
        assert_eq!(d["rateLimit"]["max"], 100);
        assert_eq!(d["rateLimit"]["backend"], "local");
        assert!(d["memory"]["rssBytes"].as_u64().unwrap() > 0);
        assert!(d["jobs"].as_array().unwrap().iter().any(|j| j["name"] == "ratelimit-sweep"));
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn detailed_health_and_metrics_are_refused_outside_the_allow_list() {
    on_both(|t| async move {
        let srv =
            TestServer::start(&t, &[("HEALTH_DETAILED_ALLOW", "10.0.0.0/8"), ("METRICS_ALLOW", "10.0.0.0/8")]).await;
        let (s, body) = get_json(&srv.url("/api/health/detailed")).await;
        assert_eq!(s, 401);
        assert_eq!(body["error"]["code"], "UNAUTHENTICATED");
        let r = client().get(srv.url("/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 401);
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn diagnostics_never_qualify_through_a_trusted_proxy() {
    let t = crate::support::TestDb::new(crate::support::Kind::Sqlite).await.unwrap();
    let srv = TestServer::start(&t, &[("TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    // Even claiming to be loopback, a request arriving through the proxy needs a token.
    let r = client().get(srv.url("/api/health/detailed")).header("x-forwarded-for", "127.0.0.1").send().await.unwrap();
    assert_eq!(r.status(), 401);
    srv.stop().await;
}

#[tokio::test]
async fn every_api_error_speaks_the_envelope() {
    on_both(|t| async move {
        let srv = TestServer::start(&t, &[("BODY_LIMIT", "1KiB")]).await;
        let c = client();
        let r = c.get(srv.url("/api/inexistant")).header("x-request-id", "essai-42").send().await.unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["x-request-id"], "essai-42");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "ROUTE_NOT_FOUND");
        assert_eq!(body["requestId"], "essai-42");
        assert_eq!(body["error"]["details"], serde_json::json!({}));

        let r = c.delete(srv.url("/api/health")).send().await.unwrap();
        assert_eq!(r.status(), 405);
        assert!(r.headers()["allow"].to_str().unwrap().contains("GET"));
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "METHOD_NOT_ALLOWED");

        let r = c
            .post(srv.url("/api/health"))
            .header("content-type", "application/json")
            .body("x".repeat(4096))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "PAYLOAD_TOO_LARGE");

        // A request id that does not match the pattern is replaced by a fresh UUID.
        let r = c.get(srv.url("/api/nope")).header("x-request-id", "pas un id <valide>").send().await.unwrap();
        let echoed = r.headers()["x-request-id"].to_str().unwrap().to_string();
        assert!(uuid::Uuid::parse_str(&echoed).is_ok(), "{echoed}");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn security_headers_are_on_every_response_including_errors_and_pages() {
    let t = crate::support::TestDb::new(crate::support::Kind::Sqlite).await.unwrap();
    let srv = TestServer::start(&t, &[]).await;
    for path in ["/api/health", "/api/nope", "/", "/nulle-part"] {
        let r = client().get(srv.url(path)).send().await.unwrap();
        let h = r.headers();
        assert!(h["content-security-policy"].to_str().unwrap().contains("default-src 'self'"), "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin", "{path}");
        assert!(h.get("strict-transport-security").is_none(), "no HSTS in development");
    }
    let r = client().get(srv.url("/nulle-part")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("Page introuvable"));
    srv.stop().await;
}

#[tokio::test]
async fn openapi_lists_every_route_and_every_listed_route_exists() {
    let t = crate::support::TestDb::new(crate::support::Kind::Sqlite).await.unwrap();
    let srv = TestServer::start(&t, &[]).await;
    let (s, doc) = get_json(&srv.url("/api/openapi.json")).await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths: Vec<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    for expected in ["/api/health", "/api/health/ready", "/api/health/detailed", "/api/system/jobs"] {
        assert!(paths.iter().any(|p| p == expected), "{expected} missing from {paths:?}");
    }
    for (p, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let url = srv.url(
                &p.replace("{id}", &uuid::Uuid::now_v7().to_string()).replace("{seq}", "1").replace("{code}", "X-1"),
            );
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = client().request(m, url).json(&serde_json::json!({})).send().await.unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            assert_ne!(body["error"]["code"], "ROUTE_NOT_FOUND", "{method} {p} documented but not routed");
            assert_ne!(status, 405, "{method} {p}");
        }
    }
    srv.stop().await;
}

#[tokio::test]
async fn metrics_export_the_series_the_alert_rules_use() {
    let t = crate::support::TestDb::new(crate::support::Kind::Sqlite).await.unwrap();
    let srv = TestServer::start(&t, &[]).await;
    client().get(srv.url("/api/health")).send().await.unwrap();
    let r = client().get(srv.url("/metrics")).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/plain; version=0.0.4");
    let text = r.text().await.unwrap();
    for series in [
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "db_up",
        "cache_mode{mode=\"memory\"} 1",
        "cache_hits_total",
        "db_pool_connections",
        "process_resident_memory_bytes",
        "build_info",
    ] {
        assert!(text.contains(series), "{series} missing from /metrics");
    }
    srv.stop().await;
}

#[tokio::test]
async fn the_general_limiter_counts_per_real_client_and_answers_429_with_headers() {
    let t = crate::support::TestDb::new(crate::support::Kind::Sqlite).await.unwrap();
    let srv = TestServer::start(
        &t,
        &[("RATE_LIMIT_MAX", "5"), ("RATE_LIMIT_TTL", "60"), ("TRUSTED_PROXIES", "127.0.0.1/32")],
    )
    .await;
    let c = client();
    let hit = |ip: &'static str| c.get(srv.url("/api/openapi.json")).header("x-forwarded-for", ip).send();
    for i in 1..=5u64 {
        let r = hit("41.100.0.1").await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["ratelimit-limit"], "5");
        assert_eq!(r.headers()["ratelimit-remaining"], (5 - i).to_string().as_str());
    }
    let r = hit("41.100.0.1").await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert!(r.headers().contains_key("ratelimit-reset"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    assert_eq!(body["error"]["details"]["limit"], 5);
    assert_eq!(body["error"]["details"]["windowSeconds"], 60);
    assert_eq!(body["error"]["details"]["layer"], "app");
    // Another client behind the same proxy has its own budget; health is exempt.
    assert_ne!(hit("41.100.0.2").await.unwrap().status(), 429);
    let r = c.get(srv.url("/api/health")).header("x-forwarded-for", "41.100.0.1").send().await.unwrap();
    assert_eq!(r.status(), 200);
    srv.stop().await;
}

#[tokio::test]
async fn the_status_page_is_french_and_embedded_assets_are_immutable() {
    let t = crate::support::TestDb::new(crate::support::Kind::Sqlite).await.unwrap();
    let srv = TestServer::start(&t, &[]).await;
    crate::support::seed_user(&srv, "admin@test.dz", domain::identity::Role::Admin, false).await;
    let (c, _) = crate::support::web_session(&srv, "admin@test.dz").await;
    let html = c.get(srv.url("/systeme/sante")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<html lang=\"fr\" dir=\"ltr\">"));
    assert!(html.contains("État du système"));
    assert!(!html.contains("style=\""), "no inline style (CSP)");
    let css =
        html.split("href=\"").find_map(|s| s.split('"').next().filter(|u| u.ends_with("app.css"))).unwrap().to_string();
    assert!(css.starts_with("/assets/"), "{css}");
    let r = client().get(srv.url(&css)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(r.headers()["content-type"], "text/css; charset=utf-8");
    srv.stop().await;
}

#[tokio::test]
async fn with_redis_two_instances_share_one_budget_per_client() {
    let redis = crate::support::PrivateRedis::start();
    let t = crate::support::TestDb::new(crate::support::Kind::Sqlite).await.unwrap();
    let url = redis.url();
    let cfg = [("RATE_LIMIT_MAX", "6"), ("REDIS_URL", url.as_str())];
    let backend = TestServer::start(&t, &cfg).await;
    let web = TestServer::start(&t, &cfg).await;
    let c = client();
    for srv in [&backend, &web, &backend, &web, &backend, &web] {
        assert_eq!(c.get(srv.url("/api/openapi.json")).send().await.unwrap().status(), 200);
    }
    let r = c.get(web.url("/api/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 429, "the seventh request of the window is refused whichever instance gets it");
    let (_, d) = get_json(&backend.url("/api/health/detailed")).await;
    assert_eq!(d["rateLimit"]["backend"], "redis");
    backend.stop().await;
    web.stop().await;
}

#[tokio::test]
async fn swagger_ui_is_served_in_development_only_when_enabled_and_alone_has_a_relaxed_policy() {
    let t = crate::support::TestDb::new(crate::support::Kind::Sqlite).await.unwrap();
    let srv = TestServer::start(&t, &[]).await;
    let r = client().get(srv.url("/docs/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("style-src 'self' 'unsafe-inline'"));
    assert!(r.text().await.unwrap().contains("swagger-ui"));
    let init = client().get(srv.url("/docs/swagger-initializer.js")).send().await.unwrap().text().await.unwrap();
    assert!(init.contains("\"url\": \"/api/openapi.json\""), "{init}");
    srv.stop().await;

    let srv = TestServer::start(&t, &[("DOCS_ENABLED", "false")]).await;
    assert_eq!(client().get(srv.url("/docs/")).send().await.unwrap().status(), 404);
    srv.stop().await;
}

/// PLATFORM.md §2.6: CORS headers only for the configured exact origins, never an error for the others.
#[tokio::test]
async fn cors_answers_only_the_configured_origins() {
    let t = crate::support::TestDb::new(crate::support::Kind::Sqlite).await.unwrap();
    let srv = TestServer::start(&t, &[("CORS_ORIGINS", "https://app.fromagerie.dz")]).await;
    let pre = client()
        .request(reqwest::Method::OPTIONS, srv.url("/api/auth/login"))
        .header("origin", "https://app.fromagerie.dz")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(pre.headers()["access-control-allow-origin"], "https://app.fromagerie.dz");
    assert_eq!(pre.headers()["access-control-allow-credentials"], "true");
    assert!(pre.headers()["access-control-allow-headers"].to_str().unwrap().contains("X-CSRF-Token"));
    let r = client().get(srv.url("/api/health")).header("origin", "https://app.fromagerie.dz").send().await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "https://app.fromagerie.dz");
    let r = client().get(srv.url("/api/health")).header("origin", "https://ailleurs.example").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    srv.stop().await;
}
