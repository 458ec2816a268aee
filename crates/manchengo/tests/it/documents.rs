//! Printed documents on both backends (DOMAIN.md §18): the invoice with every mandatory mention and its amount in
//! words, the credit note, the delivery note with its QR and the lots shipped, the purchase order and the lot label,
//! read back from the PDF with poppler's pdftotext; drafts are never printed; who may print what; the DÉMO watermark.

use domain::identity::Role;
use serde_json::json;

use crate::sales::{company, draft, invoice_36, new_client, server, shop, validated};
use crate::support::{TestServer, bearer, post};

/// GET a document: (status, content type, body bytes).
async fn fetch(srv: &TestServer, path: &str, token: &str) -> (u16, String, Vec<u8>) {
    let r = crate::support::client().get(srv.url(path)).bearer_auth(token).send().await.unwrap();
    let status = r.status().as_u16();
    let kind = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    (status, kind, r.bytes().await.unwrap().to_vec())
}

/// Text compared without the spaces between digits and before `%`: pdftotext keeps or drops the narrow no-break
/// spaces of `1 000,00 DA` and `19 %` depending on the font size.
fn squeeze(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    for (i, c) in chars.iter().enumerate() {
        let between =
            i > 0 && chars[i - 1].is_ascii_digit() && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit() || *n == '%');
        if !(c.is_whitespace() && between) {
            out.push(*c);
        }
    }
    out
}

/// The PDF's text as one line: words separated by single spaces (a sentence wrapped in the PDF reads whole), the
/// no-break spaces of amounts as plain spaces, then [`squeeze`]d.
pub(crate) fn pdf_text(pdf: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("pdftotext")
        .args(["-raw", "-", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("pdftotext (poppler-utils) is installed");
    child.stdin.take().unwrap().write_all(pdf).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout)
        .unwrap()
        .replace(['\u{202F}', '\u{A0}'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    squeeze(&text)
}

async fn pdf(srv: &TestServer, path: &str, token: &str) -> String {
    let (s, kind, body) = fetch(srv, path, token).await;
    assert_eq!((s, kind.as_str()), (200, "application/pdf"), "{path}: {}", String::from_utf8_lossy(&body));
    assert!(body.starts_with(b"%PDF-"));
    pdf_text(&body)
}

fn assert_mentions(text: &str, expected: &[&str]) {
    for e in expected {
        assert!(text.contains(&squeeze(e)), "missing {e:?} in:\n{text}");
    }
}

fn watermarked(text: &str) -> bool {
    text.replace(' ', "").contains("DÉMO")
}

#[tokio::test]
async fn invoice_credit_note_delivery_note_order_and_label_print_their_mandatory_mentions() {
    crate::support::on_both(|t| async move {
        let (srv, _clock) = server(&t).await;
        let admin = bearer(&srv, Role::Admin).await;
        let commercial = bearer(&srv, Role::Commercial).await;
        let comptable = bearer(&srv, Role::Comptable).await;
        let production = bearer(&srv, Role::Production).await;
        let appro = bearer(&srv, Role::Appro).await;
        company(&srv, &admin).await;
        shop(&srv, &admin, &[(20_000, "2025-05-01"), (30_000, "2025-04-01")], 10_000).await;
        let client =
            new_client(&srv, &admin, "Supérette El Baraka", "000216123456789", Some("16012345678"), json!({})).await;

        // A draft has no number: it is not printed.
        let d = draft(&srv, &commercial, invoice_36(&client, "ESPECES")).await;
        let (s, _, body) = fetch(&srv, &format!("/api/invoices/{}/pdf", d["id"].as_str().unwrap()), &commercial).await;
        let err: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((s, err["error"]["code"].as_str()), (409, Some("FACTURE_STATUT_INVALIDE")), "{err}");

        // The invoice of scenario 36, paid in cash: seller and buyer identities, lines, TVA per rate, timbre, words.
        let inv = validated(&srv, &commercial, invoice_36(&client, "ESPECES")).await;
        assert_eq!(inv["reference"], "F-2025-00001");
        let text = pdf(&srv, "/api/invoices/F-2025-00001/pdf", &commercial).await;
        assert_mentions(
            &text,
            &[
                "FACTURE N° F-2025-00001",
                "Fromagerie des Hauts-Plateaux",
                "SARL au capital de 1 000 000,00 DA",
                "Zone industrielle Sétif, Sétif (19)",
                "RC : 19 B 0123456 00/19",
                "NIF : 001612345678901",
                "AI : 19012345678",
                "NIS : 001619012345678",
                "Supérette El Baraka",
                "Rue des Frères Bouadou, Bir Mourad Raïs Alger (16)",
                "NIF : 000216123456789",
                "AI : 16012345678",
                "RC : 16 B 1204921 16/00",
                "Date : 14/03/2025",
                "Échéance : 14/03/2025",
                "Désignation Quantité Unité Prix unitaire HT Remise TVA Montant HT",
                "Gouda 400 g (PF-GOUDA-400) 24 pcs 650,00 DA — 19 % 15 600,00 DA",
                "Fondu 800 g (PF-FONDU-800) 10 pcs 420,00 DA 100,00 DA 19 % 4 100,00 DA",
                "19 % 19 700,00 DA 3 743,00 DA",
                "Total HT 19 700,00 DA",
                "Total TTC 23 443,00 DA",
                "Timbre fiscal (espèces) 235,00 DA",
                "NET À PAYER 23 678,00 DA",
                "Arrêtée la présente facture à la somme de : Vingt-trois mille six cent soixante-dix-huit dinars \
                 algériens et zéro centime",
                "Mode de règlement : Espèces",
                "RIB : 00123456789012345678",
                "Page 1 / 1",
            ],
        );
        assert!(!watermarked(&text), "real data carries no watermark");
        // By id too; the accountant reads it; production does not print invoices.
        let by_id = pdf(&srv, &format!("/api/invoices/{}/pdf", inv["id"].as_str().unwrap()), &comptable).await;
        assert!(by_id.contains("FACTURE N° F-2025-00001"));
        assert_eq!(fetch(&srv, "/api/invoices/F-2025-00001/pdf", &production).await.0, 403);
        assert_eq!(fetch(&srv, "/api/invoices/F-2025-99999/pdf", &commercial).await.0, 404);

        // Settings changed after validation never alter the printed invoice (the snapshot of §18).
        let (s, b) = crate::support::call(
            &srv,
            "PUT",
            "/api/settings/company",
            &admin,
            Some(json!({"raisonSociale": "Nouvelle Raison Sociale SPA", "formeJuridique": "SPA",
                "adresse": "Ailleurs", "wilaya": "16", "commune": "Alger", "capitalSocial": 500_000_000, "rc": "16 B 0000001 00/16", "nif": "001616000000001",
                "ai": "16000000001", "nis": "001616000000001"})),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let again = pdf(&srv, "/api/invoices/F-2025-00001/pdf", &commercial).await;
        assert!(again.contains("Fromagerie des Hauts-Plateaux") && !again.contains("Nouvelle Raison Sociale"));
        company(&srv, &admin).await;

        // The delivery note: before validation no lots; the QR reference under the code; no prices.
        let (s, bl) = post(&srv, "/api/deliveries", &commercial, json!({"invoice": "F-2025-00001",
            "vehicle": "12345-119-16", "driverName": "Karim"}))
        .await;
        assert_eq!(s, 201, "{bl}");
        let path = "/api/deliveries/LIV-2025-00001/pdf";
        let text = pdf(&srv, path, &commercial).await;
        assert_mentions(
            &text,
            &[
                "BON DE LIVRAISON N° LIV-2025-00001",
                "Fromagerie des Hauts-Plateaux",
                "Supérette El Baraka",
                "Facture : F-2025-00001",
                "Chauffeur : Karim",
                "Véhicule : 12345-119-16",
                "Produit Quantité Unité Conservation",
                "Gouda 400 g (PF-GOUDA-400) 24 pcs Réfrigéré (2–8 °C)",
                "Fondu 800 g (PF-FONDU-800) 10 pcs Réfrigéré (2–8 °C)",
                "Reçu par (nom) Signature Date",
            ],
        );
        assert!(!text.contains("Lot "), "no lot before validation: {text}");
        assert!(!text.contains("650,00") && !text.contains("Montant"), "a delivery note shows no price: {text}");
        assert_eq!(text.matches("LIV-2025-00001").count(), 2, "heading and the reference under the QR: {text}");
        let (s, b) = post(
            &srv,
            "/api/deliveries/LIV-2025-00001/validate",
            &commercial,
            json!({"note": "QR illisible, confirmé par téléphone"}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let text = pdf(&srv, path, &commercial).await;
        assert_mentions(
            &text,
            &[
                "Lot GOUDA-T1 — DLC 01/04/2025 — 24 pcs",
                "Lot FONDU-T0 — DLC 30/06/2025 — 10 pcs",
                "Statut : Validé (sorti du stock)",
            ],
        );

        // A credit note for 4 Gouda returned: printed once validated, with its invoice and the words.
        let (s, note) = post(
            &srv,
            "/api/invoices/F-2025-00001/credit-notes",
            &commercial,
            json!({"reason": "Emballages abîmés à la livraison",
                   "lines": [{"lineNo": 1, "kind": "RETOUR", "quantity": 4_000}]}),
        )
        .await;
        assert_eq!(s, 201, "{note}");
        let key = note["id"].as_str().unwrap().to_string();
        let (s, _, _) = fetch(&srv, &format!("/api/credit-notes/{key}/pdf"), &commercial).await;
        assert_eq!(s, 409, "a draft credit note is not printed");
        let (s, note) = post(&srv, &format!("/api/credit-notes/{key}/validate"), &admin, json!({})).await;
        assert_eq!(s, 200, "{note}");
        let text = pdf(&srv, "/api/credit-notes/AV-2025-00001/pdf", &comptable).await;
        assert_mentions(
            &text,
            &[
                "AVOIR N° AV-2025-00001",
                "Facture : sur facture N° F-2025-00001 du 14/03/2025",
                "Motif : Emballages abîmés à la livraison",
                "Gouda 400 g (PF-GOUDA-400) Retour marchandise 4 pcs 19 % 2 600,00 DA",
                "Marchandise reprise dans le lot RET250314-001",
                "19 % 2 600,00 DA 494,00 DA",
                "Total TTC 3 094,00 DA",
                "Timbre fiscal crédité 31,00 DA",
                "NET DE L'AVOIR 3 125,00 DA",
                "Arrêté le présent avoir à la somme de : Trois mille cent vingt-cinq dinars algériens et zéro centime",
                "NIF : 000216123456789",
            ],
        );

        // The lot label: 100 × 50 mm, DLC, storage, net quantity; production prints it, commercial does not.
        let (s, kind, label) = fetch(&srv, "/api/stock/lots/GOUDA-T0/label", &production).await;
        assert_eq!((s, kind.as_str()), (200, "application/pdf"));
        assert_mentions(
            &pdf_text(&label),
            &[
                "Gouda 400 g",
                "PF-GOUDA-400",
                "GOUDA-T0",
                "À consommer jusqu'au 01/05/2025",
                "Reçu le 14/03/2025",
                "Conservation : Réfrigéré (2–8 °C)",
                "Quantité nette : 20 pcs",
            ],
        );
        assert_eq!(fetch(&srv, "/api/stock/lots/GOUDA-T0/label", &commercial).await.0, 403);
        // Scanning the label opens the lot card (§12.2); a forged label is refused; the trace page reads it too.
        let (web, _) = crate::support::web_session(&srv, &crate::support::email_of(Role::Production)).await;
        let payload = domain::delivery::lot_payload(&srv.state.secrets.get().unwrap().qr, "GOUDA-T0");
        let r = web.get(srv.url(&format!("/stock/lots?q={payload}"))).send().await.unwrap();
        assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (303, "/stock/lots/GOUDA-T0"));
        let flipped = if payload.ends_with('0') { '1' } else { '0' };
        let forged = format!("{}{flipped}", &payload[..payload.len() - 1]);
        let page = web.get(srv.url(&format!("/stock/lots?q={forged}"))).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("QR code non authentique."), "{page}");
        let r = web.get(srv.url("/stock/lots?q=gouda-t0")).send().await.unwrap();
        assert_eq!(r.headers()["location"], "/stock/lots/GOUDA-T0", "a typed number opens the card too");
        let page = web.get(srv.url(&format!("/tracabilite?lot={payload}"))).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("GOUDA-T0 — Gouda 400 g (PF-GOUDA-400)"), "{page}");
        assert_eq!(fetch(&srv, "/api/stock/lots/NOPE/label", &production).await.0, 404);

        // The purchase order, printable as a draft (it is sent as a PDF).
        crate::procurement::catalogue(&srv, &appro).await;
        let (s, bc) = post(&srv, "/api/purchase-orders", &appro, crate::procurement::milk_order()).await;
        assert_eq!(s, 201, "{bc}");
        let path = format!("/api/purchase-orders/{}/pdf", bc["reference"].as_str().unwrap());
        let text = pdf(&srv, &path, &appro).await;
        assert_mentions(
            &text,
            &[
                &format!("BON DE COMMANDE N° {}", bc["reference"].as_str().unwrap()),
                "ACHETEUR Fromagerie des Hauts-Plateaux",
                "FOURNISSEUR Laiterie du Djurdjura SARL",
                "Livraison prévue le : 20/03/2025",
                "Lait cru (MP-LAIT) 1 000,000 kg 50,00 DA 9 % 50 000,00 DA",
                "9 % 50 000,00 DA 4 500,00 DA",
                "Total TTC 54 500,00 DA",
                "Observations : Citerne du matin",
            ],
        );
        assert_eq!(fetch(&srv, &path, &production).await.0, 403);

        // A reception prints the labels of its lots, one per page.
        let bc = crate::procurement::sent_order(&srv, &appro).await;
        let (s, rec) = post(&srv, "/api/receptions", &appro, crate::procurement::milk_reception(&bc, 500)).await;
        assert_eq!(s, 201, "{rec}");
        let reference = rec["reception"]["reference"].as_str().unwrap().to_string();
        let text = pdf(&srv, &format!("/api/receptions/{reference}/labels"), &appro).await;
        assert_mentions(
            &text,
            &["Lait cru", "MP-LAIT", "À consommer jusqu'au 24/03/2025", "Reçu le 14/03/2025", "Quantité nette : 500,000 kg"],
        );
        assert_eq!(fetch(&srv, &format!("/api/receptions/{reference}/labels"), &comptable).await.0, 403);

        // The logo (ADMIN, multipart upload): printed on invoices validated afterwards; F-2025-00001 keeps none.
        let (web, csrf) = crate::support::web_session(&srv, &crate::support::email_of(Role::Admin)).await;
        let png: Vec<u8> = vec![
            137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 31,
            21, 196, 137, 0, 0, 0, 13, 73, 68, 65, 84, 120, 218, 99, 100, 248, 207, 80, 15, 0, 3, 134, 1, 128, 90, 52,
            125, 107, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
        ];
        let upload = |file: Vec<u8>| {
            let mut body = format!(
                "--B0uNd\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{csrf}\r\n--B0uNd\r\n\
                 Content-Disposition: form-data; name=\"logo\"; filename=\"logo.png\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .into_bytes();
            body.extend_from_slice(&file);
            body.extend_from_slice(b"\r\n--B0uNd--\r\n");
            web.post(srv.url("/parametres/logo"))
                .header("content-type", "multipart/form-data; boundary=B0uNd")
                .body(body)
                .send()
        };
        assert_eq!(upload(b"GIF89a-not-a-logo".to_vec()).await.unwrap().status(), 303);
        assert_eq!(web.get(srv.url("/parametres/logo/image")).send().await.unwrap().status(), 404, "refused: none set");
        assert_eq!(upload(png.clone()).await.unwrap().status(), 303);
        let r = web.get(srv.url("/parametres/logo/image")).send().await.unwrap();
        assert_eq!(r.headers()["content-type"], "image/png");
        assert_eq!(r.bytes().await.unwrap().to_vec(), png);
        // Images drawn in a PDF (soft masks aside), as poppler's pdfimages lists them.
        let images = |pdf: &[u8]| {
            let path = t.dir.path().join("document.pdf");
            std::fs::write(&path, pdf).unwrap();
            let out = std::process::Command::new("pdfimages").arg("-list").arg(&path).output().expect("pdfimages");
            let list = String::from_utf8_lossy(&out.stdout).to_string();
            list.lines().skip(2).filter(|l| l.split_whitespace().nth(2) == Some("image")).count()
        };
        let one_gouda = json!({"clientCode": client, "paymentMethod": "CHEQUE",
                               "lines": [{"productCode": "PF-GOUDA-400", "quantity": 1_000}]});
        let second = validated(&srv, &commercial, one_gouda).await;
        let path = format!("/api/invoices/{}/pdf", second["reference"].as_str().unwrap());
        assert_eq!(images(&fetch(&srv, &path, &commercial).await.2), 1, "the logo on the new invoice");
        assert_eq!(images(&fetch(&srv, "/api/invoices/F-2025-00001/pdf", &commercial).await.2), 0, "issued before");
        assert_eq!(images(&fetch(&srv, "/api/deliveries/LIV-2025-00001/pdf", &commercial).await.2), 1, "current");

        // The demo company: every document carries the watermark.
        store::settings::mark_demo(srv.state.dbmon.db().conn()).await.unwrap();
        assert!(watermarked(&pdf(&srv, "/api/invoices/F-2025-00001/pdf", &commercial).await));
        assert!(watermarked(&pdf_text(&fetch(&srv, "/api/stock/lots/GOUDA-T0/label", &production).await.2)));
    })
    .await;
}
