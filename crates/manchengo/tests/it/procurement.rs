//! Purchase orders through the API on both backends (DOMAIN.md §6.1, §6.2, §6.4; scenarios 20–22): the workflow and
//! its refusals, receptions against an order under the 110 % rule, racing receptions, the supplier's score and grade.

use std::sync::Arc;

use app::platform::jobs::{Clock, ManualClock};
use chrono::{DateTime, Utc};
use domain::identity::Role;
use serde_json::{Value, json};

use crate::support::{TestServer, audit_actions, bearer, call, config_for, get, on_both, post};

/// 2025-03-14 10:00 in Algiers (the day of DOMAIN.md §22).
fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-14T09:00:00Z").unwrap().with_timezone(&Utc)
}

async fn server(t: &crate::support::TestDb) -> (TestServer, Arc<ManualClock>) {
    let clock = ManualClock::new(now());
    // The scheduler never ticks during the test: the late-order test runs the scan itself, at the times it chooses.
    let options = app::server::Options {
        clock: clock.clone(),
        job_tick: std::time::Duration::from_secs(86_400),
        ..Default::default()
    };
    (TestServer::start_with(config_for(&t.url, t.dir.path(), &[]), options).await, clock)
}

fn code(b: &Value) -> (&str, &str) {
    (b["error"]["code"].as_str().unwrap_or("-"), b["error"]["message"].as_str().unwrap_or("-"))
}

/// A supplier FOUR-0001, perishable milk MP-LAIT (KG), salt MP-SEL and rennet MP-PRESURE.
pub(crate) async fn catalogue(srv: &TestServer, appro: &str) {
    for (path, body) in [
        ("/api/suppliers", json!({"raisonSociale": "Laiterie du Djurdjura SARL"})),
        (
            "/api/catalogue/mp",
            json!({"code": "MP-LAIT", "name": "Lait cru", "category": "RAW_MATERIAL", "baseUnit": "KG"}),
        ),
        (
            "/api/catalogue/mp",
            json!({"code": "MP-SEL", "name": "Sel", "category": "ADDITIVE", "baseUnit": "KG", "perishable": false}),
        ),
        (
            "/api/catalogue/mp",
            json!({"code": "MP-PRESURE", "name": "Présure", "category": "ADDITIVE", "baseUnit": "L", "perishable": false}),
        ),
    ] {
        let (s, b) = post(srv, path, appro, body).await;
        assert_eq!(s, 201, "{path}: {b}");
    }
}

/// 1 000 kg of milk at 50,00 DA/kg, TVA 9 %, expected on 2025-03-20.
pub(crate) fn milk_order() -> Value {
    json!({"supplierCode": "FOUR-0001", "expectedDate": "2025-03-20", "notes": "Citerne du matin",
           "lines": [{"productCode": "MP-LAIT", "quantity": 1_000_000, "unitPriceHt": 5_000, "tvaRate": 900}]})
}

pub(crate) fn milk_reception(bc: &str, kg: i64) -> Value {
    json!({"supplierCode": "FOUR-0001", "purchaseOrderReference": bc,
           "lines": [{"productCode": "MP-LAIT", "quantity": kg * 1_000, "dlc": "2025-03-24"}]})
}

const NOTE_25: &str = "Confirmé par téléphone OK";

pub(crate) async fn sent_order(srv: &TestServer, appro: &str) -> String {
    let (s, b) = post(srv, "/api/purchase-orders", appro, milk_order()).await;
    assert_eq!(s, 201, "{b}");
    let r = b["reference"].as_str().unwrap().to_string();
    let (s, b) =
        post(srv, &format!("/api/purchase-orders/{r}/send"), appro, json!({"mode": "MANUEL", "note": NOTE_25})).await;
    assert_eq!(s, 200, "{b}");
    r
}

async fn receptions(srv: &TestServer) -> usize {
    store::procurement::list(srv.state.dbmon.db()).await.unwrap().len()
}

#[tokio::test]
async fn scenarios_20_to_22_the_purchase_order_workflow() {
    on_both(|t| async move {
        let (srv, _) = server(&t).await;
        let appro = bearer(&srv, Role::Appro).await;
        let admin = bearer(&srv, Role::Admin).await;
        let production = bearer(&srv, Role::Production).await;
        catalogue(&srv, &appro).await;

        // Creation: number at once, totals from the lines (1 000 kg × 50,00 DA = 50 000,00 DA HT, TVA 9 %).
        let mut dup = milk_order();
        dup["lines"] = json!([dup["lines"][0], dup["lines"][0]]);
        let (s, b) = post(&srv, "/api/purchase-orders", &appro, dup).await;
        assert_eq!((s, code(&b).0), (422, "LIGNE_DOUBLON"), "{b}");
        let mut early = milk_order();
        early["expectedDate"] = json!("2025-03-13");
        let (s, b) = post(&srv, "/api/purchase-orders", &appro, early).await;
        assert_eq!((s, code(&b).0), (422, "DATE_INVALIDE"), "{b}");
        let (s, b) = post(&srv, "/api/purchase-orders", &appro, milk_order()).await;
        assert_eq!(s, 201, "{b}");
        assert_eq!((b["reference"].as_str(), b["status"].as_str()), (Some("BC-2025-00001"), Some("DRAFT")));
        assert_eq!((b["totalHt"].as_i64(), b["totalTva"].as_i64(), b["totalTtc"].as_i64()), (Some(5_000_000), Some(450_000), Some(5_450_000)));
        // A DRAFT is edited freely: 1 000 kg of milk and 50 kg of salt.
        let mut edited = milk_order();
        edited["lines"] = json!([edited["lines"][0], {"productCode": "MP-SEL", "quantity": 50_000, "unitPriceHt": 2_000}]);
        let (s, b) = call(&srv, "PUT", "/api/purchase-orders/BC-2025-00001", &appro, Some(edited.clone())).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["totalHt"], 5_100_000);
        assert_eq!(b["lines"][1]["tvaRate"], 1900);

        // Scenario 20: a manual proof of 15 characters is refused, 25 are enough.
        let send = |note: &str| json!({"mode": "MANUEL", "note": note});
        let (s, b) = post(&srv, "/api/purchase-orders/BC-2025-00001/send", &appro, send("Appel fait hier")).await;
        assert_eq!((s, code(&b)), (422, ("PREUVE_ENVOI_REQUISE", "Preuve d'envoi requise : adresse e-mail valide ou note d'au moins 20 caractères.")));
        let (s, b) = post(&srv, "/api/purchase-orders/BC-2025-00001/send", &appro, json!({"mode": "EMAIL", "email": "pas-une-adresse"})).await;
        assert_eq!((s, code(&b).0), (422, "PREUVE_ENVOI_REQUISE"));
        assert_eq!(get(&srv, "/api/purchase-orders/BC-2025-00001", &appro).await["status"], "DRAFT");
        let (s, b) = post(&srv, "/api/purchase-orders/BC-2025-00001/send", &appro, send(NOTE_25)).await;
        assert_eq!((s, b["status"].as_str(), b["sendMode"].as_str()), (200, Some("SENT"), Some("MANUEL")), "{b}");
        let (s, b) = call(&srv, "PUT", "/api/purchase-orders/BC-2025-00001", &appro, Some(edited)).await;
        assert_eq!((s, code(&b).0), (409, "BC_NON_MODIFIABLE"));
        let (s, b) = post(&srv, "/api/purchase-orders/BC-2025-00001/confirm", &appro, json!({"confirmedDate": "2025-03-19"})).await;
        assert_eq!((s, b["status"].as_str()), (200, Some("CONFIRMED")), "{b}");
        let (s, b) = post(&srv, "/api/purchase-orders/BC-2025-00001/confirm", &appro, json!({})).await;
        assert_eq!((s, code(&b).0), (409, "TRANSITION_INVALIDE"));

        // Scenario 21: 600 kg received (PARTIAL, price and rate from the order); 501 kg more is over 110 %.
        let (s, b) = post(&srv, "/api/receptions", &appro, milk_reception("BC-2025-00001", 600)).await;
        assert_eq!(s, 201, "{b}");
        assert_eq!((b["reception"]["lines"][0]["unitCostHt"].as_i64(), b["reception"]["lines"][0]["tvaRate"].as_i64()), (Some(5_000), Some(900)));
        let bc = get(&srv, "/api/purchase-orders/BC-2025-00001", &appro).await;
        assert_eq!(bc["status"], "PARTIAL");
        assert_eq!((bc["lines"][0]["quantityReceived"].as_i64(), bc["lines"][0]["maxReceivable"].as_i64()), (Some(600_000), Some(500_000)));
        let (lots_before, recs_before) = (stock_lots(&srv).await, receptions(&srv).await);
        let (s, b) = post(&srv, "/api/receptions", &appro, milk_reception("BC-2025-00001", 501)).await;
        assert_eq!((s, code(&b)), (422, ("SURLIVRAISON", "Réception supérieure à 110 % de la quantité commandée pour MP-LAIT (maximum 500,000).")), "{b}");
        assert_eq!((b["error"]["details"]["maximum"].as_i64(), b["error"]["details"]["alreadyReceived"].as_i64()), (Some(500_000), Some(600_000)));
        assert_eq!((stock_lots(&srv).await, receptions(&srv).await), (lots_before, recs_before), "nothing written");
        // A product that is not on the order.
        let off = json!({"supplierCode": "FOUR-0001", "purchaseOrderReference": "BC-2025-00001",
                         "lines": [{"productCode": "MP-LAIT", "quantity": 1_000, "dlc": "2025-03-24"}, {"productCode": "MP-PRESURE", "quantity": 1_000, "unitCostHt": 90_000}]});
        let (s, b) = post(&srv, "/api/receptions", &appro, off).await;
        assert_eq!((s, code(&b).0), (422, "LIGNE_HORS_BC"), "{b}");
        let (s, b) = post(&srv, "/api/receptions", &appro, milk_reception("BC-2025-00001", 500)).await;
        assert_eq!(s, 201, "{b}");
        let bc = get(&srv, "/api/purchase-orders/BC-2025-00001", &appro).await;
        assert_eq!((bc["status"].as_str(), bc["lines"][0]["quantityReceived"].as_i64()), (Some("PARTIAL"), Some(1_100_000)), "the salt is still due");
        assert_eq!(bc["receptions"], json!(["REC-2025-00001", "REC-2025-00002"]));
        let salt = json!({"supplierCode": "FOUR-0001", "purchaseOrderReference": "BC-2025-00001",
                          "lines": [{"productCode": "MP-SEL", "quantity": 50_000}]});
        let (s, b) = post(&srv, "/api/receptions", &appro, salt).await;
        assert_eq!(s, 201, "{b}");
        let bc = get(&srv, "/api/purchase-orders/BC-2025-00001", &appro).await;
        assert_eq!(bc["status"], "RECEIVED");
        let (s, b) = post(&srv, "/api/receptions", &appro, milk_reception("BC-2025-00001", 1)).await;
        assert_eq!((s, code(&b).0), (409, "BC_STATUT_INVALIDE"));
        // §6.4: delivered on time and in full → 100, A.
        let perf = get(&srv, "/api/suppliers/FOUR-0001/performance", &appro).await;
        assert_eq!((perf["grade"].as_str(), perf["score"].as_i64(), perf["onTimeBp"].as_i64(), perf["accuracyBp"].as_i64()), (Some("A"), Some(100), Some(10_000), Some(10_000)), "{perf}");

        // Scenario 22: cancellation is ADMIN's, never once goods arrived, with a reason of 10 characters.
        let sent = sent_order(&srv, &appro).await;
        assert_eq!(sent, "BC-2025-00002");
        let (s, b) = post(&srv, &format!("/api/purchase-orders/{sent}/cancel"), &appro, json!({"reason": "Erreur de prix"})).await;
        assert_eq!((s, code(&b).0), (403, "ACCES_REFUSE"));
        let partial = sent_order(&srv, &appro).await;
        let (s, _) = post(&srv, "/api/receptions", &appro, milk_reception(&partial, 400)).await;
        assert_eq!(s, 201);
        let (s, b) = post(&srv, &format!("/api/purchase-orders/{partial}/cancel"), &admin, json!({"reason": "Erreur de prix"})).await;
        assert_eq!((s, code(&b)), (409, ("BC_DEJA_RECU", "Annulation impossible : des quantités ont déjà été réceptionnées.")));
        let (s, b) = post(&srv, &format!("/api/purchase-orders/{sent}/cancel"), &admin, json!({"reason": "Annulé"})).await;
        assert_eq!((s, code(&b).0), (422, "MOTIF_TROP_COURT"));
        let (s, b) = post(&srv, &format!("/api/purchase-orders/{sent}/cancel"), &admin, json!({"reason": "Erreur de prix"})).await;
        assert_eq!((s, b["status"].as_str(), b["cancelReason"].as_str()), (200, Some("CANCELLED"), Some("Erreur de prix")), "{b}");
        let (s, b) = post(&srv, &format!("/api/purchase-orders/{sent}/send"), &appro, json!({"mode": "MANUEL", "note": NOTE_25})).await;
        assert_eq!((s, code(&b).0), (409, "TRANSITION_INVALIDE"));
        // Closing a PARTIAL order abandons the rest.
        let (s, b) = post(&srv, &format!("/api/purchase-orders/{partial}/close"), &appro, json!({"reason": "Court"})).await;
        assert_eq!((s, code(&b).0), (422, "MOTIF_TROP_COURT"));
        let (s, b) = post(&srv, &format!("/api/purchase-orders/{partial}/close"), &appro, json!({"reason": "Fin de saison, reste abandonné"})).await;
        assert_eq!((s, b["status"].as_str()), (200, Some("RECEIVED")), "{b}");
        // §6.4: the 40 % delivery weighs on accuracy: lines 10 000, 10 000 and 4 000 bp → 8 000; both orders on time.
        let perf = get(&srv, "/api/suppliers/FOUR-0001/performance", &appro).await;
        assert_eq!((perf["onTimeBp"].as_i64(), perf["accuracyBp"].as_i64(), perf["score"].as_i64(), perf["grade"].as_str()), (Some(10_000), Some(8_000), Some(90), Some("A")), "{perf}");

        // Lists and roles: PRODUCTION reads orders without any amount; filters by status.
        let list = get(&srv, "/api/purchase-orders?status=CANCELLED", &appro).await;
        assert_eq!((list["total"].as_u64(), list["items"][0]["reference"].as_str()), (Some(1), Some("BC-2025-00002")));
        let seen = get(&srv, "/api/purchase-orders/BC-2025-00001", &production).await;
        assert!(seen.get("totalHt").is_none() && seen["lines"][0].get("unitPriceHt").is_none(), "{seen}");
        assert_eq!(seen["lines"][0]["quantityOrdered"], 1_000_000);
        let (s, _) = call(&srv, "GET", "/api/purchase-orders/BC-2025-00001", &bearer(&srv, Role::Commercial).await, None).await;
        assert_eq!(s, 403);
        for (action, n) in [("BC_CREATED", 3), ("BC_UPDATED", 1), ("BC_SENT", 3), ("BC_CONFIRMED", 1), ("BC_CANCELLED", 1), ("BC_CLOSED", 1)] {
            assert_eq!(audit_actions(&srv, action).await.len(), n, "{action}");
        }
        let db = srv.state.dbmon.db();
        assert!(store::stock::check(db).await.unwrap().is_empty());
        assert!(store::stock::numbering_gaps(db).await.unwrap().is_empty());
        srv.stop().await;
    })
    .await;
}

async fn stock_lots(srv: &TestServer) -> usize {
    use sea_orm::{EntityTrait, PaginatorTrait};
    store::stock::lots::Entity::find().count(srv.state.dbmon.db().conn()).await.unwrap() as usize
}

/// A blocked supplier gets no new order and no direct reception, but goods of an order already sent are received.
#[tokio::test]
async fn a_blocked_supplier_still_delivers_what_was_ordered() {
    on_both(|t| async move {
        let (srv, _) = server(&t).await;
        let appro = bearer(&srv, Role::Appro).await;
        let admin = bearer(&srv, Role::Admin).await;
        catalogue(&srv, &appro).await;
        let bc = sent_order(&srv, &appro).await;
        let (s, b) = post(
            &srv,
            "/api/suppliers/FOUR-0001/block",
            &admin,
            json!({"reason": "Retards répétés de livraison", "until": "2025-04-30"}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let (s, b) = post(&srv, "/api/purchase-orders", &appro, milk_order()).await;
        assert_eq!((s, code(&b).0), (409, "FOURNISSEUR_BLOQUE"), "{b}");
        let mut direct = milk_reception(&bc, 10);
        direct.as_object_mut().unwrap().remove("purchaseOrderReference");
        direct["lines"][0]["unitCostHt"] = json!(5_000);
        let (s, b) = post(&srv, "/api/receptions", &appro, direct).await;
        assert_eq!((s, code(&b).0), (409, "FOURNISSEUR_BLOQUE"), "{b}");
        let (s, b) = post(&srv, "/api/receptions", &appro, milk_reception(&bc, 1_000)).await;
        assert_eq!(s, 201, "{b}");
        assert_eq!(get(&srv, &format!("/api/purchase-orders/{bc}"), &appro).await["status"], "RECEIVED");
        srv.stop().await;
    })
    .await;
}

/// Two receptions of 600 kg race on a 1 000 kg line: one goes through, the other is refused — never 1 200 kg.
#[tokio::test]
async fn racing_receptions_never_pass_110_percent() {
    on_both(|t| async move {
        let (srv, _) = server(&t).await;
        let appro = bearer(&srv, Role::Appro).await;
        catalogue(&srv, &appro).await;
        for round in 0..3 {
            let bc = sent_order(&srv, &appro).await;
            let (a, b) = tokio::join!(
                post(&srv, "/api/receptions", &appro, milk_reception(&bc, 600)),
                post(&srv, "/api/receptions", &appro, milk_reception(&bc, 600)),
            );
            let mut statuses = [a.0, b.0];
            statuses.sort();
            assert_eq!(statuses, [201, 422], "round {round}: {} / {}", a.1, b.1);
            let refused = if a.0 == 422 { &a.1 } else { &b.1 };
            assert_eq!(code(refused).0, "SURLIVRAISON");
            let order = get(&srv, &format!("/api/purchase-orders/{bc}"), &appro).await;
            assert_eq!(
                (order["lines"][0]["quantityReceived"].as_i64(), order["status"].as_str()),
                (Some(600_000), Some("PARTIAL"))
            );
        }
        assert!(store::stock::check(srv.state.dbmon.db()).await.unwrap().is_empty());
        srv.stop().await;
    })
    .await;
}

/// §6.4: late and short deliveries bring the grade down to C, which raises FOURNISSEUR_NOTE_C once.
#[tokio::test]
async fn a_late_short_delivery_grades_the_supplier_c_and_raises_an_alert() {
    on_both(|t| async move {
        let (srv, clock) = server(&t).await;
        let appro = bearer(&srv, Role::Appro).await;
        catalogue(&srv, &appro).await;
        let none = get(&srv, "/api/suppliers/FOUR-0001/performance", &appro).await;
        assert_eq!((none["grade"].as_str(), none["score"].as_i64()), (Some("N/A"), None));
        let bc = sent_order(&srv, &appro).await;
        // Ten days later (expected on the 20th, delivered on the 24th), half the milk.
        clock.advance(chrono::Duration::days(10));
        let appro = bearer(&srv, Role::Appro).await;
        let mut late = milk_reception(&bc, 500);
        late["lines"][0]["dlc"] = json!("2025-04-02");
        let (s, b) = post(&srv, "/api/receptions", &appro, late).await;
        assert_eq!(s, 201, "{b}");
        let perf = get(&srv, "/api/suppliers/FOUR-0001/performance", &appro).await;
        // on time 0 bp, accuracy 5 000 bp → (0 + 5000) / 200 = 25 → C.
        assert_eq!(
            (perf["onTimeBp"].as_i64(), perf["accuracyBp"].as_i64(), perf["score"].as_i64(), perf["grade"].as_str()),
            (Some(0), Some(5_000), Some(25), Some("C")),
            "{perf}"
        );
        let order = get(&srv, &format!("/api/purchase-orders/{bc}"), &appro).await;
        assert_eq!(order["daysLate"], 4, "still open, four days past its date");
        let alerts = store::alerts::open_of_type(srv.state.dbmon.db(), "FOURNISSEUR_NOTE_C").await.unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].message, "Laiterie du Djurdjura SARL : note fournisseur C (score 25/100).");
        let late = get(&srv, "/api/purchase-orders?late=true", &appro).await;
        assert_eq!(late["total"], 1);
        srv.stop().await;
    })
    .await;
}

/// §6.4: open orders past their date raise BC_EN_RETARD — CRITICAL from 3 days late with an MP of criticité HAUTE,
/// WARNING otherwise — once per order, refreshed on the next run; a received order raises nothing.
#[tokio::test]
async fn late_orders_raise_bc_en_retard_by_criticite() {
    on_both(|t| async move {
        let (srv, clock) = server(&t).await;
        let appro = bearer(&srv, Role::Appro).await;
        catalogue(&srv, &appro).await;
        let (s, b) = call(&srv, "PUT", "/api/catalogue/mp/MP-LAIT", &appro, Some(json!({"code": "MP-LAIT", "name": "Lait cru", "category": "RAW_MATERIAL", "baseUnit": "KG", "criticite": "HAUTE"}))).await;
        assert_eq!(s, 200, "{b}");
        let milk = sent_order(&srv, &appro).await;
        let mut salt_order = milk_order();
        salt_order["lines"] = json!([{"productCode": "MP-SEL", "quantity": 50_000, "unitPriceHt": 2_000}]);
        let (_, b) = post(&srv, "/api/purchase-orders", &appro, salt_order).await;
        let salt = b["reference"].as_str().unwrap().to_string();
        let (s, _) = post(&srv, &format!("/api/purchase-orders/{salt}/send"), &appro, json!({"mode": "EMAIL", "email": "commandes@djurdjura.dz"})).await;
        assert_eq!(s, 200);
        let delivered = sent_order(&srv, &appro).await;
        let (s, _) = post(&srv, "/api/receptions", &appro, milk_reception(&delivered, 1_000)).await;
        assert_eq!(s, 201);
        let db = srv.state.dbmon.db();
        let run = |now| async move {
            db.write(|tx| Box::pin(async move { store::purchase::late_order_alerts(&**tx, now).await })).await.unwrap()
        };
        // On the expected day nothing is late.
        assert_eq!(run(now() + chrono::Duration::days(6)).await, 0);
        // Five days later (expected 2025-03-20, today 2025-03-25).
        clock.advance(chrono::Duration::days(11));
        assert_eq!(run(clock.now()).await, 2);
        let alerts = store::alerts::open_of_type(db, "BC_EN_RETARD").await.unwrap();
        let by_order: Vec<(&str, &str, &str)> =
            alerts.iter().map(|a| (a.entity_id.as_str(), a.severity.as_str(), a.message.as_str())).collect();
        assert!(by_order.contains(&(milk.as_str(), "CRITICAL", &*format!("{milk} (Laiterie du Djurdjura SARL) : livraison attendue depuis 5 jour(s)."))), "{by_order:?}");
        assert!(by_order.iter().any(|(r, s, _)| *r == salt && *s == "WARNING"), "{by_order:?}");
        assert!(!by_order.iter().any(|(r, _, _)| *r == delivered));
        // The next hour refreshes, never duplicates.
        assert_eq!(run(clock.now() + chrono::Duration::hours(1)).await, 0);
        assert_eq!(store::alerts::open_of_type(db, "BC_EN_RETARD").await.unwrap().len(), 2);
        srv.stop().await;
    })
    .await;
}
