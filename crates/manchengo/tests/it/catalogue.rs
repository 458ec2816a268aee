//! Catalogue and parties through the API, on both backends (DOMAIN.md §3, §4, scenarios 3–5).

use domain::identity::Role;
use serde_json::{Value, json};

use crate::support::{TestServer, audit_actions, bearer, client, on_both};

async fn send(srv: &TestServer, method: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client().request(m.clone(), srv.url(path)).bearer_auth(token);
    if m != reqwest::Method::GET {
        req = req.json(&body);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn products_are_created_with_domain_defaults_and_read_per_role() {
    on_both(|t| async move {
        let srv = TestServer::start(&t, &[]).await;
        let appro = bearer(&srv, Role::Appro).await;
        let admin = bearer(&srv, Role::Admin).await;
        let production = bearer(&srv, Role::Production).await;
        let commercial = bearer(&srv, Role::Commercial).await;

        let mp = json!({"code": "mp-lait-cru", "name": "Lait cru", "category": "RAW_MATERIAL", "baseUnit": "L", "minStock": 1_000_000});
        let (s, b) = send(&srv, "POST", "/api/catalogue/mp", &appro, mp.clone()).await;
        assert_eq!(s, 201, "{b}");
        assert_eq!(b["code"], "MP-LAIT-CRU");
        assert_eq!((b["perishable"].clone(), b["reorderThreshold"].clone(), b["leadTimeDays"].clone()), (json!(true), json!(1_500_000), json!(7)));
        let (s, b) = send(&srv, "POST", "/api/catalogue/mp", &appro, mp).await;
        assert_eq!((s, b["error"]["code"].as_str()), (409, Some("CODE_DEJA_UTILISE")));
        // Every problem of a submission at once, in French, next to its field.
        let (s, b) = send(&srv, "POST", "/api/catalogue/mp", &appro, json!({"code": "MP-X", "name": "L", "category": "LAIT", "baseUnit": "L", "leadTimeDays": 0})).await;
        assert_eq!((s, b["error"]["code"].as_str()), (400, Some("VALIDATION_ERROR")));
        let fields: Vec<&str> = b["error"]["details"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
        assert_eq!(fields, vec!["code", "name", "category", "leadTimeDays"]);
        assert_eq!(b["error"]["details"]["fields"][2]["message"], "Valeur attendue : RAW_MATERIAL, PACKAGING, ADDITIVE, CONSUMABLE.");
        // PRODUCTION reads the MP catalogue; an edit by APPRO is audited with before and after.
        let (s, list) = send(&srv, "GET", "/api/catalogue/mp?q=lait", &production, Value::Null).await;
        assert_eq!((s, list["total"].clone()), (200, json!(1)));
        let (s, b) = send(&srv, "PUT", "/api/catalogue/mp/MP-LAIT-CRU", &appro, json!({"code": "MP-LAIT-CRU", "name": "Lait cru de vache", "category": "RAW_MATERIAL", "baseUnit": "L", "leadTimeDays": 2})).await;
        assert_eq!((s, b["name"].as_str(), b["leadTimeDays"].as_i64()), (200, Some("Lait cru de vache"), Some(2)));
        assert_eq!(audit_actions(&srv, "PRODUCT_UPDATED").await.len(), 1);

        let mut pf = json!({"code": "PF-EDAM-400", "name": "Edam 400 g", "baseUnit": "U", "weightG": 400, "packagingType": "SAC_THERMO",
                        "storageType": "REFRIGERE", "shelfLifeDays": 180, "listPriceHt": 65_000});
        let (s, b) = send(&srv, "POST", "/api/catalogue/pf", &appro, pf.clone()).await;
        assert_eq!((s, b["error"]["code"].as_str()), (403, Some("ACCES_REFUSE")), "PF catalogue is ADMIN's");
        // §3.2: exactly one family, at most one brand, both active when chosen.
        let (s, b) = send(&srv, "POST", "/api/catalogue/pf", &admin, pf.clone()).await;
        assert_eq!((s, b["error"]["details"]["fields"][0]["field"].as_str()), (400, Some("familyCode")));
        send(&srv, "POST", "/api/catalogue/families", &admin, json!({"code": "PATE_PRESSEE", "name": "Pâte pressée"})).await;
        send(&srv, "POST", "/api/catalogue/brands", &admin, json!({"code": "HAUTS_PLATEAUX", "name": "Hauts-Plateaux"})).await;
        send(&srv, "POST", "/api/catalogue/brands", &admin, json!({"code": "ANCIENNE", "name": "Ancienne", "active": true})).await;
        send(&srv, "PUT", "/api/catalogue/brands/ANCIENNE", &admin, json!({"name": "Ancienne", "active": false})).await;
        pf["familyCode"] = json!("pate_pressee");
        pf["brandCode"] = json!("ANCIENNE");
        let (s, b) = send(&srv, "POST", "/api/catalogue/pf", &admin, pf.clone()).await;
        assert_eq!(s, 400);
        assert_eq!(b["error"]["details"]["fields"][0]["message"], "La marque ANCIENNE est désactivée : choisissez-en une autre.");
        pf["brandCode"] = json!("HAUTS_PLATEAUX");
        let (s, b) = send(&srv, "POST", "/api/catalogue/pf", &admin, pf).await;
        assert_eq!((s, b["tvaRate"].as_i64()), (201, Some(1900)));
        assert_eq!((b["familyCode"].as_str(), b["brandCode"].as_str()), (Some("PATE_PRESSEE"), Some("HAUTS_PLATEAUX")));
        // R−: APPRO and PRODUCTION never receive a price; COMMERCIAL does.
        let (_, b) = send(&srv, "GET", "/api/catalogue/pf/PF-EDAM-400", &production, Value::Null).await;
        assert!(b.get("listPriceHt").is_none(), "{b}");
        let (_, b) = send(&srv, "GET", "/api/catalogue/pf", &appro, Value::Null).await;
        assert!(b["items"][0].get("listPriceHt").is_none());
        let (_, b) = send(&srv, "GET", "/api/catalogue/pf/PF-EDAM-400", &commercial, Value::Null).await;
        assert_eq!(b["listPriceHt"], 65_000);
        let (s, b) = send(&srv, "POST", "/api/catalogue/pf", &admin, json!({"code": "PF-BRIE", "name": "Brie", "baseUnit": "U", "packagingType": "BOITE", "storageType": "FRAIS", "shelfLifeDays": 60, "listPriceHt": 1, "tvaRate": 700})).await;
        assert_eq!(s, 400);
        let codes: Vec<&str> = b["error"]["details"]["fields"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap()).collect();
        assert_eq!(codes, vec!["OBLIGATOIRE", "TVA_INVALIDE", "OBLIGATOIRE"]);
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn parties_store_normalised_identifiers_and_keep_terms_for_admin() {
    on_both(|t| async move {
        let srv = TestServer::start(&t, &[]).await;
        let appro = bearer(&srv, Role::Appro).await;
        let admin = bearer(&srv, Role::Admin).await;
        let commercial = bearer(&srv, Role::Commercial).await;
        let supplier = json!({"raisonSociale": "Laiterie du Djurdjura SARL", "formeJuridique": "SARL", "wilaya": "15",
            "telephone": "+213 661 23 45 67", "rc": "25 b  1204921 16/00", "nif": "0016 1234 5678 901", "ai": "1601234",
            "email": "Contact@Djurdjura.DZ"});
        let (s, b) = send(&srv, "POST", "/api/suppliers", &appro, supplier.clone()).await;
        assert_eq!(s, 201, "{b}");
        let sup = &b["supplier"];
        assert_eq!(sup["code"], "FOUR-0001");
        assert_eq!((sup["telephone"].as_str(), sup["rc"].as_str(), sup["nif"].as_str()), (Some("0661234567"), Some("25 B 1204921 16/00"), Some("001612345678901")));
        assert_eq!(b["warnings"][0]["code"], "AI_FORMAT_INHABITUEL");
        // The same NIF for another active supplier is refused; a malformed one keeps its DOMAIN code.
        let (s, b) = send(&srv, "POST", "/api/suppliers", &appro, json!({"raisonSociale": "Autre SARL", "nif": "001612345678901"})).await;
        assert_eq!((s, b["error"]["code"].as_str()), (409, Some("NIF_DEJA_UTILISE")));
        assert_eq!(b["error"]["message"], "Ce NIF est déjà utilisé par Laiterie du Djurdjura SARL.");
        let (s, b) = send(&srv, "POST", "/api/suppliers", &appro, json!({"raisonSociale": "Autre SARL", "nif": "000000000000000"})).await;
        assert_eq!((s, b["error"]["code"].as_str()), (422, Some("NIF_INVALIDE")));
        let (s, b) = send(&srv, "POST", "/api/suppliers", &appro, json!({"raisonSociale": "Emballages Sétif", "telephone": "0812345678", "rc": "B*12"})).await;
        assert_eq!((s, b["error"]["code"].as_str()), (422, Some("TELEPHONE_INVALIDE")));
        assert_eq!(b["error"]["details"]["fields"].as_array().unwrap().len(), 2);
        let (s, b) = send(&srv, "POST", "/api/suppliers", &appro, json!({"raisonSociale": "Emballages Sétif", "telephone": "023 45 67 89"})).await;
        assert_eq!((s, b["supplier"]["code"].as_str(), b["supplier"]["telephone"].as_str()), (201, Some("FOUR-0002"), Some("023456789")));

        // A COMMERCIAL creates a client but never its terms.
        let (s, b) = send(&srv, "POST", "/api/clients", &commercial, json!({"raisonSociale": "Supérette El Baraka", "creditLimit": 10_000_000})).await;
        assert_eq!((s, b["error"]["code"].as_str()), (403, Some("ACCES_REFUSE")));
        let (s, b) = send(&srv, "POST", "/api/clients", &commercial, json!({"raisonSociale": "Supérette El Baraka", "wilaya": "16"})).await;
        assert_eq!(s, 201, "{b}");
        let c = &b["client"];
        assert_eq!((c["code"].as_str(), c["clientType"].as_str(), c["creditLimit"].as_i64(), c["defaultPaymentMethod"].as_str()), (Some("CLI-0001"), Some("SUPERETTE"), Some(0), Some("ESPECES")));
        let (s, b) = send(&srv, "PUT", "/api/clients/CLI-0001", &admin, json!({"raisonSociale": "Supérette El Baraka", "wilaya": "16", "clientType": "GROSSISTE", "creditLimit": 50_000_000, "paymentTermsDays": 30, "defaultPaymentMethod": "CHEQUE"})).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!((b["client"]["clientType"].as_str(), b["client"]["creditLimit"].as_i64()), (Some("GROSSISTE"), Some(50_000_000)));
        // Editing the identity later keeps the terms the ADMIN set.
        let (s, b) = send(&srv, "PUT", "/api/clients/CLI-0001", &commercial, json!({"raisonSociale": "Supérette El Baraka Sarl", "wilaya": "16"})).await;
        assert_eq!((s, b["client"]["creditLimit"].as_i64(), b["client"]["paymentTermsDays"].as_i64()), (200, Some(50_000_000), Some(30)));
        let updates = audit_actions(&srv, "CLIENT_UPDATED").await;
        assert_eq!(updates.len(), 2);
        assert!(updates[0].before.as_deref().unwrap().contains("\"clientType\":\"SUPERETTE\""));
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_pf_catalogue_page_creates_products_and_hides_prices_from_r_minus_roles() {
    on_both(|t| async move {
        let srv = TestServer::start(&t, &[]).await;
        crate::support::seed_user(&srv, "admin@test.dz", Role::Admin, false).await;
        crate::support::seed_user(&srv, "appro@test.dz", Role::Appro, false).await;
        let token = crate::support::bearer(&srv, Role::Admin).await;
        send(&srv, "POST", "/api/catalogue/families", &token, json!({"code": "PATE_PRESSEE", "name": "Pâte pressée"}))
            .await;
        let (admin, _) = crate::support::web_session(&srv, "admin@test.dz").await;
        let html = admin.get(srv.url("/catalogue/produits/nouveau")).send().await.unwrap().text().await.unwrap();
        assert!(html.contains("<option value=\"PATE_PRESSEE\">Pâte pressée</option>"), "{html}");
        let csrf = html.split("name=\"_csrf\" value=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_string();
        let form = |weight: &'static str| {
            vec![
                ("_csrf", csrf.clone()),
                ("code", "pf-edam-400".into()),
                ("name", "Edam 400 g".into()),
                ("baseUnit", "U".into()),
                ("weightG", weight.into()),
                ("packagingType", "SAC_THERMO".into()),
                ("storageType", "REFRIGERE".into()),
                ("shelfLifeDays", "180".into()),
                ("listPriceHt", "650,00".into()),
                ("tvaRate", "1900".into()),
                ("familyCode", "PATE_PRESSEE".into()),
                ("brandCode", "".into()),
            ]
        };
        let r = admin.post(srv.url("/catalogue/produits/nouveau")).form(&form("")).send().await.unwrap();
        assert_eq!(r.status(), 400);
        let html = r.text().await.unwrap().replace("&#39;", "'");
        assert!(html.contains("Le poids d'une pièce (en grammes, ≥ 1) est obligatoire"), "{html}");
        assert!(html.contains("value=\"Edam 400 g\""), "typed values kept");
        let r = admin.post(srv.url("/catalogue/produits/nouveau")).form(&form("400")).send().await.unwrap();
        assert_eq!(r.status(), 303);
        let html = admin.get(srv.url("/catalogue/produits")).send().await.unwrap().text().await.unwrap();
        assert!(html.contains("Produit PF-EDAM-400 créé.") && html.contains("650,00"), "{html}");
        let (appro, _) = crate::support::web_session(&srv, "appro@test.dz").await;
        let html = appro.get(srv.url("/catalogue/produits")).send().await.unwrap().text().await.unwrap();
        assert!(html.contains("PF-EDAM-400") && !html.contains("650,00"), "APPRO reads PFs without prices");
        assert!(!html.contains("/catalogue/produits/nouveau"), "no creation offered to APPRO");
        assert_eq!(appro.get(srv.url("/catalogue/produits/nouveau")).send().await.unwrap().status(), 403);
        srv.stop().await;
    })
    .await;
}
