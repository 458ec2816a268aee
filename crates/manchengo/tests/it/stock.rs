//! The stock ledger on both backends: balances and movements together, FEFO, gapless numbers, the invariant check,
//! and concurrent consumers.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use chrono::{DateTime, NaiveDate, Utc};
use domain::stock::LotStatus;
use sea_orm::ConnectionTrait;
use store::stock::{self, Mover, NewLot, NewProduct, Source};

use crate::support::on_both;

/// 2025-03-14 10:00 in Algiers.
fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-14T09:00:00Z").unwrap().with_timezone(&Utc)
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn reception() -> Source {
    Source { origin: "RECEPTION", source_type: Some("RECEPTION"), source_id: None, reference: None }
}

fn sale() -> Source {
    Source { origin: "SALE", source_type: Some("DELIVERY"), source_id: None, reference: Some("LIV-2025-00001".into()) }
}

async fn product(db: &store::Db, code: &str) -> stock::Product {
    let p = NewProduct {
        kind: "MP",
        code: code.into(),
        name: format!("Matière {code}"),
        base_unit: "KG",
        perishable: true,
        qc_required: false,
        shelf_life_days: None,
        min_stock: 0,
    };
    let tx = db.begin_write().await.unwrap();
    let p = stock::create_product(&*tx, p, now()).await.unwrap();
    tx.commit().await.unwrap();
    p
}

async fn lot(
    db: &store::Db,
    p: &stock::Product,
    number: &str,
    qty: i64,
    dlc: Option<&str>,
    at: DateTime<Utc>,
) -> stock::Lot {
    let new = NewLot {
        number: number.into(),
        product_id: p.id,
        supplier_lot_number: None,
        lot_origin: "RECEPTION",
        quantity: qty,
        unit_cost: 300,
        dlc: dlc.map(d),
        manufacture_date: None,
        status: LotStatus::Available,
    };
    let tx = db.begin_write().await.unwrap();
    let (l, m) =
        stock::create_lot(&*tx, new, &reception(), format!("REC:{number}"), &Mover::default(), at).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!((m.direction.as_str(), m.quantity, m.remaining_after), ("IN", qty, qty));
    l
}

async fn remaining(db: &store::Db, p: &stock::Product) -> Vec<(String, i64, String)> {
    let mut lots = stock::lots_of(db.conn(), p.id).await.unwrap();
    lots.sort_by(|a, b| a.lot_number.cmp(&b.lot_number));
    lots.into_iter().map(|l| (l.lot_number, l.quantity_remaining, l.status)).collect()
}

#[tokio::test]
async fn fefo_consumption_moves_balances_and_ledger_together() {
    on_both(|t| async move {
        let db = t.migrated().await;
        let p = product(&db, "MP-LAIT").await;
        let early = now() - chrono::Duration::days(10);
        // Scenario 9/10: E expired yesterday (still AVAILABLE: no job ran), F expires today.
        lot(&db, &p, "L250301-001", 100_000, Some("2025-03-13"), early).await;
        lot(&db, &p, "L250302-001", 50_000, Some("2025-03-14"), early).await;
        lot(&db, &p, "L250303-001", 80_000, None, early).await;

        let consume = |qty: i64, key: &'static str| {
            let (db, p) = (db.clone(), p.clone());
            async move {
                db.write(|tx| {
                    let p = p.clone();
                    Box::pin(async move {
                        stock::consume_fefo(&**tx, &p, qty, &sale(), key, &Mover::default(), now()).await
                    })
                })
                .await
            }
        };
        // 140 kg needed, 130 usable (50 today + 80 undated): refused, nothing written.
        let err = consume(140_000, "LIV:a").await.unwrap_err();
        match err {
            store::OpError::Rejected(r) => {
                assert_eq!(r.code, "STOCK_INSUFFISANT");
                assert_eq!(r.details["shortages"][0]["available"], 130_000);
                assert_eq!(r.details["shortages"][0]["missing"], 10_000);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(remaining(&db, &p).await[1].1, 50_000);
        // 60 kg: all of today's lot (consumed), then 10 kg of the undated one; the expired lot is never touched.
        let taken = consume(60_000, "LIV:b").await.unwrap();
        let takes: Vec<(&str, i64)> = taken.iter().map(|a| (a.lot_number.as_str(), a.take)).collect();
        assert_eq!(takes, vec![("L250302-001", 50_000), ("L250303-001", 10_000)]);
        assert_eq!(
            remaining(&db, &p).await,
            vec![
                ("L250301-001".into(), 100_000, "AVAILABLE".into()),
                ("L250302-001".into(), 0, "CONSUMED".into()),
                ("L250303-001".into(), 70_000, "AVAILABLE".into()),
            ]
        );
        // The same command again is refused by the per-movement keys: no double effect.
        assert!(consume(10_000, "LIV:b").await.is_err());
        assert_eq!(remaining(&db, &p).await[2].1, 70_000);
        // Scenario 16: an OUT of 0 is refused; the ledger cannot be edited.
        let e = consume(0, "LIV:c").await.unwrap_err();
        assert!(matches!(e, store::OpError::Rejected(ref r) if r.code == "QUANTITE_INVALIDE"), "{e:?}");
        assert!(db.conn().execute_unprepared("UPDATE stock_movements SET quantity = 1").await.is_err());
        assert!(db.conn().execute_unprepared("DELETE FROM stock_movements").await.is_err());
        // The dry-run plan agrees and writes nothing.
        let plan = stock::plan_fefo(&db, p.id, 75_000, d("2025-03-14")).await.unwrap();
        assert_eq!((plan.sufficient, plan.available, plan.missing), (false, 70_000, 5_000));
        assert!(stock::check(&db).await.unwrap().is_empty());
        // Scenario 17: a balance tampered in the database is reported with expected and actual.
        db.conn()
            .execute_unprepared("UPDATE lots SET quantity_remaining = 65000 WHERE lot_number = 'L250303-001'")
            .await
            .unwrap();
        let v = stock::check(&db).await.unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!((v[0].subject.as_str(), v[0].expected, v[0].actual), ("L250303-001", 70_000, 65_000));
        // The operator's command says the same and fails.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_manchengo"))
            .args(["check", "--database-url", &t.url])
            .env("DATA_DIR", t.dir.path())
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("lot L250303-001 — solde : attendu 70000, constaté 65000"), "{text}");
        assert!(text.contains("chaîne d'audit intacte"), "{text}");
        db.close().await;
    })
    .await;
}

#[tokio::test]
async fn sequences_are_gapless_a_rollback_gives_the_number_back() {
    on_both(|t| async move {
        let db = t.migrated().await;
        let tx = db.begin_write().await.unwrap();
        assert_eq!(stock::next_number(&*tx, "REC", "2025").await.unwrap(), 1);
        tx.commit().await.unwrap();
        let tx = db.begin_write().await.unwrap();
        assert_eq!(stock::next_number(&*tx, "REC", "2025").await.unwrap(), 2);
        drop(tx); // rolled back
        let tx = db.begin_write().await.unwrap();
        assert_eq!(stock::next_number(&*tx, "REC", "2025").await.unwrap(), 2, "the number came back");
        assert_eq!(stock::next_number(&*tx, "REC", "2026").await.unwrap(), 1, "one sequence per year");
        tx.commit().await.unwrap();
        db.close().await;
    })
    .await;
}

/// The stock of a product at the end of any past day, from the per-lot balances of the ledger.
#[tokio::test]
async fn stock_at_a_past_date_follows_the_ledger() {
    on_both(|t| async move {
        let db = t.migrated().await;
        let p = product(&db, "MP-SEL").await;
        let other = product(&db, "MP-SUCRE").await;
        let day =
            |d: u32| DateTime::parse_from_rfc3339(&format!("2025-03-{d:02}T09:00:00Z")).unwrap().with_timezone(&Utc);
        lot(&db, &p, "L250310-001", 50_000, Some("2025-06-01"), day(10)).await;
        lot(&db, &other, "L250310-002", 7_000, None, day(10)).await;
        lot(&db, &p, "L250312-001", 30_000, Some("2025-06-02"), day(12)).await;
        let take = |qty: i64, key: &'static str, at: DateTime<Utc>| {
            let (db, p) = (db.clone(), p.clone());
            async move {
                db.write(|tx| {
                    let p = p.clone();
                    Box::pin(
                        async move { stock::consume_fefo(&**tx, &p, qty, &sale(), key, &Mover::default(), at).await },
                    )
                })
                .await
                .unwrap();
            }
        };
        take(20_000, "LIV:1", day(11)).await;
        take(40_000, "LIV:2", day(13)).await; // empties the first lot, 10 kg from the second
        let at = |day_s: &'static str| {
            let db = db.clone();
            let pid = p.id;
            async move {
                stock::stock_at(&db, d(day_s)).await.unwrap().into_iter().find(|x| x.0 == pid).map(|x| x.1).unwrap_or(0)
            }
        };
        assert_eq!(at("2025-03-09").await, 0);
        assert_eq!(at("2025-03-10").await, 50_000);
        assert_eq!(at("2025-03-11").await, 30_000);
        assert_eq!(at("2025-03-12").await, 60_000);
        assert_eq!(at("2025-03-13").await, 20_000);
        assert_eq!(at("2025-03-20").await, 20_000);
        let all = stock::stock_at(&db, d("2025-03-20")).await.unwrap();
        assert_eq!(all.iter().find(|x| x.0 == other.id).map(|x| x.1), Some(7_000));
        db.close().await;
    })
    .await;
}

/// Eight consumers race on one product's lots, hundreds of takes: the final stock is exactly the initial stock minus
/// the successful takes, no lot goes negative, and no request fails with a raw deadlock or busy error.
#[tokio::test]
async fn concurrent_consumers_never_lose_or_invent_a_gram() {
    on_both(|t| async move {
        let db = t.migrated().await;
        let p = product(&db, "MP-CAILLE").await;
        let early = now() - chrono::Duration::days(3);
        let mut initial = 0;
        for i in 0..12 {
            let qty = 40_000 + i * 1_000;
            initial += qty;
            lot(&db, &p, &format!("L2503{:02}-001", i + 1), qty, Some(&format!("2025-04-{:02}", 1 + i % 5)), early).await;
        }
        let taken = Arc::new(AtomicI64::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for worker in 0..8 {
            let (db, p, taken, refused) = (db.clone(), p.clone(), taken.clone(), refused.clone());
            tasks.push(tokio::spawn(async move {
                for op in 0..40 {
                    let qty = 1_000 + ((worker * 7 + op * 13) % 9) as i64 * 1_250;
                    let key = format!("LIV:{worker}:{op}");
                    let res = db
                        .write(|tx| {
                            let (p, key) = (p.clone(), key.clone());
                            Box::pin(async move { stock::consume_fefo(&**tx, &p, qty, &sale(), &key, &Mover::default(), now()).await })
                        })
                        .await;
                    match res {
                        Ok(allocs) => {
                            assert_eq!(allocs.iter().map(|a| a.take).sum::<i64>(), qty);
                            taken.fetch_add(qty, Ordering::SeqCst);
                        }
                        Err(store::OpError::Rejected(r)) if r.code == "STOCK_INSUFFISANT" => {
                            refused.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => panic!("worker {worker} op {op}: {e:?}"),
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let lots = remaining(&db, &p).await;
        let left: i64 = lots.iter().map(|l| l.1).sum();
        assert!(lots.iter().all(|l| l.1 >= 0));
        assert_eq!(left, initial - taken.load(Ordering::SeqCst), "{:?}: stock = initial − successful takes", t.kind);
        // 320 takes averaging ~6 kg exceed the 546 kg in stock: some were refused, and those wrote nothing.
        assert!(refused.load(Ordering::SeqCst) > 0);
        assert!(taken.load(Ordering::SeqCst) > 400_000);
        assert!(stock::check(&db).await.unwrap().is_empty(), "ledger and balances agree");
        let outs: i64 = {
            let row = db
                .conn()
                .query_one_raw(sea_orm::Statement::from_string(
                    db.sea_backend(),
                    "SELECT CAST(COALESCE(SUM(quantity), 0) AS BIGINT) AS s FROM stock_movements WHERE direction = 'OUT'",
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get("", "s").unwrap()
        };
        assert_eq!(outs, taken.load(Ordering::SeqCst));
        db.close().await;
    })
    .await;
}

mod api {
    use app::platform::jobs::{Clock, ManualClock};
    use domain::identity::Role;
    use serde_json::{Value, json};

    use crate::support::{TestServer, audit_actions, bearer, client, config_for, on_both};

    async fn post(srv: &TestServer, path: &str, token: &str, body: Value) -> (u16, Value) {
        let r = client().post(srv.url(path)).bearer_auth(token).json(&body).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn get(srv: &TestServer, path: &str, token: &str) -> (u16, Value) {
        let r = client().get(srv.url(path)).bearer_auth(token).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// A server whose clock reads 2025-03-14 10:00 in Algiers (the day of DOMAIN.md §22).
    async fn server(t: &crate::support::TestDb) -> TestServer {
        let clock = ManualClock::new(super::now());
        let options = app::server::Options { clock, ..Default::default() };
        TestServer::start_with(config_for(&t.url, t.dir.path(), &[]), options).await
    }

    #[tokio::test]
    async fn scenario_18_19_a_direct_reception_creates_its_lots_numbers_and_totals() {
        on_both(|t| async move {
            let srv = server(&t).await;
            let appro = bearer(&srv, Role::Appro).await;
            let production = bearer(&srv, Role::Production).await;
            post(&srv, "/api/suppliers", &appro, json!({"raisonSociale": "Laiterie du Djurdjura SARL"})).await;
            post(&srv, "/api/catalogue/mp", &appro, json!({"code": "MP-LAIT", "name": "Lait cru", "category": "RAW_MATERIAL", "baseUnit": "KG"})).await;
            post(&srv, "/api/catalogue/mp", &appro, json!({"code": "MP-FERMENT", "name": "Ferments", "category": "ADDITIVE", "baseUnit": "G", "qcRequired": true})).await;

            let line = |dlc: Option<&str>| {
                let mut l = json!({"productCode": "MP-LAIT", "quantity": 100_000, "unitCostHt": 5_000, "tvaRate": 900});
                if let Some(d) = dlc {
                    l["dlc"] = json!(d);
                }
                l
            };
            // Scenario 18: perishable without DLC, DLC in the past → refused, nothing written.
            let (s, b) = post(&srv, "/api/receptions", &appro, json!({"supplierCode": "FOUR-0001", "lines": [line(None)]})).await;
            assert_eq!((s, b["error"]["code"].as_str()), (422, Some("DLC_OBLIGATOIRE")));
            assert_eq!(b["error"]["message"], "La DLC est obligatoire pour un produit périssable (MP-LAIT).");
            assert_eq!(b["error"]["details"]["fields"][0]["field"], "lines[0].dlc");
            let (s, b) = post(&srv, "/api/receptions", &appro, json!({"supplierCode": "FOUR-0001", "lines": [line(Some("2025-03-13"))]})).await;
            assert_eq!((s, b["error"]["code"].as_str()), (422, Some("DLC_DEPASSEE")));
            let (s, b) = post(&srv, "/api/receptions", &appro, json!({"supplierCode": "FOUR-0001", "receptionDate": "2025-03-01", "lines": [line(Some("2025-04-01"))]})).await;
            assert_eq!((s, b["error"]["code"].as_str()), (422, Some("DATE_RECEPTION_INVALIDE")));
            assert!(audit_actions(&srv, "RECEPTION_CREATED").await.is_empty());

            // Scenario 19: the first reception of the year and of the day.
            let (s, b) = post(&srv, "/api/receptions", &appro, json!({"supplierCode": "FOUR-0001", "supplierDeliveryNote": "BL-7781", "lines": [line(Some("2025-03-20"))]})).await;
            assert_eq!(s, 201, "{b}");
            let r = &b["reception"];
            assert_eq!(r["reference"], "REC-2025-00001");
            assert_eq!((r["totalHt"].as_i64(), r["totalTva"].as_i64(), r["totalTtc"].as_i64()), (Some(500_000), Some(45_000), Some(545_000)));
            assert_eq!((r["lines"][0]["lotNumber"].as_str(), r["lines"][0]["lotStatus"].as_str()), (Some("L250314-001"), Some("AVAILABLE")));
            assert_eq!(b["warnings"], json!([]));
            // DLC = today is accepted with a warning; a QC product lands in QUARANTINE; lot numbers follow the day.
            let (s, b) = post(&srv, "/api/receptions", &appro, json!({"supplierCode": "FOUR-0001", "lines": [
                line(Some("2025-03-14")),
                {"productCode": "MP-FERMENT", "quantity": 500_000, "unitCostHt": 12, "dlc": "2025-09-01"}
            ]})).await;
            assert_eq!(s, 201, "{b}");
            assert_eq!(b["reception"]["reference"], "REC-2025-00002");
            assert_eq!(b["warnings"][0]["code"], "DLC_JOUR");
            let lots: Vec<(&str, &str)> = b["reception"]["lines"].as_array().unwrap().iter().map(|l| (l["lotNumber"].as_str().unwrap(), l["lotStatus"].as_str().unwrap())).collect();
            assert_eq!(lots, vec![("L250314-002", "AVAILABLE"), ("L250314-003", "QUARANTINE")]);
            // PRODUCTION reads receptions without any amount (R−).
            let (s, b) = get(&srv, "/api/receptions/REC-2025-00001", &production).await;
            assert_eq!(s, 200);
            assert!(b.get("totalHt").is_none() && b["lines"][0].get("unitCostHt").is_none(), "{b}");
            assert_eq!(b["lines"][0]["quantity"], 100_000);
            let (_, list) = get(&srv, "/api/receptions", &appro).await;
            assert_eq!(list["total"], 2);
            // One RECEPTION IN per line, and the ledger agrees with the lots.
            assert!(store::stock::check(srv.state.dbmon.db()).await.unwrap().is_empty());
            assert_eq!(audit_actions(&srv, "RECEPTION_CREATED").await.len(), 2);
            srv.stop().await;
        })
        .await;
    }

    async fn setup(srv: &TestServer) -> (String, String, String) {
        let appro = bearer(srv, Role::Appro).await;
        let admin = bearer(srv, Role::Admin).await;
        let production = bearer(srv, Role::Production).await;
        post(srv, "/api/suppliers", &appro, json!({"raisonSociale": "Laiterie du Djurdjura SARL"})).await;
        post(
            srv,
            "/api/catalogue/mp",
            &appro,
            json!({"code": "MP-LAIT", "name": "Lait cru", "category": "RAW_MATERIAL", "baseUnit": "KG"}),
        )
        .await;
        post(srv, "/api/catalogue/mp", &appro, json!({"code": "MP-FERMENT", "name": "Ferments", "category": "ADDITIVE", "baseUnit": "G", "qcRequired": true})).await;
        (appro, admin, production)
    }

    #[tokio::test]
    async fn scenarios_13_to_15_and_61_lot_decisions_and_losses() {
        on_both(|t| async move {
            let srv = server(&t).await;
            let (appro, admin, production) = setup(&srv).await;
            let commercial = bearer(&srv, Role::Commercial).await;
            let (s, b) = post(&srv, "/api/receptions", &appro, json!({"supplierCode": "FOUR-0001", "lines": [
                {"productCode": "MP-LAIT", "quantity": 20_000, "unitCostHt": 300, "dlc": "2025-03-30"},
                {"productCode": "MP-FERMENT", "quantity": 5_000, "unitCostHt": 10, "dlc": "2025-03-20"}
            ]})).await;
            assert_eq!(s, 201, "{b}");
            // 14: QC release by PRODUCTION; by COMMERCIAL refused.
            let (s, b) = post(&srv, "/api/stock/lots/L250314-002/qc", &commercial, json!({"decision": "CONFORME"})).await;
            assert_eq!((s, b["error"]["code"].as_str()), (403, Some("ACCES_REFUSE")));
            let (s, b) = post(&srv, "/api/stock/lots/L250314-002/qc", &production, json!({"decision": "CONFORME"})).await;
            assert_eq!((s, b["status"].as_str()), (200, Some("AVAILABLE")));
            let (s, b) = post(&srv, "/api/stock/lots/L250314-002/qc", &production, json!({"decision": "CONFORME"})).await;
            assert_eq!((s, b["error"]["code"].as_str()), (409, Some("LOT_STATUT_INVALIDE")));
            // 15: manual block needs ADMIN and a 10-character note.
            let (s, b) = post(&srv, "/api/stock/lots/L250314-001/block", &admin, json!({"note": "abc"})).await;
            assert_eq!((s, b["error"]["code"].as_str()), (422, Some("MOTIF_OBLIGATOIRE")));
            let (s, _) = post(&srv, "/api/stock/lots/L250314-001/block", &appro, json!({"note": "Odeur suspecte au contrôle"})).await;
            assert_eq!(s, 403);
            let (s, b) = post(&srv, "/api/stock/lots/L250314-001/block", &admin, json!({"note": "Odeur suspecte au contrôle"})).await;
            assert_eq!((s, b["status"].as_str(), b["blockReason"].as_str()), (200, Some("BLOCKED"), Some("MANUAL")));
            // A blocked lot is not offered by the FEFO plan.
            let (_, plan) = get(&srv, "/api/stock/fefo-plan?product=MP-LAIT&quantity=1000", &production).await;
            assert_eq!((plan["sufficient"].clone(), plan["available"].clone()), (json!(false), json!(0)));
            // 13: unblock with a note → AVAILABLE.
            let (s, b) = post(&srv, "/api/stock/lots/L250314-001/unblock", &admin, json!({"note": "Contrôle refait OK"})).await;
            assert_eq!((s, b["status"].as_str()), (200, Some("AVAILABLE")));
            let (_, plan) = get(&srv, "/api/stock/fefo-plan?product=MP-LAIT&quantity=25000", &production).await;
            assert_eq!((plan["available"].as_i64(), plan["missing"].as_i64()), (Some(20_000), Some(5_000)));
            assert_eq!(plan["allocations"][0]["lotNumber"], "L250314-001");
            // 61: a PF loss is PRODUCTION's, not APPRO's; an MP loss by APPRO with the wrong reason is refused.
            let (s, b) = post(&srv, "/api/stock/losses", &appro, json!({"lotNumber": "L250314-001", "quantity": 1000, "reason": "EXPIRED"})).await;
            assert_eq!((s, b["error"]["code"].as_str()), (422, Some("MOTIF_PERTE_INVALIDE")));
            let (s, b) = post(&srv, "/api/stock/losses", &production, json!({"lotNumber": "L250314-001", "quantity": 1000, "reason": "DAMAGED", "note": "Bidon percé au déchargement"})).await;
            assert_eq!((s, b["error"]["code"].as_str()), (403, Some("ACCES_REFUSE")), "MP losses are APPRO's");
            let (s, b) = post(&srv, "/api/stock/losses", &appro, json!({"lotNumber": "L250314-001", "quantity": 20_000, "reason": "DAMAGED", "note": "Bidon percé au déchargement"})).await;
            assert_eq!(s, 201, "{b}");
            assert_eq!((b["reference"].as_str(), b["value"].as_i64(), b["lotStatus"].as_str()), (Some("PER-2025-00001"), Some(6_000), Some("CONSUMED")));
            let (s, b) = post(&srv, "/api/stock/losses", &appro, json!({"lotNumber": "L250314-001", "quantity": 1, "reason": "OTHER", "note": "Retour fournisseur"})).await;
            assert_eq!((s, b["error"]["code"].as_str()), (409, Some("LOT_STATUT_INVALIDE")));
            // COMMERCIAL never sees MP lots; PRODUCTION sees lots without costs.
            let (_, lots) = get(&srv, "/api/stock/lots", &commercial).await;
            assert_eq!(lots["total"], 0);
            let (_, lot) = get(&srv, "/api/stock/lots/L250314-002", &production).await;
            assert!(lot.get("unitCost").is_none() && lot["quantityRemaining"] == 5_000, "{lot}");
            // Stock per product: ADMIN sees the value at lot cost, PRODUCTION does not; the ledger lists the loss.
            let (_, st) = get(&srv, "/api/stock/products?type=mp", &admin).await;
            let ferment = st["items"].as_array().unwrap().iter().find(|i| i["productCode"] == "MP-FERMENT").unwrap().clone();
            assert_eq!((ferment["total"].as_i64(), ferment["disponible"].as_i64(), ferment["valeur"].as_i64()), (Some(5_000), Some(5_000), Some(50)));
            let (_, st) = get(&srv, "/api/stock/products?type=mp", &production).await;
            assert!(st["items"][0].get("valeur").is_none());
            let (_, mv) = get(&srv, "/api/stock/movements?lot=L250314-001", &appro).await;
            let origins: Vec<&str> = mv["items"].as_array().unwrap().iter().map(|m| m["origin"].as_str().unwrap()).collect();
            assert_eq!(origins, vec!["LOSS", "RECEPTION"]);
            assert_eq!(mv["items"][0]["remainingAfter"], 0);
            assert!(store::stock::check(srv.state.dbmon.db()).await.unwrap().is_empty());
            srv.stop().await;
        })
        .await;
    }

    /// Scenario 11: the run of 2025-03-15 00:05 blocks the lot whose DLC was the 14th; one alert; a second run the same
    /// day changes nothing. Scenario 13: such a lot is never unblocked.
    #[tokio::test]
    async fn scenario_11_the_expiry_run_blocks_expired_lots_once() {
        on_both(|t| async move {
            let srv = server(&t).await;
            let (appro, admin, _) = setup(&srv).await;
            post(
                &srv,
                "/api/receptions",
                &appro,
                json!({"supplierCode": "FOUR-0001", "lines": [
                    {"productCode": "MP-LAIT", "quantity": 20_000, "unitCostHt": 300, "dlc": "2025-03-14"},
                    {"productCode": "MP-LAIT", "quantity": 10_000, "unitCostHt": 300, "dlc": "2025-03-15"}
                ]}),
            )
            .await;
            let db = srv.state.dbmon.db().clone();
            let run = |at: &'static str| {
                let db = db.clone();
                async move {
                    let now = chrono::DateTime::parse_from_rfc3339(at).unwrap().with_timezone(&chrono::Utc);
                    db.write(|tx| Box::pin(async move { store::stock::expire_lots(&**tx, now).await })).await.unwrap()
                }
            };
            // 2025-03-14 23:05 UTC is 00:05 on the 15th in Algiers.
            let first = run("2025-03-14T23:05:00Z").await;
            assert_eq!(first.iter().map(|l| l.lot_number.as_str()).collect::<Vec<_>>(), vec!["L250314-001"]);
            assert!(run("2025-03-14T23:35:00Z").await.is_empty(), "idempotent the same day");
            let alerts = store::alerts::open_of_type(&db, "LOTS_PERIMES").await.unwrap();
            assert_eq!(alerts.len(), 1);
            assert_eq!(alerts[0].severity, "CRITICAL");
            assert_eq!(alerts[0].message, "1 lot(s) périmé(s) en stock, valeur 60,00\u{00A0}DA : déclarez la perte.");
            let (s, b) =
                post(&srv, "/api/stock/lots/L250314-001/unblock", &admin, json!({"note": "Contrôle refait OK"})).await;
            assert_eq!((s, b["error"]["code"].as_str()), (409, Some("LOT_PERIME_DEFINITIF")));
            assert_eq!(crate::support::audit_actions(&srv, "LOT_EXPIRED").await.len(), 1);
            // Scenario 12, 06:00 on the 15th: the remaining lot expires that very day (no alert); lots at J-1 and J-7
            // get one alert each, once.
            let morning =
                chrono::DateTime::parse_from_rfc3339("2025-03-15T05:00:00Z").unwrap().with_timezone(&chrono::Utc);
            let pre = |db: store::Db| async move {
                db.write(|tx| Box::pin(async move { store::stock::pre_expiry_alerts(&**tx, morning).await }))
                    .await
                    .unwrap()
            };
            assert_eq!(pre(db.clone()).await, 0);
            post(
                &srv,
                "/api/receptions",
                &appro,
                json!({"supplierCode": "FOUR-0001", "lines": [
                    {"productCode": "MP-LAIT", "quantity": 1_000, "unitCostHt": 300, "dlc": "2025-03-16"},
                    {"productCode": "MP-LAIT", "quantity": 1_000, "unitCostHt": 300, "dlc": "2025-03-22"}
                ]}),
            )
            .await;
            assert_eq!(pre(db.clone()).await, 2);
            assert_eq!(pre(db.clone()).await, 0, "one alert per (type, lot)");
            // The server's own 06:00 job may also have run (at its clock's 14 March): look for these lots' alerts.
            let j1 = store::alerts::open_of_type(&db, "DLC_J1").await.unwrap();
            let j1 = j1.iter().find(|a| a.entity_id == "L250314-003").expect("J-1 alert");
            assert_eq!(j1.severity, "CRITICAL");
            let j7 = store::alerts::open_of_type(&db, "DLC_J7").await.unwrap();
            assert!(j7.iter().any(|a| a.entity_id == "L250314-004"), "{j7:?}");
            srv.stop().await;
        })
        .await;
    }

    async fn count(srv: &TestServer, token: &str, body: Value) -> (u16, Value) {
        post(srv, "/api/stock/counts", token, body).await
    }

    /// Scenarios 53–57 and 60: risks, validations by others, cooldown, the adjustment lot.
    #[tokio::test]
    async fn inventory_counts_post_adjustments_only_when_approved() {
        on_both(|t| async move {
            let clock = ManualClock::new(super::now());
            let options = app::server::Options { clock: clock.clone(), ..Default::default() };
            let srv = TestServer::start_with(config_for(&t.url, t.dir.path(), &[]), options).await;
            let (appro, admin, production) = setup(&srv).await;
            post(
                &srv,
                "/api/catalogue/mp",
                &appro,
                json!({"code": "MP-CARTON", "name": "Carton 400 g", "category": "PACKAGING", "baseUnit": "U"}),
            )
            .await;
            post(&srv, "/api/catalogue/families", &admin, json!({"code": "PATE_PRESSEE", "name": "Pâte pressée"}))
                .await;
            let (s, b) = post(
                &srv,
                "/api/catalogue/pf",
                &admin,
                json!({"code": "PF-EDAM-400", "name": "Edam 400 g", "baseUnit": "U", "weightG": 400,
                "packagingType": "SAC_THERMO", "storageType": "REFRIGERE", "shelfLifeDays": 180, "listPriceHt": 65_000,
                "familyCode": "PATE_PRESSEE"}),
            )
            .await;
            assert_eq!(s, 201, "{b}");
            // 1 000 kg of milk in two lots (L1 DLC 03-20 120 kg, L2 DLC 03-25 880 kg); 10 000 cartons at 600.00 DA.
            let (s, b) = post(
                &srv,
                "/api/receptions",
                &appro,
                json!({"supplierCode": "FOUR-0001", "lines": [
                    {"productCode": "MP-LAIT", "quantity": 120_000, "unitCostHt": 300, "dlc": "2025-03-20"},
                    {"productCode": "MP-LAIT", "quantity": 880_000, "unitCostHt": 300, "dlc": "2025-03-25"},
                    {"productCode": "MP-CARTON", "quantity": 10_000_000, "unitCostHt": 60_000}
                ]}),
            )
            .await;
            assert_eq!(s, 201, "{b}");

            // 53: −15 kg on 1 000 kg = 150 bp, LOW: approved at once, 15 kg out of the earliest-DLC lot.
            let (s, b) = count(&srv, &appro, json!({"productCode": "MP-LAIT", "declaredQuantity": 985_000})).await;
            assert_eq!(s, 201, "{b}");
            assert_eq!(
                (b["reference"].as_str(), b["pctBp"].as_i64(), b["risk"].as_str(), b["status"].as_str()),
                (Some("INV-2025-00001"), Some(150), Some("LOW"), Some("APPROVED"))
            );
            let (_, lot) = get(&srv, "/api/stock/lots/L250314-001", &appro).await;
            assert_eq!(lot["quantityRemaining"], 105_000);
            // 57: a second count of the product within 4 h is refused; 4 h later it is accepted.
            let (s, b) = count(&srv, &production, json!({"productCode": "MP-LAIT", "declaredQuantity": 985_000})).await;
            assert_eq!((s, b["error"]["code"].as_str()), (429, Some("INVENTAIRE_DELAI")));
            assert_eq!(
                b["error"]["message"],
                "Un comptage de ce produit a eu lieu il y a moins de 4 heures (prochain possible à 14:00)."
            );
            clock.advance(chrono::Duration::hours(4));
            // Four hours later everyone signs in again (access tokens last 15 minutes).
            let (appro, admin, production, comptable) = (
                bearer(&srv, Role::Appro).await,
                bearer(&srv, Role::Admin).await,
                bearer(&srv, Role::Production).await,
                bearer(&srv, Role::Comptable).await,
            );
            // 54: 2.10 % is MEDIUM → PENDING; the counter cannot validate; another person can (55).
            let (s, b) = count(&srv, &production, json!({"productCode": "MP-LAIT", "declaredQuantity": 964_315})).await;
            assert_eq!(s, 201, "{b}");
            assert_eq!(
                (b["pctBp"].as_i64(), b["risk"].as_str(), b["status"].as_str()),
                (Some(210), Some("MEDIUM"), Some("PENDING"))
            );
            assert!(b.get("value").is_none(), "PRODUCTION reads counts without values");
            let reference = b["reference"].as_str().unwrap().to_string();
            let prod_id = store::identity::user_by_email(srv.state.dbmon.db().conn(), "production@test.dz")
                .await
                .unwrap()
                .unwrap()
                .id;
            assert_eq!(b["counterId"], json!(prod_id));
            let (s, b) =
                post(&srv, &format!("/api/stock/counts/{reference}/reject"), &comptable, json!({"reason": "court"}))
                    .await;
            assert_eq!((s, b["error"]["code"].as_str()), (422, Some("MOTIF_TROP_COURT")));
            let (s, b) = post(&srv, &format!("/api/stock/counts/{reference}/validate"), &admin, json!({})).await;
            assert_eq!((s, b["status"].as_str()), (200, Some("APPROVED")), "{b}");
            let (_, lot) = get(&srv, "/api/stock/lots/L250314-001", &appro).await;
            assert_eq!(lot["quantityRemaining"], 84_315, "20.685 kg more out of the earliest lot");

            // 56: 1 % of 10 000 cartons at 600.00 DA is 60 000.00 DA > 50 000.00: CRITICAL, two different validators.
            let (s, b) = count(&srv, &appro, json!({"productCode": "MP-CARTON", "declaredQuantity": 9_900_000})).await;
            assert_eq!(s, 201, "{b}");
            assert_eq!(
                (b["value"].as_i64(), b["risk"].as_str(), b["status"].as_str()),
                (Some(6_000_000), Some("CRITICAL"), Some("PENDING_DOUBLE"))
            );
            let inv = b["reference"].as_str().unwrap().to_string();
            let appro_counter = post(&srv, &format!("/api/stock/counts/{inv}/validate"), &appro, json!({})).await;
            assert_eq!(appro_counter.0, 403, "APPRO never validates");
            let (s, b) = post(&srv, &format!("/api/stock/counts/{inv}/validate"), &admin, json!({})).await;
            assert_eq!((s, b["status"].as_str()), (200, Some("PENDING")));
            let (s, b) = post(&srv, &format!("/api/stock/counts/{inv}/validate"), &admin, json!({})).await;
            assert_eq!((s, b["error"]["code"].as_str()), (403, Some("VALIDATEUR_IDENTIQUE")));
            let (s, b) = post(&srv, &format!("/api/stock/counts/{inv}/validate"), &comptable, json!({})).await;
            assert_eq!((s, b["status"].as_str()), (200, Some("APPROVED")));
            assert_eq!(store::alerts::open_of_type(srv.state.dbmon.db(), "ECART_INVENTAIRE").await.unwrap().len(), 1);

            // 60: 12 pieces found of a PF with no stock: CRITICAL; after two validations, lot AJ250314-001.
            let (s, b) =
                count(&srv, &production, json!({"productCode": "PF-EDAM-400", "declaredQuantity": 12_000})).await;
            assert_eq!((s, b["error"]["code"].as_str()), (422, Some("DLC_OBLIGATOIRE")));
            let (s, b) = count(
                &srv,
                &production,
                json!({"productCode": "PF-EDAM-400", "declaredQuantity": 12_000, "dlc": "2025-06-30"}),
            )
            .await;
            assert_eq!((s, b["pctBp"].as_i64(), b["status"].as_str()), (201, Some(10_000), Some("PENDING_DOUBLE")));
            let pf = b["reference"].as_str().unwrap().to_string();
            let (s, b) = post(&srv, &format!("/api/stock/counts/{pf}/validate"), &production, json!({})).await;
            assert_eq!(s, 403, "{b}");
            post(&srv, &format!("/api/stock/counts/{pf}/validate"), &comptable, json!({})).await;
            let (s, b) = post(&srv, &format!("/api/stock/counts/{pf}/validate"), &admin, json!({})).await;
            assert_eq!((s, b["status"].as_str()), (200, Some("APPROVED")));
            let (_, lot) = get(&srv, "/api/stock/lots/AJ250314-001", &admin).await;
            assert_eq!(
                (lot["quantityRemaining"].as_i64(), lot["status"].as_str(), lot["dlc"].as_str()),
                (Some(12_000), Some("AVAILABLE"), Some("2025-06-30"))
            );
            // The ledger still balances; a validated count cannot move again.
            assert!(store::stock::check(srv.state.dbmon.db()).await.unwrap().is_empty());
            let (s, b) = post(
                &srv,
                &format!("/api/stock/counts/{pf}/reject"),
                &comptable,
                json!({"reason": "Recompter la chambre froide"}),
            )
            .await;
            assert_eq!((s, b["error"]["code"].as_str()), (409, Some("TRANSITION_INVALIDE")));
            srv.stop().await;
        })
        .await;
    }

    /// The count pages: a blind declaration by the counter, no decision offered to him, a validation by the accountant.
    #[tokio::test]
    async fn count_pages_offer_the_decision_only_to_another_validator() {
        on_both(|t| async move {
            let srv = server(&t).await;
            let (appro, _, _) = setup(&srv).await;
            crate::support::seed_user(&srv, "comptable@test.dz", Role::Comptable, false).await;
            post(
                &srv,
                "/api/receptions",
                &appro,
                json!({"supplierCode": "FOUR-0001", "lines": [
                {"productCode": "MP-LAIT", "quantity": 100_000, "unitCostHt": 300, "dlc": "2025-03-30"}]}),
            )
            .await;
            let form_of = |html: &str| {
                html.split("name=\"_csrf\" value=\"")
                    .nth(1)
                    .and_then(|s| s.split('"').next())
                    .unwrap_or_default()
                    .to_string()
            };
            let (clerk, _) = crate::support::web_session(&srv, "appro@test.dz").await;
            let html = clerk.get(srv.url("/stock/comptages/nouveau")).send().await.unwrap().text().await.unwrap();
            assert!(!html.contains("100,000"), "blind count: the theoretical stock is not shown before declaring");
            let csrf = form_of(&html);
            let r = clerk
                .post(srv.url("/stock/comptages/nouveau"))
                .form(&[("_csrf", csrf.as_str()), ("productCode", "MP-LAIT"), ("declaredQuantity", "96,5")])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 303);
            let at = r.headers()["location"].to_str().unwrap().to_string();
            assert_eq!(at, "/stock/comptages/INV-2025-00001");
            let html = clerk.get(srv.url(&at)).send().await.unwrap().text().await.unwrap();
            assert!(html.contains("Comptage INV-2025-00001 déclaré") && html.contains("À valider"), "{html}");
            assert!(!html.contains("Valider le comptage"), "the counter is never offered the decision");
            let (accountant, _) = crate::support::web_session(&srv, "comptable@test.dz").await;
            let html = accountant.get(srv.url(&at)).send().await.unwrap().text().await.unwrap();
            assert!(html.contains("Valider le comptage"));
            let csrf = form_of(&html);
            let r = accountant
                .post(srv.url(&format!("{at}/valider")))
                .form(&[("_csrf", csrf.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 303);
            let html = accountant.get(srv.url(&at)).send().await.unwrap().text().await.unwrap();
            assert!(html.contains("Approuvé") && !html.contains("Valider le comptage"), "{html}");
            let (_, lot) = get(&srv, "/api/stock/lots/L250314-001", &appro).await;
            assert_eq!(lot["quantityRemaining"], 96_500);
            srv.stop().await;
        })
        .await;
    }

    /// The lot page: its movements, the QC decision for PRODUCTION, block and unblock for ADMIN, refusals as flashes.
    #[tokio::test]
    async fn the_lot_page_carries_the_decisions_of_each_role() {
        on_both(|t| async move {
            let srv = server(&t).await;
            let (appro, _, _) = setup(&srv).await;
            crate::support::seed_user(&srv, "admin.page@test.dz", Role::Admin, false).await;
            crate::support::seed_user(&srv, "prod.page@test.dz", Role::Production, false).await;
            crate::support::seed_user(&srv, "commercial.page@test.dz", Role::Commercial, false).await;
            post(
                &srv,
                "/api/receptions",
                &appro,
                json!({"supplierCode": "FOUR-0001", "lines": [
                {"productCode": "MP-FERMENT", "quantity": 5_000, "unitCostHt": 10, "dlc": "2025-03-20"}]}),
            )
            .await;
            let csrf_of = |html: &str| {
                html.split("name=\"_csrf\" value=\"")
                    .nth(1)
                    .and_then(|s| s.split('"').next())
                    .unwrap_or_default()
                    .to_string()
            };
            let (prod, _) = crate::support::web_session(&srv, "prod.page@test.dz").await;
            let html = prod.get(srv.url("/stock/lots/L250314-001")).send().await.unwrap().text().await.unwrap();
            assert!(
                html.contains("Quarantaine")
                    && html.contains("<h2>Contrôle qualité</h2>")
                    && html.contains("RECEPTION"),
                "{html}"
            );
            assert!(
                !html.contains("Bloquer le lot") && !html.contains("Coût unitaire"),
                "PRODUCTION neither blocks nor sees costs"
            );
            let csrf = csrf_of(&html);
            let r = prod
                .post(srv.url("/stock/lots/L250314-001/qc"))
                .form(&[("_csrf", csrf.as_str()), ("decision", "CONFORME"), ("note", "")])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 303);
            let html = prod.get(srv.url("/stock/lots/L250314-001")).send().await.unwrap().text().await.unwrap();
            assert!(
                html.contains("Lot L250314-001 : disponible.") && !html.contains("<h2>Contrôle qualité</h2>"),
                "{html}"
            );
            let (admin, _) = crate::support::web_session(&srv, "admin.page@test.dz").await;
            let html = admin.get(srv.url("/stock/lots/L250314-001")).send().await.unwrap().text().await.unwrap();
            let csrf = csrf_of(&html);
            admin
                .post(srv.url("/stock/lots/L250314-001/bloquer"))
                .form(&[("_csrf", csrf.as_str()), ("note", "abc")])
                .send()
                .await
                .unwrap();
            let html = admin
                .get(srv.url("/stock/lots/L250314-001"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
                .replace("&#39;", "'");
            assert!(html.contains("Un motif d'au moins 10 caractères est obligatoire."), "{html}");
            admin
                .post(srv.url("/stock/lots/L250314-001/bloquer"))
                .form(&[("_csrf", csrf.as_str()), ("note", "Odeur suspecte au contrôle")])
                .send()
                .await
                .unwrap();
            let html = admin.get(srv.url("/stock/lots/L250314-001")).send().await.unwrap().text().await.unwrap();
            assert!(
                html.contains("Bloqué · manuel")
                    && html.contains("Débloquer le lot")
                    && html.contains("Odeur suspecte au contrôle"),
                "{html}"
            );
            // A loss from the lot page: PRODUCTION is not offered it on an MP lot; APPRO declares it.
            let html = prod.get(srv.url("/stock/lots/L250314-001")).send().await.unwrap().text().await.unwrap();
            assert!(!html.contains("Déclarer la perte"));
            let (clerk, _) = crate::support::web_session(&srv, "appro@test.dz").await;
            let html = clerk.get(srv.url("/stock/lots/L250314-001")).send().await.unwrap().text().await.unwrap();
            assert!(html.contains("Déclarer la perte"));
            let csrf = csrf_of(&html);
            clerk
                .post(srv.url("/stock/lots/L250314-001/perte"))
                .form(&[
                    ("_csrf", csrf.as_str()),
                    ("quantity", "1"),
                    ("reason", "OTHER"),
                    ("note", "Retour fournisseur"),
                ])
                .send()
                .await
                .unwrap();
            let html = clerk.get(srv.url("/stock/lots/L250314-001")).send().await.unwrap().text().await.unwrap();
            assert!(html.contains("Perte PER-2025-00001 enregistrée") && html.contains("LOSS"), "{html}");
            // COMMERCIAL never opens an MP lot.
            let (commercial, _) = crate::support::web_session(&srv, "commercial.page@test.dz").await;
            assert_eq!(commercial.get(srv.url("/stock/lots/L250314-001")).send().await.unwrap().status(), 404);
            srv.stop().await;
        })
        .await;
    }

    async fn server_and_clock(t: &crate::support::TestDb) -> (TestServer, std::sync::Arc<ManualClock>) {
        let clock = ManualClock::new(super::now());
        let options = app::server::Options { clock: clock.clone(), ..Default::default() };
        (TestServer::start_with(config_for(&t.url, t.dir.path(), &[]), options).await, clock)
    }

    fn csrf_of(html: &str) -> String {
        html.split("name=\"_csrf\" value=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or_default().to_string()
    }

    /// DOMAIN.md §17 and §14: the health score from its terms, the DLC buckets, the write-off of expired lots (all or
    /// nothing, by the right role), PERTE_IMPORTANTE, the losses list, movement filters, and a numbering gap caught
    /// by the integrity check.
    #[tokio::test]
    async fn stock_health_echeances_write_off_and_numbering() {
        on_both(|t| async move {
            let (srv, clock) = server_and_clock(&t).await;
            let (appro, admin, production) = setup(&srv).await;
            let commercial = bearer(&srv, Role::Commercial).await;
            post(&srv, "/api/catalogue/mp", &appro, json!({"code": "MP-SEL", "name": "Sel", "category": "ADDITIVE",
                "baseUnit": "KG", "minStock": 1_000, "criticite": "BLOQUANTE", "perishable": false})).await;
            let (s, b) = client()
                .put(srv.url("/api/catalogue/mp/MP-LAIT"))
                .bearer_auth(&appro)
                .json(&json!({"code": "MP-LAIT", "name": "Lait cru", "category": "RAW_MATERIAL", "baseUnit": "KG", "minStock": 50_000}))
                .send()
                .await
                .map(|r| (r.status().as_u16(), r))
                .unwrap();
            assert_eq!(s, 200, "{:?}", b.text().await);
            let (s, b) = post(&srv, "/api/receptions", &appro, json!({"supplierCode": "FOUR-0001", "lines": [
                {"productCode": "MP-LAIT", "quantity": 20_000, "unitCostHt": 300, "dlc": "2025-03-15"},
                {"productCode": "MP-LAIT", "quantity": 10_000, "unitCostHt": 300, "dlc": "2025-03-18"},
                {"productCode": "MP-FERMENT", "quantity": 5_000, "unitCostHt": 10, "dlc": "2025-03-20"}
            ]})).await;
            assert_eq!(s, 201, "{b}");

            // B = 1 (MP-SEL, bloquante, nothing), R = 1 (MP-FERMENT only in quarantine), C = 1 (MP-LAIT 30 kg < 50 kg),
            // X = 1 (L250314-001 usable, DLC tomorrow) → 100 − 10 − 5 − 2 − 1 = 82, BON.
            let (s, d) = get(&srv, "/api/stock/dashboard", &admin).await;
            assert_eq!(s, 200, "{d}");
            assert_eq!((d["healthScore"].as_i64(), d["band"].as_str()), (Some(82), Some("BON")), "{d}");
            assert_eq!(d["terms"], json!({"ruptureBloquante": 1, "ruptureMp": 1, "rupturePf": 0, "perimesNonSortis": 0,
                "critiques": 1, "dlcProches": 1, "comptagesEnAttente": 0}));
            let buckets: Vec<(i64, i64)> = d["echeances"].as_array().unwrap().iter()
                .map(|e| (e["count"].as_i64().unwrap(), e["value"].as_i64().unwrap())).collect();
            assert_eq!(buckets, vec![(0, 0), (1, 6_000), (0, 0), (2, 3_050)]);
            assert_eq!(d["valeur"]["mp"], json!({"utilisable": 9_000, "quarantaine": 50, "bloque": 0}));
            let watch: Vec<(&str, &str)> = d["watch"].as_array().unwrap().iter()
                .map(|w| (w["productCode"].as_str().unwrap(), w["status"].as_str().unwrap())).collect();
            assert_eq!(watch, vec![("MP-SEL", "RUPTURE"), ("MP-FERMENT", "RUPTURE"), ("MP-LAIT", "CRITIQUE")]);
            // PRODUCTION sees no value; COMMERCIAL sees PF only (none here).
            let (_, d) = get(&srv, "/api/stock/dashboard", &production).await;
            assert!(d.get("valeur").is_none() && d["echeances"][1].get("value").is_none(), "{d}");
            let (_, d) = get(&srv, "/api/stock/dashboard", &commercial).await;
            assert_eq!((d["healthScore"].as_i64(), d["echeances"][1]["count"].as_i64()), (Some(100), Some(0)));

            // Two days later the night run has blocked L250314-001 (DLC the 15th).
            clock.set(chrono::DateTime::parse_from_rfc3339("2025-03-16T09:00:00Z").unwrap().with_timezone(&chrono::Utc));
            let now = clock.now();
            let db = srv.state.dbmon.db().clone();
            db.write(|tx| Box::pin(async move { store::stock::expire_lots(&**tx, now).await })).await.unwrap();
            // Tokens of two days ago have expired: sign in again.
            let (appro, admin, production) =
                (bearer(&srv, Role::Appro).await, bearer(&srv, Role::Admin).await, bearer(&srv, Role::Production).await);
            let (_, e) = get(&srv, "/api/stock/echeances", &appro).await;
            let rows: Vec<(&str, Value)> = e["items"].as_array().unwrap().iter()
                .map(|i| (i["lotNumber"].as_str().unwrap(), i["bucket"].clone())).collect();
            assert_eq!(rows, vec![("L250314-002", json!("J+2–3")), ("L250314-003", json!("J+4–7")), ("L250314-001", Value::Null)]);
            let (_, d) = get(&srv, "/api/stock/dashboard", &admin).await;
            assert_eq!((d["perimesASortir"]["count"].as_i64(), d["perimesASortir"]["value"].as_i64()), (Some(1), Some(6_000)));
            assert_eq!(d["terms"]["perimesNonSortis"], 1);

            // Write-off: an MP lot is not PRODUCTION's; one non-expired lot in the batch refuses the whole batch.
            let (s, b) = post(&srv, "/api/stock/losses/write-off", &production, json!({"lots": ["L250314-001"]})).await;
            assert_eq!((s, b["error"]["code"].as_str()), (403, Some("ACCES_REFUSE")));
            let (s, b) = post(&srv, "/api/stock/losses/write-off", &appro, json!({"lots": ["L250314-001", "L250314-002"]})).await;
            assert_eq!((s, b["error"]["code"].as_str()), (409, Some("LOT_STATUT_INVALIDE")), "{b}");
            let (_, lot) = get(&srv, "/api/stock/lots/L250314-001", &appro).await;
            assert_eq!((lot["quantityRemaining"].as_i64(), lot["status"].as_str()), (Some(20_000), Some("BLOCKED")));
            let (s, b) = post(&srv, "/api/stock/losses/write-off", &appro, json!({"lots": ["L250314-001"]})).await;
            assert_eq!(s, 201, "{b}");
            assert_eq!(b, json!({"items": [{"reference": "PER-2025-00001", "quantity": 20_000, "value": 6_000}], "totalValue": 6_000}));
            let (_, lot) = get(&srv, "/api/stock/lots/L250314-001", &appro).await;
            assert_eq!((lot["quantityRemaining"].as_i64(), lot["status"].as_str()), (Some(0), Some("CONSUMED")));

            // A loss above 50 000,00 DA by APPRO raises PERTE_IMPORTANTE; the same by ADMIN does not.
            post(&srv, "/api/receptions", &appro, json!({"supplierCode": "FOUR-0001", "lines": [
                {"productCode": "MP-LAIT", "quantity": 2_000_000, "unitCostHt": 6_000, "dlc": "2025-03-30"}]})).await;
            let (s, b) = post(&srv, "/api/stock/losses", &appro, json!({"lotNumber": "L250316-001", "quantity": 900_000,
                "reason": "DAMAGED", "note": "Cuve renversée en salle de réception"})).await;
            assert_eq!((s, b["value"].as_i64()), (201, Some(5_400_000)), "{b}");
            let (s, _) = post(&srv, "/api/stock/losses", &admin, json!({"lotNumber": "L250316-001", "quantity": 900_000,
                "reason": "DAMAGED", "note": "Cuve renversée en salle de réception"})).await;
            assert_eq!(s, 201);
            let alerts = store::alerts::open_of_type(&db, "PERTE_IMPORTANTE").await.unwrap();
            assert_eq!(alerts.len(), 1);
            assert_eq!((alerts[0].entity_id.as_str(), alerts[0].severity.as_str()), ("PER-2025-00002", "WARNING"));

            // Losses: newest first; APPRO reads MP losses, PRODUCTION PF losses only.
            let (_, l) = get(&srv, "/api/stock/losses", &appro).await;
            let refs: Vec<&str> = l["items"].as_array().unwrap().iter().map(|x| x["reference"].as_str().unwrap()).collect();
            assert_eq!(refs, vec!["PER-2025-00003", "PER-2025-00002", "PER-2025-00001"]);
            assert_eq!((l["items"][2]["reason"].as_str(), l["items"][2]["lotNumber"].as_str()), (Some("EXPIRED"), Some("L250314-001")));
            let (_, l) = get(&srv, "/api/stock/losses", &production).await;
            assert_eq!(l["total"], 0);

            // Movement filters: MP-LAIT outgoing movements, then the reception of the 16th alone.
            let (_, mv) = get(&srv, "/api/stock/movements?product=MP-LAIT&direction=OUT", &appro).await;
            let outs: Vec<(&str, i64)> = mv["items"].as_array().unwrap().iter()
                .map(|m| (m["origin"].as_str().unwrap(), m["quantity"].as_i64().unwrap())).collect();
            assert_eq!(outs, vec![("LOSS", 900_000), ("LOSS", 900_000), ("LOSS", 20_000)]);
            let (_, mv) = get(&srv, "/api/stock/movements?origin=RECEPTION&from=2025-03-16&to=2025-03-16", &appro).await;
            assert_eq!((mv["total"].as_i64(), mv["items"][0]["lotNumber"].as_str()), (Some(1), Some("L250316-001")));
            let (s, b) = get(&srv, "/api/stock/movements?product=MP-INCONNU", &appro).await;
            assert_eq!((s, b["error"]["code"].as_str()), (404, Some("NON_TROUVE")));

            // Numbering: clean, then a number taken without its document is reported.
            let report = store::integrity::run(&db, None, false).await.unwrap();
            assert!(report.clean(), "{:?}", report.lines());
            use sea_orm::ConnectionTrait;
            db.conn()
                .execute_unprepared("UPDATE sequences SET last_value = last_value + 1 WHERE doc_type = 'PER'")
                .await
                .unwrap();
            let report = store::integrity::run(&db, None, false).await.unwrap();
            assert!(!report.clean());
            assert_eq!(report.problems(), vec![
                "numérotation : 1 trou(s)".to_string(),
                "  PER 2025 — numérotation : 4 numéro(s) attribué(s), 3 document(s)".to_string(),
            ]);
            srv.stop().await;
        })
        .await;
    }

    /// DOMAIN.md §4.3 and scenario 24 (direct receptions): a blocked supplier delivers nothing until the block lapses
    /// the day after its end date or an ADMIN lifts it with a note.
    #[tokio::test]
    async fn a_blocked_supplier_cannot_deliver_until_the_block_ends() {
        on_both(|t| async move {
            let (srv, clock) = server_and_clock(&t).await;
            let (appro, admin, _) = setup(&srv).await;
            let reception = json!({"supplierCode": "FOUR-0001", "lines": [
                {"productCode": "MP-LAIT", "quantity": 1_000, "unitCostHt": 300, "dlc": "2025-04-30"}]});
            let (s, b) = post(&srv, "/api/suppliers/FOUR-0001/block", &admin, json!({"reason": "court", "until": "2025-03-14"})).await;
            assert_eq!((s, b["error"]["code"].as_str()), (400, Some("VALIDATION_ERROR")), "{b}");
            let fields: Vec<&str> = b["error"]["details"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
            assert_eq!(fields, vec!["reason", "until"]);
            let (s, b) = post(&srv, "/api/suppliers/FOUR-0001/block", &admin, json!({"reason": "Retards répétés de livraison", "until": "2025-03-20"})).await;
            assert_eq!((s, b["blocked"].as_bool(), b["blockedUntil"].as_str()), (200, Some(true), Some("2025-03-20")), "{b}");
            let (s, b) = post(&srv, "/api/receptions", &appro, reception.clone()).await;
            assert_eq!((s, b["error"]["code"].as_str()), (409, Some("FOURNISSEUR_BLOQUE")));
            assert_eq!(b["error"]["message"], "Le fournisseur Laiterie du Djurdjura SARL est bloqué jusqu'au 20/03/2025 : Retards répétés de livraison.");
            assert!(audit_actions(&srv, "RECEPTION_CREATED").await.is_empty());
            // Still blocked on its last day; free the day after.
            clock.set(chrono::DateTime::parse_from_rfc3339("2025-03-20T10:00:00Z").unwrap().with_timezone(&chrono::Utc));
            let appro = bearer(&srv, Role::Appro).await;
            let (s, _) = post(&srv, "/api/receptions", &appro, reception.clone()).await;
            assert_eq!(s, 409);
            clock.set(chrono::DateTime::parse_from_rfc3339("2025-03-21T10:00:00Z").unwrap().with_timezone(&chrono::Utc));
            let (appro, admin) = (bearer(&srv, Role::Appro).await, bearer(&srv, Role::Admin).await);
            let (s, b) = post(&srv, "/api/receptions", &appro, reception.clone()).await;
            assert_eq!(s, 201, "{b}");
            // Indefinite block, lifted early with a note.
            let (s, _) = post(&srv, "/api/suppliers/FOUR-0001/unblock", &admin, json!({"reason": "Plus de blocage"})).await;
            assert_eq!(s, 409, "nothing to lift");
            post(&srv, "/api/suppliers/FOUR-0001/block", &admin, json!({"reason": "Analyse de lait non conforme"})).await;
            let (s, b) = post(&srv, "/api/receptions", &appro, reception.clone()).await;
            assert!(b["error"]["message"].as_str().unwrap().contains("jusqu'au nouvel ordre"), "{s} {b}");
            let (s, b) = post(&srv, "/api/suppliers/FOUR-0001/unblock", &admin, json!({"reason": "Nouvelle analyse conforme"})).await;
            assert_eq!((s, b["blocked"].as_bool()), (200, Some(false)), "{b}");
            let (s, _) = post(&srv, "/api/receptions", &appro, reception).await;
            assert_eq!(s, 201);
            let actions: Vec<String> = [audit_actions(&srv, "SUPPLIER_BLOCKED").await, audit_actions(&srv, "SUPPLIER_UNBLOCKED").await]
                .concat().iter().map(|r| r.reason.clone().unwrap_or_default()).collect();
            assert_eq!(actions, vec!["Retards répétés de livraison", "Analyse de lait non conforme", "Nouvelle analyse conforme"]);
            // The supplier page: ADMIN blocks from it (a short reason comes back as a flash), APPRO only reads.
            crate::support::seed_user(&srv, "admin.four@test.dz", Role::Admin, false).await;
            crate::support::seed_user(&srv, "appro.four@test.dz", Role::Appro, false).await;
            let (web, _) = crate::support::web_session(&srv, "admin.four@test.dz").await;
            let html = web.get(srv.url("/fournisseurs")).send().await.unwrap().text().await.unwrap();
            assert!(html.contains("<a href=\"/fournisseurs/FOUR-0001\">"), "{html}");
            let html = web.get(srv.url("/fournisseurs/FOUR-0001")).send().await.unwrap().text().await.unwrap();
            assert!(html.contains("Bloquer le fournisseur") && html.contains("Laiterie du Djurdjura SARL"), "{html}");
            let csrf = csrf_of(&html);
            web.post(srv.url("/fournisseurs/FOUR-0001/bloquer")).form(&[("_csrf", csrf.as_str()), ("reason", "court"), ("until", "")]).send().await.unwrap();
            let html = web.get(srv.url("/fournisseurs/FOUR-0001")).send().await.unwrap().text().await.unwrap();
            assert!(html.contains("Le motif doit contenir au moins 10 caractères."), "{html}");
            let r = web.post(srv.url("/fournisseurs/FOUR-0001/bloquer"))
                .form(&[("_csrf", csrf.as_str()), ("reason", "Citerne non conforme"), ("until", "2025-04-30")]).send().await.unwrap();
            assert_eq!(r.status(), 303);
            let html = web.get(srv.url("/fournisseurs/FOUR-0001")).send().await.unwrap().text().await.unwrap();
            let html = html.replace("&#39;", "'").replace("&#x27;", "'");
            assert!(html.contains("Fournisseur FOUR-0001 bloqué.") && html.contains("Bloqué jusqu'au 30/04/2025"), "{html}");
            assert!(html.contains("Lever le blocage"), "{html}");
            let (appro_web, _) = crate::support::web_session(&srv, "appro.four@test.dz").await;
            let html = appro_web.get(srv.url("/fournisseurs/FOUR-0001")).send().await.unwrap().text().await.unwrap();
            assert!(html.contains("Citerne non conforme") && !html.contains("Lever le blocage"), "{html}");
            srv.stop().await;
        })
        .await;
    }

    /// DOMAIN.md §3.1–3.2: company settings and référentiels are ADMIN's, read by everyone, audited.
    #[tokio::test]
    async fn company_settings_brands_and_families() {
        on_both(|t| async move {
            let srv = server(&t).await;
            let admin = bearer(&srv, Role::Admin).await;
            let production = bearer(&srv, Role::Production).await;
            let put = |token: String, body: Value| {
                let srv = &srv;
                async move {
                    let r = client().put(srv.url("/api/settings/company")).bearer_auth(token).json(&body).send().await.unwrap();
                    (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
                }
            };
            let (s, b) = get(&srv, "/api/settings/company", &production).await;
            assert_eq!((s, b["error"]["code"].as_str()), (404, Some("NON_TROUVE")));
            let (s, b) = put(admin.clone(), json!({"raisonSociale": "Fromagerie des Hauts-Plateaux", "formeJuridique": "SARL",
                "adresse": "Zone industrielle", "wilaya": "19", "rib": "123"})).await;
            assert_eq!((s, b["error"]["code"].as_str()), (400, Some("VALIDATION_ERROR")));
            let fields: Vec<&str> = b["error"]["details"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
            assert_eq!(fields, vec!["commune", "capitalSocial", "rib"]);
            let (s, b) = put(admin.clone(), json!({"raisonSociale": "Fromagerie des Hauts-Plateaux", "formeJuridique": "SARL",
                "capitalSocial": 100_000_000, "adresse": "Zone industrielle", "wilaya": "19", "commune": "Sétif",
                "rc": "19 b  0123456 00/19", "nif": "0016 1234 5678 901", "ai": "1601234", "rib": "0012 3456 7890 1234 5678"})).await;
            assert_eq!(s, 200, "{b}");
            assert_eq!(b["warnings"][0]["code"], "AI_FORMAT_INHABITUEL");
            let (s, b) = get(&srv, "/api/settings/company", &production).await;
            assert_eq!((s, b["rc"].as_str(), b["rib"].as_str()), (200, Some("19 B 0123456 00/19"), Some("00123456789012345678")));
            assert_eq!(audit_actions(&srv, "COMPANY_SETTINGS_UPDATED").await.len(), 1);

            let (s, b) = post(&srv, "/api/catalogue/brands", &admin, json!({"code": "bon_fromage", "name": "Bon Fromage"})).await;
            assert_eq!((s, b["code"].as_str(), b["active"].as_bool()), (201, Some("BON_FROMAGE"), Some(true)), "{b}");
            let (s, b) = post(&srv, "/api/catalogue/brands", &admin, json!({"code": "BON_FROMAGE", "name": "Autre"})).await;
            assert_eq!((s, b["error"]["code"].as_str()), (409, Some("CODE_DEJA_UTILISE")));
            let (s, b) = post(&srv, "/api/catalogue/families", &admin, json!({"code": "PÂTE-DURE", "name": "Pâte dure"})).await;
            assert_eq!((s, b["error"]["details"]["fields"][0]["field"].as_str()), (400, Some("code")));
            post(&srv, "/api/catalogue/families", &admin, json!({"code": "PATE_DURE", "name": "Pâte dure"})).await;
            let r = client().put(srv.url("/api/catalogue/brands/BON_FROMAGE")).bearer_auth(&admin)
                .json(&json!({"name": "Bon Fromage d'Algérie", "active": false})).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let (_, brands) = get(&srv, "/api/catalogue/brands", &production).await;
            assert_eq!(brands["items"], json!([{"code": "BON_FROMAGE", "name": "Bon Fromage d'Algérie", "active": false}]));
            let (_, families) = get(&srv, "/api/catalogue/families", &production).await;
            assert_eq!(families["total"], 1);
            assert_eq!(audit_actions(&srv, "BRAND_UPDATED").await.len(), 1);

            // The pages: ADMIN adds a family (a bad code comes back under its field), PRODUCTION only reads.
            crate::support::seed_user(&srv, "admin.ref@test.dz", Role::Admin, false).await;
            crate::support::seed_user(&srv, "prod.ref@test.dz", Role::Production, false).await;
            let (web, _) = crate::support::web_session(&srv, "admin.ref@test.dz").await;
            let html = web.get(srv.url("/catalogue/referentiels?onglet=familles")).send().await.unwrap().text().await.unwrap();
            assert!(html.contains("PATE_DURE") && html.contains("Ajouter une famille"), "{html}");
            let csrf = csrf_of(&html);
            let r = web.post(srv.url("/catalogue/referentiels"))
                .form(&[("_csrf", csrf.as_str()), ("onglet", "familles"), ("nouveau", "1"), ("code", "x"), ("name", "Fromages frais")])
                .send().await.unwrap();
            assert_eq!(r.status(), 400);
            let html = r.text().await.unwrap();
            assert!(html.contains("Code attendu : 2 à 20 caractères parmi A–Z, 0–9 et _.") && html.contains("value=\"Fromages frais\""), "{html}");
            let r = web.post(srv.url("/catalogue/referentiels"))
                .form(&[("_csrf", csrf.as_str()), ("onglet", "familles"), ("nouveau", "1"), ("code", "frais"), ("name", "Fromages frais")])
                .send().await.unwrap();
            assert_eq!(r.status(), 303);
            let html = web.get(srv.url("/catalogue/referentiels?onglet=familles")).send().await.unwrap().text().await.unwrap();
            assert!(html.contains("Famille FRAIS ajouté.") && html.contains("Fromages frais"), "{html}");
            // Company form: the saved values come back; a wrong RIB is refused next to its field.
            let html = web.get(srv.url("/parametres/societe")).send().await.unwrap().text().await.unwrap();
            assert!(html.contains("value=\"Fromagerie des Hauts-Plateaux\"") && html.contains("value=\"1 000 000,00\""), "{html}");
            let form = |rib: &'static str| vec![("_csrf", csrf.clone()), ("raisonSociale", "Fromagerie des Hauts-Plateaux".into()),
                ("formeJuridique", "SARL".into()), ("capitalSocial", "1 000 000,00".into()), ("adresse", "Zone industrielle".into()),
                ("wilaya", "19".into()), ("commune", "Sétif".into()), ("rib", rib.to_string())];
            let r = web.post(srv.url("/parametres/societe")).form(&form("12")).send().await.unwrap();
            assert_eq!(r.status(), 400);
            assert!(r.text().await.unwrap().contains("RIB attendu : 20 chiffres."));
            let r = web.post(srv.url("/parametres/societe")).form(&form("00123456789012345678")).send().await.unwrap();
            assert_eq!(r.status(), 303);
            let (s, b) = get(&srv, "/api/settings/company", &production).await;
            assert_eq!((s, b["capitalSocial"].as_i64(), b["rc"].as_str()), (200, Some(100_000_000), None), "the form replaced the RC");
            let (prod, _) = crate::support::web_session(&srv, "prod.ref@test.dz").await;
            let html = prod.get(srv.url("/parametres/societe")).send().await.unwrap().text().await.unwrap();
            assert!(html.contains("Fromagerie des Hauts-Plateaux") && !html.contains("method=\"post\" action=\"/parametres/societe\""), "read only: {html}");
            let html = prod.get(srv.url("/catalogue/referentiels?onglet=familles")).send().await.unwrap().text().await.unwrap();
            assert!(html.contains("FRAIS") && !html.contains("Ajouter une famille"), "{html}");
            srv.stop().await;
        })
        .await;
    }

    /// UI.md rows 29, 33, 34, 38: the stock pages a role opens, and the write-off from the DLC screen with its
    /// confirmation.
    #[tokio::test]
    async fn stock_pages_health_echeances_movements_losses() {
        on_both(|t| async move {
            let (srv, clock) = server_and_clock(&t).await;
            let (appro, _, _) = setup(&srv).await;
            crate::support::seed_user(&srv, "appro.page@test.dz", Role::Appro, false).await;
            crate::support::seed_user(&srv, "prod.page@test.dz", Role::Production, false).await;
            post(
                &srv,
                "/api/receptions",
                &appro,
                json!({"supplierCode": "FOUR-0001", "lines": [
                {"productCode": "MP-LAIT", "quantity": 20_000, "unitCostHt": 300, "dlc": "2025-03-15"}]}),
            )
            .await;
            clock
                .set(chrono::DateTime::parse_from_rfc3339("2025-03-16T09:00:00Z").unwrap().with_timezone(&chrono::Utc));
            let now = clock.now();
            let db = srv.state.dbmon.db().clone();
            db.write(|tx| Box::pin(async move { store::stock::expire_lots(&**tx, now).await })).await.unwrap();

            let (web, _) = crate::support::web_session(&srv, "appro.page@test.dz").await;
            let html = web.get(srv.url("/stock")).send().await.unwrap().text().await.unwrap();
            // B 0, R 2 (MP-LAIT and MP-FERMENT have nothing usable), E 1 → 100 − 10 − 3 = 87.
            assert!(
                html.contains("id=\"score\">87<") && html.contains(">Bon<") && html.contains("Périmés à sortir"),
                "{html}"
            );
            let html = web.get(srv.url("/stock/echeances")).send().await.unwrap().text().await.unwrap();
            assert!(html.contains("value=\"L250314-001\"") && html.contains("Périmé à sortir"), "{html}");
            let csrf = csrf_of(&html);
            let r = web
                .post(srv.url("/stock/echeances/perte"))
                .form(&[("_csrf", csrf.as_str()), ("lot", "L250314-001")])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "a confirmation first");
            let html = r.text().await.unwrap();
            assert!(
                html.contains("Déclarer la perte de 1 lot(s) périmé(s)") && html.contains("Valeur totale : 60,00"),
                "{html}"
            );
            assert!(audit_actions(&srv, "LOSS_DECLARED").await.is_empty(), "nothing written before confirmation");
            let csrf = csrf_of(&html);
            let r = web
                .post(srv.url("/stock/echeances/perte"))
                .form(&[("_csrf", csrf.as_str()), ("confirme", "1"), ("lot", "L250314-001")])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 303);
            let html = web.get(srv.url("/stock/echeances")).send().await.unwrap().text().await.unwrap();
            assert!(html.contains("1 perte(s) enregistrée(s) (PER-2025-00001)"), "{html}");
            let html = web.get(srv.url("/stock/pertes")).send().await.unwrap().text().await.unwrap();
            assert!(html.contains("PER-2025-00001") && html.contains("Périmé") && html.contains("60,00"), "{html}");
            let html = web.get(srv.url("/stock/mouvements?sens=OUT")).send().await.unwrap().text().await.unwrap();
            assert!(
                html.contains("Page 1 sur 1 · 1 élément(s)")
                    && html.contains("Perte")
                    && html.contains("PER-2025-00001"),
                "{html}"
            );
            // Stock at a past date, from the ledger: 20 kg on the 14th, nothing left after the write-off.
            let html =
                web.get(srv.url("/stock/produits?type=mp&date=2025-03-14")).send().await.unwrap().text().await.unwrap();
            assert!(html.contains("stock au 14/03/2025 (fin de journée)") && html.contains("20,000\u{a0}kg"), "{html}");
            let html =
                web.get(srv.url("/stock/produits?type=mp&date=2025-03-16")).send().await.unwrap().text().await.unwrap();
            assert!(!html.contains("20,000\u{a0}kg") && html.contains("0,000\u{a0}kg"), "{html}");
            // Catalogue lists are searched on any column and paginated.
            let html = web.get(srv.url("/fournisseurs?q=djurdjura")).send().await.unwrap().text().await.unwrap();
            assert!(html.contains("FOUR-0001") && html.contains("Page 1 sur 1 · 1 élément(s)"), "{html}");
            let html = web.get(srv.url("/catalogue/matieres?q=inconnue")).send().await.unwrap().text().await.unwrap();
            assert!(
                html.contains("Aucune matière première.") && html.contains("Page 1 sur 1 · 0 élément(s)"),
                "{html}"
            );
            // PRODUCTION reads MP movements but neither MP losses nor the write-off of an MP lot.
            let (prod, _) = crate::support::web_session(&srv, "prod.page@test.dz").await;
            let html = prod.get(srv.url("/stock/pertes")).send().await.unwrap().text().await.unwrap();
            assert!(html.contains("Aucune perte déclarée."), "{html}");
            srv.stop().await;
        })
        .await;
    }

    /// PLATFORM.md §2.5: a document-creating POST repeated with its key writes once and answers the same; another
    /// body under the same key is refused; concurrent duplicates collide on the key; a form submitted twice writes once.
    #[tokio::test]
    async fn idempotency_keys_make_document_creation_safe_to_retry() {
        on_both(|t| async move {
            let srv = server(&t).await;
            let (appro, _, _) = setup(&srv).await;
            let send = |key: &'static str, path: &'static str, body: Value| {
                let (srv, appro) = (&srv, appro.clone());
                async move {
                    let r = client().post(srv.url(path)).bearer_auth(appro).header("Idempotency-Key", key).json(&body).send().await.unwrap();
                    let replayed = r.headers().get("idempotent-replayed").is_some();
                    (r.status().as_u16(), replayed, r.json::<Value>().await.unwrap())
                }
            };
            let key = "0192f0c1-8a7b-7c3d-9e4f-123456789abc";
            let body = json!({"supplierCode": "FOUR-0001", "lines": [{"productCode": "MP-LAIT", "quantity": 50_000, "unitCostHt": 300, "dlc": "2025-03-30"}]});
            let first = send(key, "/api/receptions", body.clone()).await;
            assert_eq!((first.0, first.1), (201, false), "{}", first.2);
            let again = send(key, "/api/receptions", body.clone()).await;
            assert_eq!((again.0, again.1), (201, true));
            assert_eq!(again.2, first.2, "the stored answer");
            assert_eq!(audit_actions(&srv, "RECEPTION_CREATED").await.len(), 1);
            let mut other = body.clone();
            other["lines"][0]["quantity"] = json!(60_000);
            let (s, _, b) = send(key, "/api/receptions", other).await;
            assert_eq!((s, b["error"]["code"].as_str()), (409, Some("IDEMPOTENCE_CONFLIT")));
            assert_eq!(b["error"]["message"], "Cette commande a déjà été envoyée avec un contenu différent.");
            let (s, _, b) = send("pas-une-cle", "/api/receptions", body).await;
            assert_eq!((s, b["error"]["code"].as_str()), (400, Some("VALIDATION_ERROR")));

            // Four copies of one loss at once: one loss, four identical answers.
            let loss = json!({"lotNumber": "L250314-001", "quantity": 1_000, "reason": "DAMAGED", "note": "Bidon percé au déchargement"});
            let key = "9b2f6c1e-3d4a-4b5c-8d6e-7f8091a2b3c4";
            let (a, b, c, d) = tokio::join!(
                send(key, "/api/stock/losses", loss.clone()),
                send(key, "/api/stock/losses", loss.clone()),
                send(key, "/api/stock/losses", loss.clone()),
                send(key, "/api/stock/losses", loss.clone())
            );
            let answers = [a, b, c, d];
            for (s, _, b) in &answers {
                assert_eq!((*s, b["reference"].as_str()), (201, Some("PER-2025-00001")), "{b}");
            }
            assert_eq!(answers.iter().filter(|a| !a.1).count(), 1, "one executed, the others replayed");
            let (_, lot) = get(&srv, "/api/stock/lots/L250314-001", &appro).await;
            assert_eq!(lot["quantityRemaining"], 49_000);

            // The lot page's loss form carries its command id: a double submission writes once.
            crate::support::seed_user(&srv, "appro.idem@test.dz", Role::Appro, false).await;
            let (web, _) = crate::support::web_session(&srv, "appro.idem@test.dz").await;
            let html = web.get(srv.url("/stock/lots/L250314-001")).send().await.unwrap().text().await.unwrap();
            let csrf = csrf_of(&html);
            let command = html.split("name=\"_commande\" value=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_string();
            let form = [("_csrf", csrf.as_str()), ("_commande", command.as_str()), ("quantity", "2"), ("reason", "OTHER"), ("note", "Retour fournisseur du lot")];
            for _ in 0..2 {
                let r = web.post(srv.url("/stock/lots/L250314-001/perte")).form(&form).send().await.unwrap();
                assert_eq!(r.status(), 303);
            }
            let (_, lot) = get(&srv, "/api/stock/lots/L250314-001", &appro).await;
            assert_eq!(lot["quantityRemaining"], 47_000);
            assert_eq!(audit_actions(&srv, "LOSS_DECLARED").await.len(), 2);
            let purged = store::idempotency::purge(srv.state.dbmon.db(), super::now() + chrono::Duration::hours(25)).await.unwrap();
            assert_eq!(purged, 3, "keys are kept 24 h");
            srv.stop().await;
        })
        .await;
    }
}
