//! Recipes and production orders through the API on both backends (DOMAIN.md §8; scenarios 29–34): versions, the
//! needs table, the all-or-nothing FEFO start, completion (lot, DLC, cost, yield, QC), cancellation that restores
//! the very lots, refusals, R− for APPRO, and two starts racing for the same milk.

use std::sync::Arc;

use app::platform::jobs::ManualClock;
use chrono::{DateTime, Duration, Utc};
use domain::identity::Role;
use serde_json::{Value, json};

use crate::support::{TestServer, audit_actions, bearer, call, client, config_for, get, on_both, post};

/// 2025-03-14 10:00 in Algiers.
fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-14T09:00:00Z").unwrap().with_timezone(&Utc)
}

async fn server(t: &crate::support::TestDb) -> (TestServer, Arc<ManualClock>) {
    let clock = ManualClock::new(now());
    let options = app::server::Options { clock: clock.clone(), ..Default::default() };
    (TestServer::start_with(config_for(&t.url, t.dir.path(), &[]), options).await, clock)
}

fn code(b: &Value) -> &str {
    b["error"]["code"].as_str().unwrap_or("-")
}

/// The §22 test kitchen: supplier FOUR-0001, MP-LAIT (milk, KG, 3,00 DA/kg), MP-SAC (packaging, U, 10,00 DA), PF-TEST
/// (U, shelf life 180 days); lots L1 = 120 kg DLC 03-20, L2 = 200 kg DLC 03-25, and `mp_b` pieces of MP-SAC.
async fn kitchen(srv: &TestServer, mp_b: i64) -> (String, String, String) {
    let admin = bearer(srv, Role::Admin).await;
    for (path, body) in [
        ("/api/suppliers", json!({"raisonSociale": "Laiterie du Djurdjura SARL"})),
        ("/api/catalogue/families", json!({"code": "PATE_PRESSEE", "name": "Pâte pressée"})),
        (
            "/api/catalogue/mp",
            json!({"code": "MP-LAIT", "name": "Lait cru", "category": "RAW_MATERIAL", "baseUnit": "KG"}),
        ),
        (
            "/api/catalogue/mp",
            json!({"code": "MP-SAC", "name": "Sac thermo", "category": "PACKAGING", "baseUnit": "U", "perishable": false}),
        ),
        (
            "/api/catalogue/pf",
            json!({"code": "PF-TEST", "name": "Fromage test", "baseUnit": "U", "weightG": 400, "packagingType": "SAC_THERMO",
                   "storageType": "REFRIGERE", "shelfLifeDays": 180, "listPriceHt": 65_000,
                   "familyCode": "PATE_PRESSEE"}),
        ),
    ] {
        let (s, b) = post(srv, path, &admin, body).await;
        assert_eq!(s, 201, "{path}: {b}");
    }
    let l1 = receive(srv, &admin, "MP-LAIT", 120_000, 300, Some("2025-03-20")).await;
    let l2 = receive(srv, &admin, "MP-LAIT", 200_000, 300, Some("2025-03-25")).await;
    let b = receive(srv, &admin, "MP-SAC", mp_b, 1_000, None).await;
    (l1, l2, b)
}

/// One reception line; returns the lot number.
async fn receive(srv: &TestServer, token: &str, product: &str, quantity: i64, cost: i64, dlc: Option<&str>) -> String {
    let mut line = json!({"productCode": product, "quantity": quantity, "unitCostHt": cost});
    if let Some(d) = dlc {
        line["dlc"] = json!(d);
    }
    let (s, b) = post(srv, "/api/receptions", token, json!({"supplierCode": "FOUR-0001", "lines": [line]})).await;
    assert_eq!(s, 201, "{b}");
    b["reception"]["lines"][0]["lotNumber"].as_str().unwrap().to_string()
}

/// 50 pieces per batch from 200 kg of MP-LAIT and 10 bags.
fn recipe(mp_a_kg: i64) -> Value {
    json!({"outputQuantity": 50_000, "batchWeightG": 20_000, "items": [
        {"kind": "MP", "productCode": "MP-LAIT", "quantity": mp_a_kg * 1_000},
        {"kind": "PACKAGING", "productCode": "MP-SAC", "quantity": 10_000},
    ]})
}

async fn lot(srv: &TestServer, number: &str) -> (i64, String, Option<String>) {
    let l = store::stock::lot_by_number(srv.state.dbmon.db().conn(), number).await.unwrap().unwrap();
    (l.quantity_remaining, l.status, l.block_reason)
}

async fn movements(srv: &TestServer, origin: &str) -> u64 {
    let f = store::stock::MovementFilter { origin: Some(origin.into()), ..Default::default() };
    store::stock::movements(srv.state.dbmon.db(), &f, 0, 1_000).await.unwrap().1
}

async fn order(srv: &TestServer, token: &str, batches: i64, date: &str) -> (u16, Value) {
    post(
        srv,
        "/api/production-orders",
        token,
        json!({"productCode": "PF-TEST", "batchCount": batches, "plannedDate": date}),
    )
    .await
}

async fn assert_ledger_consistent(srv: &TestServer) {
    let v = store::stock::check(srv.state.dbmon.db()).await.unwrap();
    assert!(v.is_empty(), "ledger violations: {v:?}");
}

/// Scenarios 29–32: versions (v2 frozen into the order while v3 becomes active), the needs table, the full shortage
/// list with nothing touched, the FEFO start, and the completion with its lot, DLC, unit cost, yield and alert.
#[tokio::test]
async fn scenarios_29_to_32_recipe_versions_start_and_completion() {
    on_both(|t| async move {
        let (srv, clock) = server(&t).await;
        let (l1, l2, bags) = kitchen(&srv, 10_000).await;
        let production = bearer(&srv, Role::Production).await;
        let appro = bearer(&srv, Role::Appro).await;

        // Recipes: refused before a version exists; APPRO reads but does not write; an MP twice is refused.
        let (s, b) = order(&srv, &production, 1, "2025-03-14").await;
        assert_eq!((s, code(&b)), (422, "RECETTE_ABSENTE"), "{b}");
        assert_eq!(b["error"]["message"], "Recette active absente pour PF-TEST.");
        let (s, _) = post(&srv, "/api/recipes/PF-TEST", &appro, recipe(200)).await;
        assert_eq!(s, 403);
        let mut twice = recipe(200);
        twice["items"][1] = json!({"kind": "MP", "productCode": "MP-LAIT", "quantity": 1_000});
        let (s, b) = post(&srv, "/api/recipes/PF-TEST", &production, twice).await;
        assert_eq!((s, code(&b), b["error"]["message"].as_str()), (422, "RECETTE_DOUBLON", Some("Matière MP-LAIT en double.")));
        let mut not_packaging = recipe(200);
        not_packaging["items"][1]["productCode"] = json!("MP-LAIT");
        not_packaging["items"][0]["productCode"] = json!("MP-SAC");
        let (s, b) = post(&srv, "/api/recipes/PF-TEST", &production, not_packaging).await;
        assert_eq!((s, b["error"]["details"]["fields"][0]["code"].as_str()), (400, Some("PRODUIT_INVALIDE")), "{b}");
        for kg in [100, 200] {
            let (s, b) = post(&srv, "/api/recipes/PF-TEST", &production, recipe(kg)).await;
            assert_eq!(s, 200, "{b}");
        }
        let r = get(&srv, "/api/recipes/PF-TEST", &appro).await;
        assert_eq!((r["active"]["version"].as_i64(), r["versions"].as_array().unwrap().len()), (Some(2), 2));
        assert_eq!(r["versions"][1]["status"], "ARCHIVED");

        // OP-2025-00001 on v2 for today; the needs table shows 200 kg of 320 usable and 10 bags of 10.
        let (s, op) = order(&srv, &production, 1, "2025-03-14").await;
        assert_eq!(s, 201, "{op}");
        assert_eq!((op["reference"].as_str(), op["status"].as_str(), op["recipeVersion"].as_i64()), (Some("OP-2025-00001"), Some("PENDING"), Some(2)));
        assert_eq!(op["targetQuantity"], 50_000);
        let needs: Vec<(i64, i64, i64)> = op["needs"].as_array().unwrap().iter().map(|n| (n["need"].as_i64().unwrap(), n["available"].as_i64().unwrap(), n["missing"].as_i64().unwrap())).collect();
        assert_eq!(needs, [(200_000, 320_000, 0), (10_000, 10_000, 0)]);
        assert_eq!(op["startable"], true);

        // Scenario 30 (every shortage listed): two batches need 400 kg (320 usable) and 20 bags (10).
        let (_, op2) = order(&srv, &production, 2, "2025-03-15").await;
        assert_eq!(op2["needs"][0]["committedElsewhere"], 200_000, "OP-00001's milk is shown as committed");
        assert_eq!(op2["startable"], false);
        let (s, b) = post(&srv, "/api/production-orders/OP-2025-00002/start", &production, json!({})).await;
        assert_eq!((s, code(&b)), (409, "STOCK_INSUFFISANT"), "{b}");
        assert_eq!(b["error"]["details"]["shortages"], json!([
            {"productCode": "MP-LAIT", "required": 400_000, "available": 320_000, "missing": 80_000},
            {"productCode": "MP-SAC", "required": 20_000, "available": 10_000, "missing": 10_000},
        ]));
        assert_eq!(b["error"]["message"], "Stock insuffisant : MP-LAIT requis 400,000, disponible 320,000, manquant 80,000 ; MP-SAC requis 20,000, disponible 10,000, manquant 10,000.");
        assert_eq!(movements(&srv, "PRODUCTION_OUT").await, 0, "a refused start writes nothing");
        assert_eq!(lot(&srv, &l1).await.0, 120_000);
        let (s, _) = post(&srv, "/api/production-orders/OP-2025-00002/cancel", &production, json!({"reason": "Planifié par erreur"})).await;
        assert_eq!(s, 200);

        // Scenario 29: v3 saved while OP-00001 waits on v2; the order keeps v2's 200 kg.
        let (s, _) = post(&srv, "/api/recipes/PF-TEST", &production, recipe(250)).await;
        assert_eq!(s, 200);
        let r = get(&srv, "/api/recipes/PF-TEST", &production).await;
        assert_eq!((r["active"]["version"].as_i64(), r["versions"][1]["status"].as_str()), (Some(3), Some("ARCHIVED")));

        // §3.3: the milk cannot be deactivated while the active recipe uses it; the refusal names the recipe.
        let admin = bearer(&srv, Role::Admin).await;
        let (s, b) = post(&srv, "/api/catalogue/mp/MP-LAIT/deactivate", &admin, json!({})).await;
        assert_eq!((s, code(&b)), (409, "PRODUIT_UTILISE"), "{b}");
        assert_eq!(b["error"]["details"]["blockers"], json!(["recette PF-TEST v3"]));

        // Completing a PENDING order is refused; scenario 31: the start takes L1 whole, then 80 kg of L2, and the bags.
        let (s, b) = post(&srv, "/api/production-orders/OP-2025-00001/complete", &production, json!({"quantityProduced": 45_000, "qcStatus": "PASSED"})).await;
        assert_eq!((s, code(&b)), (409, "TRANSITION_INVALIDE"));
        let (s, b) = post(&srv, "/api/production-orders/OP-2025-00001/start", &production, json!({})).await;
        assert_eq!((s, b["status"].as_str()), (200, Some("IN_PROGRESS")), "{b}");
        let used: Vec<(&str, i64)> = b["consumptions"].as_array().unwrap().iter().map(|c| (c["lotNumber"].as_str().unwrap(), c["quantity"].as_i64().unwrap())).collect();
        assert_eq!(used, [(l1.as_str(), 120_000), (l2.as_str(), 80_000), (bags.as_str(), 10_000)]);
        assert_eq!(lot(&srv, &l1).await, (0, "CONSUMED".into(), None));
        assert_eq!(lot(&srv, &l2).await.0, 120_000);
        assert_eq!(movements(&srv, "PRODUCTION_OUT").await, 3);
        let (s, b) = post(&srv, "/api/production-orders/OP-2025-00001/start", &production, json!({})).await;
        assert_eq!((s, code(&b)), (409, "TRANSITION_INVALIDE"), "starting twice");

        // Scenario 32, the next day: 45 of 50 pieces, QC passed.
        clock.advance(Duration::days(1));
        let production = bearer(&srv, Role::Production).await;
        let appro = bearer(&srv, Role::Appro).await;
        let (s, b) = post(&srv, "/api/production-orders/OP-2025-00001/complete", &production, json!({"quantityProduced": 0, "qcStatus": "PASSED"})).await;
        assert_eq!((s, code(&b)), (422, "QUANTITE_INVALIDE"));
        let (s, b) = post(&srv, "/api/production-orders/OP-2025-00001/complete", &production, json!({"quantityProduced": 45_000, "qcStatus": "PASSED"})).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["pfLot"], json!({"lotNumber": "PF-TEST-250315-01", "status": "AVAILABLE", "blockReason": null, "dlc": "2025-09-11", "quantity": 45_000}));
        assert_eq!((b["unitCost"].as_i64(), b["consumedCost"].as_i64(), b["yieldBp"].as_i64()), (Some(1_556), Some(70_000), Some(9_000)));
        let alerts = store::alerts::open_of_type(srv.state.dbmon.db(), "RENDEMENT_HORS_TOLERANCE").await.unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!((alerts[0].severity.as_str(), alerts[0].entity_id.as_str()), ("WARNING", "OP-2025-00001"));
        assert_eq!(movements(&srv, "PRODUCTION_IN").await, 1);
        let pf = store::stock::lot_by_number(srv.state.dbmon.db().conn(), "PF-TEST-250315-01").await.unwrap().unwrap();
        assert_eq!((pf.unit_cost, pf.origin.as_str()), (1_556, "PRODUCTION"));

        // Scenario 35: backward from the PF lot to L1 120 kg, L2 80 kg and the bags, their receptions and supplier;
        // forward from L1 to the PF lot (deliveries come with the sales issue).
        let t = get(&srv, "/api/trace?lot=PF-TEST-250315-01&direction=BACKWARD", &appro).await;
        assert_eq!((t["backward"]["order"]["reference"].as_str(), t["backward"]["order"]["recipeVersion"].as_i64()), (Some("OP-2025-00001"), Some(2)));
        let inputs: Vec<(&str, i64, &str, &str)> = t["backward"]["inputs"].as_array().unwrap().iter().map(|i| (
            i["lotNumber"].as_str().unwrap(), i["quantityConsumed"].as_i64().unwrap(),
            i["reception"]["reference"].as_str().unwrap(), i["reception"]["supplier"]["name"].as_str().unwrap(),
        )).collect();
        assert_eq!(inputs, [
            (l1.as_str(), 120_000, "REC-2025-00001", "Laiterie du Djurdjura SARL"),
            (l2.as_str(), 80_000, "REC-2025-00002", "Laiterie du Djurdjura SARL"),
            (bags.as_str(), 10_000, "REC-2025-00003", "Laiterie du Djurdjura SARL"),
        ]);
        let commercial = bearer(&srv, Role::Commercial).await;
        let t = get(&srv, &format!("/api/trace?lot={l1}&direction=FORWARD"), &commercial).await;
        assert_eq!(t["forward"]["usedBy"].as_array().unwrap().len(), 1);
        assert_eq!((t["forward"]["usedBy"][0]["order"]["reference"].as_str(), t["forward"]["usedBy"][0]["quantityConsumed"].as_i64()), (Some("OP-2025-00001"), Some(120_000)));
        assert_eq!((t["forward"]["usedBy"][0]["pfLot"]["lotNumber"].as_str(), t["forward"]["usedBy"][0]["pfLot"]["quantityRemaining"].as_i64()), (Some("PF-TEST-250315-01"), Some(45_000)));
        let r = client().get(srv.url("/api/trace?lot=PF-TEST-250315-01&format=csv")).bearer_auth(&appro).send().await.unwrap();
        assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
        let csv = r.text().await.unwrap();
        let lines: Vec<&str> = csv.trim_start_matches('\u{FEFF}').lines().collect();
        assert_eq!(lines[0], "sens;lot;produit;designation;quantite;unite;statut;dlc;document;date;tiers;telephone");
        assert_eq!(lines[1], "LOT;PF-TEST-250315-01;PF-TEST;Fromage test;45.000;U;AVAILABLE;2025-09-11;;;;");
        assert_eq!(lines[2], format!("AMONT;{l1};MP-LAIT;Lait cru;120.000;KG;CONSUMED;2025-03-20;REC-2025-00001;2025-03-14;Laiterie du Djurdjura SARL;"));
        assert_eq!(lines.len(), 5);
        let (s, b) = call(&srv, "GET", "/api/trace?lot=L999999-999", &appro, None).await;
        assert_eq!((s, code(&b)), (404, "NON_TROUVE"));

        // The recall report of L1: L1 itself (all used in production) and the PF lot made from it, still in stock.
        let r = get(&srv, &format!("/api/trace/recall?lot={l1}"), &appro).await;
        let lots: Vec<(&str, i64, i64, i64, i64)> = r["lots"].as_array().unwrap().iter().map(|l| (
            l["lotNumber"].as_str().unwrap(), l["initial"].as_i64().unwrap(), l["remaining"].as_i64().unwrap(),
            l["usedInProduction"].as_i64().unwrap(), l["ecart"].as_i64().unwrap(),
        )).collect();
        assert_eq!(lots, [(l1.as_str(), 120_000, 0, 120_000, 0), ("PF-TEST-250315-01", 45_000, 45_000, 0, 0)]);
        assert_eq!(r["totals"], json!({"produced": 45_000, "delivered": 0, "inStock": 45_000, "returned": 0, "lost": 0, "ecart": 0}));
        let csv = client().get(srv.url(&format!("/api/trace/recall?lot={l1}&format=csv"))).bearer_auth(&appro).send().await.unwrap().text().await.unwrap();
        assert_eq!(csv.trim_start_matches('\u{FEFF}').lines().nth(2), Some("PF-TEST-250315-01;PF-TEST;Fromage test;AVAILABLE;2025-09-11;45.000;45.000;0.000;0.000;0.000;0.000;0.000;U"));
        let r = client().get(srv.url(&format!("/api/trace/recall?lot={l1}&format=xlsx"))).bearer_auth(&appro).send().await.unwrap();
        assert_eq!(r.headers()["content-type"], "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
        let xlsx = r.bytes().await.unwrap();
        assert!(xlsx.starts_with(b"PK\x03\x04"));
        let sheet = String::from_utf8_lossy(&xlsx);
        assert!(sheet.contains(r#"<c r="A3" t="inlineStr"><is><t xml:space="preserve">PF-TEST-250315-01</t></is></c>"#) && sheet.contains(r#"<c r="G3"><v>45.000</v></c>"#), "the sheet is stored uncompressed");
        // "Bloquer tous": ADMIN only, with a recall note; L1 is empty, the PF lot is blocked MANUAL with the note.
        let (s, _) = post(&srv, "/api/trace/recall/block", &production, json!({"lot": l1, "note": "Rappel fournisseur lot F123"})).await;
        assert_eq!(s, 403);
        let admin = bearer(&srv, Role::Admin).await;
        let (s, b) = post(&srv, "/api/trace/recall/block", &admin, json!({"lot": l1, "note": "Rappel"})).await;
        assert_eq!((s, code(&b)), (422, "MOTIF_TROP_COURT"));
        let (s, b) = post(&srv, "/api/trace/recall/block", &admin, json!({"lot": l1, "note": "Rappel fournisseur lot F123"})).await;
        assert_eq!((s, b["blocked"].clone()), (200, json!(["PF-TEST-250315-01"])), "{b}");
        let blocked = store::stock::lot_by_number(srv.state.dbmon.db().conn(), "PF-TEST-250315-01").await.unwrap().unwrap();
        assert_eq!((blocked.status.as_str(), blocked.block_reason.as_deref(), blocked.block_note.as_deref()), ("BLOCKED", Some("MANUAL"), Some("Rappel fournisseur lot F123")));

        // R−: APPRO sees the order without a cost; COMMERCIAL does not see it.
        let seen = get(&srv, "/api/production-orders/OP-2025-00001", &appro).await;
        assert!(seen.get("unitCost").is_none() && seen["consumptions"][0].get("unitCost").is_none(), "{seen}");
        assert_eq!(seen["yieldBp"], 9_000);
        let (s, _) = call(&srv, "GET", "/api/production-orders/OP-2025-00001", &commercial, None).await;
        assert_eq!(s, 403);
        let (s, b) = post(&srv, "/api/production-orders/OP-2025-00001/cancel", &production, json!({"reason": "Erreur de saisie du lot"})).await;
        assert_eq!((s, code(&b)), (409, "TRANSITION_INVALIDE"), "a completed order is final");
        let list = get(&srv, "/api/production-orders?status=COMPLETED", &production).await;
        assert_eq!(list["total"], 1);
        assert_eq!(audit_actions(&srv, "OP_COMPLETED").await.len(), 1);
        assert_eq!(audit_actions(&srv, "RECIPE_VERSION_CREATED").await.len(), 3);
        assert_ledger_consistent(&srv).await;
        srv.stop().await;
    })
    .await;
}

/// Scenarios 33–34: cancelling an order in progress puts each quantity back into its own lot (L1, past its DLC,
/// comes back BLOCKED(EXPIRED)); completions with QC pending or failed.
#[tokio::test]
async fn scenarios_33_34_cancel_restores_the_lots_and_qc_decides_the_pf_lot_status() {
    on_both(|t| async move {
        let (srv, clock) = server(&t).await;
        let (l1, l2, bags) = kitchen(&srv, 10_000).await;
        let production = bearer(&srv, Role::Production).await;
        let (s, _) = post(&srv, "/api/recipes/PF-TEST", &production, recipe(200)).await;
        assert_eq!(s, 200);
        order(&srv, &production, 1, "2025-03-14").await;
        let (s, _) = post(&srv, "/api/production-orders/OP-2025-00001/start", &production, json!({})).await;
        assert_eq!(s, 200);

        clock.advance(Duration::days(7));
        let production = bearer(&srv, Role::Production).await;
        let (s, b) =
            post(&srv, "/api/production-orders/OP-2025-00001/cancel", &production, json!({"reason": "Panne"})).await;
        assert_eq!((s, code(&b)), (422, "MOTIF_TROP_COURT"));
        let (s, b) = post(
            &srv,
            "/api/production-orders/OP-2025-00001/cancel",
            &production,
            json!({"reason": "Panne du pasteurisateur"}),
        )
        .await;
        assert_eq!(
            (s, b["status"].as_str(), b["cancelReason"].as_str()),
            (200, Some("CANCELLED"), Some("Panne du pasteurisateur")),
            "{b}"
        );
        assert_eq!(lot(&srv, &l1).await, (120_000, "BLOCKED".into(), Some("EXPIRED".into())));
        assert_eq!(lot(&srv, &l2).await, (200_000, "AVAILABLE".into(), None));
        assert_eq!(lot(&srv, &bags).await, (10_000, "AVAILABLE".into(), None));
        assert_eq!(movements(&srv, "PRODUCTION_CANCEL").await, 3);
        let (s, b) = post(
            &srv,
            "/api/production-orders/OP-2025-00001/cancel",
            &production,
            json!({"reason": "Panne du pasteurisateur"}),
        )
        .await;
        assert_eq!((s, code(&b)), (409, "TRANSITION_INVALIDE"));

        // Rescheduling: only a PENDING order, never into the past.
        let (_, b) = order(&srv, &production, 1, "2025-03-22").await;
        let op2 = b["reference"].as_str().unwrap().to_string();
        let (s, b) = post(
            &srv,
            &format!("/api/production-orders/{op2}/reschedule"),
            &production,
            json!({"plannedDate": "2025-03-20"}),
        )
        .await;
        assert_eq!((s, code(&b)), (422, "DATE_INVALIDE"));
        let (s, b) = post(
            &srv,
            &format!("/api/production-orders/{op2}/reschedule"),
            &production,
            json!({"plannedDate": "2025-03-23"}),
        )
        .await;
        assert_eq!((s, b["plannedDate"].as_str()), (200, Some("2025-03-23")));

        // Scenario 33: QC pending → QUARANTINE; a FAILED result needs a note of 10 characters → BLOCKED(QC_FAILED).
        let (s, b) = post(&srv, &format!("/api/production-orders/{op2}/start"), &production, json!({})).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["consumptions"][0]["lotNumber"].as_str(), Some(l2.as_str()), "the expired L1 is never used");
        let (s, b) = post(
            &srv,
            &format!("/api/production-orders/{op2}/complete"),
            &production,
            json!({"quantityProduced": 50_000, "qcStatus": "PENDING"}),
        )
        .await;
        assert_eq!(
            (s, b["pfLot"]["status"].as_str(), b["yieldBp"].as_i64()),
            (200, Some("QUARANTINE"), Some(10_000)),
            "{b}"
        );
        assert_eq!(b["pfLot"]["lotNumber"], "PF-TEST-250321-01");

        let admin = bearer(&srv, Role::Admin).await;
        receive(&srv, &admin, "MP-LAIT", 200_000, 300, Some("2025-03-30")).await;
        receive(&srv, &admin, "MP-SAC", 10_000, 1_000, None).await;
        let (_, b) = order(&srv, &production, 1, "2025-03-21").await;
        let op3 = b["reference"].as_str().unwrap().to_string();
        post(&srv, &format!("/api/production-orders/{op3}/start"), &production, json!({})).await;
        let (s, b) = post(
            &srv,
            &format!("/api/production-orders/{op3}/complete"),
            &production,
            json!({"quantityProduced": 49_000, "qcStatus": "FAILED", "qcNote": "pâte"}),
        )
        .await;
        assert_eq!((s, code(&b)), (422, "MOTIF_TROP_COURT"));
        let (s, b) = post(
            &srv,
            &format!("/api/production-orders/{op3}/complete"),
            &production,
            json!({"quantityProduced": 49_000, "qcStatus": "FAILED", "qcNote": "Texture non conforme"}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(
            (b["pfLot"]["lotNumber"].as_str(), b["pfLot"]["status"].as_str(), b["pfLot"]["blockReason"].as_str()),
            (Some("PF-TEST-250321-02"), Some("BLOCKED"), Some("QC_FAILED"))
        );
        assert_eq!(b["qcNote"], "Texture non conforme");
        assert!(
            store::alerts::open_of_type(srv.state.dbmon.db(), "RENDEMENT_HORS_TOLERANCE").await.unwrap().is_empty(),
            "98 % is within 2 %"
        );
        assert_ledger_consistent(&srv).await;
        srv.stop().await;
    })
    .await;
}

/// Two orders that each need 200 kg of the 320 kg in stock start at the same moment: one wins, the other is refused
/// with what is left; no lot goes below zero and the ledger still balances.
#[tokio::test]
async fn two_starts_racing_for_the_same_milk_never_oversell() {
    on_both(|t| async move {
        let (srv, _) = server(&t).await;
        let (l1, l2, _) = kitchen(&srv, 20_000).await;
        let production = bearer(&srv, Role::Production).await;
        post(&srv, "/api/recipes/PF-TEST", &production, recipe(200)).await;
        order(&srv, &production, 1, "2025-03-14").await;
        order(&srv, &production, 1, "2025-03-14").await;
        let start = |r: &'static str| {
            let (srv, token) = (&srv, production.clone());
            async move { post(srv, &format!("/api/production-orders/{r}/start"), &token, json!({})).await }
        };
        let (a, b) = tokio::join!(start("OP-2025-00001"), start("OP-2025-00002"));
        let mut outcomes = [a.0, b.0];
        outcomes.sort();
        assert_eq!(outcomes, [200, 409], "{a:?} {b:?}");
        let refused = if a.0 == 409 { &a.1 } else { &b.1 };
        assert_eq!(
            refused["error"]["details"]["shortages"],
            json!([{"productCode": "MP-LAIT", "required": 200_000, "available": 120_000, "missing": 80_000}])
        );
        assert_eq!(lot(&srv, &l1).await.0 + lot(&srv, &l2).await.0, 120_000);
        assert_eq!(movements(&srv, "PRODUCTION_OUT").await, 3);
        assert_ledger_consistent(&srv).await;
        srv.stop().await;
    })
    .await;
}
