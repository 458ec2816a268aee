//! Identity and security (issue 3): the authorization matrix, sessions, lockout, CSRF, devices, users, the audit
//! chain. Each test runs on SQLite and on PostgreSQL.

use std::collections::BTreeSet;

use app::platform::jobs::ManualClock;
use domain::identity::Role;
use serde_json::{Value, json};

use crate::support::{
    PASSWORD, TestDb, TestServer, audit_actions, bearer, client, config_for, device_login, email_of, on_both,
    seed_user, web_session,
};

/// Every API route and who may call it. Adding a route without adding it here — and declaring its roles in
/// `app::access::ROUTES` — fails `the_authorization_matrix_holds_for_every_route_and_role`.
const MATRIX: &[(&str, &str, &str)] = &[
    ("GET", "/api/health", "PUBLIC"),
    ("GET", "/api/health/ready", "PUBLIC"),
    ("GET", "/api/health/detailed", "PUBLIC"),
    ("GET", "/api/system/jobs", "PUBLIC"),
    ("POST", "/api/auth/login", "PUBLIC"),
    ("POST", "/api/auth/refresh", "PUBLIC"),
    ("GET", "/api/auth/me", "AUTHENTICATED"),
    ("POST", "/api/auth/change-password", "AUTHENTICATED"),
    ("POST", "/api/devices/register", "AUTHENTICATED"),
    ("GET", "/api/admin/devices", "ADMIN"),
    ("POST", "/api/admin/devices/{id}/revoke", "ADMIN"),
    ("POST", "/api/admin/devices/{id}/reactivate", "ADMIN"),
    ("POST", "/api/sync/push", "AUTHENTICATED"),
    ("GET", "/api/sync/pull", "AUTHENTICATED"),
    ("POST", "/api/sync/bootstrap", "AUTHENTICATED"),
    ("GET", "/api/sync/status", "AUTHENTICATED"),
    ("POST", "/api/sync/ack", "AUTHENTICATED"),
    ("GET", "/api/admin/sync/events", "ADMIN"),
    ("POST", "/api/admin/sync/events/{id}/retry", "ADMIN"),
    ("POST", "/api/admin/sync/events/retry", "ADMIN"),
    ("GET", "/api/admin/users", "ADMIN"),
    ("POST", "/api/admin/users", "ADMIN"),
    ("GET", "/api/admin/users/{id}", "ADMIN"),
    ("PATCH", "/api/admin/users/{id}", "ADMIN"),
    ("POST", "/api/admin/users/{id}/deactivate", "ADMIN"),
    ("POST", "/api/admin/users/{id}/reactivate", "ADMIN"),
    ("POST", "/api/admin/users/{id}/reset-password", "ADMIN"),
    ("POST", "/api/admin/users/{id}/unlock", "ADMIN"),
    ("GET", "/api/audit", "ADMIN,COMPTABLE"),
    ("GET", "/api/audit/verify", "ADMIN,COMPTABLE"),
    ("GET", "/api/audit/{seq}", "ADMIN,COMPTABLE"),
    ("GET", "/api/catalogue/mp", "ADMIN,APPRO,PRODUCTION,COMPTABLE"),
    ("POST", "/api/catalogue/mp", "ADMIN,APPRO"),
    ("GET", "/api/catalogue/mp/{code}", "ADMIN,APPRO,PRODUCTION,COMPTABLE"),
    ("PUT", "/api/catalogue/mp/{code}", "ADMIN,APPRO"),
    ("POST", "/api/catalogue/mp/{code}/deactivate", "ADMIN,APPRO"),
    ("POST", "/api/catalogue/mp/{code}/reactivate", "ADMIN,APPRO"),
    ("GET", "/api/catalogue/pf", "ADMIN,APPRO,PRODUCTION,COMMERCIAL,COMPTABLE"),
    ("POST", "/api/catalogue/pf", "ADMIN"),
    ("GET", "/api/catalogue/pf/{code}", "ADMIN,APPRO,PRODUCTION,COMMERCIAL,COMPTABLE"),
    ("PUT", "/api/catalogue/pf/{code}", "ADMIN"),
    ("GET", "/api/suppliers", "ADMIN,APPRO,COMPTABLE"),
    ("POST", "/api/suppliers", "ADMIN,APPRO"),
    ("GET", "/api/suppliers/{code}", "ADMIN,APPRO,COMPTABLE"),
    ("PUT", "/api/suppliers/{code}", "ADMIN,APPRO"),
    ("GET", "/api/clients", "ADMIN,COMMERCIAL,COMPTABLE"),
    ("POST", "/api/clients", "ADMIN,COMMERCIAL"),
    ("GET", "/api/clients/{code}", "ADMIN,COMMERCIAL,COMPTABLE"),
    ("POST", "/api/suppliers/{code}/block", "ADMIN"),
    ("POST", "/api/suppliers/{code}/unblock", "ADMIN"),
    ("PUT", "/api/clients/{code}", "ADMIN,COMMERCIAL"),
    ("GET", "/api/catalogue/brands", "ADMIN,APPRO,PRODUCTION,COMMERCIAL,COMPTABLE"),
    ("POST", "/api/catalogue/brands", "ADMIN"),
    ("PUT", "/api/catalogue/brands/{code}", "ADMIN"),
    ("GET", "/api/catalogue/families", "ADMIN,APPRO,PRODUCTION,COMMERCIAL,COMPTABLE"),
    ("POST", "/api/catalogue/families", "ADMIN"),
    ("PUT", "/api/catalogue/families/{code}", "ADMIN"),
    ("GET", "/api/settings/company", "ADMIN,APPRO,PRODUCTION,COMMERCIAL,COMPTABLE"),
    ("PUT", "/api/settings/company", "ADMIN"),
    ("GET", "/api/settings/chart-of-accounts", "ADMIN,APPRO,PRODUCTION,COMMERCIAL,COMPTABLE"),
    ("PUT", "/api/settings/chart-of-accounts", "ADMIN"),
    ("GET", "/api/purchase-orders", "ADMIN,APPRO,PRODUCTION,COMPTABLE"),
    ("POST", "/api/purchase-orders", "ADMIN,APPRO"),
    ("GET", "/api/purchase-orders/{reference}", "ADMIN,APPRO,PRODUCTION,COMPTABLE"),
    ("GET", "/api/purchase-orders/{reference}/pdf", "ADMIN,APPRO,COMPTABLE"),
    ("PUT", "/api/purchase-orders/{reference}", "ADMIN,APPRO"),
    ("POST", "/api/purchase-orders/{reference}/send", "ADMIN,APPRO"),
    ("POST", "/api/purchase-orders/{reference}/confirm", "ADMIN,APPRO"),
    ("POST", "/api/purchase-orders/{reference}/close", "ADMIN,APPRO"),
    ("POST", "/api/purchase-orders/{reference}/cancel", "ADMIN"),
    ("GET", "/api/recipes", "ADMIN,APPRO,PRODUCTION,COMPTABLE"),
    ("GET", "/api/recipes/{code}", "ADMIN,APPRO,PRODUCTION,COMPTABLE"),
    ("POST", "/api/recipes/{code}", "ADMIN,PRODUCTION"),
    ("GET", "/api/production-orders", "ADMIN,APPRO,PRODUCTION,COMPTABLE"),
    ("POST", "/api/production-orders", "ADMIN,PRODUCTION"),
    ("GET", "/api/production-orders/{reference}", "ADMIN,APPRO,PRODUCTION,COMPTABLE"),
    ("POST", "/api/production-orders/{reference}/reschedule", "ADMIN,PRODUCTION"),
    ("POST", "/api/production-orders/{reference}/start", "ADMIN,PRODUCTION"),
    ("POST", "/api/production-orders/{reference}/complete", "ADMIN,PRODUCTION"),
    ("POST", "/api/production-orders/{reference}/cancel", "ADMIN,PRODUCTION"),
    ("GET", "/api/price-lists", "ADMIN,COMMERCIAL,COMPTABLE"),
    ("POST", "/api/price-lists", "ADMIN"),
    ("GET", "/api/price-lists/{id}", "ADMIN,COMMERCIAL,COMPTABLE"),
    ("PUT", "/api/price-lists/{id}", "ADMIN"),
    ("GET", "/api/invoices", "ADMIN,COMMERCIAL,COMPTABLE"),
    ("POST", "/api/invoices", "ADMIN,COMMERCIAL"),
    ("GET", "/api/invoices/{key}", "ADMIN,COMMERCIAL,COMPTABLE"),
    ("GET", "/api/invoices/{key}/pdf", "ADMIN,COMMERCIAL,COMPTABLE"),
    ("PUT", "/api/invoices/{key}", "ADMIN,COMMERCIAL"),
    ("DELETE", "/api/invoices/{key}", "ADMIN,COMMERCIAL"),
    ("POST", "/api/invoices/{key}/validate", "ADMIN,COMMERCIAL"),
    ("POST", "/api/invoices/{key}/payments", "ADMIN,COMMERCIAL"),
    ("POST", "/api/invoices/{key}/credit-notes", "ADMIN,COMMERCIAL"),
    ("POST", "/api/payments/{reference}/cancel", "ADMIN"),
    ("POST", "/api/clients/{code}/refunds", "ADMIN"),
    ("GET", "/api/clients/{code}/statement", "ADMIN,COMMERCIAL,COMPTABLE"),
    ("GET", "/api/credit-notes/{key}", "ADMIN,COMMERCIAL,COMPTABLE"),
    ("GET", "/api/credit-notes/{key}/pdf", "ADMIN,COMMERCIAL,COMPTABLE"),
    ("DELETE", "/api/credit-notes/{key}", "ADMIN,COMMERCIAL"),
    ("POST", "/api/credit-notes/{key}/validate", "ADMIN"),
    ("GET", "/api/accounting/{export}", "ADMIN,COMPTABLE"),
    ("GET", "/api/deliveries", "ADMIN,COMMERCIAL,COMPTABLE"),
    ("POST", "/api/deliveries", "ADMIN,COMMERCIAL"),
    ("POST", "/api/deliveries/scan", "ADMIN,COMMERCIAL"),
    ("GET", "/api/deliveries/{key}", "ADMIN,COMMERCIAL,COMPTABLE"),
    ("GET", "/api/deliveries/{key}/pdf", "ADMIN,COMMERCIAL,COMPTABLE"),
    ("POST", "/api/deliveries/{key}/validate", "ADMIN,COMMERCIAL"),
    ("POST", "/api/deliveries/{key}/deliver", "ADMIN,COMMERCIAL"),
    ("POST", "/api/deliveries/{key}/cancel", "ADMIN,COMMERCIAL"),
    ("GET", "/api/deliveries/{key}/proof/{kind}", "ADMIN,COMMERCIAL,COMPTABLE"),
    ("GET", "/api/trace", "ADMIN,APPRO,PRODUCTION,COMMERCIAL,COMPTABLE"),
    ("GET", "/api/trace/recall", "ADMIN,APPRO,PRODUCTION,COMMERCIAL,COMPTABLE"),
    ("POST", "/api/trace/recall/block", "ADMIN"),
    ("GET", "/api/appro/cockpit", "ADMIN,APPRO,PRODUCTION,COMPTABLE"),
    ("POST", "/api/appro/suggestions/orders", "ADMIN,APPRO"),
    ("GET", "/api/alerts", "ADMIN,APPRO,PRODUCTION,COMMERCIAL,COMPTABLE"),
    ("POST", "/api/alerts/{id}/acknowledge", "ADMIN,APPRO,PRODUCTION,COMMERCIAL,COMPTABLE"),
    ("POST", "/api/alerts/{id}/postpone", "ADMIN,APPRO,PRODUCTION,COMMERCIAL,COMPTABLE"),
    ("GET", "/api/suppliers/{code}/performance", "ADMIN,APPRO,COMPTABLE"),
    ("GET", "/api/receptions", "ADMIN,APPRO,PRODUCTION,COMPTABLE"),
    ("POST", "/api/receptions", "ADMIN,APPRO"),
    ("GET", "/api/receptions/{reference}", "ADMIN,APPRO,PRODUCTION,COMPTABLE"),
    ("GET", "/api/stock/lots", "ADMIN,APPRO,PRODUCTION,COMMERCIAL,COMPTABLE"),
    ("GET", "/api/stock/lots/{number}", "ADMIN,APPRO,PRODUCTION,COMMERCIAL,COMPTABLE"),
    ("GET", "/api/stock/lots/{number}/label", "ADMIN,APPRO,PRODUCTION"),
    ("GET", "/api/receptions/{reference}/labels", "ADMIN,APPRO,PRODUCTION"),
    ("POST", "/api/stock/lots/{number}/qc", "ADMIN,PRODUCTION"),
    ("POST", "/api/stock/lots/{number}/block", "ADMIN"),
    ("POST", "/api/stock/lots/{number}/unblock", "ADMIN"),
    ("GET", "/api/stock/losses", "ADMIN,APPRO,PRODUCTION,COMPTABLE"),
    ("POST", "/api/stock/losses", "ADMIN,APPRO,PRODUCTION"),
    ("POST", "/api/stock/losses/write-off", "ADMIN,APPRO,PRODUCTION"),
    ("GET", "/api/stock/dashboard", "ADMIN,APPRO,PRODUCTION,COMMERCIAL,COMPTABLE"),
    ("GET", "/api/stock/echeances", "ADMIN,APPRO,PRODUCTION,COMMERCIAL,COMPTABLE"),
    ("GET", "/api/stock/fefo-plan", "ADMIN,APPRO,PRODUCTION,COMMERCIAL"),
    ("GET", "/api/stock/products", "ADMIN,APPRO,PRODUCTION,COMMERCIAL,COMPTABLE"),
    ("GET", "/api/stock/movements", "ADMIN,APPRO,PRODUCTION,COMMERCIAL,COMPTABLE"),
    ("GET", "/api/stock/counts", "ADMIN,APPRO,PRODUCTION,COMPTABLE"),
    ("POST", "/api/stock/counts", "ADMIN,APPRO,PRODUCTION"),
    ("GET", "/api/stock/counts/{reference}", "ADMIN,APPRO,PRODUCTION,COMPTABLE"),
    ("POST", "/api/stock/counts/{reference}/validate", "ADMIN,COMPTABLE"),
    ("POST", "/api/stock/counts/{reference}/reject", "ADMIN,COMPTABLE"),
    // Last: it closes the session it is called with.
    ("POST", "/api/auth/logout", "AUTHENTICATED"),
];

fn allowed(who: &str, role: Role) -> bool {
    who == "PUBLIC" || who == "AUTHENTICATED" || who.split(',').any(|r| r == role.code())
}

async fn call(srv: &TestServer, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let concrete = path
        .replace("{id}", &uuid::Uuid::now_v7().to_string())
        .replace("{seq}", "999999")
        .replace("{code}", "X-INCONNU")
        .replace("{reference}", "REC-1900-00001")
        .replace("{number}", "L000000-001");
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client().request(m.clone(), srv.url(&concrete));
    if m != reqwest::Method::GET {
        req = req.json(&json!({}));
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_authorization_matrix_holds_for_every_route_and_role() {
    on_both(|t| async move {
        // One anonymous call per route outgrows the general limit of one address; the limiter has its own tests.
        let srv = TestServer::start(&t, &[("RATE_LIMIT_MAX", "100000")]).await;
        // The document generated from the router lists exactly the routes of the matrix, each with its roles.
        let (_, doc) = crate::support::get_json(&srv.url("/api/openapi.json")).await;
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let roles: Vec<&str> = op["x-roles"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
                documented.insert((method.to_uppercase(), path.clone(), roles.join(",")));
            }
        }
        let expected: BTreeSet<(String, String, String)> =
            MATRIX.iter().map(|(m, p, w)| (m.to_string(), p.to_string(), w.to_string())).collect();
        assert_eq!(documented, expected, "routes and their declared roles");

        let mut tokens = Vec::new();
        for role in Role::ALL {
            tokens.push((role, bearer(&srv, role).await));
        }
        let denials_before = audit_actions(&srv, "ACCESS_DENIED").await.len();
        let mut cells = 0;
        let mut denied = 0;
        for (method, path, who) in MATRIX {
            let (s, b) = call(&srv, method, path, None).await;
            cells += 1;
            if *who == "PUBLIC" {
                assert_ne!(s, 403, "anonymous {method} {path}: {b}");
            } else {
                assert_eq!(
                    (s, b["error"]["code"].as_str()),
                    (401, Some("UNAUTHENTICATED")),
                    "anonymous {method} {path}"
                );
            }
            for (role, token) in &tokens {
                let (s, b) = call(&srv, method, path, Some(token)).await;
                cells += 1;
                if *who == "PUBLIC" {
                    assert_ne!(s, 403, "{} {method} {path}: {b}", role.code());
                } else if allowed(who, *role) {
                    assert!(s != 401 && s != 403, "{} {method} {path} should pass the guard: {s} {b}", role.code());
                } else {
                    denied += 1;
                    assert_eq!(
                        (s, b["error"]["code"].as_str()),
                        (403, Some("ACCES_REFUSE")),
                        "{} {method} {path}",
                        role.code()
                    );
                    assert_eq!(b["error"]["message"], "Vous n'avez pas les droits pour cette action.");
                }
            }
        }
        assert_eq!(cells, MATRIX.len() * 6);
        // Every refusal is in the security log, with who tried what.
        let denials = audit_actions(&srv, "ACCESS_DENIED").await;
        assert_eq!(denials.len() - denials_before, denied);
        let last = denials.last().unwrap();
        assert_eq!(last.severity, "SECURITY");
        assert!(
            last.after.as_deref().unwrap().contains("\"route\":\"/api/stock/counts/{reference}/reject\""),
            "{:?}",
            last.after
        );
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn pages_redirect_anonymous_visitors_and_refuse_other_roles() {
    let t = TestDb::new(crate::support::Kind::Sqlite).await.unwrap();
    let srv = TestServer::start(&t, &[]).await;
    seed_user(&srv, &email_of(Role::Comptable), Role::Comptable, false).await;
    let anon = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = anon.get(srv.url("/systeme/utilisateurs?x=1")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/connexion?suite=/systeme/utilisateurs%3Fx%3D1");
    let (c, _) = web_session(&srv, &email_of(Role::Comptable)).await;
    let r = c.get(srv.url("/systeme/utilisateurs")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let html = r.text().await.unwrap();
    assert!(html.contains("Accès refusé") && html.contains("Comptable"), "{html}");
    let r = c.get(srv.url("/systeme/audit")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    srv.stop().await;
}

#[tokio::test]
async fn web_sessions_use_cookies_and_refuse_unsafe_calls_without_the_csrf_token() {
    on_both(|t| async move {
        let srv = TestServer::start(&t, &[]).await;
        seed_user(&srv, "k.benali@fromagerie.dz", Role::Commercial, false).await;
        let c = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let r = c
            .post(srv.url("/api/auth/login"))
            .json(&json!({"email": " K.Benali@Fromagerie.DZ ", "password": PASSWORD, "client": "web"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let cookies: Vec<String> =
            r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
        let find = |n: &str| cookies.iter().find(|c| c.starts_with(&format!("{n}="))).cloned().unwrap();
        assert!(find("mc_at").contains("HttpOnly") && find("mc_at").contains("SameSite=Lax"));
        assert!(find("mc_at").contains("Max-Age=900"));
        assert!(find("mc_rt").contains("HttpOnly") && find("mc_rt").contains("Max-Age=86400"));
        assert!(!find("mc_csrf").contains("HttpOnly"), "scripts read the CSRF cookie");
        assert!(!find("mc_at").contains("Secure"), "development: plain http");
        let body: Value = r.json().await.unwrap();
        assert!(body.get("accessToken").is_none(), "web tokens only in cookies");
        assert_eq!(body["user"]["email"], "k.benali@fromagerie.dz");
        assert_eq!(body["user"]["role"], "COMMERCIAL");
        let csrf = body["csrfToken"].as_str().unwrap().to_string();
        assert_eq!(csrf.len(), 43);

        let me: Value = c.get(srv.url("/api/auth/me")).send().await.unwrap().json().await.unwrap();
        assert_eq!(me["session"]["client"], "web");

        // Unsafe method with cookies but no CSRF token, or a wrong one, or a foreign Origin: 403 CSRF_INVALID.
        let r = c.post(srv.url("/api/auth/logout")).send().await.unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "CSRF_INVALID");
        let r = c.post(srv.url("/api/auth/logout")).header("x-csrf-token", "faux").send().await.unwrap();
        assert_eq!(r.status(), 403);
        let r = c
            .post(srv.url("/api/auth/logout"))
            .header("x-csrf-token", &csrf)
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        // The session survived all three attempts.
        assert_eq!(c.get(srv.url("/api/auth/me")).send().await.unwrap().status(), 200);
        // A page form without `_csrf` is refused too, and nothing happens.
        let r = c.post(srv.url("/deconnexion")).form(&[("x", "1")]).send().await.unwrap();
        assert_eq!(r.status(), 403);
        assert!(r.text().await.unwrap().contains("Formulaire expiré"));
        assert_eq!(c.get(srv.url("/api/auth/me")).send().await.unwrap().status(), 200);

        let r = c.post(srv.url("/api/auth/logout")).header("x-csrf-token", &csrf).send().await.unwrap();
        assert_eq!(r.status(), 204);
        let r = c.get(srv.url("/api/auth/me")).send().await.unwrap();
        assert_eq!(r.status(), 401, "cookies cleared and session revoked");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn five_failures_lock_the_account_for_fifteen_minutes_and_unknown_emails_look_the_same() {
    on_both(|t| async move {
        let clock = ManualClock::new(chrono::Utc::now());
        let options = app::server::Options { clock: clock.clone(), ..Default::default() };
        // A wide per-IP net so that the account lockout is what answers.
        let srv =
            TestServer::start_with(config_for(&t.url, t.dir.path(), &[("RATE_LIMIT_LOGIN_MAX", "50")]), options).await;
        let user = seed_user(&srv, "a.saidi@fromagerie.dz", Role::Appro, false).await;
        let login = |email: &'static str, pw: &'static str| {
            let url = srv.url("/api/auth/login");
            async move {
                let r = client()
                    .post(url)
                    .json(&json!({"email": email, "password": pw, "client": "device"}))
                    .send()
                    .await
                    .unwrap();
                let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
                (r.status().as_u16(), r.json::<Value>().await.unwrap(), retry)
            }
        };
        let (s, unknown, _) = login("personne@fromagerie.dz", "Mauvais#2025x").await;
        let (s2, wrong, _) = login("a.saidi@fromagerie.dz", "Mauvais#2025x").await;
        assert_eq!((s, s2), (401, 401));
        assert_eq!(unknown["error"]["code"], "INVALID_CREDENTIALS");
        assert_eq!(unknown["error"]["message"], wrong["error"]["message"]);
        assert_eq!(wrong["error"]["message"], "Identifiants invalides.");
        for _ in 0..4 {
            assert_eq!(login("a.saidi@fromagerie.dz", "Mauvais#2025x").await.0, 401);
        }
        // Sixth attempt, right password: locked.
        let (s, b, retry) = login("a.saidi@fromagerie.dz", PASSWORD).await;
        assert_eq!((s, b["error"]["code"].as_str()), (429, Some("ACCOUNT_LOCKED")));
        assert_eq!(b["error"]["message"], "Trop de tentatives de connexion. Réessayez dans 15 minutes.");
        assert_eq!(retry.as_deref(), Some("900"));
        // Nothing but the security log was written: no session.
        let sessions = store::identity::open_sessions(srv.state.dbmon.db(), user.id).await.unwrap();
        assert!(sessions.is_empty());
        assert_eq!(audit_actions(&srv, "ACCOUNT_LOCKED").await.len(), 1);
        assert!(audit_actions(&srv, "LOGIN_FAILURE").await.len() >= 6);
        // The unknown address locks the same way (the lock reveals nothing).
        for _ in 0..4 {
            login("personne@fromagerie.dz", "Mauvais#2025x").await;
        }
        assert_eq!(login("personne@fromagerie.dz", "Mauvais#2025x").await.0, 429);
        // 15 minutes later the right password works and resets the counter.
        clock.advance(chrono::Duration::seconds(901));
        let (s, b, _) = login("a.saidi@fromagerie.dz", PASSWORD).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(audit_actions(&srv, "LOGIN_SUCCESS").await.len(), 1);
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn access_tokens_expire_and_refresh_tokens_rotate_with_reuse_detection() {
    on_both(|t| async move {
        let clock = ManualClock::new(chrono::Utc::now());
        let options = app::server::Options { clock: clock.clone(), ..Default::default() };
        let srv = TestServer::start_with(config_for(&t.url, t.dir.path(), &[]), options).await;
        seed_user(&srv, "driver@fromagerie.dz", Role::Commercial, false).await;
        let first = device_login(&srv, "driver@fromagerie.dz", None).await;
        let access = first["accessToken"].as_str().unwrap().to_string();
        let rt1 = first["refreshToken"].as_str().unwrap().to_string();
        assert!(rt1.starts_with("mcr_") && rt1.len() == 47);
        let me = |tok: String| {
            let url = srv.url("/api/auth/me");
            async move {
                let r = client().get(url).bearer_auth(tok).send().await.unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            }
        };
        assert_eq!(me(access.clone()).await.0, 200);
        clock.advance(chrono::Duration::minutes(15));
        let (s, b) = me(access.clone()).await;
        assert_eq!((s, b["error"]["code"].as_str()), (401, Some("TOKEN_EXPIRED")));

        let refresh = |tok: String| {
            let url = srv.url("/api/auth/refresh");
            async move {
                let r = client().post(url).json(&json!({"refreshToken": tok})).send().await.unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            }
        };
        let (s, second) = refresh(rt1.clone()).await;
        assert_eq!(s, 200, "{second}");
        let rt2 = second["refreshToken"].as_str().unwrap().to_string();
        assert_ne!(rt1, rt2);
        assert_eq!(me(second["accessToken"].as_str().unwrap().into()).await.0, 200);

        // The rotated token again within 30 s: a benign race, an access token and no new refresh token.
        clock.advance(chrono::Duration::seconds(29));
        let (s, grace) = refresh(rt1.clone()).await;
        assert_eq!(s, 200);
        assert!(grace.get("refreshToken").is_none(), "{grace}");
        assert!(audit_actions(&srv, "REFRESH_TOKEN_REUSE").await.is_empty());

        // Later than 30 s: theft assumed, the whole family dies and the security log says so.
        clock.advance(chrono::Duration::seconds(2));
        let (s, b) = refresh(rt1.clone()).await;
        assert_eq!((s, b["error"]["code"].as_str()), (401, Some("SESSION_REVOKED")));
        let reuse = audit_actions(&srv, "REFRESH_TOKEN_REUSE").await;
        assert_eq!(reuse.len(), 1);
        assert_eq!(reuse[0].severity, "SECURITY");
        let (s, b) = refresh(rt2).await;
        assert_eq!((s, b["error"]["code"].as_str()), (401, Some("SESSION_REVOKED")), "the family is revoked");
        let (s, b) = me(grace["accessToken"].as_str().unwrap().into()).await;
        assert_eq!((s, b["error"]["code"].as_str()), (401, Some("SESSION_REVOKED")));

        // Forged and foreign tokens.
        let forged = format!("{}x", access);
        assert_eq!(me(forged).await.1["error"]["code"], "UNAUTHENTICATED");
        let (s, b) = refresh("mcr_inconnu".into()).await;
        assert_eq!((s, b["error"]["code"].as_str()), (401, Some("UNAUTHENTICATED")));
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_revoked_device_is_refused_everywhere_and_the_runbook_query_reads_it() {
    on_both(|t| async move {
        let srv = TestServer::start(&t, &[]).await;
        let admin = bearer(&srv, Role::Admin).await;
        seed_user(&srv, "driver@fromagerie.dz", Role::Commercial, false).await;
        seed_user(&srv, "other@fromagerie.dz", Role::Commercial, false).await;
        let device = uuid::Uuid::new_v4();
        let login = device_login(&srv, "driver@fromagerie.dz", Some(device)).await;
        assert_eq!(login["device"], json!({"id": device, "registered": false, "isActive": true}));
        let token = login["accessToken"].as_str().unwrap().to_string();
        let register = |tok: String| {
            let url = srv.url("/api/devices/register");
            async move {
                let r = client()
                    .post(url)
                    .bearer_auth(tok)
                    .json(&json!({"id": device, "name": "Samsung A14 – Tournée Est", "platform": "android", "appVersion": "1.0.0"}))
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            }
        };
        assert_eq!(register(token.clone()).await.0, 201);
        assert_eq!(register(token.clone()).await.0, 200, "same user again: an update");
        let other = device_login(&srv, "other@fromagerie.dz", None).await["accessToken"].as_str().unwrap().to_string();
        let (s, b) = register(other).await;
        assert_eq!((s, b["error"]["code"].as_str()), (409, Some("DEVICE_OWNED_BY_OTHER_USER")));
        let (s, b) = {
            let r = client()
                .post(srv.url("/api/auth/login"))
                .json(&json!({"email": "other@fromagerie.dz", "password": PASSWORD, "client": "device", "deviceId": device}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        };
        assert_eq!((s, b["error"]["code"].as_str()), (409, Some("DEVICE_OWNED_BY_OTHER_USER")));

        // Revocation needs a reason, then kills the device's sessions at once.
        let revoke = |reason: &'static str| {
            let url = srv.url(&format!("/api/admin/devices/{device}/revoke"));
            let admin = admin.clone();
            async move {
                let r = client().post(url).bearer_auth(admin).json(&json!({"reason": reason})).send().await.unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            }
        };
        let (s, b) = revoke("vol").await;
        assert_eq!((s, b["error"]["code"].as_str()), (422, Some("MOTIF_OBLIGATOIRE")));
        let (s, b) = revoke("Téléphone perdu pendant la tournée").await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["device"]["isActive"], false);
        let r = client().get(srv.url("/api/auth/me")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "DEVICE_REVOKED");
        let r = client()
            .post(srv.url("/api/auth/refresh"))
            .json(&json!({"refreshToken": login["refreshToken"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "DEVICE_REVOKED");
        let r = client()
            .post(srv.url("/api/auth/login"))
            .json(&json!({"email": "driver@fromagerie.dz", "password": PASSWORD, "client": "device", "deviceId": device}))
            .send()
            .await
            .unwrap();
        assert_eq!((r.status().as_u16(), r.json::<Value>().await.unwrap()["error"]["code"].clone()), (401, json!("DEVICE_REVOKED")));
        assert_eq!(audit_actions(&srv, "DEVICE_REVOKED").await.len(), 1);

        // The runbook's query, verbatim column names.
        use sea_orm::ConnectionTrait;
        let db = srv.state.dbmon.db();
        let rows = db
            .conn()
            .query_all_raw(sea_orm::Statement::from_string(
                db.sea_backend(),
                "SELECT id, name, platform, last_sync_at, is_active FROM devices",
            ))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].try_get::<String>("", "name").unwrap(), "Samsung A14 – Tournée Est");
        assert!(!rows[0].try_get::<bool>("", "is_active").unwrap());

        let list: Value = client().get(srv.url("/api/admin/devices?isActive=false")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
        assert_eq!(list["total"], 1);
        assert_eq!(list["items"][0]["revokeReason"], "Téléphone perdu pendant la tournée");
        // Reactivation: old sessions stay dead, a new login works.
        let r = client().post(srv.url(&format!("/api/admin/devices/{device}/reactivate"))).bearer_auth(&admin).json(&json!({})).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(client().get(srv.url("/api/auth/me")).bearer_auth(&token).send().await.unwrap().status(), 401);
        device_login(&srv, "driver@fromagerie.dz", Some(device)).await;
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn users_are_administered_under_the_segregation_rules() {
    on_both(|t| async move {
        let srv = TestServer::start(&t, &[]).await;
        let admin = bearer(&srv, Role::Admin).await;
        let admin_id = store::identity::user_by_email(srv.state.dbmon.db().conn(), &email_of(Role::Admin))
            .await
            .unwrap()
            .unwrap()
            .id;
        let post = |path: String, body: Value| {
            let url = srv.url(&path);
            let admin = admin.clone();
            async move {
                let r = client().post(url).bearer_auth(admin).json(&body).send().await.unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        // Create: the one-time password satisfies the policy and must be changed.
        let (s, created) = post(
            "/api/admin/users".into(),
            json!({"email": "N.Haddad@Fromagerie.dz", "firstName": "Nadia", "lastName": "Haddad", "role": "COMPTABLE"}),
        )
        .await;
        assert_eq!(s, 201, "{created}");
        assert_eq!(created["user"]["email"], "n.haddad@fromagerie.dz");
        assert_eq!(created["user"]["mustChangePassword"], true);
        let otp = created["oneTimePassword"].as_str().unwrap().to_string();
        let (s, b) = post(
            "/api/admin/users".into(),
            json!({"email": "n.haddad@fromagerie.dz", "firstName": "N", "lastName": "H", "role": "APPRO"}),
        )
        .await;
        assert_eq!((s, b["error"]["code"].as_str()), (409, Some("EMAIL_DEJA_UTILISE")));
        let (s, b) = post(
            "/api/admin/users".into(),
            json!({"email": "pas-une-adresse", "firstName": "N", "lastName": "H", "role": "APPRO"}),
        )
        .await;
        assert_eq!((s, b["error"]["code"].as_str()), (422, Some("EMAIL_INVALIDE")));

        // The new user is held at the password change.
        let r = client()
            .post(srv.url("/api/auth/login"))
            .json(&json!({"email": "n.haddad@fromagerie.dz", "password": otp, "client": "device"}))
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        let tok = body["accessToken"].as_str().unwrap().to_string();
        let r = client().get(srv.url("/api/audit")).bearer_auth(&tok).send().await.unwrap();
        assert_eq!(
            (r.status().as_u16(), r.json::<Value>().await.unwrap()["error"]["code"].clone()),
            (403, json!("PASSWORD_CHANGE_REQUIRED"))
        );
        assert_eq!(client().get(srv.url("/api/auth/me")).bearer_auth(&tok).send().await.unwrap().status(), 200);
        let change = |cur: String, new: &'static str| {
            let url = srv.url("/api/auth/change-password");
            let tok = tok.clone();
            async move {
                let r = client()
                    .post(url)
                    .bearer_auth(tok)
                    .json(&json!({"currentPassword": cur, "newPassword": new}))
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        let (s, b) = change(otp.clone(), "n.haddad").await;
        assert_eq!((s, b["error"]["code"].as_str()), (422, Some("MOT_DE_PASSE_FAIBLE")));
        assert_eq!(b["error"]["details"]["failed"], json!(["MIN_LENGTH", "CHAR_CLASSES", "CONTAINS_EMAIL"]));
        let (s, b) = change("Mauvais#2025x".into(), "Comptable#2025!").await;
        assert_eq!((s, b["error"]["code"].as_str()), (401, Some("INVALID_CREDENTIALS")));
        let (s, fresh) = change(otp.clone(), "Comptable#2025!").await;
        assert_eq!(s, 200, "{fresh}");
        let tok2 = fresh["accessToken"].as_str().unwrap();
        let r = client().get(srv.url("/api/audit")).bearer_auth(tok2).send().await.unwrap();
        assert_eq!(r.status(), 200, "the change lifted the gate");

        // DOMAIN §2.1: no self-demotion, no self-deactivation, never the last active ADMIN.
        let (s, b) = {
            let r = client()
                .patch(srv.url(&format!("/api/admin/users/{admin_id}")))
                .bearer_auth(&admin)
                .json(&json!({"role": "APPRO"}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        };
        assert_eq!((s, b["error"]["code"].as_str()), (403, Some("ACCES_REFUSE")));
        let (s, b) = post(format!("/api/admin/users/{admin_id}/deactivate"), json!({})).await;
        assert_eq!((s, b["error"]["code"].as_str()), (403, Some("ACCES_REFUSE")));
        let second = seed_user(&srv, "second.admin@fromagerie.dz", Role::Admin, false).await;
        let (s, _) = post(format!("/api/admin/users/{}/deactivate", second.id), json!({})).await;
        assert_eq!(s, 200);
        let nadia = created["user"]["id"].as_str().unwrap().to_string();
        // Deactivation closes the user's sessions at once; the login answer stays generic.
        let (s, _) = post(format!("/api/admin/users/{nadia}/deactivate"), json!({})).await;
        assert_eq!(s, 200);
        let r = client().get(srv.url("/api/auth/me")).bearer_auth(tok2).send().await.unwrap();
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "SESSION_REVOKED");
        let r = client()
            .post(srv.url("/api/auth/login"))
            .json(&json!({"email": "n.haddad@fromagerie.dz", "password": "Comptable#2025!"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            (r.status().as_u16(), r.json::<Value>().await.unwrap()["error"]["code"].clone()),
            (401, json!("INVALID_CREDENTIALS"))
        );
        // Role change takes effect on the next call (authorization reads the database role).
        let appro = bearer(&srv, Role::Appro).await;
        assert_eq!(client().get(srv.url("/api/audit")).bearer_auth(&appro).send().await.unwrap().status(), 403);
        let appro_id = store::identity::user_by_email(srv.state.dbmon.db().conn(), &email_of(Role::Appro))
            .await
            .unwrap()
            .unwrap()
            .id;
        let r = client()
            .patch(srv.url(&format!("/api/admin/users/{appro_id}")))
            .bearer_auth(&admin)
            .json(&json!({"role": "COMPTABLE"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(client().get(srv.url("/api/audit")).bearer_auth(&appro).send().await.unwrap().status(), 200);
        let changes = audit_actions(&srv, "USER_ROLE_CHANGED").await;
        assert_eq!(changes.len(), 1);
        assert!(changes[0].before.as_deref().unwrap().contains("\"role\":\"APPRO\""));
        assert!(changes[0].after.as_deref().unwrap().contains("\"role\":\"COMPTABLE\""));
        // Reset: a new one-time password; every session of the user is closed.
        let (s, b) = post(format!("/api/admin/users/{appro_id}/reset-password"), json!({})).await;
        assert_eq!(s, 200);
        assert!(b["oneTimePassword"].as_str().unwrap().len() >= 12);
        assert_eq!(client().get(srv.url("/api/auth/me")).bearer_auth(&appro).send().await.unwrap().status(), 401);
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn diagnostics_are_open_to_an_admin_token_from_anywhere() {
    let t = TestDb::new(crate::support::Kind::Sqlite).await.unwrap();
    let extra = [("HEALTH_DETAILED_ALLOW", "10.9.9.9/32"), ("METRICS_ALLOW", "10.9.9.9/32")];
    let srv = TestServer::start(&t, &extra).await;
    let admin = bearer(&srv, Role::Admin).await;
    let comptable = bearer(&srv, Role::Comptable).await;
    for path in ["/api/health/detailed", "/metrics", "/api/system/jobs"] {
        assert_eq!(client().get(srv.url(path)).send().await.unwrap().status(), 401, "{path} anonymous");
        assert_eq!(
            client().get(srv.url(path)).bearer_auth(&comptable).send().await.unwrap().status(),
            401,
            "{path} comptable"
        );
        let r = client().get(srv.url(path)).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path} admin");
    }
    srv.stop().await;
}

// The CLI runs synchronously beside the server: worker threads keep the server's tasks moving meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_chain_detects_an_edited_row_and_names_it() {
    on_both(|t| async move {
        let srv = TestServer::start(&t, &[]).await;
        let admin = bearer(&srv, Role::Admin).await;
        for role in [Role::Appro, Role::Production] {
            bearer(&srv, role).await;
        }
        let v: Value =
            client().get(srv.url("/api/audit/verify")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
        assert_eq!(v["ok"], true, "{v}");
        let count = v["verified"].as_u64().unwrap();
        assert!(count >= 6, "users created and logins: {v}");

        let bin = env!("CARGO_BIN_EXE_manchengo");
        let check = || {
            std::process::Command::new(bin)
                .args(["check", "--audit", "--database-url", &t.url])
                .env("DATA_DIR", t.dir.path())
                .env_remove("DATABASE_URL")
                .output()
                .unwrap()
        };
        let out = check();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            String::from_utf8_lossy(&out.stdout)
                .contains(&format!("chaîne d'audit intacte : {count} entrées vérifiées"))
        );

        // The table refuses edits; an operator who drops the guard and edits entry 3 is caught.
        use sea_orm::ConnectionTrait;
        let db = srv.state.dbmon.db();
        let edit = "UPDATE audit_log SET reason = 'falsifié' WHERE seq = 3";
        assert!(db.conn().execute_unprepared(edit).await.is_err(), "append-only");
        let drop = match t.kind {
            crate::support::Kind::Postgres => "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update",
            crate::support::Kind::Sqlite => "DROP TRIGGER audit_log_no_update",
        };
        db.conn().execute_unprepared(drop).await.unwrap();
        db.conn().execute_unprepared(edit).await.unwrap();
        let out = check();
        assert_eq!(out.status.code(), Some(1));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("chaîne d'audit ROMPUE à l'entrée 3"), "{stdout}");
        let alerts = store::alerts::open_of_type(db, "INTEGRITE_ECHEC").await.unwrap();
        assert_eq!(
            alerts.len(),
            1,
            "scenario 62: the failure is raised; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(alerts[0].severity, "CRITICAL");
        let data = alerts[0].data.clone().unwrap_or_default();
        assert!(data.contains("ROMPUE"), "{data}");
        let v: Value =
            client().get(srv.url("/api/audit/verify")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
        assert_eq!(
            (v["ok"].clone(), v["brokenSeq"].clone(), v["verified"].clone()),
            (json!(false), json!(3), json!(2))
        );
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn audit_entries_are_listed_newest_first_with_a_cursor_and_filters() {
    let t = TestDb::new(crate::support::Kind::Sqlite).await.unwrap();
    let srv = TestServer::start(&t, &[]).await;
    let admin = bearer(&srv, Role::Admin).await;
    for role in [Role::Appro, Role::Production, Role::Commercial] {
        bearer(&srv, role).await;
    }
    let get = |q: &str| {
        let url = srv.url(&format!("/api/audit{q}"));
        let admin = admin.clone();
        async move { client().get(url).bearer_auth(admin).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let page1 = get("?limit=3").await;
    let seqs: Vec<i64> = page1["items"].as_array().unwrap().iter().map(|i| i["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs.len(), 3);
    assert!(seqs[0] > seqs[1] && seqs[1] > seqs[2]);
    assert_eq!(page1["hasMore"], true);
    let page2 = get(&format!("?limit=3&cursor={}", page1["nextCursor"].as_str().unwrap())).await;
    assert_eq!(page2["items"][0]["seq"].as_i64().unwrap(), seqs[2] - 1);
    let logins = get("?action=login_success").await;
    assert_eq!(logins["items"].as_array().unwrap().len(), 4);
    assert!(logins["items"].as_array().unwrap().iter().all(|i| i["action"] == "LOGIN_SUCCESS"));
    let bad = client().get(srv.url("/api/audit?limit=500")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    srv.stop().await;
}

fn csrf_in(html: &str) -> String {
    html.split("name=\"_csrf\" value=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or_default().to_string()
}

fn cookie_client() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

#[tokio::test]
async fn a_page_refreshes_an_expired_session_transparently() {
    on_both(|t| async move {
        let clock = ManualClock::new(chrono::Utc::now());
        let options = app::server::Options { clock: clock.clone(), ..Default::default() };
        let srv = TestServer::start_with(config_for(&t.url, t.dir.path(), &[]), options).await;
        seed_user(&srv, "k.benali@fromagerie.dz", Role::Admin, false).await;
        let c = cookie_client();
        let r = c
            .post(srv.url("/connexion"))
            .form(&[("email", "k.benali@fromagerie.dz"), ("password", PASSWORD), ("suite", "/systeme/appareils")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], "/systeme/appareils", "the suite parameter wins when the role may open it");
        clock.advance(chrono::Duration::minutes(20));
        // The API says the access token expired; a page rotates the cookies and answers.
        let r = c.get(srv.url("/api/auth/me")).send().await.unwrap();
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "TOKEN_EXPIRED");
        let r = c.get(srv.url("/mon-compte")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let set: Vec<String> =
            r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
        for name in ["mc_at=", "mc_rt=", "mc_csrf="] {
            assert!(set.iter().any(|c| c.starts_with(name)), "{name} rotated: {set:?}");
        }
        let html = r.text().await.unwrap();
        assert!(html.contains("Sessions ouvertes") && html.contains("Cette session"));
        // The form on that very page carries the new CSRF token.
        let csrf = csrf_in(&html);
        let r = c.post(srv.url("/deconnexion")).form(&[("_csrf", csrf.as_str())]).send().await.unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], "/connexion");
        let r = c.get(srv.url("/mon-compte")).send().await.unwrap();
        assert_eq!(r.status(), 303, "logged out");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn administrators_manage_users_and_devices_through_the_pages() {
    on_both(|t| async move {
        let srv = TestServer::start(&t, &[]).await;
        seed_user(&srv, "k.benali@fromagerie.dz", Role::Admin, false).await;
        let c = cookie_client();
        c.post(srv.url("/connexion"))
            .form(&[("email", "k.benali@fromagerie.dz"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        let page = |path: &str| {
            let (c, url) = (c.clone(), srv.url(path));
            async move {
                let r = c.get(url).send().await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };
        let (_, html) = page("/systeme/utilisateurs/nouveau").await;
        let csrf = csrf_in(&html);
        assert_eq!(csrf.len(), 43);
        // A refused creation keeps what was typed and says why.
        let create = |email: &'static str| {
            let (c, url, csrf) = (c.clone(), srv.url("/systeme/utilisateurs/nouveau"), csrf.clone());
            async move {
                let form = [
                    ("_csrf", csrf.as_str()),
                    ("first_name", "Samir"),
                    ("last_name", "Ould"),
                    ("email", email),
                    ("role", "PRODUCTION"),
                ];
                c.post(url).form(&form).send().await.unwrap()
            }
        };
        let r = create("samir@").await;
        assert_eq!(r.status(), 422);
        let html = r.text().await.unwrap();
        assert!(html.contains("Adresse e-mail invalide.") && html.contains("value=\"Samir\""));
        let r = create("s.ould@fromagerie.dz").await;
        assert_eq!(r.status(), 201);
        assert!(r.text().await.unwrap().contains("affiché <strong>une seule fois</strong>"));
        let samir =
            store::identity::user_by_email(srv.state.dbmon.db().conn(), "s.ould@fromagerie.dz").await.unwrap().unwrap();
        assert_eq!((samir.role.as_str(), samir.must_change_password), ("PRODUCTION", true));

        // Role change through the edit form, then deactivation through its confirmation view.
        let r = c
            .post(srv.url(&format!("/systeme/utilisateurs/{}", samir.id)))
            .form(&[("_csrf", csrf.as_str()), ("first_name", "Samir"), ("last_name", "Ould-Ali"), ("role", "APPRO")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let (_, html) = page(&format!("/systeme/utilisateurs/{}", samir.id)).await;
        assert!(html.contains("Modifications enregistrées.") && html.contains("value=\"Ould-Ali\""));
        let (s, html) = page(&format!("/systeme/utilisateurs/{}/desactiver", samir.id)).await;
        assert_eq!(s, 200);
        assert!(html.contains("Toutes ses sessions (navigateurs et appareils) seront fermées immédiatement"), "{html}");
        let r = c
            .post(srv.url(&format!("/systeme/utilisateurs/{}/desactiver", samir.id)))
            .form(&[("_csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let (_, html) = page("/systeme/utilisateurs").await;
        assert!(html.contains("Inactif"));
        // The last administrator: the page offers no deactivation of oneself, and a forged form is refused.
        let me = store::identity::user_by_email(srv.state.dbmon.db().conn(), "k.benali@fromagerie.dz")
            .await
            .unwrap()
            .unwrap();
        let (_, html) = page(&format!("/systeme/utilisateurs/{}", me.id)).await;
        assert!(!html.contains("/desactiver\"") && html.contains("Vous ne pouvez pas changer votre propre rôle."));
        let r = c
            .post(srv.url(&format!("/systeme/utilisateurs/{}/desactiver", me.id)))
            .form(&[("_csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        assert!(r.text().await.unwrap().contains("ni désactiver votre propre compte"));

        // A device, revoked from its page with a reason.
        seed_user(&srv, "driver@fromagerie.dz", Role::Commercial, false).await;
        let device = uuid::Uuid::new_v4();
        let tok =
            device_login(&srv, "driver@fromagerie.dz", Some(device)).await["accessToken"].as_str().unwrap().to_string();
        client()
            .post(srv.url("/api/devices/register"))
            .bearer_auth(&tok)
            .json(
                &json!({"id": device, "name": "Condor – Tournée Ouest", "platform": "android", "appVersion": "1.2.0"}),
            )
            .send()
            .await
            .unwrap();
        let (_, html) = page("/systeme/appareils").await;
        assert!(html.contains("Condor – Tournée Ouest") && html.contains(">Actif<"));
        let r = c
            .post(srv.url(&format!("/systeme/appareils/{device}/revoquer")))
            .form(&[("_csrf", csrf.as_str()), ("reason", "vol")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        assert!(
            r.text().await.unwrap().replace("&#39;", "'").contains("Un motif d'au moins 5 caractères est obligatoire.")
        );
        let r = c
            .post(srv.url(&format!("/systeme/appareils/{device}/revoquer")))
            .form(&[("_csrf", csrf.as_str()), ("reason", "Téléphone volé au marché")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let (_, html) = page("/systeme/appareils?statut=revoque").await;
        assert!(html.contains("Condor – Tournée Ouest") && html.contains(">Révoqué<"));
        let r = client().get(srv.url("/api/auth/me")).bearer_auth(&tok).send().await.unwrap();
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "DEVICE_REVOKED");

        // The audit page filters by severity; an entry shows its before and after.
        let (_, html) = page("/systeme/audit?severity=SECURITY").await;
        assert!(html.contains("DEVICE_REVOKED") && !html.contains("USER_CREATED"), "security entries only");
        assert!(html.contains("Chaîne intacte"));
        let role_change = audit_actions(&srv, "USER_ROLE_CHANGED").await;
        let (_, html) = page(&format!("/systeme/audit/{}", role_change[0].seq)).await;
        let text = html.replace("&#34;", "\"");
        let (before, after) = text.split_once("<h2>Après</h2>").unwrap();
        assert!(before.contains("\"role\": \"PRODUCTION\"") && after.contains("\"role\": \"APPRO\""), "{text}");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_hash_with_older_parameters_is_upgraded_at_the_next_login() {
    on_both(|t| async move {
        let srv = TestServer::start(&t, &[]).await;
        let u = seed_user(&srv, "ancien@fromagerie.dz", Role::Appro, false).await;
        // A hash made with weaker parameters, as an older release would have stored it.
        use argon2::password_hash::{PasswordHasher, SaltString};
        let weak = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(8192, 1, 1, None).unwrap(),
        );
        let old =
            weak.hash_password(PASSWORD.as_bytes(), &SaltString::encode_b64(&[3u8; 16]).unwrap()).unwrap().to_string();
        store::identity::upgrade_hash(srv.state.dbmon.db(), u.id, old.clone()).await.unwrap();
        device_login(&srv, "ancien@fromagerie.dz", None).await;
        let now = store::identity::user_by_id(srv.state.dbmon.db().conn(), u.id).await.unwrap().unwrap().password_hash;
        assert_ne!(now, old);
        assert!(now.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{now}");
        device_login(&srv, "ancien@fromagerie.dz", None).await;
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_general_limiter_counts_signed_in_users_one_by_one_behind_a_shared_address() {
    let t = TestDb::new(crate::support::Kind::Sqlite).await.unwrap();
    let srv = TestServer::start(&t, &[("RATE_LIMIT_MAX", "3")]).await;
    seed_user(&srv, "a@fromagerie.dz", Role::Appro, false).await;
    seed_user(&srv, "b@fromagerie.dz", Role::Production, false).await;
    // Logins count against the shared address; then each user has a budget of their own.
    let a = device_login(&srv, "a@fromagerie.dz", None).await["accessToken"].as_str().unwrap().to_string();
    let b = device_login(&srv, "b@fromagerie.dz", None).await["accessToken"].as_str().unwrap().to_string();
    for _ in 0..3 {
        assert_eq!(client().get(srv.url("/api/auth/me")).bearer_auth(&a).send().await.unwrap().status(), 200);
    }
    let r = client().get(srv.url("/api/auth/me")).bearer_auth(&a).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["details"]["limiter"], "general");
    assert_eq!(
        client().get(srv.url("/api/auth/me")).bearer_auth(&b).send().await.unwrap().status(),
        200,
        "b has its own budget"
    );
    srv.stop().await;
}
