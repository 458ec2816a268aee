//! Sales and deliveries through the API on both backends (DOMAIN.md §10–§12; scenarios 6–7, 36–52): price lists,
//! invoice amounts and timbre, the validation checks in order with nothing consumed on refusal, payments and their
//! cancellation, credit notes with returns, BLs validated by signed QR code exactly once, and races on numbers and
//! scans.

use std::sync::Arc;

use app::platform::jobs::ManualClock;
use chrono::{DateTime, Utc};
use domain::identity::Role;
use serde_json::{Value, json};

use crate::support::{TestServer, audit_actions, bearer, call, config_for, get, on_both, post};

/// 2025-03-14 10:00 in Algiers.
fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-14T09:00:00Z").unwrap().with_timezone(&Utc)
}

pub(crate) async fn server(t: &crate::support::TestDb) -> (TestServer, Arc<ManualClock>) {
    let clock = ManualClock::new(now());
    let options = app::server::Options { clock: clock.clone(), ..Default::default() };
    (TestServer::start_with(config_for(&t.url, t.dir.path(), &[("RATE_LIMIT_MAX", "100000")]), options).await, clock)
}

fn code(b: &Value) -> &str {
    b["error"]["code"].as_str().unwrap_or("-")
}

async fn put(srv: &TestServer, path: &str, token: &str, body: Value) -> (u16, Value) {
    call(srv, "PUT", path, token, Some(body)).await
}

pub(crate) async fn company(srv: &TestServer, admin: &str) {
    let (s, b) = put(
        srv,
        "/api/settings/company",
        admin,
        json!({
        "raisonSociale": "Fromagerie des Hauts-Plateaux", "formeJuridique": "SARL", "capitalSocial": 100_000_000,
        "adresse": "Zone industrielle", "wilaya": "19", "commune": "Sétif", "rc": "19 B 0123456 00/19",
        "nif": "001612345678901", "ai": "19012345678", "nis": "001619012345678", "rib": "00123456789012345678"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
}

/// A client with its fiscal identifiers (`ai` None leaves it out); returns its code.
pub(crate) async fn new_client(
    srv: &TestServer,
    admin: &str,
    name: &str,
    nif: &str,
    ai: Option<&str>,
    terms: Value,
) -> String {
    let mut body = json!({"raisonSociale": name, "wilaya": "16", "adresse": "Rue des Frères Bouadou, Bir Mourad Raïs",
        "nif": nif, "rc": "16 B 1204921 16/00", "clientType": "SUPERETTE", "defaultPaymentMethod": "ESPECES"});
    if let Some(ai) = ai {
        body["ai"] = json!(ai);
    }
    if let (Some(o), Some(t)) = (body.as_object_mut(), terms.as_object()) {
        o.extend(t.clone());
    }
    let (s, b) = post(srv, "/api/clients", admin, body).await;
    assert_eq!(s, 201, "{b}");
    b["client"]["code"].as_str().unwrap().to_string()
}

/// Two PFs at their list prices (Gouda 650,00 DA, Fondu 420,00 DA, 19 %) and PF stock as lots.
pub(crate) async fn shop(srv: &TestServer, admin: &str, gouda: &[(i64, &str)], fondu: i64) {
    let (s, b) =
        post(srv, "/api/catalogue/families", admin, json!({"code": "PATE_PRESSEE", "name": "Pâte pressée"})).await;
    assert_eq!(s, 201, "{b}");
    for (code, name, price) in [("PF-GOUDA-400", "Gouda 400 g", 65_000), ("PF-FONDU-800", "Fondu 800 g", 42_000)] {
        let (s, b) = post(
            srv,
            "/api/catalogue/pf",
            admin,
            json!({"code": code, "name": name, "baseUnit": "U", "weightG": 400,
            "packagingType": "SAC_THERMO", "storageType": "REFRIGERE", "shelfLifeDays": 180, "listPriceHt": price,
            "familyCode": "PATE_PRESSEE"}),
        )
        .await;
        assert_eq!(s, 201, "{b}");
    }
    for (i, (qty, dlc)) in gouda.iter().enumerate() {
        pf_lot(srv, "PF-GOUDA-400", &format!("GOUDA-T{i}"), *qty, Some(dlc), 30_000).await;
    }
    if fondu > 0 {
        pf_lot(srv, "PF-FONDU-800", "FONDU-T0", fondu, Some("2025-06-30"), 20_000).await;
    }
}

/// A PF lot as a completed production would leave it (through the store, the way production writes it).
pub(crate) async fn pf_lot(srv: &TestServer, product: &str, number: &str, qty: i64, dlc: Option<&str>, cost: i64) {
    let db = srv.state.dbmon.db();
    let p = store::catalogue::product_by_code(db.conn(), product).await.unwrap().unwrap();
    let (number, dlc) = (number.to_string(), dlc.map(|d| d.parse().unwrap()));
    db.write(|tx| {
        let number = number.clone();
        Box::pin(async move {
            store::stock::create_lot(
                &**tx,
                store::stock::NewLot {
                    number: number.clone(),
                    product_id: p.id,
                    supplier_lot_number: None,
                    lot_origin: "PRODUCTION",
                    quantity: qty,
                    unit_cost: cost,
                    dlc,
                    manufacture_date: None,
                    status: domain::stock::LotStatus::Available,
                },
                &store::stock::Source { origin: "PRODUCTION_IN", source_type: None, source_id: None, reference: None },
                format!("TEST:{number}"),
                &store::stock::Mover { user_id: None, device_id: None, ip: None },
                now(),
            )
            .await
            .map(|_| ())
        })
    })
    .await
    .map_err(|e: store::OpError| format!("{e:?}"))
    .unwrap();
}

async fn lot_left(srv: &TestServer, number: &str) -> i64 {
    store::stock::lot_by_number(srv.state.dbmon.db().conn(), number).await.unwrap().unwrap().quantity_remaining
}

async fn sale_movements(srv: &TestServer) -> u64 {
    let f = store::stock::MovementFilter { origin: Some("SALE".into()), ..Default::default() };
    store::stock::movements(srv.state.dbmon.db(), &f, 0, 1_000).await.unwrap().1
}

/// The invoice of scenario 36: 24 Gouda at 650,00 DA, 10 Fondu at 420,00 DA with 100,00 DA off.
pub(crate) fn invoice_36(client: &str, method: &str) -> Value {
    json!({"clientCode": client, "paymentMethod": method, "lines": [
        {"productCode": "PF-GOUDA-400", "quantity": 24_000},
        {"productCode": "PF-FONDU-800", "quantity": 10_000, "discount": 10_000},
    ]})
}

pub(crate) async fn draft(srv: &TestServer, token: &str, body: Value) -> Value {
    let (s, b) = post(srv, "/api/invoices", token, body).await;
    assert_eq!(s, 201, "{b}");
    b
}

pub(crate) async fn validated(srv: &TestServer, token: &str, body: Value) -> Value {
    let d = draft(srv, token, body).await;
    let (s, b) = post(srv, &format!("/api/invoices/{}/validate", d["id"].as_str().unwrap()), token, json!({})).await;
    assert_eq!(s, 200, "{b}");
    b
}

fn totals(b: &Value) -> (i64, i64, i64, i64, i64) {
    let n = |k: &str| b[k].as_i64().unwrap();
    (n("totalHt"), n("totalTva"), n("totalTtc"), n("timbre"), n("net"))
}

/// Scenarios 36–39, 42–44: amounts and timbre, the checks in order with no number consumed by a refusal, validated
/// invoices frozen, drafts deleted with their audit, payments and a cancelled payment.
#[tokio::test]
async fn scenarios_36_to_44_invoices_and_payments() {
    on_both(|t| async move {
        let (srv, _clock) = server(&t).await;
        let admin = bearer(&srv, Role::Admin).await;
        let commercial = bearer(&srv, Role::Commercial).await;
        let comptable = bearer(&srv, Role::Comptable).await;
        shop(&srv, &admin, &[(100_000, "2026-06-01")], 50_000).await;
        let client = new_client(&srv, &admin, "Supérette El Baraka", "000216123456789", None, json!({})).await;

        // 36 and 37: the worked amounts; the draft has no number.
        let d = draft(&srv, &commercial, invoice_36(&client, "ESPECES")).await;
        assert_eq!(totals(&d), (1_970_000, 374_300, 2_344_300, 23_500, 2_367_800));
        assert_eq!((d["status"].as_str(), d["reference"].as_str()), (Some("DRAFT"), None));
        assert_eq!(d["vat"], json!([{"rateBp": 1900, "base": 1_970_000, "tva": 374_300}]));
        assert_eq!(d["lines"][0]["priceSource"], "PRIX_CATALOGUE");
        let cheque = draft(&srv, &commercial, invoice_36(&client, "CHEQUE")).await;
        assert_eq!(totals(&cheque), (1_970_000, 374_300, 2_344_300, 0, 2_344_300));
        let id = d["id"].as_str().unwrap().to_string();

        // Bad input: COMPTABLE reads but never writes; a bad discount, a PF twice, an override without reason.
        let (s, _) = post(&srv, "/api/invoices", &comptable, invoice_36(&client, "ESPECES")).await;
        assert_eq!(s, 403);
        let mut bad = invoice_36(&client, "ESPECES");
        bad["lines"][1]["discount"] = json!(420_001);
        assert_eq!(code(&post(&srv, "/api/invoices", &commercial, bad).await.1), "REMISE_INVALIDE");
        let mut bad = invoice_36(&client, "ESPECES");
        bad["lines"][1]["productCode"] = json!("PF-GOUDA-400");
        assert_eq!(code(&post(&srv, "/api/invoices", &commercial, bad).await.1), "LIGNE_DOUBLON");
        let mut bad = invoice_36(&client, "ESPECES");
        bad["lines"][0]["unitPriceHt"] = json!(60_000);
        assert_eq!(code(&post(&srv, "/api/invoices", &commercial, bad.clone()).await.1), "MOTIF_TROP_COURT");
        bad["lines"][0]["priceReason"] = json!("Geste commercial fin de saison");
        let manual = draft(&srv, &commercial, bad).await;
        assert_eq!(
            (manual["lines"][0]["priceSource"].as_str(), manual["lines"][0]["ht"].as_i64()),
            (Some("MANUEL"), Some(1_440_000))
        );

        // The checks in order: company settings first, then the client's identifiers — and no number is consumed.
        let validate = |key: String, token: String, body: Value| {
            let srv = &srv;
            async move { post(srv, &format!("/api/invoices/{key}/validate"), &token, body).await }
        };
        let (s, b) = validate(id.clone(), commercial.clone(), json!({})).await;
        assert_eq!((s, code(&b)), (409, "PARAMETRES_SOCIETE_INCOMPLETS"), "{b}");
        company(&srv, &admin).await;
        let (s, b) = validate(id.clone(), commercial.clone(), json!({})).await;
        assert_eq!((s, code(&b)), (422, "CLIENT_IDENTIFIANTS_MANQUANTS"), "{b}");
        assert_eq!(b["error"]["details"]["liste"], json!(["AI"]));
        assert_eq!(b["error"]["message"], "Identifiants fiscaux du client manquants ou invalides : AI.");
        let (s, b) = put(
            &srv,
            &format!("/api/clients/{client}"),
            &admin,
            json!({"raisonSociale": "Supérette El Baraka",
            "wilaya": "16", "adresse": "Rue des Frères Bouadou, Bir Mourad Raïs", "nif": "000216123456789",
            "rc": "16 B 1204921 16/00", "ai": "16012345678", "clientType": "SUPERETTE"}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let (s, b) = validate(id.clone(), commercial.clone(), json!({})).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!((b["reference"].as_str(), b["invoiceDate"].as_str()), (Some("F-2025-00001"), Some("2025-03-14")));
        assert_eq!((b["status"].as_str(), b["remaining"].as_i64()), (Some("VALIDATED"), Some(2_367_800)));
        assert_eq!(b["amountInWords"], "Vingt-trois mille six cent soixante-dix-huit dinars algériens et zéro centime");
        assert_eq!(b["timbreRule"], "TIMBRE_2025");

        // 42: frozen once validated; a draft is deleted with its content kept in the audit.
        let (s, b) = put(&srv, &format!("/api/invoices/{id}"), &commercial, invoice_36(&client, "CHEQUE")).await;
        assert_eq!((s, code(&b)), (409, "FACTURE_VALIDEE_NON_MODIFIABLE"));
        let (s, b) = call(&srv, "DELETE", &format!("/api/invoices/{id}"), &commercial, None).await;
        assert_eq!((s, code(&b)), (409, "FACTURE_VALIDEE_NON_MODIFIABLE"));
        let (s, _) = validate(id.clone(), commercial.clone(), json!({})).await;
        assert_eq!(s, 409, "validating twice");
        let cheque_id = cheque["id"].as_str().unwrap();
        let (s, _) = call(&srv, "DELETE", &format!("/api/invoices/{cheque_id}"), &commercial, None).await;
        assert_eq!(s, 204);
        let deleted = audit_actions(&srv, "INVOICE_DELETED").await;
        assert_eq!(deleted.len(), 1);
        assert!(deleted[0].before.as_ref().unwrap().to_string().contains("2344300"));
        let (s, _) = call(&srv, "GET", &format!("/api/invoices/{cheque_id}"), &commercial, None).await;
        assert_eq!(s, 404);

        // 43: payments.
        let pay = |body: Value| {
            let (srv, id, token) = (&srv, id.clone(), commercial.clone());
            async move { post(srv, &format!("/api/invoices/{id}/payments"), &token, body).await }
        };
        let (s, b) = pay(json!({"method": "CHEQUE", "amount": 1_000_000})).await;
        assert_eq!((s, code(&b)), (422, "MODE_REGLEMENT_DIFFERENT"));
        assert_eq!(b["error"]["message"], "Le mode de règlement doit être celui de la facture (Espèces).");
        let (s, b) = pay(json!({"method": "ESPECES", "amount": 1_000_000})).await;
        assert_eq!(s, 201, "{b}");
        assert_eq!(
            (b["payment"]["reference"].as_str(), b["invoiceStatus"].as_str(), b["remaining"].as_i64()),
            (Some("REG-2025-00001"), Some("PARTIALLY_PAID"), Some(1_367_800))
        );
        let (s, b) = pay(json!({"method": "ESPECES", "amount": 1_367_801})).await;
        assert_eq!((s, code(&b)), (422, "MONTANT_SUPERIEUR_RESTANT"));
        assert_eq!(b["error"]["message"], "Le montant dépasse le reste à payer (13\u{202F}678,00\u{A0}DA).");
        let (s, b) = pay(json!({"method": "ESPECES", "amount": 1_367_800, "date": "2025-03-15"})).await;
        assert_eq!((s, code(&b)), (422, "DATE_INVALIDE"));
        let (s, b) = pay(json!({"method": "ESPECES", "amount": 1_367_800})).await;
        assert_eq!((s, b["invoiceStatus"].as_str(), b["remaining"].as_i64()), (201, Some("PAID"), Some(0)));
        let (s, b) = pay(json!({"method": "ESPECES", "amount": 100})).await;
        assert_eq!((s, code(&b)), (409, "FACTURE_STATUT_INVALIDE"));

        // 44: cancelling the second payment (ADMIN, with a reason) brings the invoice back to PARTIALLY_PAID.
        let (s, _) = post(
            &srv,
            "/api/payments/REG-2025-00002/cancel",
            &commercial,
            json!({"reason": "Erreur de saisie caisse"}),
        )
        .await;
        assert_eq!(s, 403);
        let (s, b) = post(&srv, "/api/payments/REG-2025-00002/cancel", &admin, json!({"reason": "Erreur"})).await;
        assert_eq!((s, code(&b)), (422, "MOTIF_TROP_COURT"));
        let (s, b) =
            post(&srv, "/api/payments/REG-2025-00002/cancel", &admin, json!({"reason": "Erreur de saisie caisse"}))
                .await;
        assert_eq!((s, b["status"].as_str()), (200, Some("ANNULE")), "{b}");
        let inv = get(&srv, &format!("/api/invoices/{id}"), &comptable).await;
        assert_eq!(
            (inv["status"].as_str(), inv["remaining"].as_i64(), inv["paid"].as_i64()),
            (Some("PARTIALLY_PAID"), Some(1_367_800), Some(1_000_000))
        );
        let st = get(&srv, &format!("/api/clients/{client}/statement"), &comptable).await;
        assert_eq!((st["balance"].as_i64(), st["aging"]["d0_30"].as_i64()), (Some(1_367_800), Some(1_367_800)));

        // 39: the first invoice of 2026 is F-2026-00001 (numbers per year of the validation date).
        _clock.set(DateTime::parse_from_rfc3339("2026-01-01T08:00:00Z").unwrap().with_timezone(&Utc));
        let admin = bearer(&srv, Role::Admin).await;
        let b = validated(
            &srv,
            &admin,
            json!({"clientCode": client, "paymentMethod": "VIREMENT",
            "lines": [{"productCode": "PF-GOUDA-400", "quantity": 1_000}]}),
        )
        .await;
        assert_eq!(b["reference"], "F-2026-00001");
        let v = store::stock::numbering_gaps(srv.state.dbmon.db()).await.unwrap();
        assert!(v.is_empty(), "{v:?}");
    })
    .await;
}

/// Scenarios 40–41: availability net of what validated invoices already commit, and the credit limit with the
/// ADMIN's audited override.
#[tokio::test]
async fn scenarios_40_41_availability_and_credit_limit() {
    on_both(|t| async move {
        let (srv, _clock) = server(&t).await;
        let admin = bearer(&srv, Role::Admin).await;
        let commercial = bearer(&srv, Role::Commercial).await;
        company(&srv, &admin).await;
        shop(&srv, &admin, &[(100_000, "2025-06-01")], 50_000).await;
        let other = new_client(&srv, &admin, "Grossiste Amine", "000216123456780", Some("16012345670"), json!({})).await;
        let client = new_client(&srv, &admin, "Supérette El Baraka", "000216123456789", Some("16012345678"),
            json!({"creditLimit": 50_000_000})).await;

        // 41: 70 Gouda committed to another client's invoice; 40 more is refused, 30 passes.
        validated(&srv, &commercial, json!({"clientCode": other, "paymentMethod": "CHEQUE",
            "lines": [{"productCode": "PF-GOUDA-400", "quantity": 70_000}]})).await;
        let forty = draft(&srv, &commercial, json!({"clientCode": client, "paymentMethod": "CHEQUE",
            "lines": [{"productCode": "PF-GOUDA-400", "quantity": 40_000}]})).await;
        let (s, b) = post(&srv, &format!("/api/invoices/{}/validate", forty["id"].as_str().unwrap()), &commercial, json!({})).await;
        assert_eq!((s, code(&b)), (409, "STOCK_NON_DISPONIBLE"), "{b}");
        assert_eq!(b["error"]["details"]["lignes"][0]["available"], 30_000);
        assert_eq!(b["error"]["message"], "Stock disponible insuffisant (stock 100\u{A0}pcs, engagé 70\u{A0}pcs, disponible 30\u{A0}pcs) pour PF-GOUDA-400.");
        let thirty = validated(&srv, &commercial, json!({"clientCode": client, "paymentMethod": "CHEQUE",
            "lines": [{"productCode": "PF-GOUDA-400", "quantity": 30_000, "unitPriceHt": 1_541_333, "priceReason": "Prix négocié sur volume",
                       "tvaRate": 0}]})).await;
        assert_eq!(thirty["reference"], "F-2025-00002");
        // 30 × 15 413,33 DA = 462 399,90 DA; a second 17 600,10 DA brings the outstanding to 480 000,00 DA.
        assert_eq!(thirty["net"], 46_239_990);
        validated(&srv, &commercial, json!({"clientCode": client, "paymentMethod": "CHEQUE",
            "lines": [{"productCode": "PF-FONDU-800", "quantity": 1_000, "unitPriceHt": 1_760_010, "priceReason": "Prix négocié sur volume",
                       "tvaRate": 0}]})).await;
        let st = get(&srv, &format!("/api/clients/{client}/statement"), &commercial).await;
        assert_eq!(st["outstanding"], 48_000_000);

        // 40: outstanding 480 000,00 + 23 678,00 > 500 000,00 (with Gouda in stock again).
        pf_lot(&srv, "PF-GOUDA-400", "GOUDA-T9", 50_000, Some("2025-06-01"), 30_000).await;
        let d = draft(&srv, &commercial, invoice_36(&client, "ESPECES")).await;
        let key = d["id"].as_str().unwrap().to_string();
        let path = format!("/api/invoices/{key}/validate");
        let (s, b) = post(&srv, &path, &commercial, json!({})).await;
        assert_eq!((s, code(&b)), (409, "PLAFOND_CREDIT_DEPASSE"), "{b}");
        assert_eq!(b["error"]["details"]["ecart"], 367_800);
        assert_eq!(b["error"]["message"], "Plafond de crédit dépassé : encours 480\u{202F}000,00\u{A0}DA + facture 23\u{202F}678,00\u{A0}DA > plafond 500\u{202F}000,00\u{A0}DA (dépassement 3\u{202F}678,00\u{A0}DA).");
        let (s, b) = post(&srv, &path, &commercial, json!({"overrideReason": "Client historique, accord direction"})).await;
        assert_eq!((s, code(&b)), (403, "ACCES_REFUSE"));
        let (s, b) = post(&srv, &path, &admin, json!({"overrideReason": "Client historique, accord direction"})).await;
        assert_eq!((s, b["reference"].as_str()), (200, Some("F-2025-00004")), "{b}");
        assert_eq!(b["creditOverrideReason"], "Client historique, accord direction");
        let audit = audit_actions(&srv, "INVOICE_VALIDATED").await;
        assert_eq!(audit.last().unwrap().reason.as_deref(), Some("Client historique, accord direction"));
    })
    .await;
}

/// Scenarios 6–7 through the API: tiers, expiry of a list, overlap refused; a draft whose tariff changed is refused
/// with `PRIX_MODIFIES`.
#[tokio::test]
async fn scenarios_6_7_price_lists() {
    on_both(|t| async move {
        let (srv, _clock) = server(&t).await;
        let admin = bearer(&srv, Role::Admin).await;
        let commercial = bearer(&srv, Role::Commercial).await;
        company(&srv, &admin).await;
        shop(&srv, &admin, &[(600_000, "2025-06-01")], 0).await;
        let client = new_client(
            &srv,
            &admin,
            "Grossiste Amine",
            "000216123456780",
            Some("16012345670"),
            json!({"clientType": "GROSSISTE"}),
        )
        .await;
        let list = json!({"name": "Grossistes 2025", "clientType": "GROSSISTE", "validFrom": "2025-01-01", "items": [
            {"productCode": "PF-GOUDA-400", "minQuantity": 0, "unitPriceHt": 64_000},
            {"productCode": "PF-GOUDA-400", "minQuantity": 50_000, "unitPriceHt": 61_000},
            {"productCode": "PF-GOUDA-400", "minQuantity": 200_000, "unitPriceHt": 59_000}]});
        let (s, _) = post(&srv, "/api/price-lists", &commercial, list.clone()).await;
        assert_eq!(s, 403);
        let (s, b) = post(&srv, "/api/price-lists", &admin, list.clone()).await;
        assert_eq!(s, 201, "{b}");
        let list_id = b["id"].as_str().unwrap().to_string();
        for (q, price) in [(30_000, 64_000), (50_000, 61_000), (199_000, 61_000), (500_000, 59_000)] {
            let d = draft(
                &srv,
                &commercial,
                json!({"clientCode": client, "lines": [{"productCode": "PF-GOUDA-400", "quantity": q}]}),
            )
            .await;
            assert_eq!(
                (d["lines"][0]["unitPriceHt"].as_i64(), d["lines"][0]["priceSource"].as_str()),
                (Some(price), Some("TARIF")),
                "q = {q}"
            );
        }
        let mut march = list.clone();
        march["validFrom"] = json!("2025-03-01");
        march["validTo"] = json!("2025-03-31");
        let (s, b) = post(&srv, "/api/price-lists", &admin, march).await;
        assert_eq!((s, code(&b)), (409, "TARIF_CHEVAUCHEMENT"));
        assert_eq!(b["error"]["message"], "Un autre tarif GROSSISTE est valide sur cette période.");

        // A draft priced from the list, then the list ends yesterday: validation asks to recalculate.
        let d = draft(
            &srv,
            &commercial,
            json!({"clientCode": client, "lines": [{"productCode": "PF-GOUDA-400", "quantity": 30_000}]}),
        )
        .await;
        let mut ended = list.clone();
        ended["validTo"] = json!("2025-03-13");
        let (s, b) = put(&srv, &format!("/api/price-lists/{list_id}"), &admin, ended).await;
        assert_eq!(s, 200, "{b}");
        let (s, b) =
            post(&srv, &format!("/api/invoices/{}/validate", d["id"].as_str().unwrap()), &commercial, json!({})).await;
        assert_eq!((s, code(&b)), (409, "PRIX_MODIFIES"), "{b}");
        assert_eq!(b["error"]["details"]["lignes"][0]["prixActuel"], 65_000);
        // Recalculating (saving the draft again) takes the list price.
        let body = json!({"clientCode": client, "lines": [{"productCode": "PF-GOUDA-400", "quantity": 30_000}]});
        let (s, b) = put(&srv, &format!("/api/invoices/{}", d["id"].as_str().unwrap()), &commercial, body).await;
        assert_eq!(
            (s, b["lines"][0]["unitPriceHt"].as_i64(), b["lines"][0]["priceSource"].as_str()),
            (200, Some(65_000), Some("PRIX_CATALOGUE"))
        );
        let (s, _) =
            post(&srv, &format!("/api/invoices/{}/validate", d["id"].as_str().unwrap()), &commercial, json!({})).await;
        assert_eq!(s, 200);

        // UI.md rows 60–61: a list made through its form (prices as typed), then "Tester un prix" on its card.
        let (web, csrf) = crate::support::web_session(&srv, &crate::support::email_of(Role::Admin)).await;
        let form = |price: &str| {
            vec![
                ("_csrf", csrf.clone()),
                ("name", "Fast-food 2025".to_string()),
                ("client_type", "FAST_FOOD".to_string()),
                ("valid_from", "2025-01-01".to_string()),
                ("active", "on".to_string()),
                ("product_0", "PF-GOUDA-400".to_string()),
                ("min_0", "0".to_string()),
                ("price_0", price.to_string()),
                ("product_1", "PF-GOUDA-400".to_string()),
                ("min_1", "100".to_string()),
                ("price_1", "600".to_string()),
            ]
        };
        let r = web.post(srv.url("/ventes/tarifs/nouveau")).form(&form("six cents")).send().await.unwrap();
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap().contains("Palier 1 : prix HT attendu en dinars, par exemple 610,00."));
        let r = web.post(srv.url("/ventes/tarifs/nouveau")).form(&form("630,50")).send().await.unwrap();
        assert_eq!(r.status(), 303);
        let card = r.headers()["location"].to_str().unwrap().to_string();
        let test = |qty: &str| {
            let (web, url) = (&web, srv.url(&format!("{card}?type=FAST_FOOD&produit=PF-GOUDA-400&quantite={qty}")));
            async move { web.get(url).send().await.unwrap().text().await.unwrap() }
        };
        let page = test("120").await;
        assert!(page.contains("600,00\u{A0}DA HT l&#39;unité — source : Tarif (ce tarif)"), "{page}");
        assert!(test("10").await.contains("630,50\u{A0}DA HT"));
        let other = web
            .get(srv.url(&format!("{card}?type=SUPERETTE&produit=PF-GOUDA-400&quantite=10")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(other.contains("650,00\u{A0}DA HT l&#39;unité — source : Prix catalogue."), "{other}");
        let (s, _) = call(&srv, "GET", "/api/price-lists", &commercial, None).await;
        assert_eq!(s, 200);
    })
    .await;
}

async fn scan(srv: &TestServer, token: &str, payload: &str, command: Option<&str>) -> (u16, Value) {
    post(srv, "/api/deliveries/scan", token, json!({"payload": payload, "commandId": command})).await
}

const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

/// Scenarios 48–52: BLs, the QR scan that ships FEFO exactly once, second scans and replays, forged and unexpected
/// codes logged and audited, remaining-to-deliver, cancellation, the proof of delivery.
#[tokio::test]
async fn scenarios_48_to_52_deliveries() {
    on_both(|t| async move {
        let (srv, _clock) = server(&t).await;
        let admin = bearer(&srv, Role::Admin).await;
        let commercial = bearer(&srv, Role::Commercial).await;
        company(&srv, &admin).await;
        shop(&srv, &admin, &[(20_000, "2025-05-01"), (30_000, "2025-04-01")], 10_000).await;
        let client =
            new_client(&srv, &admin, "Supérette El Baraka", "000216123456789", Some("16012345678"), json!({})).await;
        let inv = validated(&srv, &commercial, invoice_36(&client, "ESPECES")).await;
        let invoice = inv["reference"].as_str().unwrap().to_string();

        // 51: BL1 of 20, a BL of 5 is over what remains (4); cancelling BL1 gives the 20 back.
        let bl = |lines: Value| {
            let (srv, token, invoice) = (&srv, commercial.clone(), invoice.clone());
            async move { post(srv, "/api/deliveries", &token, json!({"invoice": invoice, "lines": lines})).await }
        };
        let (s, bl1) = bl(json!([{"lineNo": 1, "quantity": 20_000}])).await;
        assert_eq!(
            (s, bl1["reference"].as_str(), bl1["status"].as_str()),
            (201, Some("LIV-2025-00001"), Some("PENDING")),
            "{bl1}"
        );
        let (s, b) = bl(json!([{"lineNo": 1, "quantity": 5_000}])).await;
        assert_eq!((s, code(&b)), (422, "QUANTITE_A_LIVRER_DEPASSEE"));
        assert_eq!(b["error"]["details"]["reste"], 4_000);
        assert_eq!(b["error"]["message"], "Quantité à livrer supérieure au reste à livrer (4\u{A0}pcs).");
        let (s, b) = post(&srv, "/api/deliveries/LIV-2025-00001/cancel", &commercial, json!({"reason": "Abs"})).await;
        assert_eq!((s, code(&b)), (422, "MOTIF_TROP_COURT"));
        let (s, b) =
            post(&srv, "/api/deliveries/LIV-2025-00001/cancel", &commercial, json!({"reason": "Client absent"})).await;
        assert_eq!((s, b["status"].as_str()), (200, Some("CANCELLED")));
        let i = get(&srv, &format!("/api/invoices/{invoice}"), &commercial).await;
        assert_eq!(i["lines"][0]["remainingToDeliver"], 24_000);

        // 48: a BL for 24 Gouda (tout le reste: the Fondu too), scanned: 24 leave FEFO (the April lot first).
        let (s, bl2) = post(&srv, "/api/deliveries", &commercial, json!({"invoice": invoice})).await;
        assert_eq!(s, 201, "{bl2}");
        let qr = bl2["qr"].as_str().unwrap().to_string();
        assert!(qr.starts_with(&format!("MCG:DLV:{}:LIV-2025-00002:", bl2["id"].as_str().unwrap())), "{qr}");
        let (s, b) = scan(&srv, &commercial, &qr, Some("cmd-1")).await;
        assert_eq!((s, b["status"].as_str()), (200, Some("VALIDATED")), "{b}");
        assert_eq!(b["lines"][0]["lots"], json!([{"lot": "GOUDA-T1", "dlc": "2025-04-01", "quantity": 24_000}]));
        assert_eq!((lot_left(&srv, "GOUDA-T1").await, lot_left(&srv, "GOUDA-T0").await), (6_000, 20_000));
        assert_eq!(sale_movements(&srv).await, 2);
        // A second scan: refused with the first validation's date and validator; nothing moves.
        let (s, b) = scan(&srv, &commercial, &qr, Some("cmd-2")).await;
        assert_eq!((s, code(&b)), (409, "LIVRAISON_DEJA_VALIDEE"), "{b}");
        assert_eq!(b["error"]["details"]["date"], "14/03/2025 10:00");
        assert!(b["error"]["message"].as_str().unwrap().starts_with("Livraison déjà validée le 14/03/2025 10:00 par "));
        assert_eq!(sale_movements(&srv).await, 2);

        // 52: delivered needs a name and a signature.
        let path = "/api/deliveries/LIV-2025-00002/deliver";
        let (s, b) = post(&srv, path, &commercial, json!({"recipientName": "Mourad"})).await;
        assert_eq!((s, code(&b)), (422, "SIGNATURE_REQUISE"));
        let (s, b) = post(
            &srv,
            path,
            &commercial,
            json!({"recipientName": "Mourad", "signaturePng": PNG,
            "gps": {"lat": 36.75, "lon": 3.04, "accuracy": 12.0}}),
        )
        .await;
        assert_eq!(
            (s, b["status"].as_str(), b["recipientName"].as_str()),
            (200, Some("DELIVERED"), Some("Mourad")),
            "{b}"
        );
        let r = crate::support::client()
            .get(srv.url("/api/deliveries/LIV-2025-00002/proof/signature"))
            .bearer_auth(&commercial)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-type"], "image/png");

        // 49: a scan after delivery is refused; replaying the validating command returns its first success.
        let (s, b) = scan(&srv, &commercial, &qr, None).await;
        assert_eq!((s, code(&b)), (409, "LIVRAISON_DEJA_VALIDEE"));
        let (s, b) = scan(&srv, &commercial, &qr, Some("cmd-1")).await;
        assert_eq!((s, b["reference"].as_str()), (200, Some("LIV-2025-00002")), "{b}");
        assert_eq!(sale_movements(&srv).await, 2);

        // 50: one mac character altered → QR_SIGNATURE_INVALIDE, logged and audited; a lot label → QR_TYPE_INATTENDU.
        let mut altered = qr.clone();
        let last = altered.pop().unwrap();
        altered.push(if last == 'a' { 'b' } else { 'a' });
        let (s, b) = scan(&srv, &commercial, &altered, None).await;
        assert_eq!(
            (s, code(&b), b["error"]["message"].as_str()),
            (422, "QR_SIGNATURE_INVALIDE", Some("QR code non authentique."))
        );
        let secret = srv.state.secrets.get().unwrap().qr.clone();
        let (s, b) = scan(&srv, &commercial, &domain::delivery::lot_payload(&secret, "GOUDA-T0"), None).await;
        assert_eq!((s, code(&b)), (422, "QR_TYPE_INATTENDU"));
        let log = store::delivery::scans_of(srv.state.dbmon.db().conn(), "LIV-2025-00002").await.unwrap();
        let outcomes: Vec<&str> = log.iter().map(|r| r.outcome.as_str()).collect();
        assert_eq!(
            outcomes,
            vec!["OK", "LIVRAISON_DEJA_VALIDEE", "LIVRAISON_DEJA_VALIDEE", "OK", "QR_SIGNATURE_INVALIDE"]
        );
        assert!(log.iter().all(|r| r.payload_hash.as_deref().is_some_and(|h| h.len() == 64)));
        assert_eq!(audit_actions(&srv, "QR_REFUSED").await.len(), 2);

        // Traceability follows the goods to the client (scenario 35 forward, recall "clients à appeler").
        let tr = get(&srv, "/api/trace?lot=GOUDA-T1&direction=FORWARD", &admin).await;
        assert_eq!(tr["forward"]["deliveries"][0]["delivery"], "LIV-2025-00002");
        assert_eq!(
            (
                tr["forward"]["deliveries"][0]["clientCode"].as_str(),
                tr["forward"]["deliveries"][0]["quantity"].as_i64()
            ),
            (Some(client.as_str()), Some(24_000))
        );
        let rc = get(&srv, "/api/trace/recall?lot=GOUDA-T1", &admin).await;
        assert_eq!(
            (rc["clients"][0]["delivery"].as_str(), rc["totals"]["delivered"].as_i64()),
            (Some("LIV-2025-00002"), Some(24_000))
        );

        // The invoice shows what left; the ledger is whole.
        let i = get(&srv, &format!("/api/invoices/{invoice}"), &commercial).await;
        assert_eq!(
            (i["lines"][0]["delivered"].as_i64(), i["lines"][0]["remainingToDeliver"].as_i64()),
            (Some(24_000), Some(0))
        );
        let v = store::stock::check(srv.state.dbmon.db()).await.unwrap();
        assert!(v.is_empty(), "{v:?}");
    })
    .await;
}

/// A server with the company, 100 Gouda (DLC `gouda_dlc`) and 50 Fondu in stock, and a client with every identifier.
pub(crate) struct Shop {
    pub srv: TestServer,
    pub clock: Arc<ManualClock>,
    pub admin: String,
    pub commercial: String,
    pub client: String,
}

pub(crate) async fn open_shop(t: &crate::support::TestDb, gouda_dlc: &str) -> Shop {
    let (srv, clock) = server(t).await;
    let admin = bearer(&srv, Role::Admin).await;
    let commercial = bearer(&srv, Role::Commercial).await;
    company(&srv, &admin).await;
    shop(&srv, &admin, &[(100_000, gouda_dlc)], 50_000).await;
    let client =
        new_client(&srv, &admin, "Supérette El Baraka", "000216123456789", Some("16012345678"), json!({})).await;
    Shop { srv, clock, admin, commercial, client }
}

/// UI.md row 74: a BL prepared from its page, line by line, with the vehicle and the driver; a bad quantity is
/// shown on its field and nothing is created.
#[tokio::test]
async fn a_delivery_note_is_prepared_line_by_line_from_its_page() {
    on_both(|t| async move {
        let Shop { srv, commercial, client, .. } = open_shop(&t, "2025-06-01").await;
        let inv = validated(&srv, &commercial, invoice_36(&client, "ESPECES")).await;
        let number = inv["reference"].as_str().unwrap().to_string();
        let (web, csrf) = crate::support::web_session(&srv, &crate::support::email_of(Role::Commercial)).await;
        let path = format!("/livraisons/nouvelle?facture={number}");
        let page = web.get(srv.url(&path)).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("Gouda 400 g (PF-GOUDA-400)") && page.contains("value=\"24\""), "{page}");
        let form = |gouda: &str| {
            vec![
                ("_csrf", csrf.clone()),
                ("line_0", "1".to_string()),
                ("qty_0", gouda.to_string()),
                ("line_1", "2".to_string()),
                ("qty_1", String::new()),
                ("vehicle", "00123-118-16".to_string()),
                ("driver_name", "Karim".to_string()),
            ]
        };
        let r = web.post(srv.url(&path)).form(&form("douze")).send().await.unwrap();
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap().contains("Quantité attendue, par exemple 12 ou 12,5."));
        let r = web.post(srv.url(&path)).form(&form("30")).send().await.unwrap();
        assert_eq!(r.status(), 422, "more than what remains");
        let r = web.post(srv.url(&path)).form(&form("5")).send().await.unwrap();
        assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (303, "/livraisons/LIV-2025-00001"));
        let bl = get(&srv, "/api/deliveries/LIV-2025-00001", &commercial).await;
        assert_eq!(bl["lines"].as_array().unwrap().len(), 1, "the Fondu stays for another BL: {bl}");
        assert_eq!((bl["lines"][0]["quantity"].as_i64(), bl["vehicle"].as_str(), bl["driverName"].as_str()), (Some(5_000), Some("00123-118-16"), Some("Karim")));
        let i = get(&srv, &format!("/api/invoices/{number}"), &commercial).await;
        assert_eq!((i["lines"][0]["remainingToDeliver"].as_i64(), i["lines"][1]["remainingToDeliver"].as_i64()), (Some(19_000), Some(10_000)));

        // Delivered without JavaScript: the signature is a PNG file sent in a multipart form (UI.md row 75).
        let (s, b) = post(&srv, "/api/deliveries/LIV-2025-00001/validate", &commercial, json!({"note": "Remis en main propre"})).await;
        assert_eq!(s, 200, "{b}");
        // The bytes of PNG (a 1 × 1 image).
        let png: Vec<u8> = vec![137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 31, 21, 196, 137, 0, 0, 0, 13, 73, 68, 65, 84, 120, 218, 99, 100, 248, 207, 80, 15, 0, 3, 134, 1, 128, 90, 52, 125, 107, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130];
        let multipart = |file: &[u8], name: &str| {
            let mut body = Vec::new();
            for (k, v) in [("_csrf", csrf.as_str()), ("recipient_name", name), ("signature", "")] {
                body.extend_from_slice(format!("--XbOuNdArY\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes());
            }
            body.extend_from_slice(b"--XbOuNdArY\r\nContent-Disposition: form-data; name=\"signature_file\"; filename=\"signature.png\"\r\nContent-Type: image/png\r\n\r\n");
            body.extend_from_slice(file);
            body.extend_from_slice(b"\r\n--XbOuNdArY--\r\n");
            body
        };
        let send = |body: Vec<u8>| {
            web.post(srv.url("/livraisons/LIV-2025-00001/livrer"))
                .header("content-type", "multipart/form-data; boundary=XbOuNdArY")
                .body(body)
                .send()
        };
        // A JPEG passed off as the signature is refused; nothing changes.
        let r = send(multipart(&[0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3], "Mourad")).await.unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(get(&srv, "/api/deliveries/LIV-2025-00001", &commercial).await["status"], "VALIDATED");
        let r = send(multipart(&png, "Mourad Benali")).await.unwrap();
        assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (303, "/livraisons/LIV-2025-00001"));
        let bl = get(&srv, "/api/deliveries/LIV-2025-00001", &commercial).await;
        assert_eq!((bl["status"].as_str(), bl["recipientName"].as_str()), (Some("DELIVERED"), Some("Mourad Benali")));
        let stored = crate::support::client()
            .get(srv.url("/api/deliveries/LIV-2025-00001/proof/signature"))
            .bearer_auth(&commercial)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(stored.to_vec(), png, "the file is the proof, byte for byte");
    })
    .await;
}

/// Scenarios 45–46: a partial credit note with a return into quarantine, and a full one that releases the
/// commitment and leaves the invoice CREDITED.
#[tokio::test]
async fn scenarios_45_46_credit_notes() {
    on_both(|t| async move {
        let Shop { srv, admin, commercial, client, .. } = open_shop(&t, "2025-05-01").await;

        // 45: delivered invoice, 4 Gouda come back.
        let inv = validated(&srv, &commercial, invoice_36(&client, "ESPECES")).await;
        let invoice = inv["reference"].as_str().unwrap().to_string();
        let (_, bl) = post(&srv, "/api/deliveries", &commercial, json!({"invoice": invoice})).await;
        let (s, _) = post(
            &srv,
            &format!("/api/deliveries/{}/validate", bl["reference"].as_str().unwrap()),
            &commercial,
            json!({"note": "QR illisible, confirmé par téléphone"}),
        )
        .await;
        assert_eq!(s, 200);
        let path = format!("/api/invoices/{invoice}/credit-notes");
        let (s, b) = post(
            &srv,
            &path,
            &commercial,
            json!({"reason": "Retour", "lines": [{"lineNo": 1, "kind": "RETOUR", "quantity": 4_000}]}),
        )
        .await;
        assert_eq!((s, code(&b)), (422, "MOTIF_TROP_COURT"));
        let (s, note) = post(
            &srv,
            &path,
            &commercial,
            json!({"reason": "Emballages abîmés à la livraison",
            "lines": [{"lineNo": 1, "kind": "RETOUR", "quantity": 4_000}]}),
        )
        .await;
        assert_eq!(s, 201, "{note}");
        assert_eq!((note["status"].as_str(), note["reference"].as_str()), (Some("DRAFT"), None));
        let key = note["id"].as_str().unwrap().to_string();
        let (s, _) = post(&srv, &format!("/api/credit-notes/{key}/validate"), &commercial, json!({})).await;
        assert_eq!(s, 403, "validating a credit note is ADMIN's");
        let (s, note) = post(&srv, &format!("/api/credit-notes/{key}/validate"), &admin, json!({})).await;
        assert_eq!(s, 200, "{note}");
        assert_eq!(note["reference"], "AV-2025-00001");
        assert_eq!(totals(&note), (260_000, 49_400, 309_400, 3_100, 312_500));
        assert_eq!(note["lines"][0]["returnLot"], "RET250314-001");
        let ret = store::stock::lot_by_number(srv.state.dbmon.db().conn(), "RET250314-001").await.unwrap().unwrap();
        assert_eq!((ret.status.as_str(), ret.quantity_remaining, ret.unit_cost), ("QUARANTINE", 4_000, 30_000));
        assert_eq!(ret.dlc.map(|d| d.to_string()).as_deref(), Some("2025-05-01"));
        let i = get(&srv, &format!("/api/invoices/{invoice}"), &commercial).await;
        assert_eq!(
            (i["remaining"].as_i64(), i["credited"].as_i64(), i["status"].as_str()),
            (Some(2_055_300), Some(312_500), Some("VALIDATED"))
        );

        // 46: an undelivered, unpaid invoice credited in full: CREDITED, net exactly, commitment released.
        let inv2 = validated(&srv, &commercial, invoice_36(&client, "ESPECES")).await;
        let gouda =
            store::catalogue::product_by_code(srv.state.dbmon.db().conn(), "PF-GOUDA-400").await.unwrap().unwrap();
        let committed = store::sales::committed_by_product(srv.state.dbmon.db().conn()).await.unwrap();
        assert_eq!(committed.get(&gouda.id).copied(), Some(24_000));
        let (s, note) = post(
            &srv,
            &format!("/api/invoices/{}/credit-notes", inv2["reference"].as_str().unwrap()),
            &commercial,
            json!({"reason": "Commande annulée par le client", "total": true}),
        )
        .await;
        assert_eq!(s, 201, "{note}");
        let (s, note) =
            post(&srv, &format!("/api/credit-notes/{}/validate", note["id"].as_str().unwrap()), &admin, json!({}))
                .await;
        assert_eq!(
            (s, note["net"].as_i64(), note["reference"].as_str()),
            (200, Some(2_367_800), Some("AV-2025-00002")),
            "{note}"
        );
        let i = get(&srv, &format!("/api/invoices/{}", inv2["reference"].as_str().unwrap()), &commercial).await;
        assert_eq!((i["status"].as_str(), i["remaining"].as_i64()), (Some("CREDITED"), Some(0)));
        let committed = store::sales::committed_by_product(srv.state.dbmon.db().conn()).await.unwrap();
        assert_eq!(committed.get(&gouda.id).copied().unwrap_or(0), 0);
        // Nothing more can be credited, paid or delivered on it.
        let (s, b) = post(
            &srv,
            &format!("/api/invoices/{}/credit-notes", inv2["reference"].as_str().unwrap()),
            &commercial,
            json!({"reason": "Commande annulée par le client", "total": true}),
        )
        .await;
        assert_eq!((s, code(&b)), (409, "FACTURE_STATUT_INVALIDE"));
        let st = get(&srv, &format!("/api/clients/{client}/statement"), &admin).await;
        assert_eq!(st["balance"], 2_055_300);
        let v = store::stock::check(srv.state.dbmon.db()).await.unwrap();
        assert!(v.is_empty(), "{v:?}");
        assert!(store::stock::numbering_gaps(srv.state.dbmon.db()).await.unwrap().is_empty());
    })
    .await;
}

/// Two devices scan the same BL at the same instant: one validates, the other is told it is already validated;
/// stock leaves once. Validations racing (one of them refused) keep the invoice numbers gapless.
#[tokio::test]
async fn concurrent_scans_ship_once_and_racing_validations_keep_numbers_gapless() {
    on_both(|t| async move {
        let (srv, _clock) = server(&t).await;
        let admin = bearer(&srv, Role::Admin).await;
        let commercial = bearer(&srv, Role::Commercial).await;
        company(&srv, &admin).await;
        shop(&srv, &admin, &[(500_000, "2025-05-01")], 50_000).await;
        let client =
            new_client(&srv, &admin, "Supérette El Baraka", "000216123456789", Some("16012345678"), json!({})).await;
        let poor = new_client(&srv, &admin, "Sans AI", "000216123456780", None, json!({})).await;

        let inv = validated(&srv, &commercial, invoice_36(&client, "ESPECES")).await;
        let (_, bl) = post(&srv, "/api/deliveries", &commercial, json!({"invoice": inv["reference"]})).await;
        let qr = bl["qr"].as_str().unwrap().to_string();
        let (a, b) = tokio::join!(scan(&srv, &commercial, &qr, Some("dev-a")), scan(&srv, &admin, &qr, Some("dev-b")));
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
        let refused = if a.0 == 409 { &a.1 } else { &b.1 };
        assert_eq!(code(refused), "LIVRAISON_DEJA_VALIDEE");
        assert_eq!(sale_movements(&srv).await, 2);
        assert_eq!(lot_left(&srv, "GOUDA-T0").await, 476_000);

        // Six drafts (one for a client without AI) validated at once: five numbers, consecutive.
        let mut keys = Vec::new();
        for i in 0..6 {
            let who = if i == 3 { &poor } else { &client };
            let d = draft(
                &srv,
                &commercial,
                json!({"clientCode": who, "paymentMethod": "CHEQUE",
                "lines": [{"productCode": "PF-GOUDA-400", "quantity": 1_000}]}),
            )
            .await;
            keys.push(d["id"].as_str().unwrap().to_string());
        }
        let calls = keys.iter().map(|k| {
            let (srv, token) = (&srv, commercial.clone());
            async move { post(srv, &format!("/api/invoices/{k}/validate"), &token, json!({})).await }
        });
        let results = futures_util::future::join_all(calls).await;
        let mut refs: Vec<String> = results
            .iter()
            .filter(|(s, _)| *s == 200)
            .map(|(_, b)| b["reference"].as_str().unwrap().to_string())
            .collect();
        refs.sort();
        assert_eq!(refs, (2..=6).map(|n| format!("F-2025-{n:05}")).collect::<Vec<_>>());
        assert_eq!(results.iter().filter(|(_, b)| code(b) == "CLIENT_IDENTIFIANTS_MANQUANTS").count(), 1);
        assert!(store::stock::numbering_gaps(srv.state.dbmon.db()).await.unwrap().is_empty());
    })
    .await;
}

/// Scenarios 44, 64, 65: the accounting exports of March — the sales journal without drafts, the entries CSV with
/// the invoice's balanced piece and a cancelled payment's reversal, the G50 net of deductible TVA.
#[tokio::test]
async fn scenarios_44_64_65_accounting_exports() {
    on_both(|t| async move {
        let Shop { srv, admin, commercial, client, .. } = open_shop(&t, "2025-06-01").await;
        let comptable = bearer(&srv, Role::Comptable).await;
        for (path, body) in [
            ("/api/suppliers", json!({"raisonSociale": "Laiterie du Djurdjura SARL", "nif": "000216123456700"})),
            ("/api/catalogue/mp", json!({"code": "MP-LAIT", "name": "Lait cru", "category": "RAW_MATERIAL", "baseUnit": "KG"})),
            ("/api/receptions", json!({"supplierCode": "FOUR-0001", "lines": [{"productCode": "MP-LAIT", "quantity": 100_000,
                "unitCostHt": 5_000, "tvaRate": 900, "dlc": "2025-03-20"}]})),
        ] {
            let (s, b) = post(&srv, path, &admin, body).await;
            assert_eq!(s, 201, "{path}: {b}");
        }
        let inv = validated(&srv, &commercial, invoice_36(&client, "ESPECES")).await;
        let number = inv["reference"].as_str().unwrap().to_string();
        draft(&srv, &commercial, invoice_36(&client, "CHEQUE")).await;
        let (s, b) = post(&srv, &format!("/api/invoices/{number}/payments"), &commercial, json!({"method": "ESPECES", "amount": 1_367_800})).await;
        assert_eq!(s, 201, "{b}");
        let (s, _) = post(&srv, "/api/payments/REG-2025-00001/cancel", &admin, json!({"reason": "Erreur de saisie caisse"})).await;
        assert_eq!(s, 200);

        let period = "from=2025-03-01&to=2025-03-31";
        let (s, _) = call(&srv, "GET", &format!("/api/accounting/journal-ventes?{period}"), &commercial, None).await;
        assert_eq!(s, 403);
        let j = get(&srv, &format!("/api/accounting/journal-ventes?{period}"), &comptable).await;
        assert_eq!(j["rows"].as_array().unwrap().len(), 1, "a draft never appears: {j}");
        assert_eq!((j["rows"][0]["number"].as_str(), j["rows"][0]["net"].as_i64()), (Some(number.as_str()), Some(2_367_800)));

        let r = crate::support::client().get(srv.url(&format!("/api/accounting/ecritures?{period}&format=csv"))).bearer_auth(&comptable).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let csv = r.text().await.unwrap();
        assert!(csv.starts_with("date;journal;piece;compte;libelle;debit;credit;tiers\r\n"), "{csv}");
        for line in [
            format!("14/03/2025;VE;{number};411;Facture {number};23678.00;0.00;{client}"),
            format!("14/03/2025;VE;{number};701;Facture {number};0.00;19700.00;"),
            format!("14/03/2025;VE;{number};4457;Facture {number};0.00;3743.00;"),
            format!("14/03/2025;VE;{number};6411;Facture {number};0.00;235.00;"),
            "14/03/2025;CA;REG-2025-00001;53;Règlement REG-2025-00001;13678.00;0.00;".to_string(),
            format!("14/03/2025;CA;REG-2025-00001-ANNUL;411;Annulation / remboursement REG-2025-00001-ANNUL;13678.00;0.00;{client}"),
            "14/03/2025;CA;REG-2025-00001-ANNUL;53;Annulation / remboursement REG-2025-00001-ANNUL;0.00;13678.00;".to_string(),
            "14/03/2025;AC;REC-2025-00001;4456;Réception REC-2025-00001;450.00;0.00;".to_string(),
        ] {
            assert!(csv.contains(&format!("{line}\r\n")), "missing {line}\n{csv}");
        }
        let g = get(&srv, &format!("/api/accounting/g50?{period}"), &admin).await;
        assert_eq!(g["collected"], json!([{"rateBp": 1900, "base": 1_970_000, "tva": 374_300}]));
        assert_eq!(g["deductible"], json!([{"rateBp": 900, "base": 500_000, "tva": 45_000}]));
        assert_eq!((g["net"].as_i64(), g["verdict"].as_str(), g["timbre"].as_i64()), (Some(329_300), Some("TVA à payer"), Some(23_500)));
        let tj = get(&srv, &format!("/api/accounting/journal-timbre?{period}"), &admin).await;
        assert_eq!((tj["rows"][0]["timbreRule"].as_str(), tj["rows"][0]["timbreTranches"].as_i64()), (Some("TIMBRE_2025"), Some(235)));
        let r = crate::support::client().get(srv.url(&format!("/api/accounting/journal-ventes?{period}&format=xlsx"))).bearer_auth(&comptable).send().await.unwrap();
        assert_eq!(&r.bytes().await.unwrap()[..2], b"PK");

        // The client's statement (UI row 28): the invoice, the payment and its cancellation with the running balance.
        let st = get(&srv, &format!("/api/clients/{client}/statement?{period}"), &commercial).await;
        let entries: Vec<(String, i64, i64, i64)> = st["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["reference"].as_str().unwrap().to_string(), e["debit"].as_i64().unwrap(), e["credit"].as_i64().unwrap(), e["balance"].as_i64().unwrap()))
            .collect();
        assert_eq!(
            entries,
            vec![
                (number.clone(), 2_367_800, 0, 2_367_800),
                ("REG-2025-00001".into(), 0, 1_367_800, 1_000_000),
                ("REG-2025-00001-ANNUL".into(), 1_367_800, 0, 2_367_800),
            ]
        );
        assert_eq!((st["opening"].as_i64(), st["closing"].as_i64(), st["balance"].as_i64()), (Some(0), Some(2_367_800), Some(2_367_800)));
        let april = get(&srv, &format!("/api/clients/{client}/statement?from=2025-04-01&to=2025-04-30"), &comptable).await;
        assert_eq!((april["opening"].as_i64(), april["entries"].as_array().unwrap().len()), (Some(2_367_800), 0));
        let (web, _) = crate::support::web_session(&srv, &crate::support::email_of(Role::Commercial)).await;
        let page = web.get(srv.url(&format!("/clients/{client}/releve?{period}"))).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("id=\"solde-cloture\">23\u{202F}678,00\u{A0}DA"), "{page}");
        assert!(page.contains("Annulation de REG-2025-00001 : Erreur de saisie caisse"), "{page}");
        let page = web.get(srv.url(&format!("/clients/{client}/releve?from=hier&to=2025-03-31"))).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("Date invalide : format attendu JJ/MM/AAAA."), "an unreadable date is said: {page}");
        let page = web.get(srv.url(&format!("/clients/{client}/releve?from=2025-03-31&to=2025-03-01"))).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("Date invalide : la fin de la période précède son début."), "{page}");

        // The chart of accounts (ADMIN): the next export uses the new account; a bad number is refused by field.
        let mut accounts: serde_json::Map<String, Value> =
            domain::accounting::DEFAULT_CHART.iter().map(|(k, a, _)| (k.to_string(), json!(a))).collect();
        accounts.insert("CLIENTS".into(), json!("4111"));
        let (s, b) = put(&srv, "/api/settings/chart-of-accounts", &comptable, json!({"accounts": accounts})).await;
        assert_eq!(s, 403, "{b}");
        let (s, b) = put(&srv, "/api/settings/chart-of-accounts", &admin, json!({"accounts": accounts})).await;
        assert_eq!((s, b["changed"].clone()), (200, json!(["CLIENTS"])), "{b}");
        let mut bad = accounts.clone();
        bad.insert("CAISSE".into(), json!("53A"));
        let (s, b) = put(&srv, "/api/settings/chart-of-accounts", &admin, json!({"accounts": bad})).await;
        assert_eq!((s, code(&b)), (400, "VALIDATION_ERROR"));
        assert_eq!(b["error"]["details"]["fields"][0]["field"], "CAISSE");
        let r = crate::support::client().get(srv.url(&format!("/api/accounting/ecritures?{period}&format=csv"))).bearer_auth(&comptable).send().await.unwrap();
        let csv = r.text().await.unwrap();
        assert!(csv.contains(&format!("14/03/2025;VE;{number};4111;Facture {number};23678.00;0.00;{client}\r\n")), "{csv}");
        assert!(csv.contains("14/03/2025;CA;REG-2025-00001;53;"), "other accounts unchanged");

        // §19 État des stocks: March has the reception and the PF lots made; April opens on March's closing.
        let e = get(&srv, &format!("/api/accounting/etat-stocks?{period}"), &comptable).await;
        let line = |e: &Value, code: &str| e["lines"].as_array().unwrap().iter().find(|l| l["code"] == code).cloned().unwrap();
        let lait = line(&e, "MP-LAIT");
        assert_eq!(lait["opening"], json!({"quantity": 0, "value": 0}));
        assert_eq!(lait["in"]["byOrigin"], json!({"RECEPTION": {"quantity": 100_000, "value": 500_000}}));
        assert_eq!((lait["closing"]["quantity"].as_i64(), lait["closing"]["value"].as_i64()), (Some(100_000), Some(500_000)));
        let gouda = line(&e, "PF-GOUDA-400");
        assert_eq!(gouda["in"]["byOrigin"], json!({"PRODUCTION_IN": {"quantity": 100_000, "value": 3_000_000}}));
        assert_eq!((gouda["lotBalance"].as_i64(), gouda["difference"].as_i64()), (Some(100_000), Some(0)));
        assert_eq!(e["differences"], 0, "the closing equals the lots' balances: {e}");
        let april = get(&srv, "/api/accounting/etat-stocks?from=2025-04-01&to=2025-04-30", &admin).await;
        let lait = line(&april, "MP-LAIT");
        assert_eq!((lait["opening"]["value"].as_i64(), lait["in"]["quantity"].as_i64()), (Some(500_000), Some(0)));
        assert_eq!(lait["closing"], json!({"quantity": 100_000, "value": 500_000}));
        // Every export also prints: the PDF of the stock statement, French headers and numbers.
        let r = crate::support::client().get(srv.url(&format!("/api/accounting/etat-stocks?{period}&format=pdf"))).bearer_auth(&comptable).send().await.unwrap();
        assert_eq!(r.headers()["content-type"], "application/pdf");
        let text = crate::documents::pdf_text(&r.bytes().await.unwrap());
        for expected in ["État des stocks", "Du 01/03/2025 au 31/03/2025", "Solde des lots", "MP-LAIT Lait cru KG", "RECEPTION 100.000 = 5000.00"] {
            assert!(text.contains(expected), "missing {expected:?} in {text}");
        }

        // §17: the day's sales KPIs come from the documents (the cancelled payment no longer counts).
        let db = srv.state.dbmon.db();
        let k = store::kpi::sales_kpis(db.conn(), "2025-03-14".parse().unwrap()).await.unwrap();
        assert_eq!((k.ca_ht, k.invoices_today, k.collected, k.drafts), (1_970_000, 1, [0, 0, 0], 1));
        assert_eq!(k.aging.buckets, [2_367_800, 0, 0, 0]);
        // The direction (ADMIN) and finance (ADMIN, COMPTABLE) dashboards show the same KPIs (UI.md §5).
        let (web, _) = crate::support::web_session(&srv, &crate::support::email_of(Role::Admin)).await;
        let board = web.get(srv.url("/tableau-de-bord")).send().await.unwrap().text().await.unwrap();
        for card in [
            "id=\"ca-jour\">19\u{202F}700,00\u{A0}DA",
            "id=\"encaissements\">0,00\u{A0}DA",
            // 100 Gouda at 300,00 + 50 Fondu at 200,00 + 100 kg of milk at 50,00.
            "id=\"valeur-stock\">45\u{202F}000,00\u{A0}DA",
            "id=\"balance-agee\">23\u{202F}678,00\u{A0}DA",
            "id=\"risque-appro\">",
            "id=\"appareils-hors-ligne\">0<",
        ] {
            assert!(board.contains(card), "missing {card} in {board}");
        }
        let (web, _) = crate::support::web_session(&srv, &crate::support::email_of(Role::Comptable)).await;
        let finances = web.get(srv.url("/comptabilite")).send().await.unwrap().text().await.unwrap();
        assert!(finances.contains("id=\"ca-jour\">19\u{202F}700,00\u{A0}DA") && finances.contains("id=\"comptages-attente\">0<"), "{finances}");
        assert!(!finances.contains("risque-appro"), "not a finance card");
        assert_eq!(web.get(srv.url("/tableau-de-bord")).send().await.unwrap().status(), 403);

        // A timbre edited behind the application's back is caught by `check` (TIMBRE_INCOHERENT).
        use sea_orm::ConnectionTrait;
        db.conn().execute_unprepared(&format!("UPDATE invoices SET timbre = 23400 WHERE reference = '{number}'")).await.unwrap();
        let report = store::integrity::run(db, None, false).await.unwrap();
        let bad = report.timbre.clone().unwrap();
        assert_eq!((bad.len(), bad[0].expected, bad[0].actual), (1, 23_500, 23_400));
        assert!(!report.clean());
        store::integrity::raise_failure(db, &report, now()).await.unwrap();
        assert_eq!(store::alerts::open_of_type(db, "TIMBRE_INCOHERENT").await.unwrap().len(), 1);
    })
    .await;
}
