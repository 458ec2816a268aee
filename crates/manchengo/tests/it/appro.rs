//! The supply cockpit and its alerts through the API on both backends (DOMAIN.md §7; scenarios 25, 27, 28): metrics
//! from real production, the suggestion net of what is on order, the risk index, the hourly scan's dedup, closing
//! and reopening, acknowledge and postpone with their refusals.

use std::sync::Arc;

use app::platform::jobs::{Clock, ManualClock};
use chrono::{DateTime, Duration, Utc};
use domain::identity::Role;
use serde_json::{Value, json};

use crate::support::{TestServer, bearer, call, config_for, on_both, post};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-14T09:00:00Z").unwrap().with_timezone(&Utc)
}

async fn ok(srv: &TestServer, path: &str, token: &str, body: Value) -> Value {
    let (s, b) = post(srv, path, token, body).await;
    assert!(s == 200 || s == 201, "{path}: {s} {b}");
    b
}

async fn scan(srv: &TestServer, at: DateTime<Utc>) -> usize {
    srv.state.dbmon.db().write(|tx| Box::pin(async move { store::appro::scan(&**tx, at).await })).await.unwrap()
}

fn alert<'a>(cockpit: &'a Value, alert_type: &str) -> &'a Value {
    cockpit["alerts"].as_array().unwrap().iter().find(|a| a["type"] == alert_type).unwrap_or(&Value::Null)
}

fn mp<'a>(cockpit: &'a Value, code: &str) -> &'a Value {
    cockpit["mps"].as_array().unwrap().iter().find(|m| m["productCode"] == code).unwrap()
}

#[tokio::test]
async fn the_cockpit_scores_the_mps_and_its_alerts_follow_the_stock() {
    on_both(|t| async move {
        let clock = ManualClock::new(now());
        // The scheduler never ticks during the test: the test runs the alert scans itself, at the times it chooses.
        let options = app::server::Options {
            clock: clock.clone(),
            job_tick: std::time::Duration::from_secs(86_400),
            ..Default::default()
        };
        let srv = TestServer::start_with(config_for(&t.url, t.dir.path(), &[]), options).await;
        let clock: Arc<ManualClock> = clock;
        let admin = bearer(&srv, Role::Admin).await;
        // Milk: safety 1 000 L, reorder 1 500 L, lead 2 days. Salt: reorder 10 kg. Rennet: BLOQUANTE. None in stock.
        ok(&srv, "/api/suppliers", &admin, json!({"raisonSociale": "Laiterie du Djurdjura SARL"})).await;
        ok(&srv, "/api/catalogue/families", &admin, json!({"code": "PATE_PRESSEE", "name": "Pâte pressée"})).await;
        ok(&srv, "/api/catalogue/mp", &admin, json!({"code": "MP-LAIT", "name": "Lait cru", "category": "RAW_MATERIAL", "baseUnit": "L",
            "minStock": 1_000_000, "reorderThreshold": 1_500_000, "leadTimeDays": 2})).await;
        ok(&srv, "/api/catalogue/mp", &admin, json!({"code": "MP-SEL", "name": "Sel", "category": "ADDITIVE", "baseUnit": "KG", "perishable": false,
            "minStock": 0, "reorderThreshold": 10_000})).await;
        ok(&srv, "/api/catalogue/mp", &admin, json!({"code": "MP-PRESURE", "name": "Présure", "category": "ADDITIVE", "baseUnit": "L",
            "perishable": false, "criticite": "BLOQUANTE"})).await;
        ok(&srv, "/api/catalogue/pf", &admin, json!({"code": "PF-TEST", "name": "Fromage test", "baseUnit": "U", "weightG": 400,
            "packagingType": "SAC_THERMO", "storageType": "REFRIGERE", "shelfLifeDays": 180, "listPriceHt": 65_000, "familyCode": "PATE_PRESSEE"})).await;
        // 38 000 L received, 36 000 L used by one batch yesterday: 1 200 L a day, 2 000 L left.
        ok(&srv, "/api/receptions", &admin, json!({"supplierCode": "FOUR-0001", "lines": [{"productCode": "MP-LAIT", "quantity": 38_000_000, "unitCostHt": 8_000, "dlc": "2025-04-30"}]})).await;
        ok(&srv, "/api/recipes/PF-TEST", &admin, json!({"outputQuantity": 3_600_000, "batchWeightG": 3_600_000, "items": [{"kind": "MP", "productCode": "MP-LAIT", "quantity": 36_000_000}]})).await;
        ok(&srv, "/api/production-orders", &admin, json!({"productCode": "PF-TEST", "batchCount": 1, "plannedDate": "2025-03-14"})).await;
        ok(&srv, "/api/production-orders/OP-2025-00001/start", &admin, json!({})).await;
        clock.advance(Duration::days(1));
        let admin = bearer(&srv, Role::Admin).await;
        let appro = bearer(&srv, Role::Appro).await;
        let production = bearer(&srv, Role::Production).await;

        // Scenario 25: coverage 1,7 d < 2 d → CRITIQUE, suggestion 8 800 L, priority HAUTE.
        let (s, c) = call(&srv, "GET", "/api/appro/cockpit", &production, None).await;
        assert_eq!(s, 200, "{c}");
        let milk = mp(&c, "MP-LAIT");
        assert_eq!((milk["status"].as_str(), milk["coverageTenths"].as_i64(), milk["suggestion"].as_i64(), milk["priority"].as_str()),
                   (Some("CRITIQUE"), Some(17), Some(8_800_000), Some("HAUTE")), "{milk}");
        assert_eq!(milk["consumption30"], 36_000_000);
        assert_eq!((mp(&c, "MP-SEL")["status"].as_str(), mp(&c, "MP-SEL")["suggestion"].as_i64()), (Some("RUPTURE"), Some(10_000)));
        assert_eq!(mp(&c, "MP-PRESURE")["statusLabel"], "Bloque la production");
        // Risk: B 1, R 1, C 1 → 30 + 20 + 10 = 60 SURVEILLANCE; the worst MP first.
        assert_eq!((c["riskIndex"].as_i64(), c["riskLevel"].as_str()), (Some(60), Some("SURVEILLANCE")));
        assert_eq!(c["mps"][0]["productCode"], "MP-PRESURE");
        // 5 000 L on order (a sent BC) come off the suggestion.
        ok(&srv, "/api/purchase-orders", &appro, json!({"supplierCode": "FOUR-0001", "expectedDate": "2025-03-17",
            "lines": [{"productCode": "MP-LAIT", "quantity": 5_000_000, "unitPriceHt": 8_000}]})).await;
        ok(&srv, "/api/purchase-orders/BC-2025-00001/send", &appro, json!({"mode": "MANUEL", "note": "Confirmé par téléphone OK"})).await;
        let (_, c) = call(&srv, "GET", "/api/appro/cockpit", &appro, None).await;
        assert_eq!((mp(&c, "MP-LAIT")["openOrderQty"].as_i64(), mp(&c, "MP-LAIT")["suggestion"].as_i64()), (Some(5_000_000), Some(3_800_000)));

        // The hourly scan: three alerts, then none new on the next run (scenario 28: one alert per MP).
        assert_eq!(scan(&srv, clock.now()).await, 3);
        assert_eq!(scan(&srv, clock.now() + Duration::hours(1)).await, 0);
        let (_, c) = call(&srv, "GET", "/api/appro/cockpit", &appro, None).await;
        assert_eq!(c["alerts"].as_array().unwrap().len(), 3);
        assert_eq!(alert(&c, "MP_RUPTURE_BLOQUANTE")["severity"], "CRITICAL");
        assert_eq!(alert(&c, "MP_CRITIQUE")["message"], "Lait cru (MP-LAIT) : couverture 1,7 j < délai 2 j — critique.");
        let critique = alert(&c, "MP_CRITIQUE")["id"].as_str().unwrap().to_string();
        let rupture = alert(&c, "MP_RUPTURE")["id"].as_str().unwrap().to_string();
        let bloquante = alert(&c, "MP_RUPTURE_BLOQUANTE")["id"].as_str().unwrap().to_string();

        // Postpone: never a blocking rupture; PRODUCTION may not; a reason of 10 characters; at most 7 days.
        let until = clock.now() + Duration::days(1);
        let (s, b) = post(&srv, &format!("/api/alerts/{bloquante}/postpone"), &appro, json!({"reason": "Livraison prévue demain", "until": until})).await;
        assert_eq!((s, b["error"]["code"].as_str()), (409, Some("REPORT_INTERDIT")));
        let (s, _) = post(&srv, &format!("/api/alerts/{critique}/postpone"), &production, json!({"reason": "Livraison prévue demain", "until": until})).await;
        assert_eq!(s, 403);
        let (s, b) = post(&srv, &format!("/api/alerts/{critique}/postpone"), &appro, json!({"reason": "Lundi", "until": until})).await;
        assert_eq!((s, b["error"]["code"].as_str()), (422, Some("MOTIF_TROP_COURT")));
        let (s, b) = post(&srv, &format!("/api/alerts/{critique}/postpone"), &appro, json!({"reason": "Citerne attendue demain matin", "until": until})).await;
        assert_eq!((s, b["status"].as_str(), b["postponeReason"].as_str()), (200, Some("POSTPONED"), Some("Citerne attendue demain matin")), "{b}");
        // Acknowledge once; COMMERCIAL does not see appro alerts.
        let (s, b) = post(&srv, &format!("/api/alerts/{rupture}/acknowledge"), &production, json!({})).await;
        assert_eq!((s, b["status"].as_str()), (200, Some("ACKNOWLEDGED")));
        let (s, b) = post(&srv, &format!("/api/alerts/{rupture}/acknowledge"), &admin, json!({})).await;
        assert_eq!((s, b["error"]["code"].as_str()), (409, Some("ALERTE_DEJA_TRAITEE")));
        let commercial = bearer(&srv, Role::Commercial).await;
        let (_, list) = call(&srv, "GET", "/api/alerts", &commercial, None).await;
        assert_eq!(list["total"], 0, "{list}");

        // Salt arrives: its rupture closes at the next scan. Two days later the postponed milk alert reopens.
        ok(&srv, "/api/receptions", &admin, json!({"supplierCode": "FOUR-0001", "lines": [{"productCode": "MP-SEL", "quantity": 20_000, "unitCostHt": 2_000}]})).await;
        scan(&srv, clock.now() + Duration::hours(2)).await;
        let closed = store::alerts::by_id(srv.state.dbmon.db().conn(), rupture.parse().unwrap()).await.unwrap().unwrap();
        assert_eq!(closed.status, "CLOSED");
        scan(&srv, clock.now() + Duration::days(2)).await;
        let reopened = store::alerts::by_id(srv.state.dbmon.db().conn(), critique.parse().unwrap()).await.unwrap().unwrap();
        assert_eq!((reopened.status.as_str(), reopened.postponed_until), ("OPEN", None));
        assert_eq!(crate::support::audit_actions(&srv, "ALERT_POSTPONED").await.len(), 1);

        // §7.2: suggestions become drafts in one action, one per supplier, at the last reception's price; an MP with
        // no supplier known refuses the whole action.
        let (s, b) = post(&srv, "/api/appro/suggestions/orders", &appro, json!({"lines": [
            {"productCode": "MP-LAIT", "quantity": 3_800_000}, {"productCode": "MP-PRESURE", "quantity": 1_000}]})).await;
        assert_eq!((s, b["error"]["details"]["fields"][0]["code"].as_str()), (400, Some("FOURNISSEUR_ABSENT")), "{b}");
        let b = ok(&srv, "/api/appro/suggestions/orders", &appro, json!({"lines": [
            {"productCode": "MP-LAIT", "quantity": 3_800_000}, {"productCode": "MP-SEL", "quantity": 5_000}]})).await;
        assert_eq!(b["created"], json!(["BC-2025-00002"]));
        let (_, bc) = call(&srv, "GET", "/api/purchase-orders/BC-2025-00002", &appro, None).await;
        let lines: Vec<(&str, i64, i64)> = bc["lines"].as_array().unwrap().iter().map(|l| (l["productCode"].as_str().unwrap(), l["quantityOrdered"].as_i64().unwrap(), l["unitPriceHt"].as_i64().unwrap())).collect();
        assert_eq!((bc["status"].as_str(), lines), (Some("DRAFT"), vec![("MP-LAIT", 3_800_000, 8_000), ("MP-SEL", 5_000, 2_000)]));
        // The rennet gets a main supplier on its page (an unknown code is a field error); its suggestion then orders
        // from it, at price 0 (never received) for APPRO to fill in the draft.
        let rennet = |supplier: &str| json!({"code": "MP-PRESURE", "name": "Présure", "category": "ADDITIVE", "baseUnit": "L",
            "perishable": false, "criticite": "BLOQUANTE", "mainSupplierCode": supplier});
        let (s, b) = call(&srv, "PUT", "/api/catalogue/mp/MP-PRESURE", &appro, Some(rennet("FOUR-0999"))).await;
        assert_eq!((s, b["error"]["details"]["fields"][0]["field"].as_str()), (400, Some("mainSupplierCode")), "{b}");
        ok(&srv, "/api/suppliers", &admin, json!({"raisonSociale": "Ferments d'Alger"})).await;
        let (s, b) = call(&srv, "PUT", "/api/catalogue/mp/MP-PRESURE", &appro, Some(rennet("FOUR-0002"))).await;
        assert_eq!(s, 200, "{b}");
        let (_, c) = call(&srv, "GET", "/api/appro/cockpit", &appro, None).await;
        assert_eq!(mp(&c, "MP-PRESURE")["supplierCode"], "FOUR-0002");
        let b = ok(&srv, "/api/appro/suggestions/orders", &appro, json!({"lines": [{"productCode": "MP-PRESURE", "quantity": 2_000}]})).await;
        assert_eq!(b["created"], json!(["BC-2025-00003"]));
        let (_, bc) = call(&srv, "GET", "/api/purchase-orders/BC-2025-00003", &appro, None).await;
        assert_eq!((bc["supplierCode"].as_str(), bc["lines"][0]["unitPriceHt"].as_i64()), (Some("FOUR-0002"), Some(0)));
        srv.stop().await;
    })
    .await;
}
