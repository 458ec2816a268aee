//! Sync events and the operators' retry on both backends (PLATFORM.md §7.3, runbook INC-005): the runbook's reset
//! `UPDATE sync_events SET status = 'PENDING' WHERE status = 'FAILED' …` is a complete retry (the trigger clears the
//! attempts, the due time and the failure class), and `manchengo sync list|retry` does the same from the CLI.

use chrono::{Duration, Utc};
use domain::identity::Role;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::sales::{Shop, company, invoice_36, new_client, open_shop, shop, validated};
use crate::support::{Kind, TestServer, bearer, client, device_login, eventually, get, on_both, post, seed_user};

/// A user and a registered device, through the store.
async fn device(db: &store::Db) -> (Uuid, Uuid) {
    let actor = store::audit::Actor::system("test");
    let now = Utc::now();
    db.write(|tx| {
        let actor = actor.clone();
        Box::pin(async move {
            let user = store::identity::create_user(
                &**tx,
                store::identity::NewUser {
                    email: format!("karim.{}@fromagerie.dz", Uuid::now_v7().simple()),
                    first_name: "Karim".into(),
                    last_name: "Livreur".into(),
                    role: domain::identity::Role::Commercial,
                    password_hash: "x".into(),
                    must_change_password: false,
                },
                &actor,
                now,
                false,
            )
            .await?;
            let info = store::identity::DeviceInfo {
                id: Uuid::now_v7(),
                name: "Téléphone de Karim".into(),
                platform: "android".into(),
                app_version: "1.0.0".into(),
            };
            let (d, _) = store::identity::register_device(&**tx, user.id, info, &actor, now).await?;
            Ok::<_, store::OpError>((user.id, d.id))
        })
    })
    .await
    .unwrap()
}

/// An event received (PENDING) then failed with `code`, created `age` ago.
async fn failed(db: &store::Db, user: Uuid, device: Uuid, age: Duration, code: &str) -> store::sync::Event {
    let r = store::sync::Received {
        client_event_id: Uuid::now_v7(),
        device_id: device,
        user_id: user,
        entity_type: "PAYMENT".into(),
        entity_id: Uuid::now_v7().to_string(),
        action: "PAYMENT_RECORDED".into(),
        payload: json!({"amount": 150_000, "method": "ESPECES", "note": "réglé"}),
        payload_hash: domain::sync::checksum(&json!({"amount": 150_000, "method": "ESPECES", "note": "réglé"})),
        occurred_at: Utc::now() - age,
        batch_id: Uuid::now_v7(),
        batch_index: 0,
    };
    let code = code.to_string();
    db.write(|tx| {
        let (r, code) = (r.clone(), code.clone());
        Box::pin(async move {
            let e = store::sync::receive(&**tx, r, Utc::now() - age).await?;
            store::sync::fail(&**tx, e.id, &code, "Montant supérieur au reste à payer.", "business", 3).await?;
            Ok::<_, store::OpError>(e)
        })
    })
    .await
    .unwrap()
}

async fn status_of(db: &store::Db, id: Uuid) -> store::sync::Event {
    store::sync::list(db.conn(), None, None).await.unwrap().into_iter().find(|e| e.id == id).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_event_reset_by_the_runbook_sql_or_the_cli_is_requeued_whole() {
    on_both(|t| async move {
        let db = t.migrated().await;
        let (user, device) = device(&db).await;
        let recent = failed(&db, user, device, Duration::hours(2), "MONTANT_SUPERIEUR_RESTANT").await;
        let old = failed(&db, user, device, Duration::hours(30), "MONTANT_SUPERIEUR_RESTANT").await;
        assert_eq!(recent.payload, r#"{"amount":150000,"method":"ESPECES","note":"réglé"}"#, "canonical text");
        assert_eq!(recent.payload_hash, domain::sync::checksum(&json!({"amount": 150000, "method": "ESPECES", "note": "réglé"})));
        assert_eq!(old.receipt_seq, recent.receipt_seq + 1, "numbered in arrival order");
        let e = status_of(&db, recent.id).await;
        assert_eq!((e.status.as_str(), e.attempts, e.failure_class.as_deref()), ("FAILED", 3, Some("business")));

        // The runbook's reset, verbatim on PostgreSQL (SQLite has no INTERVAL: the CLI is its way, below).
        use sea_orm::ConnectionTrait;
        if t.kind == Kind::Postgres {
            let sql = "UPDATE sync_events SET status = 'PENDING' WHERE status = 'FAILED' AND created_at > NOW() - INTERVAL '24 hours';";
            let r = db.conn().execute_unprepared(sql).await.unwrap();
            assert_eq!(r.rows_affected(), 1, "the event of 30 hours ago stays FAILED");
        } else {
            assert_eq!(store::sync::retry_failed(db.conn(), Utc::now() - Duration::hours(24)).await.unwrap(), 1);
        }
        let e = status_of(&db, recent.id).await;
        assert_eq!(
            (e.status.as_str(), e.attempts, e.failure_class.as_deref(), e.next_attempt_at),
            ("PENDING", 0, None, None),
            "the trigger makes it due now with a fresh count"
        );
        assert_eq!(e.error_code.as_deref(), Some("MONTANT_SUPERIEUR_RESTANT"), "kept until the next attempt");
        assert_eq!(status_of(&db, old.id).await.status, "FAILED");
        // A PENDING event is not retried again; an unknown one is not found.
        let again = db.write(|tx| Box::pin(async move { store::sync::retry(&**tx, recent.id).await })).await;
        assert!(matches!(again, Err(store::OpError::Rejected(r)) if r.code == "TRANSITION_INVALIDE"));
        db.close().await;

        // The CLI: list the failed ones, then requeue the old one by its client id, and all of the last 48 h.
        let cli = |args: &[&str]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_manchengo"))
                .arg("sync")
                .args(args)
                .env("DATABASE_URL", &t.url)
                .env("DATA_DIR", t.dir.path())
                .output()
                .unwrap()
        };
        let out = cli(&["list", "--status", "FAILED"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.starts_with("id\tclient_event_id\tdevice\tuser\taction\tentity\tstatus\tattempts\terror_code\tcreated_at\n"));
        assert!(text.contains(&old.id.to_string()) && !text.contains(&recent.id.to_string()), "{text}");
        assert!(text.contains("PAYMENT_RECORDED") && text.ends_with("1 événement(s)\n"), "{text}");
        let out = cli(&["retry", &old.client_event_id.to_string()]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "1 événement(s) remis en file\n");
        let out = cli(&["retry", &old.client_event_id.to_string()]);
        assert_eq!(out.status.code(), Some(1), "no longer FAILED");
        assert!(String::from_utf8_lossy(&out.stderr).contains("Transition impossible de PENDING vers PENDING."));
        let out = cli(&["retry", "--all-failed", "--since", "48h"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "0 événement(s) remis en file\n");
        let out = cli(&["retry", "--all-failed", "--since", "hier"]);
        assert_eq!(out.status.code(), Some(2));
        let db = t.open().await;
        let e = status_of(&db, old.id).await;
        assert_eq!((e.status.as_str(), e.attempts), ("PENDING", 0));
        db.close().await;
    })
    .await;
}

// ---- the sync API (PLATFORM.md §7) -----------------------------------------------------------------------------

const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

/// A driver (COMMERCIAL) with a registered device and a device session.
#[derive(Clone)]
pub(crate) struct Driver {
    pub token: String,
    pub device: Uuid,
    pub user: Uuid,
}

pub(crate) async fn driver(srv: &TestServer, email: &str) -> Driver {
    let u = seed_user(srv, email, Role::Commercial, false).await;
    let device = Uuid::new_v4();
    let token = device_login(srv, email, Some(device)).await["accessToken"].as_str().unwrap().to_string();
    let body =
        json!({"id": device, "name": format!("Téléphone de {email}"), "platform": "android", "appVersion": "1.4.0"});
    let (s, b) = post(srv, "/api/devices/register", &token, body).await;
    assert_eq!(s, 201, "{b}");
    Driver { token, device, user: u.id }
}

/// One event of the v1 vocabulary with its checksum.
pub(crate) fn event(action: &str, entity_type: &str, entity_id: &str, payload: Value) -> Value {
    json!({"id": Uuid::now_v7(), "entityType": entity_type, "entityId": entity_id, "action": action,
           "occurredAt": "2025-03-14T09:12:44.120Z", "checksum": domain::sync::checksum(&payload), "payload": payload})
}

pub(crate) async fn push_raw(srv: &TestServer, d: &Driver, body: Value, protocol: Option<&str>) -> (u16, Value) {
    let mut req = client()
        .post(srv.url("/api/sync/push"))
        .bearer_auth(&d.token)
        .header("X-Device-Id", d.device.to_string())
        .json(&body);
    if let Some(p) = protocol {
        req = req.header("X-Sync-Protocol", p);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn push(srv: &TestServer, d: &Driver, batch: Uuid, events: &[Value]) -> Value {
    let (s, b) = push_raw(srv, d, json!({"deviceId": d.device, "batchId": batch, "events": events}), None).await;
    assert_eq!(s, 200, "{b}");
    b
}

pub(crate) async fn pull(srv: &TestServer, d: &Driver, cursor: i64, limit: u64) -> (u16, Value) {
    let r = client()
        .get(srv.url(&format!("/api/sync/pull?cursor={cursor}&limit={limit}")))
        .bearer_auth(&d.token)
        .header("X-Device-Id", d.device.to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn statuses(b: &Value) -> Vec<(String, String)> {
    b["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["status"].as_str().unwrap().to_string(), r["code"].as_str().unwrap_or("").to_string()))
        .collect()
}

fn pair(status: &str, code: &str) -> (String, String) {
    (status.to_string(), code.to_string())
}

async fn sale_movements(srv: &TestServer) -> u64 {
    let f = store::stock::MovementFilter { origin: Some("SALE".into()), ..Default::default() };
    store::stock::movements(srv.state.dbmon.db(), &f, 0, 1_000).await.unwrap().1
}

async fn stored_events(srv: &TestServer) -> Vec<store::sync::Event> {
    store::sync::list(srv.state.dbmon.db().conn(), None, None).await.unwrap()
}

/// A validated invoice of scenario 36 (net 23 678,00 DA) and its whole BL assigned to `driver`: (invoice, BL).
async fn invoice_and_bl(srv: &TestServer, commercial: &str, client: &str, driver: Uuid) -> (Value, Value) {
    let inv = validated(srv, commercial, invoice_36(client, "ESPECES")).await;
    let (s, bl) = post(
        srv,
        "/api/deliveries",
        commercial,
        json!({"invoice": inv["reference"], "driverUserId": driver, "vehicle": "Renault Master 16-123"}),
    )
    .await;
    assert_eq!(s, 201, "{bl}");
    (inv, bl)
}

/// §7.1–7.5 and the issue's bad input, on both backends: a batch whose second event is refused keeps the first and
/// the third; replaying it 100 times applies nothing more; a reused id with another payload, a wrong checksum, an
/// unknown action, a batch over the limits; pull scoped to the driver; a revoked device.
#[tokio::test]
async fn a_drivers_batch_applies_once_and_each_driver_pulls_only_their_own() {
    on_both(|t| async move {
        let Shop { srv, admin, commercial, client: client_code, .. } = open_shop(&t, "2025-06-01").await;
        let karim = driver(&srv, "karim@fromagerie.dz").await;
        let yacine = driver(&srv, "yacine@fromagerie.dz").await;
        let (inv, bl) = invoice_and_bl(&srv, &commercial, &client_code, karim.user).await;
        let (bl_id, qr) = (bl["id"].as_str().unwrap().to_string(), bl["qr"].as_str().unwrap().to_string());
        let inv_id = inv["id"].as_str().unwrap().to_string();
        assert_eq!(inv["net"], 2_367_800);

        // Bootstrap: Karim's BL with what an offline payment needs; Yacine has none.
        let boot = |d: &Driver| {
            let (srv, d) = (&srv, d.clone());
            async move {
                let r = client()
                    .post(srv.url("/api/sync/bootstrap"))
                    .bearer_auth(&d.token)
                    .header("X-Device-Id", d.device.to_string())
                    .json(&json!({"deviceId": d.device}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                r.json::<Value>().await.unwrap()
            }
        };
        let kb = boot(&karim).await;
        let delivery = &kb["snapshot"]["deliveries"][0];
        assert_eq!(
            (
                delivery["reference"].as_str(),
                delivery["invoiceReference"].as_str(),
                delivery["netAPayer"].as_i64(),
                delivery["remaining"].as_i64(),
                delivery["paymentMethod"].as_str(),
                delivery["clientName"].as_str()
            ),
            (
                Some("LIV-2025-00001"),
                Some("F-2025-00001"),
                Some(2_367_800),
                Some(2_367_800),
                Some("ESPECES"),
                Some("Supérette El Baraka")
            )
        );
        assert_eq!(kb["snapshot"]["clients"][0]["code"].as_str(), Some(client_code.as_str()));
        assert_eq!(kb["snapshot"]["products"].as_array().unwrap().len(), 2);
        let yb = boot(&yacine).await;
        assert_eq!(yb["snapshot"]["deliveries"], json!([]));
        let (k_cursor, y_cursor) = (kb["cursor"].as_i64().unwrap(), yb["cursor"].as_i64().unwrap());
        assert!(k_cursor > 0 && kb["feedEpoch"] == yb["feedEpoch"]);

        // The batch: validate (scanned), an over-payment, the proof of delivery.
        let batch = Uuid::now_v7();
        let events = vec![
            event(
                "DELIVERY_VALIDATED",
                "DELIVERY",
                &bl_id,
                json!({"qrToken": qr, "latitude": 36.7525, "longitude": 3.04197}),
            ),
            event(
                "PAYMENT_RECORDED",
                "PAYMENT",
                &inv_id,
                json!({"invoiceId": inv_id, "amount": 2_367_801,
                "method": "ESPECES", "date": "2025-03-14", "note": "réglé"}),
            ),
            event(
                "DELIVERY_DELIVERED",
                "DELIVERY",
                &bl_id,
                json!({"recipientName": "Mourad Benali",
                "signatureBase64": PNG, "deliveredAt": "2025-03-14T08:55:00Z",
                "lines": [{"productId": delivery["lines"][0]["productId"], "quantityDelivered": 24_000}]}),
            ),
        ];
        let b = push(&srv, &karim, batch, &events).await;
        assert_eq!(
            statuses(&b),
            [pair("APPLIED", ""), pair("REJECTED", "MONTANT_SUPERIEUR_RESTANT"), pair("APPLIED", "")],
            "{b}"
        );
        assert_eq!(b["results"][0]["serverRef"], "LIV-2025-00001");
        assert_eq!(b["results"][1]["retryable"], false);
        assert_eq!(
            b["results"][1]["details"],
            json!({"invoiceTotal": 2_367_800, "alreadyPaid": 0, "remaining": 2_367_800, "attempted": 2_367_801})
        );
        assert_eq!(b["results"][1]["message"], "Le montant dépasse le reste à payer (23\u{202f}678,00\u{a0}DA).");
        let detail = get(&srv, "/api/deliveries/LIV-2025-00001", &commercial).await;
        assert_eq!(
            (detail["status"].as_str(), detail["recipientName"].as_str()),
            (Some("DELIVERED"), Some("Mourad Benali"))
        );
        assert_eq!(detail["deliveredAt"], "2025-03-14T08:55:00Z", "the time the device recorded, offline");
        let moved = sale_movements(&srv).await;
        assert_eq!(moved, 2, "Gouda and Fondu left once");
        let r = client()
            .get(srv.url("/api/deliveries/LIV-2025-00001/proof/signature"))
            .bearer_auth(&commercial)
            .send()
            .await
            .unwrap();
        let png = r.bytes().await.unwrap().to_vec();
        assert_eq!((png.len(), &png[..8]), (70, &b"\x89PNG\r\n\x1a\n"[..]), "the signature, byte for byte");
        let stored = stored_events(&srv).await;
        assert_eq!(stored.len(), 3);
        assert!(stored[2].payload.contains("\"signatureBase64\":{\"attachment\":\"sha256:"), "{}", stored[2].payload);
        assert!(!stored[2].payload.contains(PNG));
        let audit = crate::support::audit_actions(&srv, "DELIVERY_VALIDATED").await;
        assert_eq!(audit.len(), 1);

        // The same batch 100 times: nothing more happens.
        for _ in 0..100 {
            let again = push(&srv, &karim, batch, &events).await;
            assert_eq!(
                statuses(&again),
                [pair("DUPLICATE", ""), pair("REJECTED", "MONTANT_SUPERIEUR_RESTANT"), pair("DUPLICATE", "")]
            );
            assert_eq!(again["results"][0]["serverRef"], "LIV-2025-00001");
        }
        assert_eq!((sale_movements(&srv).await, stored_events(&srv).await.len()), (2, 3));

        // Bad input, one event at a time: each refused for good, stored with its code (not the reused id).
        let mut reused = events[0].clone();
        reused["payload"]["latitude"] = json!(36.8);
        reused["checksum"] = json!(domain::sync::checksum(&reused["payload"]));
        let mut tampered = event(
            "PAYMENT_RECORDED",
            "PAYMENT",
            &inv_id,
            json!({"invoiceId": inv_id, "amount": 100_000,
            "method": "ESPECES", "date": "2025-03-14"}),
        );
        tampered["payload"]["amount"] = json!(1_000_000);
        let unknown = event("STOCK_MOVED", "LOT", "L1", json!({"quantity": 5}));
        let malformed = event(
            "PAYMENT_RECORDED",
            "PAYMENT",
            &inv_id,
            json!({"invoiceId": inv_id, "amount": "100",
            "method": "ESPECES", "date": "2025-03-14", "tip": 5}),
        );
        let b = push(&srv, &karim, Uuid::now_v7(), &[reused, tampered, unknown, malformed.clone()]).await;
        assert_eq!(
            statuses(&b),
            [
                pair("REJECTED", "IDEMPOTENCE_CONFLIT"),
                pair("REJECTED", "CHECKSUM_MISMATCH"),
                pair("REJECTED", "VALIDATION_ERROR"),
                pair("REJECTED", "VALIDATION_ERROR")
            ],
            "{b}"
        );
        let fields: Vec<&str> = b["results"][3]["details"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["amount", "tip"]);
        assert!(b["results"].as_array().unwrap().iter().all(|r| r["retryable"] == false));
        assert_eq!(stored_events(&srv).await.len(), 6, "the reused id is not stored again");
        let again = push(&srv, &karim, Uuid::now_v7(), &[malformed]).await;
        assert_eq!(statuses(&again), [pair("REJECTED", "VALIDATION_ERROR")], "the stored refusal, on a re-push");

        // Whole-batch refusals store nothing.
        let before = stored_events(&srv).await.len();
        let p = json!({"reason": "Client absent"});
        let many: Vec<Value> = (0..101).map(|_| event("DELIVERY_CANCELLED", "DELIVERY", &bl_id, p.clone())).collect();
        let (s, b) =
            push_raw(&srv, &karim, json!({"deviceId": karim.device, "batchId": Uuid::now_v7(), "events": many}), None)
                .await;
        assert_eq!((s, b["error"]["code"].as_str()), (400, Some("VALIDATION_ERROR")), "{b}");
        let one = event("DELIVERY_CANCELLED", "DELIVERY", &bl_id, p.clone());
        let (s, b) = push_raw(
            &srv,
            &karim,
            json!({"deviceId": karim.device, "batchId": Uuid::now_v7(),
            "events": [one.clone(), one.clone()]}),
            None,
        )
        .await;
        assert_eq!((s, b["error"]["code"].as_str()), (400, Some("VALIDATION_ERROR")));
        let (s, b) = push_raw(
            &srv,
            &karim,
            json!({"deviceId": karim.device, "batchId": Uuid::now_v7(), "events": [one.clone()]}),
            Some("2"),
        )
        .await;
        assert_eq!((s, b["error"]["code"].as_str()), (400, Some("VALIDATION_ERROR")));
        assert_eq!(stored_events(&srv).await.len(), before);

        // Another driver's BL: NOT_ASSIGNED; a valid payment: a REG number.
        let (_, bl2) = invoice_and_bl(&srv, &commercial, &client_code, karim.user).await;
        let bl2_id = bl2["id"].as_str().unwrap();
        let b =
            push(&srv, &yacine, Uuid::now_v7(), &[event("DELIVERY_CANCELLED", "DELIVERY", bl2_id, p.clone())]).await;
        assert_eq!(statuses(&b), [pair("REJECTED", "NOT_ASSIGNED")]);
        let pay = event(
            "PAYMENT_RECORDED",
            "PAYMENT",
            &inv_id,
            json!({"invoiceId": inv_id, "amount": 1_000_000,
            "method": "ESPECES", "date": "2025-03-14", "note": "acompte"}),
        );
        let b = push(&srv, &karim, Uuid::now_v7(), &[pay]).await;
        assert_eq!(
            (statuses(&b)[0].clone(), b["results"][0]["serverRef"].as_str()),
            (pair("APPLIED", ""), Some("REG-2025-00001"))
        );

        // Pull: Karim sees his BLs, his outcomes and his payment; Yacine none of them (only his own refusal).
        let (s, kp) = pull(&srv, &karim, k_cursor, 500).await;
        assert_eq!(s, 200, "{kp}");
        let kinds = |p: &Value| -> Vec<(String, String)> {
            p["changes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (c["entityType"].as_str().unwrap().to_string(), c["entityId"].as_str().unwrap().to_string()))
                .collect()
        };
        let k = kinds(&kp);
        assert!(k.iter().any(|(t, _)| t == "PAYMENT"), "{k:?}");
        assert!(k.iter().any(|(t, id)| t == "DELIVERY" && id == bl2_id));
        let last_bl1 = kp["changes"].as_array().unwrap().iter().rev().find(|c| c["entityId"] == json!(bl_id)).unwrap();
        assert_eq!(
            (last_bl1["data"]["status"].as_str(), last_bl1["data"]["remaining"].as_i64()),
            (Some("DELIVERED"), Some(1_367_800))
        );
        let outcomes: Vec<&Value> =
            kp["changes"].as_array().unwrap().iter().filter(|c| c["entityType"] == "SYNC_EVENT").collect();
        assert!(
            outcomes
                .iter()
                .any(|c| c["data"]["status"] == "FAILED" && c["data"]["code"] == "MONTANT_SUPERIEUR_RESTANT")
        );
        assert!(!kp.to_string().contains(PNG), "no binary in a feed");
        let seqs: Vec<i64> = kp["changes"].as_array().unwrap().iter().map(|c| c["seq"].as_i64().unwrap()).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            (kp["hasMore"].as_bool(), kp["nextCursor"].as_i64()),
            (Some(false), store::sync::head(srv.state.dbmon.db().conn()).await.ok())
        );
        let (_, yp) = pull(&srv, &yacine, y_cursor, 500).await;
        let y = kinds(&yp);
        assert!(y.iter().all(|(t, _)| t == "SYNC_EVENT"), "{y:?}");
        assert_eq!(y.len(), 1, "his own NOT_ASSIGNED outcome only");
        // Paging: limit 1 walks the same rows one by one.
        let mut cursor = k_cursor;
        let mut walked = Vec::new();
        loop {
            let (_, page) = pull(&srv, &karim, cursor, 1).await;
            walked.extend(page["changes"].as_array().unwrap().iter().map(|c| c["seq"].as_i64().unwrap()));
            cursor = page["nextCursor"].as_i64().unwrap();
            if page["hasMore"] == false {
                break;
            }
        }
        assert_eq!(walked, seqs);

        // A new feed epoch (after a restore): 409 FEED_RESET with the old epoch.
        let old_epoch = kb["feedEpoch"].as_str().unwrap().to_string();
        let url = srv.url(&format!("/api/sync/pull?cursor={cursor}&epoch={old_epoch}"));
        let ok = client()
            .get(&url)
            .bearer_auth(&karim.token)
            .header("X-Device-Id", karim.device.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        let db = srv.state.dbmon.db();
        db.write(|tx| Box::pin(async move { store::sync::reset_epoch(&**tx, Utc::now()).await })).await.unwrap();
        let r = client()
            .get(&url)
            .bearer_auth(&karim.token)
            .header("X-Device-Id", karim.device.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(
            (r.status().as_u16(), r.json::<Value>().await.unwrap()["error"]["code"].clone()),
            (409, json!("FEED_RESET"))
        );

        // Status and ack: the device's applied events become ACKED.
        let st = {
            let r = client()
                .get(srv.url("/api/sync/status"))
                .bearer_auth(&karim.token)
                .header("X-Device-Id", karim.device.to_string())
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()
        };
        assert_eq!((st["events"]["pending"].as_i64(), st["events"]["failed"].as_i64()), (Some(0), Some(4)), "{st}");
        assert!(st["device"]["lastSyncAt"].is_string());
        let applied: Vec<Uuid> = stored_events(&srv)
            .await
            .iter()
            .filter(|e| e.status == "APPLIED" && e.device_id == karim.device)
            .map(|e| e.client_event_id)
            .collect();
        assert_eq!(applied.len(), 3);
        let r = client()
            .post(srv.url("/api/sync/ack"))
            .bearer_auth(&karim.token)
            .header("X-Device-Id", karim.device.to_string())
            .json(&json!({"deviceId": karim.device, "eventIds": applied}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.json::<Value>().await.unwrap(), json!({"acked": 3}));

        // An unregistered device: 409; a revoked one: 401 DEVICE_REVOKED, never 403.
        seed_user(&srv, "nadia@fromagerie.dz", Role::Commercial, false).await;
        let fresh = Uuid::new_v4();
        let tok =
            device_login(&srv, "nadia@fromagerie.dz", Some(fresh)).await["accessToken"].as_str().unwrap().to_string();
        let nadia = Driver { token: tok, device: fresh, user: Uuid::nil() };
        let (s, b) = push_raw(
            &srv,
            &nadia,
            json!({"deviceId": fresh, "batchId": Uuid::now_v7(), "events": [one.clone()]}),
            None,
        )
        .await;
        assert_eq!((s, b["error"]["code"].as_str()), (409, Some("DEVICE_NOT_REGISTERED")));
        let (s, _) = post(
            &srv,
            &format!("/api/admin/devices/{}/revoke", yacine.device),
            &admin,
            json!({"reason": "Téléphone perdu"}),
        )
        .await;
        assert_eq!(s, 200);
        let (s, b) = push_raw(
            &srv,
            &yacine,
            json!({"deviceId": yacine.device, "batchId": Uuid::now_v7(), "events": [one]}),
            None,
        )
        .await;
        assert_eq!((s, b["error"]["code"].as_str()), (401, Some("DEVICE_REVOKED")));
        let (s, b) = pull(&srv, &yacine, 0, 10).await;
        assert_eq!((s, b["error"]["code"].as_str()), (401, Some("DEVICE_REVOKED")));

        // Health and metrics (§9): the failures of the last 24 h, by class, from the database.
        let (_, health) = crate::support::get_json(&srv.url("/api/health/detailed")).await;
        assert_eq!(
            (
                health["sync"]["pending"].as_i64(),
                health["sync"]["failed"].as_i64(),
                health["sync"]["failedTechnical"].as_i64()
            ),
            (Some(0), Some(5), Some(0)),
            "{}",
            health["sync"]
        );
        assert_eq!(health["sync"]["activeDevices"], 1, "Karim's (Yacine's is revoked, Nadia's never registered)");
        let metrics = client().get(srv.url("/metrics")).send().await.unwrap().text().await.unwrap();
        let gauge = |status: &str, class: &str| {
            metrics
                .lines()
                .find(|l| {
                    l.starts_with("sync_events{")
                        && l.contains(&format!("status=\"{status}\""))
                        && l.contains(&format!("class=\"{class}\""))
                })
                .and_then(|l| l.rsplit(' ').next())
                .map(str::to_string)
        };
        assert_eq!(gauge("FAILED", "business").as_deref(), Some("5"), "{metrics}");
        assert_eq!(gauge("FAILED", "technical").as_deref(), Some("0"));
        assert_eq!(gauge("ACKED", "").as_deref(), Some("3"), "applied, then acknowledged");

        // Operations (§7.6): ADMIN lists the failures with their error, re-queues one, then all of the last 24 h.
        let list = get(&srv, "/api/admin/sync/events?status=FAILED&since=24h", &admin).await;
        assert_eq!(list["total"], 5, "{list}");
        let over = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["errorCode"] == "MONTANT_SUPERIEUR_RESTANT")
            .unwrap()
            .clone();
        assert_eq!(
            (over["userEmail"].as_str(), over["action"].as_str()),
            (Some("karim@fromagerie.dz"), Some("PAYMENT_RECORDED"))
        );
        assert!(!list.to_string().contains(PNG));
        let devices = get(&srv, "/api/admin/devices", &admin).await;
        let k = devices["items"].as_array().unwrap().iter().find(|d| d["id"] == json!(karim.device)).unwrap().clone();
        assert_eq!((k["pendingEvents"].as_i64(), k["failedEvents"].as_i64()), (Some(0), Some(4)));
        let (s, b) =
            post(&srv, &format!("/api/admin/sync/events/{}/retry", over["id"].as_str().unwrap()), &admin, json!({}))
                .await;
        assert_eq!(
            (s, b["event"]["status"].as_str(), b["event"]["attempts"].as_i64()),
            (200, Some("PENDING"), Some(0))
        );
        let (s, b) =
            post(&srv, &format!("/api/admin/sync/events/{}/retry", over["id"].as_str().unwrap()), &admin, json!({}))
                .await;
        assert_eq!((s, b["error"]["code"].as_str()), (409, Some("TRANSITION_INVALIDE")));
        let (s, _) =
            post(&srv, "/api/admin/sync/events/retry", &commercial, json!({"status": "FAILED", "since": "24h"})).await;
        assert_eq!(s, 403);
        let (s, b) =
            post(&srv, "/api/admin/sync/events/retry", &admin, json!({"status": "FAILED", "since": "24h"})).await;
        assert_eq!((s, b), (200, json!({"requeued": 4})));
        assert_eq!(crate::support::audit_actions(&srv, "SYNC_EVENTS_REQUEUED").await.len(), 1);
        // The worker's cycle: the over-payment is refused again with the same code, the malformed events too.
        assert_eq!(drain(&srv).await, 5);
        let again = get(&srv, "/api/admin/sync/events?status=FAILED&since=24h", &admin).await;
        let mut codes: Vec<&str> =
            again["items"].as_array().unwrap().iter().map(|e| e["errorCode"].as_str().unwrap()).collect();
        codes.sort();
        assert_eq!(
            codes,
            ["CHECKSUM_MISMATCH", "MONTANT_SUPERIEUR_RESTANT", "NOT_ASSIGNED", "VALIDATION_ERROR", "VALIDATION_ERROR"]
        );
        assert_eq!(
            get(&srv, &format!("/api/invoices/{inv_id}"), &admin).await["payments"].as_array().map(Vec::len),
            Some(1),
            "no payment made by a re-queued refusal"
        );
    })
    .await;
}

/// Worker cycles until nothing is due (a cycle stops after 1.5 s, which a loaded test machine can reach): the
/// number of events settled.
async fn drain(srv: &TestServer) -> usize {
    let mut n = 0;
    loop {
        match app::sync::work(&srv.state).await.unwrap() {
            0 => return n,
            k => n += k,
        }
    }
}

/// The runbook's reset (INC-005): verbatim on PostgreSQL when the server runs on the real clock (the SQL reads
/// `NOW()`); otherwise the store's same UPDATE at the server's clock (SQLite has no INTERVAL).
async fn runbook_reset(srv: &TestServer, kind: Kind, real_clock: bool) -> u64 {
    let db = srv.state.dbmon.db();
    if kind == Kind::Postgres && real_clock {
        use sea_orm::ConnectionTrait;
        let sql = "UPDATE sync_events SET status = 'PENDING' WHERE status = 'FAILED' AND created_at > NOW() - INTERVAL '24 hours';";
        db.conn().execute_unprepared(sql).await.unwrap().rows_affected()
    } else {
        let since = srv.state.clock.now() - Duration::hours(24);
        db.write(|tx| Box::pin(async move { store::sync::retry_failed(&**tx, since).await })).await.unwrap()
    }
}

fn by_client_id(events: &[store::sync::Event], id: &Value) -> store::sync::Event {
    events.iter().find(|e| e.client_event_id.to_string() == id.as_str().unwrap()).unwrap().clone()
}

/// §7.3 and the runbook's INC-005: a validation refused for a business rule (the lot is blocked) and the proof behind
/// it are FAILED; once the lot is released, the operator's reset puts them back and the worker applies both, in
/// arrival order, exactly once; a re-push then answers DUPLICATE with the server's reference.
#[tokio::test]
async fn business_failures_fixed_then_reset_by_the_runbook_are_applied_once_in_order() {
    on_both(|t| async move {
        let Shop { srv, admin, commercial, client: client_code, .. } = open_shop(&t, "2025-06-01").await;
        let karim = driver(&srv, "karim@fromagerie.dz").await;
        let (_, bl) = invoice_and_bl(&srv, &commercial, &client_code, karim.user).await;
        let (bl_id, qr) = (bl["id"].as_str().unwrap().to_string(), bl["qr"].as_str().unwrap().to_string());
        let (s, _) =
            post(&srv, "/api/stock/lots/GOUDA-T0/block", &admin, json!({"note": "Odeur suspecte au contrôle"})).await;
        assert_eq!(s, 200);
        let gouda =
            store::catalogue::product_by_code(srv.state.dbmon.db().conn(), "PF-GOUDA-400").await.unwrap().unwrap();
        let gouda_id = gouda.id.to_string();
        let events = vec![
            event("DELIVERY_VALIDATED", "DELIVERY", &bl_id, json!({"qrToken": qr})),
            event(
                "DELIVERY_DELIVERED",
                "DELIVERY",
                &bl_id,
                json!({"recipientName": "Mourad Benali",
                "signatureBase64": PNG, "deliveredAt": "2025-03-14T08:55:00Z",
                "lines": [{"productId": gouda_id, "quantityDelivered": 24_000}]}),
            ),
        ];
        let b = push(&srv, &karim, Uuid::now_v7(), &events).await;
        assert_eq!(
            statuses(&b),
            [pair("REJECTED", "STOCK_INSUFFISANT"), pair("REJECTED", "TRANSITION_INVALIDE")],
            "{b}"
        );
        assert_eq!(sale_movements(&srv).await, 0, "nothing left the shelves");
        let scans = store::delivery::scans_of(srv.state.dbmon.db().conn(), "LIV-2025-00001").await.unwrap();
        assert_eq!(
            scans.iter().map(|s| s.outcome.as_str()).collect::<Vec<_>>(),
            ["STOCK_INSUFFISANT"],
            "logged as online"
        );

        // The data is fixed; the operator runs the runbook's line; the worker's next cycle applies both, in order.
        let (s, _) =
            post(&srv, "/api/stock/lots/GOUDA-T0/unblock", &admin, json!({"note": "Contrôle refait OK"})).await;
        assert_eq!(s, 200);
        assert_eq!(runbook_reset(&srv, t.kind, false).await, 2);
        assert_eq!(drain(&srv).await, 2);
        let stored = stored_events(&srv).await;
        let (v, d) = (by_client_id(&stored, &events[0]["id"]), by_client_id(&stored, &events[1]["id"]));
        assert_eq!(
            (v.status.as_str(), v.server_ref.as_deref(), v.error_code),
            ("APPLIED", Some("LIV-2025-00001"), None)
        );
        assert_eq!((d.status.as_str(), d.attempts), ("APPLIED", 0));
        assert!(v.applied_at.unwrap() <= d.applied_at.unwrap());
        assert_eq!(sale_movements(&srv).await, 2);
        let detail = get(&srv, "/api/deliveries/LIV-2025-00001", &commercial).await;
        assert_eq!(detail["status"], "DELIVERED");
        // Nothing is due any more; the device re-pushes and learns the outcome.
        assert_eq!(drain(&srv).await, 0);
        let b = push(&srv, &karim, Uuid::now_v7(), &events).await;
        assert_eq!(statuses(&b), [pair("DUPLICATE", ""), pair("DUPLICATE", "")]);
        assert_eq!(b["results"][0]["serverRef"], "LIV-2025-00001");
        // The device also learns it from its feed.
        let (_, p) = pull(&srv, &karim, 0, 500).await;
        let applied: Vec<&Value> = p["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["entityType"] == "SYNC_EVENT" && c["data"]["status"] == "APPLIED")
            .collect();
        assert_eq!(applied.len(), 2, "{p}");
        assert_eq!(sale_movements(&srv).await, 2);
    })
    .await;
}

/// §7.2 step 5 and step 4 on PostgreSQL: another transaction holds the BL's row lock past `lock_timeout`, so the
/// validation is DEFERRED (TRANSIENT_ERROR, kept PENDING with its backoff) and the proof of the same BL queues behind
/// it; when the lock is gone the worker applies both, in order, once.
#[tokio::test]
async fn a_transient_failure_defers_the_event_and_the_worker_applies_it_later() {
    let Some(t) = crate::support::TestDb::new(Kind::Postgres).await else { return };
    let Shop { srv, clock, commercial, client: client_code, .. } = open_shop(&t, "2025-06-01").await;
    let karim = driver(&srv, "karim@fromagerie.dz").await;
    let (_, bl) = invoice_and_bl(&srv, &commercial, &client_code, karim.user).await;
    let (bl_id, qr) = (bl["id"].as_str().unwrap().to_string(), bl["qr"].as_str().unwrap().to_string());
    let snapshot = store::delivery::device_snapshot(
        srv.state.dbmon.db().conn(),
        &store::delivery::find(srv.state.dbmon.db().conn(), &bl_id).await.unwrap().unwrap(),
    )
    .await
    .unwrap();
    let delivered: Vec<Value> = snapshot["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| json!({"productId": l["productId"], "quantityDelivered": l["quantity"]}))
        .collect();
    let events = vec![
        event("DELIVERY_VALIDATED", "DELIVERY", &bl_id, json!({"qrToken": qr})),
        event(
            "DELIVERY_DELIVERED",
            "DELIVERY",
            &bl_id,
            json!({"recipientName": "Mourad Benali",
            "signatureBase64": PNG, "deliveredAt": "2025-03-14T08:55:00Z", "lines": delivered}),
        ),
    ];
    // Another session holds the BL's row (as a long report would).
    let holder = sea_orm::Database::connect(&t.url).await.unwrap();
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let tx = holder.begin().await.unwrap();
    tx.execute_unprepared(&format!("SELECT id FROM deliveries WHERE id = '{bl_id}' FOR UPDATE")).await.unwrap();
    let b = push(&srv, &karim, Uuid::now_v7(), &events).await;
    assert_eq!(statuses(&b), [pair("DEFERRED", "TRANSIENT_ERROR"), pair("DEFERRED", "QUEUED")], "{b}");
    assert!(b["results"].as_array().unwrap().iter().all(|r| r["retryable"] == true));
    let stored = stored_events(&srv).await;
    let v = by_client_id(&stored, &events[0]["id"]);
    assert_eq!((v.status.as_str(), v.attempts, v.error_code.as_deref()), ("PENDING", 1, Some("TRANSIENT_ERROR")));
    let wait = (v.next_attempt_at.unwrap() - srv.state.clock.now()).num_milliseconds();
    assert!((4_000..=6_000).contains(&wait), "5 s ± 20 %: {wait} ms");
    tx.rollback().await.unwrap();
    // Not due yet: the worker leaves both; a re-push answers DEFERRED.
    assert_eq!(drain(&srv).await, 0);
    let again = push(&srv, &karim, Uuid::now_v7(), &events).await;
    assert_eq!(statuses(&again)[0].0, "DEFERRED");
    clock.advance(Duration::seconds(7));
    assert_eq!(drain(&srv).await, 2);
    let stored = stored_events(&srv).await;
    assert!(stored.iter().all(|e| e.status == "APPLIED"), "{stored:?}");
    assert_eq!(sale_movements(&srv).await, 2);

    // A proof of delivery hit by a transient failure is stored again PENDING; its signature, kept apart first, is
    // still there when the worker applies it.
    let (_, bl2) = invoice_and_bl(&srv, &commercial, &client_code, karim.user).await;
    let bl2_id = bl2["id"].as_str().unwrap().to_string();
    let (s, b) = post(&srv, "/api/deliveries/scan", &commercial, json!({"payload": bl2["qr"]})).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("VALIDATED")), "{b}");
    let proof = event(
        "DELIVERY_DELIVERED",
        "DELIVERY",
        &bl2_id,
        // Another signature than the first BL's (proofs are kept by their hash: a known one would hide a loss).
        json!({"recipientName": "Mourad Benali", "signatureBase64": "iVBORw0KGgpzaWduYXR1cmUgb2YgdGhlIHNlY29uZCBCTA==",
               "deliveredAt": "2025-03-14T08:55:00Z", "lines": delivered}),
    );
    let tx = holder.begin().await.unwrap();
    tx.execute_unprepared(&format!("SELECT id FROM deliveries WHERE id = '{bl2_id}' FOR UPDATE")).await.unwrap();
    let b = push(&srv, &karim, Uuid::now_v7(), std::slice::from_ref(&proof)).await;
    assert_eq!(statuses(&b), [pair("DEFERRED", "TRANSIENT_ERROR")], "{b}");
    tx.rollback().await.unwrap();
    clock.advance(Duration::seconds(7));
    assert_eq!(drain(&srv).await, 1);
    assert_eq!(by_client_id(&stored_events(&srv).await, &proof["id"]).status, "APPLIED");
    let r = client()
        .get(srv.url(&format!("/api/deliveries/{bl2_id}/proof/signature")))
        .bearer_auth(&commercial)
        .send()
        .await
        .unwrap();
    assert_eq!(&r.bytes().await.unwrap()[8..], b"signature of the second BL", "the signature, byte for byte");
    holder.close().await.unwrap();
}

/// A server on the real clock (the sync worker runs every 2 s), with the company, 100 Gouda good until 2030 and a
/// client; an invoice of 24 Gouda and its BL for `Karim`: (server, admin, Karim, BL).
async fn live_shop(t: &crate::support::TestDb) -> (TestServer, String, Driver, Value) {
    let srv = TestServer::start(t, &[("RATE_LIMIT_MAX", "100000")]).await;
    let admin = bearer(&srv, Role::Admin).await;
    let commercial = bearer(&srv, Role::Commercial).await;
    company(&srv, &admin).await;
    shop(&srv, &admin, &[(100_000, "2030-06-01")], 0).await;
    let client_code =
        new_client(&srv, &admin, "Supérette El Baraka", "000216123456789", Some("16012345678"), json!({})).await;
    let karim = driver(&srv, "karim@fromagerie.dz").await;
    let inv = validated(
        &srv,
        &commercial,
        json!({"clientCode": client_code, "paymentMethod": "ESPECES",
        "lines": [{"productCode": "PF-GOUDA-400", "quantity": 24_000}]}),
    )
    .await;
    let (s, bl) =
        post(&srv, "/api/deliveries", &commercial, json!({"invoice": inv["reference"], "driverUserId": karim.user}))
            .await;
    assert_eq!(s, 201, "{bl}");
    (srv, admin, karim, bl)
}

/// The runbook's INC-005 on the running server: the reset is picked up by the `sync-worker` job by itself within
/// 10 s (PLATFORM.md §7.3: one cycle), and the BL ships once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runbook_reset_is_applied_by_the_running_worker_within_ten_seconds() {
    on_both(|t| async move {
        let (srv, admin, karim, bl) = live_shop(&t).await;
        let (bl_id, qr) = (bl["id"].as_str().unwrap().to_string(), bl["qr"].as_str().unwrap().to_string());
        let (s, _) =
            post(&srv, "/api/stock/lots/GOUDA-T0/block", &admin, json!({"note": "Odeur suspecte au contrôle"})).await;
        assert_eq!(s, 200);
        let ev = event("DELIVERY_VALIDATED", "DELIVERY", &bl_id, json!({"qrToken": qr}));
        let b = push(&srv, &karim, Uuid::now_v7(), std::slice::from_ref(&ev)).await;
        assert_eq!(statuses(&b), [pair("REJECTED", "STOCK_INSUFFISANT")]);
        let (s, _) =
            post(&srv, "/api/stock/lots/GOUDA-T0/unblock", &admin, json!({"note": "Contrôle refait OK"})).await;
        assert_eq!(s, 200);
        // Still FAILED while nobody resets it: the worker never retries a business refusal by itself.
        tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
        assert_eq!(by_client_id(&stored_events(&srv).await, &ev["id"]).status, "FAILED");
        assert_eq!(runbook_reset(&srv, t.kind, true).await, 1);
        let took = eventually(std::time::Duration::from_secs(10), "the worker applies the reset event", || {
            let srv = &srv;
            let id = ev["id"].clone();
            async move { by_client_id(&stored_events(srv).await, &id).status == "APPLIED" }
        })
        .await;
        assert!(took < std::time::Duration::from_secs(10));
        assert_eq!(sale_movements(&srv).await, 1);
        let detail = get(&srv, &format!("/api/deliveries/{}", bl["reference"].as_str().unwrap()), &admin).await;
        assert_eq!(detail["status"], "VALIDATED");
        srv.stop().await;
    })
    .await;
}

/// Exactly-once under concurrency (§7.2): two instances on one database and their workers receive the same batch
/// ten times at once; each event is applied by exactly one of them, the BL ships once and one payment exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_and_the_worker_never_apply_an_event_twice() {
    on_both(|t| async move {
        let (srv, admin, karim, bl) = live_shop(&t).await;
        let other = TestServer::start(&t, &[("RATE_LIMIT_MAX", "100000"), ("INSTANCE_NAME", "web")]).await;
        let (bl_id, qr) = (bl["id"].as_str().unwrap().to_string(), bl["qr"].as_str().unwrap().to_string());
        let inv = get(&srv, &format!("/api/invoices/{}", bl["invoice"].as_str().unwrap()), &admin).await;
        let inv_id = inv["id"].as_str().unwrap().to_string();
        let events = vec![
            event("DELIVERY_VALIDATED", "DELIVERY", &bl_id, json!({"qrToken": qr})),
            event(
                "PAYMENT_RECORDED",
                "PAYMENT",
                &inv_id,
                json!({"invoiceId": inv_id, "amount": 500_000,
                "method": "ESPECES", "date": inv["invoiceDate"]}),
            ),
            event("DELIVERY_CANCELLED", "DELIVERY", &bl_id, json!({"reason": "Client absent"})),
        ];
        let batch = Uuid::now_v7();
        let mut tasks = Vec::new();
        for i in 0..10 {
            let target = if i % 2 == 0 { srv.url("/api/sync/push") } else { other.url("/api/sync/push") };
            let (k, events) = (karim.clone(), events.clone());
            tasks.push(tokio::spawn(async move {
                let r = client()
                    .post(target)
                    .bearer_auth(&k.token)
                    .header("X-Device-Id", k.device.to_string())
                    .json(&json!({"deviceId": k.device, "batchId": batch, "events": events}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                r.json::<Value>().await.unwrap()
            }));
        }
        let mut applied = [0; 3];
        for t in tasks {
            let b = t.await.unwrap();
            for (i, r) in b["results"].as_array().unwrap().iter().enumerate() {
                let status = r["status"].as_str().unwrap();
                assert!(["APPLIED", "DUPLICATE", "DEFERRED", "REJECTED"].contains(&status), "{r}");
                if status == "APPLIED" {
                    applied[i] += 1;
                }
            }
        }
        assert!(applied.iter().all(|n| *n <= 1), "{applied:?}");
        // Whatever was deferred, the workers finish; then every event has exactly one outcome.
        eventually(std::time::Duration::from_secs(20), "no event left pending", || {
            let srv = &srv;
            async move { stored_events(srv).await.iter().all(|e| e.status != "PENDING") }
        })
        .await;
        let stored = stored_events(&srv).await;
        assert_eq!(stored.len(), 3);
        assert_eq!(
            stored.iter().map(|e| (e.action.as_str(), e.status.as_str(), e.error_code.as_deref())).collect::<Vec<_>>(),
            [
                ("DELIVERY_VALIDATED", "APPLIED", None),
                ("PAYMENT_RECORDED", "APPLIED", None),
                ("DELIVERY_CANCELLED", "FAILED", Some("TRANSITION_INVALIDE"))
            ]
        );
        assert_eq!(sale_movements(&srv).await, 1, "the BL shipped once");
        let inv = get(&srv, &format!("/api/invoices/{inv_id}"), &admin).await;
        assert_eq!(inv["payments"].as_array().map(Vec::len), Some(1), "{inv}");
        let again = push(&srv, &karim, batch, &events).await;
        assert_eq!(
            statuses(&again),
            [pair("DUPLICATE", ""), pair("DUPLICATE", ""), pair("REJECTED", "TRANSITION_INVALIDE")]
        );
        other.stop().await;
        srv.stop().await;
    })
    .await;
}

/// §7.4: while several writers commit changes for a driver, a device pulling with a small limit sees every change
/// exactly once, in increasing `seq` — none skipped by a late commit, none repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cursor_never_skips_or_repeats_a_change_under_concurrent_writes() {
    on_both(|t| async move {
        let Shop { srv, admin, commercial, client: client_code, .. } = open_shop(&t, "2025-06-01").await;
        let karim = driver(&srv, "karim@fromagerie.dz").await;
        let _ = admin;
        let boot = client().post(srv.url("/api/sync/bootstrap")).bearer_auth(&karim.token)
            .header("X-Device-Id", karim.device.to_string()).json(&json!({"deviceId": karim.device})).send().await.unwrap();
        let start = boot.json::<Value>().await.unwrap()["cursor"].as_i64().unwrap();
        // Writers: BLs of a few invoices assigned to Karim (each appends CLIENT and DELIVERY rows), created at once.
        let mut invoices = Vec::new();
        for _ in 0..4 {
            let inv = validated(&srv, &commercial, json!({"clientCode": client_code, "paymentMethod": "ESPECES",
                "lines": [{"productCode": "PF-GOUDA-400", "quantity": 3_000}]})).await;
            invoices.push(inv["reference"].as_str().unwrap().to_string());
        }
        let writers: Vec<_> = invoices.into_iter().map(|reference| {
            let (url, token, driver) = (srv.url("/api/deliveries"), commercial.clone(), karim.user);
            tokio::spawn(async move {
                for line in 0..3 {
                    let _ = line;
                    let r = client().post(&url).bearer_auth(&token)
                        .json(&json!({"invoice": reference, "lines": [{"lineNo": 1, "quantity": 1_000}], "driverUserId": driver}))
                        .send().await.unwrap();
                    assert_eq!(r.status(), 201);
                }
            })
        }).collect();
        let mut seen = Vec::new();
        let mut cursor = start;
        let reader = async {
            loop {
                let (s, page) = pull(&srv, &karim, cursor, 3).await;
                assert_eq!(s, 200, "{page}");
                seen.extend(page["changes"].as_array().unwrap().iter().map(|c| c["seq"].as_i64().unwrap()));
                cursor = page["nextCursor"].as_i64().unwrap();
                if writers.iter().all(|w| w.is_finished()) && page["hasMore"] == false {
                    break;
                }
            }
        };
        reader.await;
        for w in writers {
            w.await.unwrap();
        }
        // One last pull after every writer finished.
        loop {
            let (_, page) = pull(&srv, &karim, cursor, 3).await;
            seen.extend(page["changes"].as_array().unwrap().iter().map(|c| c["seq"].as_i64().unwrap()));
            cursor = page["nextCursor"].as_i64().unwrap();
            if page["hasMore"] == false {
                break;
            }
        }
        let c = srv.state.dbmon.db().conn();
        let head = store::sync::head(c).await.unwrap();
        let all: Vec<i64> = store::sync::changes(c, start, head, 10_000, karim.user, "COMMERCIAL").await.unwrap()
            .iter().map(|c| c.seq).collect();
        assert_eq!(all.len(), 4 * 3 * 2, "a CLIENT and a DELIVERY row per BL");
        assert_eq!(seen, all, "every change once, in order");
    })
    .await;
}

/// The issue's "kill the server in the middle of a push": the reference client pushes 100 payments to the real
/// `manchengo serve`, the process is killed with `kill -9` while it applies them, started again, and the client's
/// retry (same ids) settles everything: exactly 100 payments exist, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_cut_by_kill_9_is_retried_by_the_reference_client_and_applied_exactly_once() {
    on_both(|t| async move {
        // The shop, the driver and a validated invoice, made in-process; then the real binary takes over the database.
        let Shop { srv, commercial, client: client_code, .. } = open_shop(&t, "2025-06-01").await;
        seed_user(&srv, "karim@fromagerie.dz", Role::Commercial, false).await;
        let inv = validated(&srv, &commercial, invoice_36(&client_code, "ESPECES")).await;
        let inv_id = inv["id"].as_str().unwrap().to_string();
        srv.stop().await;
        let data = t.dir.path().join("srv-data");
        let mut proc = crate::support::procs::Manchengo::spawn(&[
            ("DATABASE_URL", &t.url),
            ("DATA_DIR", &data.display().to_string()),
            ("RATE_LIMIT_MAX", "100000"),
        ]);
        eventually(std::time::Duration::from_secs(20), "ready", || {
            let url = proc.url("/api/health/ready");
            async move { client().get(url).send().await.is_ok_and(|r| r.status() == 200) }
        })
        .await;
        let base = proc.url("");
        let phone = device::Client::login(
            &base,
            "karim@fromagerie.dz",
            crate::support::PASSWORD,
            Uuid::new_v4(),
            "Samsung A14",
        )
        .await
        .unwrap();
        // A phone starts from a snapshot. (The real server's start-up retention job has already dropped the feed
        // rows of the staged data, dated 2025: a cursor of 0 would be CURSOR_EXPIRED.)
        let mut outbox = device::Outbox::default();
        let boot = phone.bootstrap(&mut outbox).await.unwrap();
        assert_eq!(boot["snapshot"]["products"].as_array().map(Vec::len), Some(2));
        for i in 0..100 {
            outbox.record(
                "PAYMENT_RECORDED",
                "PAYMENT",
                &inv_id,
                json!({"invoiceId": inv_id, "amount": 10_000,
                "method": "ESPECES", "date": "2025-03-14", "note": format!("versement {}", i + 1)}),
            );
        }
        let ids: Vec<Uuid> = outbox.pending.iter().map(|c| c.id).collect();

        // Kill the process once some events are in: the push in flight gets no answer.
        let push = {
            let (phone, mut o) = (phone.clone(), outbox.clone());
            tokio::spawn(async move { phone.push_once(&mut o).await })
        };
        let db = t.open().await;
        // Watched closely (every 5 ms) so the kill lands early in the batch.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while store::sync::list(db.conn(), Some("APPLIED"), None).await.map(|v| v.len()).unwrap_or(0) < 5 {
            assert!(std::time::Instant::now() < deadline, "no event applied within 60 s");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        proc.kill9();
        let cut = push.await.unwrap();
        assert!(matches!(cut, Err(device::SyncError::Unavailable(_))), "{cut:?}");
        let before = store::sync::list(db.conn(), None, None).await.unwrap().len();
        assert!((5..100).contains(&before), "cut in the middle: {before} events stored");

        // Back up; the client retries the same commands (the outbox kept them) and settles every one.
        proc.start();
        let settled = phone
            .push_all(
                &mut outbox,
                device::Backoff { base: std::time::Duration::from_millis(200), ..Default::default() },
                |_| {},
            )
            .await
            .unwrap();
        assert_eq!((settled, outbox.pending.len()), (100, 0));
        let statuses: std::collections::BTreeSet<String> = outbox.outcomes.iter().map(|o| o.status.clone()).collect();
        assert!(statuses.iter().all(|s| s == "APPLIED" || s == "DUPLICATE"), "{statuses:?}");
        assert_eq!(outbox.outcomes.iter().map(|o| o.id).collect::<Vec<_>>(), ids, "outcomes in creation order");
        let stored = store::sync::list(db.conn(), None, None).await.unwrap();
        assert_eq!(stored.len(), 100);
        assert!(stored.iter().all(|e| e.status == "ACKED"), "applied, then acknowledged by the client");
        let refs: std::collections::BTreeSet<String> = stored.iter().filter_map(|e| e.server_ref.clone()).collect();
        assert_eq!(refs.len(), 100, "one payment per event");
        let account = store::sales::find_invoice(db.conn(), &inv_id).await.unwrap().unwrap();
        assert_eq!(store::sales::remaining(db.conn(), &account).await.unwrap(), 2_367_800 - 100 * 10_000);
        // The feed tells the phone about its payments and the outcomes.
        let changes = phone.pull_all(&mut outbox, 500).await.unwrap();
        let kinds: Vec<&str> = changes.iter().map(|c| c["entityType"].as_str().unwrap_or("?")).collect();
        assert_eq!(kinds.iter().filter(|k| **k == "PAYMENT").count(), 100, "{kinds:?} cursor {}", outbox.cursor);
        db.close().await;
        proc.terminate();
    })
    .await;
}

/// D5's flood (PLATFORM §5, §4.5): past `RATE_LIMIT_SYNC_PUSH_MAX` pushes a minute, a device gets `429 RATE_LIMITED`
/// with `Retry-After` — never a 403, which the frozen client contract does not treat as revocation — and the reference
/// client keeps the command for later; another device keeps its own budget.
#[tokio::test]
async fn a_flood_of_pushes_gets_429_with_retry_after_never_403() {
    on_both(|t| async move {
        let srv = TestServer::start(&t, &[("RATE_LIMIT_MAX", "100000"), ("RATE_LIMIT_SYNC_PUSH_MAX", "3")]).await;
        let karim = driver(&srv, "karim@fromagerie.dz").await;
        let yacine = driver(&srv, "yacine@fromagerie.dz").await;
        let body = |d: &Driver| {
            json!({"deviceId": d.device, "batchId": Uuid::now_v7(),
                   "events": [event("DELIVERY_CANCELLED", "DELIVERY", &Uuid::now_v7().to_string(), json!({"reason": "Client absent"}))]})
        };
        for _ in 0..3 {
            let (s, b) = push_raw(&srv, &karim, body(&karim), None).await;
            assert_eq!(s, 200, "{b}");
            assert_eq!(statuses(&b), [pair("REJECTED", "LIVRAISON_INTROUVABLE")]);
        }
        let r = client()
            .post(srv.url("/api/sync/push"))
            .bearer_auth(&karim.token)
            .header("X-Device-Id", karim.device.to_string())
            .json(&body(&karim))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 429);
        let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
        let b: Value = r.json().await.unwrap();
        assert_eq!((b["error"]["code"].as_str(), b["error"]["details"]["limiter"].as_str()), (Some("RATE_LIMITED"), Some("sync-push")));
        let (s, _) = push_raw(&srv, &yacine, body(&yacine), None).await;
        assert_eq!(s, 200, "another device has its own budget");
        let phone = device::Client::with_token(&srv.url(""), &karim.token, karim.device);
        let mut outbox = device::Outbox::default();
        outbox.record("DELIVERY_CANCELLED", "DELIVERY", &Uuid::now_v7().to_string(), json!({"reason": "Client absent"}));
        let r = phone.push_once(&mut outbox).await;
        assert!(matches!(r, Err(device::SyncError::RateLimited(s)) if (1..=60).contains(&s)), "{r:?}");
        assert_eq!(outbox.pending.len(), 1, "the command stays in the outbox for later");
        srv.stop().await;
    })
    .await;
}

/// `manchengo device replay`: the reference client as a command replays an outbox file written by hand (ids kept,
/// checksums computed), writes the outcomes back into the file, and a second run has nothing left to send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replay_command_sends_an_outbox_file_once() {
    on_both(|t| async move {
        let srv = TestServer::start(&t, &[("RATE_LIMIT_MAX", "100000")]).await;
        let admin = bearer(&srv, Role::Admin).await;
        let code =
            new_client(&srv, &admin, "Supérette El Baraka", "000216123456789", Some("16012345678"), json!({})).await;
        let client_id = store::catalogue::client_by_code(srv.state.dbmon.db().conn(), &code).await.unwrap().unwrap().id;
        seed_user(&srv, "karim@fromagerie.dz", Role::Commercial, false).await;
        let file = t.dir.path().join("outbox.json");
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
        let outbox = json!({"pending": [
            {"id": first, "entityType": "CLIENT", "entityId": client_id, "action": "CLIENT_CONTACT_UPDATED",
             "occurredAt": "2025-03-14T09:00:00Z", "payload": {"phone": "+213 555 12 34 56"}},
            {"id": second, "entityType": "CLIENT", "entityId": client_id, "action": "CLIENT_CONTACT_UPDATED",
             "occurredAt": "2025-03-14T09:05:00Z", "payload": {"email": "pas-un-email"}}]});
        std::fs::write(&file, outbox.to_string()).unwrap();
        let run = || {
            std::process::Command::new(env!("CARGO_BIN_EXE_manchengo"))
                .args(["device", "replay", "--outbox"])
                .arg(&file)
                .args(["--url", &srv.url(""), "--email", "karim@fromagerie.dz", "--name", "Tablette du dépôt"])
                .env("MANCHENGO_PASSWORD", crate::support::PASSWORD)
                .output()
                .unwrap()
        };
        let out = run();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(&format!("{first}\tCLIENT_CONTACT_UPDATED\tAPPLIED\t{code}")), "{text}");
        assert!(text.contains(&format!("{second}\tCLIENT_CONTACT_UPDATED\tREJECTED\tEMAIL_INVALIDE : ")), "{text}");
        assert!(text.contains("2 commande(s) réglée(s), 0 en attente"), "{text}");
        let saved: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(
            (saved["pending"].as_array().map(Vec::len), saved["outcomes"].as_array().map(Vec::len)),
            (Some(0), Some(2))
        );
        assert!(saved["cursor"].as_i64().unwrap() > 0);
        let c = store::catalogue::client_by_code(srv.state.dbmon.db().conn(), &code).await.unwrap().unwrap();
        assert_eq!((c.telephone.as_deref(), c.email), (Some("0555123456"), None));
        // The same device (its id kept beside the file), nothing left to send.
        let out = run();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(text.contains("0 commande(s) réglée(s), 0 en attente"), "{text}");
        assert_eq!(store::identity::all_devices(srv.state.dbmon.db().conn()).await.unwrap().len(), 1);
        srv.stop().await;
    })
    .await;
}
