//! `manchengo seed --demo` (DOMAIN.md §20): a fictional "Fromagerie Démo des Hauts-Plateaux SARL" with its catalogue,
//! partners, recipes and price lists, one user per role (random passwords printed once), and 90 days of history —
//! receptions, production, invoices, deliveries, payments, two credit notes — written day by day through the same
//! store functions the pages and the API call, with the same checks; a fixed pseudo-random seed makes it repeatable.
//! Refused when any business document exists. Ends with `manchengo check`'s verifications.

use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use domain::catalogue::{MpInput, PartyInput, PfInput, RefChoice};
use domain::identity::Role;
use domain::stock::LossReason;
use store::audit::Actor;
use store::stock::Product;
use store::{Db, OpError, WriteTx};

type Fut<'t, T> = futures_util::future::BoxFuture<'t, Result<T, OpError>>;

/// A small deterministic generator (xorshift): the demo is the same at every run.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn err(e: impl std::fmt::Debug) -> String {
    format!("{e:?}")
}

async fn tx<T: Send + 'static>(db: &Db, f: impl for<'t> Fn(&'t WriteTx) -> Fut<'t, T> + Send) -> Result<T, OpError> {
    db.write(|t| f(t)).await
}

/// A business refusal skips the action (the demo stays consistent); anything else stops the seed.
fn refused<T>(r: Result<T, OpError>) -> Result<Option<T>, String> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(OpError::Rejected(_)) => Ok(None),
        Err(e) => Err(err(e)),
    }
}

const MPS: [(&str, &str, &str, &str, bool, i64); 20] = [
    ("MP-LAIT-CRU", "Lait cru de vache", "RAW_MATERIAL", "L", true, 6_000),
    ("MP-LAIT-POUDRE", "Lait en poudre 26 %", "RAW_MATERIAL", "KG", false, 52_000),
    ("MP-CREME", "Crème fraîche 35 %", "RAW_MATERIAL", "KG", true, 48_000),
    ("MP-BEURRE", "Beurre doux", "RAW_MATERIAL", "KG", true, 95_000),
    ("MP-PRESURE", "Présure liquide", "ADDITIVE", "L", true, 150_000),
    ("MP-FERMENTS", "Ferments lactiques", "ADDITIVE", "U", true, 35_000),
    ("MP-SEL", "Sel fin alimentaire", "ADDITIVE", "KG", false, 3_000),
    ("MP-CALCIUM", "Chlorure de calcium", "ADDITIVE", "KG", false, 45_000),
    ("MP-ROCOU", "Colorant rocou", "ADDITIVE", "L", false, 120_000),
    ("MP-SELS-FONTE", "Sels de fonte", "ADDITIVE", "KG", false, 60_000),
    ("MP-POIVRE", "Poivre noir moulu", "ADDITIVE", "KG", false, 180_000),
    ("MP-HERBES", "Herbes de Provence", "ADDITIVE", "KG", false, 150_000),
    ("MP-CIRE", "Cire d'enrobage rouge", "CONSUMABLE", "KG", false, 70_000),
    ("MP-SAC-400", "Sac thermo 400 g", "PACKAGING", "U", false, 900),
    ("MP-SAC-800", "Sac thermo 800 g", "PACKAGING", "U", false, 1_200),
    ("MP-BARQUETTE", "Barquette 8 portions", "PACKAGING", "U", false, 1_500),
    ("MP-SEAU", "Seau 1 kg", "PACKAGING", "U", false, 4_000),
    ("MP-ETIQUETTE", "Étiquettes imprimées", "PACKAGING", "U", false, 200),
    ("MP-CARTON", "Carton de 12", "PACKAGING", "U", false, 3_500),
    ("MP-FILM", "Film alimentaire", "PACKAGING", "U", false, 2_500),
];

/// (code, name, weight g, packaging MP, list price HT centimes, shelf life days, milk L per piece ×1000, brand, family)
type PfRow = (&'static str, &'static str, i32, &'static str, i64, i32, i64, &'static str, &'static str);

const PFS: [PfRow; 10] = [
    ("PF-GOUDA-400", "Gouda 400 g", 400, "MP-SAC-400", 65_000, 120, 4_000, "HAUTS_PLATEAUX", "PATE_PRESSEE"),
    ("PF-GOUDA-800", "Gouda 800 g", 800, "MP-SAC-800", 125_000, 120, 8_000, "HAUTS_PLATEAUX", "PATE_PRESSEE"),
    ("PF-EDAM-400", "Edam boule 400 g", 400, "MP-SAC-400", 62_000, 120, 4_000, "HAUTS_PLATEAUX", "PATE_PRESSEE"),
    (
        "PF-TOMME-1000",
        "Tomme des Hauts-Plateaux 1 kg",
        1_000,
        "MP-SAC-800",
        145_000,
        90,
        10_000,
        "HAUTS_PLATEAUX",
        "PATE_PRESSEE",
    ),
    ("PF-FONDU-800", "Fromage fondu 8 portions", 800, "MP-BARQUETTE", 42_000, 180, 3_000, "DJURDJURA", "FONDU"),
    ("PF-FONDU-HERBES", "Fondu aux herbes 8 portions", 800, "MP-BARQUETTE", 45_000, 180, 3_000, "DJURDJURA", "FONDU"),
    ("PF-FONDU-SEAU", "Fondu en seau 1 kg", 1_000, "MP-SEAU", 52_000, 180, 4_000, "DJURDJURA", "FONDU"),
    ("PF-FRAIS-250", "Fromage frais 250 g", 250, "MP-BARQUETTE", 18_000, 21, 1_500, "DJURDJURA", "FRAIS"),
    ("PF-FRAIS-POIVRE", "Fromage frais au poivre 250 g", 250, "MP-BARQUETTE", 19_500, 21, 1_500, "DJURDJURA", "FRAIS"),
    ("PF-BEURRE-250", "Beurre de baratte 250 g", 250, "MP-FILM", 32_000, 60, 5_000, "HAUTS_PLATEAUX", "FRAIS"),
];

const CLIENT_NAMES: [&str; 25] = [
    "Supérette El Baraka",
    "Grossiste Amine",
    "Distribution Tassili",
    "Fast-food Le Gourmet",
    "Supérette Nour",
    "Grossiste Sétif Frais",
    "Distribution El Bahia",
    "Pizzeria Napoli",
    "Supérette Ennasr",
    "Grossiste Hodna",
    "Distribution Atlas",
    "Fast-food Chez Karim",
    "Supérette Essalem",
    "Grossiste Ouled Naïl",
    "Distribution Sahel",
    "Snack El Medina",
    "Supérette El Amel",
    "Grossiste Babor",
    "Distribution Mitidja",
    "Fast-food Tacos House",
    "Supérette Rahma",
    "Grossiste Aurès",
    "Distribution Zibans",
    "Pizzeria Bella",
    "Supérette Ikram",
];

const TYPES: [&str; 4] = ["SUPERETTE", "GROSSISTE", "DISTRIBUTEUR", "FAST_FOOD"];

const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0D, 0x49,
    0x44, 0x41, 0x54, 0x78, 0xDA, 0x63, 0x64, 0xF8, 0xCF, 0x50, 0x0F, 0x00, 0x03, 0x86, 0x01, 0x80, 0x5A, 0x34, 0x7D,
    0x6B, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

fn at(d: NaiveDate, hour: u32) -> DateTime<Utc> {
    // Algiers is UTC+1 all year.
    Utc.from_utc_datetime(&d.and_hms_opt(hour.saturating_sub(1), 0, 0).unwrap_or_default())
}

fn password(dice: &mut Dice) -> String {
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGITS: &[u8] = b"23456789";
    const SPECIAL: &[u8] = b"#%+=!?";
    // Real randomness for the passwords (the history is deterministic, the secrets are not).
    let bytes = app::auth::tokens::random_bytes::<16>();
    let mut out = String::new();
    for (i, b) in bytes.iter().enumerate() {
        let set = [UPPER, LOWER, DIGITS, SPECIAL][i % 4];
        out.push(set[(*b as usize + dice.below(7) as usize) % set.len()] as char);
    }
    out
}

struct Counts {
    receptions: usize,
    orders: usize,
    invoices: usize,
    payments: usize,
    credit_notes: usize,
    losses: usize,
    counts: usize,
}

pub async fn demo(db: &Db, days: i64) -> Result<String, String> {
    let started = Instant::now();
    let c = db.conn();
    for (table, what) in
        [("invoices", "facture"), ("receptions", "réception"), ("production_orders", "ordre de production")]
    {
        let n = store::kpi::count_rows(c, table).await.map_err(err)?;
        if n > 0 {
            return Err(format!(
                "refusé : la base contient déjà des données métier ({n} {what}(s)). Le jeu de démonstration ne se charge que sur une installation vide."
            ));
        }
    }
    let mut dice = Dice(0x4d43_4445_4d4f_2025);
    let actor = Actor::system("seed-demo");
    let today = domain::stock::today_algiers(Utc::now());
    let start = today - Duration::days(days);
    let t0 = at(start, 8);

    // Company, users, référentiels.
    let company = domain::catalogue::check_company(&domain::catalogue::CompanyInput {
        identity: PartyInput {
            raison_sociale: "Fromagerie Démo des Hauts-Plateaux SARL (DÉMO)".into(),
            forme_juridique: Some("SARL".into()),
            adresse: Some("Zone d'activités, lot 12".into()),
            wilaya: Some("19".into()),
            commune: Some("Sétif".into()),
            telephone: Some("036 12 34 56".into()),
            email: Some("contact@demo-fromagerie.dz".into()),
            rc: Some("19 B 0999999 00/19".into()),
            nif: Some("099919000000001".into()),
            ai: Some("19099999901".into()),
            nis: Some("099919000000002".into()),
            ..Default::default()
        },
        capital_social: Some(1_000_000_000),
        rib: Some("00799999000000000199".into()),
        bank_name: Some("Banque Démo".into()),
        invoice_footer: Some("Document de démonstration — données fictives.".into()),
    })
    .map_err(err)?
    .0;
    let mut passwords = Vec::new();
    let mut users = Vec::new();
    for role in Role::ALL {
        let email = format!("{}@demo-fromagerie.dz", role.code().to_lowercase());
        let pw = password(&mut dice);
        let hash = app::auth::password::hash_now(&pw);
        passwords.push((email.clone(), pw, role));
        let user = tx(db, |t| {
            let (actor, email, hash, company) = (actor.clone(), email.clone(), hash.clone(), company.clone());
            Box::pin(async move {
                if role == Role::Admin {
                    store::settings::save_company(&**t, company, &actor, t0).await?;
                    store::settings::mark_demo(&**t).await?;
                }
                let new = store::identity::NewUser {
                    email,
                    first_name: "Démo".into(),
                    last_name: role.label_fr().into(),
                    role,
                    password_hash: hash,
                    must_change_password: true,
                };
                store::identity::create_user(&**t, new, &actor, t0, false).await
            })
        })
        .await
        .map_err(err)?;
        users.push((role, user));
    }
    let as_role = |r: Role| {
        let u = users.iter().find(|(role, _)| *role == r).map(|(_, u)| u.clone());
        Actor {
            user_id: u.as_ref().map(|u| u.id),
            role: Some(r.code().into()),
            label: u.map(|u| u.email),
            ..Actor::default()
        }
    };
    let (admin, commercial, production, appro) =
        (as_role(Role::Admin), as_role(Role::Commercial), as_role(Role::Production), as_role(Role::Appro));

    // Catalogue and partners.
    let (mps, pfs, suppliers, clients) = tx(db, |t| {
        let (admin, appro) = (admin.clone(), appro.clone());
        Box::pin(async move {
            let c = &**t;
            for (kind, code, name) in [
                (store::settings::RefKind::Brand, "HAUTS_PLATEAUX", "Les Hauts-Plateaux"),
                (store::settings::RefKind::Brand, "DJURDJURA", "Djurdjura Délices"),
                (store::settings::RefKind::Family, "PATE_PRESSEE", "Pâtes pressées"),
                (store::settings::RefKind::Family, "FONDU", "Fromages fondus"),
                (store::settings::RefKind::Family, "FRAIS", "Frais et beurre"),
            ] {
                store::settings::save_reference(c, kind, true, code, name, true, &admin, t0).await?;
            }
            let mut suppliers = Vec::new();
            for (i, name) in [
                "Laiterie Coopérative de Sétif",
                "Ferme El Eulma",
                "Chr. Hansen Algérie (démo)",
                "Emballages du Hodna",
                "Sel de Biskra",
                "Cartonnerie Mitidja",
            ]
            .iter()
            .enumerate()
            {
                let (party, _) = domain::catalogue::check_party(&PartyInput {
                    raison_sociale: (*name).into(),
                    forme_juridique: Some("SARL".into()),
                    wilaya: Some("19".into()),
                    nif: Some(format!("0999190000001{:02}", i + 10)),
                    rc: Some(format!("19 B 09990{:02} 00/19", i + 10)),
                    telephone: Some(format!("05501234{:02}", i + 10)),
                    ..Default::default()
                })?;
                suppliers.push(store::catalogue::save_supplier(c, None, party, 30, &appro, t0).await?);
            }
            let mut mps = Vec::new();
            for (i, (code, name, category, unit, perishable, _)) in MPS.iter().enumerate() {
                let m = domain::catalogue::check_mp(&MpInput {
                    code: (*code).into(),
                    name: (*name).into(),
                    category: (*category).into(),
                    base_unit: (*unit).into(),
                    perishable: Some(*perishable),
                    min_stock: Some(if *code == "MP-LAIT-CRU" { 2_000_000 } else { 10_000 }),
                    lead_time_days: Some(if i == 0 { 1 } else { 7 }),
                    criticite: Some(if i < 6 { "BLOQUANTE" } else { "MOYENNE" }.into()),
                    ..Default::default()
                })?;
                let supplier = suppliers[if i == 0 {
                    0
                } else if *category == "PACKAGING" {
                    3
                } else {
                    2
                }]
                .id;
                mps.push(store::catalogue::save_mp(c, None, m, Some(supplier), &appro, t0).await?);
            }
            let choice = |code: &str| RefChoice { code: code.into(), exists: true, active: true, kept: false };
            let mut pfs = Vec::new();
            for (code, name, weight, _, price, shelf, _, brand, family) in PFS {
                let f = domain::catalogue::check_pf(&PfInput {
                    code: code.into(),
                    name: name.into(),
                    base_unit: "U".into(),
                    weight_g: Some(weight),
                    packaging_type: if code.contains("SEAU") {
                        "SEAU"
                    } else if code.contains("FONDU") || code.contains("FRAIS") {
                        "BARQUETTE"
                    } else {
                        "SAC_THERMO"
                    }
                    .into(),
                    storage_type: "REFRIGERE".into(),
                    shelf_life_days: shelf,
                    list_price_ht: price,
                    tva_rate: Some(1900),
                    min_stock: Some(20_000),
                    family: Some(choice(family)),
                    brand: Some(choice(brand)),
                })?;
                pfs.push(store::catalogue::save_pf(c, None, f, &admin, t0).await?);
            }
            let mut clients = Vec::new();
            for (i, name) in CLIENT_NAMES.iter().enumerate() {
                let (party, _) = domain::catalogue::check_party(&PartyInput {
                    raison_sociale: (*name).into(),
                    forme_juridique: Some(if i % 3 == 0 { "EI" } else { "SARL" }.into()),
                    adresse: Some(format!("{} rue de l'Indépendance", i + 1)),
                    wilaya: Some(["16", "19", "05", "25", "31"][i % 5].into()),
                    nif: Some(format!("0999160000002{:02}", i + 10)),
                    rc: Some(format!("16 B 09991{:02} 16/00", i + 10)),
                    ai: Some(format!("160999990{:02}", i + 10)),
                    telephone: Some(format!("06611234{:02}", i + 10)),
                    ..Default::default()
                })?;
                let method = ["ESPECES", "ESPECES", "CHEQUE", "VIREMENT"][i % 4];
                let terms = store::catalogue::ClientTerms {
                    client_type: TYPES[i % 4].into(),
                    credit_limit: None,
                    payment_terms_days: if method == "ESPECES" { 0 } else { 30 },
                    default_payment_method: method.into(),
                };
                clients.push(store::catalogue::save_client(c, None, party, terms, None, &admin, t0).await?);
            }
            Ok((mps, pfs, suppliers, clients))
        })
    })
    .await
    .map_err(err)?;
    let mp = |code: &str| mps.iter().find(|p| p.code == code).cloned().unwrap_or_else(|| mps[0].clone());

    // Recipes (one per PF) and three price lists.
    tx(db, |t| {
        let (production, admin) = (production.clone(), admin.clone());
        let (pfs, lait, presure, ferments, sel, fonte) =
            (pfs.clone(), mp("MP-LAIT-CRU"), mp("MP-PRESURE"), mp("MP-FERMENTS"), mp("MP-SEL"), mp("MP-SELS-FONTE"));
        let packs: Vec<_> = PFS.iter().map(|x| mp(x.3)).collect();
        Box::pin(async move {
            for (i, pf) in pfs.iter().enumerate() {
                let milk = PFS[i].6 * 100; // per 100 pieces
                let mut items = vec![
                    (domain::production::ItemKind::Mp, lait.clone(), milk),
                    (domain::production::ItemKind::Mp, presure.clone(), 100),
                    (domain::production::ItemKind::Mp, ferments.clone(), 1_000),
                    (domain::production::ItemKind::Mp, sel.clone(), 500),
                    (domain::production::ItemKind::Packaging, packs[i].clone(), 100_000),
                ];
                if pf.code.contains("FONDU") {
                    items.push((domain::production::ItemKind::Mp, fonte.clone(), 1_500));
                }
                let new = store::production::NewVersion {
                    output_quantity: 100_000,
                    batch_weight_g: i64::from(PFS[i].2) * 100,
                    loss_tolerance_bp: 300,
                    shelf_life_override_days: None,
                    notes: None,
                    items: items
                        .into_iter()
                        .map(|(kind, p, quantity)| store::production::NewItem {
                            kind,
                            product: Some(p),
                            fluid_name: None,
                            unit_label: None,
                            quantity,
                            unit_cost: None,
                        })
                        .collect(),
                };
                store::production::create_version(&**t, pf, new, &production, t0).await?;
            }
            for (name, client_type, off) in [
                ("Grossistes", "GROSSISTE", 6),
                ("Distributeurs", "DISTRIBUTEUR", 9),
                ("Restauration rapide", "FAST_FOOD", 3),
            ] {
                let items = pfs
                    .iter()
                    .flat_map(|p| {
                        let base = p.list_price_ht * (100 - off) / 100;
                        [(p.clone(), 0, base), (p.clone(), 50_000, base * 97 / 100)]
                    })
                    .collect();
                let list = store::sales::NewPriceList {
                    name: format!("{name} (démo)"),
                    client_type: client_type.into(),
                    valid_from: start,
                    valid_to: None,
                    active: true,
                    items,
                };
                store::sales::save_price_list(&**t, None, list, &admin, t0).await?;
            }
            Ok(())
        })
    })
    .await
    .map_err(err)?;

    // 90 days of history.
    let mut n = Counts { receptions: 0, orders: 0, invoices: 0, payments: 0, credit_notes: 0, losses: 0, counts: 0 };
    let mut open_invoices: Vec<(String, i64, NaiveDate)> = Vec::new();
    // The other MPs come every ten days, from the first working day (the history may start on a Friday).
    let mut next_restock = 0;
    for day in 0..=days {
        let d = start + Duration::days(day);
        let weekday = chrono::Datelike::weekday(&d);
        if weekday == chrono::Weekday::Fri {
            continue;
        }
        // Receptions: milk every working day, the rest every ten days.
        let mut lines =
            vec![(mp("MP-LAIT-CRU"), 2_500_000 + dice.below(6) as i64 * 100_000, Some(d + Duration::days(4)))];
        if day >= next_restock {
            next_restock = day + 10;
            for (code, _, _, _, perishable, _) in MPS.iter().skip(1) {
                let q = if code.starts_with("MP-SAC")
                    || code.starts_with("MP-BARQ")
                    || code.starts_with("MP-SEAU")
                    || code.starts_with("MP-FILM")
                    || code.starts_with("MP-ETIQ")
                    || code.starts_with("MP-CARTON")
                {
                    3_000_000
                } else {
                    100_000
                };
                lines.push((mp(code), q, perishable.then(|| d + Duration::days(60))));
            }
        }
        for (i, chunk) in [lines[..1].to_vec(), lines[1..].to_vec()].into_iter().enumerate() {
            if chunk.is_empty() {
                continue;
            }
            let supplier = if i == 0 { suppliers[(day % 2) as usize].id } else { suppliers[2].id };
            let reception = store::procurement::NewReception {
                supplier_id: supplier,
                purchase_order_id: None,
                reception_date: d,
                supplier_delivery_note: Some(format!("BL-F{}-{i}", d.format("%y%m%d"))),
                supplier_invoice_number: None,
                lines: chunk
                    .iter()
                    .map(|(p, q, dlc)| store::procurement::NewLine {
                        product: p.clone(),
                        quantity: *q,
                        unit_cost_ht: MPS.iter().find(|m| m.0 == p.code).map_or(1_000, |m| m.5),
                        tva_rate: 900,
                        supplier_lot_number: None,
                        dlc: *dlc,
                        manufacture_date: None,
                    })
                    .collect(),
            };
            let now = at(d, 7);
            let done = refused(
                tx(db, |t| {
                    let (r, a) = (reception.clone(), appro.clone());
                    Box::pin(async move { store::procurement::create_reception(&**t, r, &a, now).await.map(|_| ()) })
                })
                .await,
            )?;
            n.receptions += usize::from(done.is_some());
        }
        // Production: two or three orders.
        for _ in 0..(2 + dice.below(2)) {
            let pf = pfs[dice.below(pfs.len() as u64) as usize].clone();
            let now = at(d, 9);
            let produced = 95_000 + dice.below(8) as i64 * 1_000;
            let made = refused(
                tx(db, |t| {
                    let (pf, a) = (pf.clone(), production.clone());
                    Box::pin(async move {
                        let o = store::production::create_order(&**t, &pf, 1, d, None, &a, now).await?;
                        store::production::start(&**t, &o.reference, &a, now).await?;
                        let done = store::production::Completion {
                            quantity_produced: produced,
                            qc: domain::production::QcStatus::Passed,
                            qc_note: None,
                            actual_batch_weight_g: None,
                        };
                        store::production::complete(&**t, &o.reference, done, &a, now).await.map(|_| ())
                    })
                })
                .await,
            )?;
            n.orders += usize::from(made.is_some());
        }
        // Sales: a few invoices, validated, delivered the same day, mostly paid.
        for k in 0..(4 + dice.below(3)) {
            let client = clients[dice.below(clients.len() as u64) as usize].clone();
            let mut lines = Vec::new();
            for _ in 0..(1 + dice.below(3)) {
                let pf = pfs[dice.below(pfs.len() as u64) as usize].clone();
                if lines.iter().any(|l: &store::sales::NewLine| l.product.code == pf.code) {
                    continue;
                }
                lines.push(store::sales::NewLine {
                    product: pf,
                    quantity: (6 + dice.below(30) as i64) * 1_000,
                    unit_price: None,
                    price_reason: None,
                    discount: 0,
                    rate_bp: None,
                });
            }
            let now = at(d, 10 + (k as u32 % 6));
            let new = store::sales::NewInvoice { client, method: None, notes: None, lines };
            let pay_now = dice.below(10) < 7;
            let signed = dice.below(10) < 8;
            let result = refused(
                tx(db, |t| {
                    let (new, a) = (new.clone(), commercial.clone());
                    Box::pin(async move {
                        let i = store::sales::create_draft(&**t, new, &a, now).await?;
                        let i = store::sales::validate(&**t, &i.id.to_string(), None, false, &a, now).await?;
                        let (bl, _) =
                            store::delivery::create(&**t, &i.id.to_string(), None, Default::default(), &a, now).await?;
                        let v = store::delivery::Validation {
                            mode: domain::delivery::ValidationMode::Manuel,
                            note: Some("Démo : remis au client".into()),
                            command_id: None,
                        };
                        store::delivery::validate(&**t, &bl.reference, v, &a, now).await?;
                        if signed {
                            let proof = store::delivery::Proof {
                                recipient_name: "Réceptionnaire démo".into(),
                                signature_png: Some(PNG.to_vec()),
                                ..Default::default()
                            };
                            store::delivery::deliver(&**t, &bl.reference, proof, &a, now).await?;
                        }
                        Ok(i)
                    })
                })
                .await,
            )?;
            let Some(inv) = result else { continue };
            n.invoices += 1;
            let reference = inv.reference.clone().unwrap_or_default();
            if pay_now && inv.payment_method == "ESPECES" {
                if pay(db, &commercial, &reference, &inv.payment_method, inv.net, d, now).await? {
                    n.payments += 1;
                }
            } else {
                open_invoices.push((reference, inv.net, d));
            }
        }
        // Cheques and transfers arrive about three weeks later; some invoices stay open for the aging.
        let due: Vec<_> = open_invoices.iter().filter(|(_, _, dd)| *dd + Duration::days(21) == d).cloned().collect();
        for (reference, net, _) in due {
            if dice.below(10) < 8 {
                let inv = store::sales::find_invoice(db.conn(), &reference).await.map_err(err)?;
                if let Some(inv) = inv
                    && pay(db, &commercial, &reference, &inv.payment_method, net, d, at(d, 15)).await?
                {
                    n.payments += 1;
                }
            }
        }
    }
    // Two credit notes: a return and a price correction, on recent invoices.
    let recent = store::sales::list_invoices(db.conn(), None, None).await.map_err(err)?;
    for (i, inv) in recent.iter().filter(|i| i.status != "CREDITED").take(2).enumerate() {
        let lines = store::sales::lines_of(db.conn(), inv.id).await.map_err(err)?;
        let Some(line) = lines.first() else { continue };
        let (kind, amount, reason) = if i == 0 {
            (domain::sales::CreditKind::Retour, 1_000, "Emballage abîmé au déchargement")
        } else {
            (domain::sales::CreditKind::Prix, line.ht / 20, "Remise de fidélité accordée après coup")
        };
        let asked = vec![store::sales::NewCreditLine { invoice_line_id: line.id, kind, amount }];
        let now = Utc::now();
        let key = inv.id.to_string();
        let made = refused(
            tx(db, |t| {
                let (asked, c, a, key) = (asked.clone(), commercial.clone(), admin.clone(), key.clone());
                Box::pin(async move {
                    let note = store::sales::create_credit_note(&**t, &key, reason, asked, &c, now).await?;
                    store::sales::validate_credit_note(&**t, &note.id.to_string(), &a, now).await.map(|_| ())
                })
            })
            .await,
        )?;
        n.credit_notes += usize::from(made.is_some());
    }
    // Three losses (two PF pieces dropped, a torn MP sack) and six counts validated by someone other than the
    // counter: four match the stock, two are one unit short and post an adjustment.
    let today_now = Utc::now();
    let losses: [(&[Product], &Actor, LossReason, &str); 3] = [
        (&pfs[..], &production, LossReason::Damaged, "Pièce tombée du chariot en chambre froide"),
        (&pfs[1..], &production, LossReason::Other, "Emballage percé constaté au conditionnement"),
        (&mps[1..], &appro, LossReason::Damaged, "Sac déchiré pendant la manutention"),
    ];
    for (products, actor, reason, note) in losses {
        for p in products {
            let lots = store::stock::lots_of(db.conn(), p.id).await.map_err(err)?;
            let Some(lot) = lots.iter().find(|l| l.status == "AVAILABLE" && l.quantity_remaining >= 5_000) else {
                continue;
            };
            let number = lot.lot_number.clone();
            let made = refused(
                tx(db, |t| {
                    let (number, a) = (number.clone(), (*actor).clone());
                    Box::pin(async move {
                        store::stock::declare_loss(&**t, &number, 1_000, reason, note, &a, today_now).await.map(|_| ())
                    })
                })
                .await,
            )?;
            if made.is_some() {
                n.losses += 1;
                break;
            }
        }
    }
    let comptable = as_role(Role::Comptable);
    for (i, p) in mps.iter().filter(|p| p.stock_tracked).take(6).enumerate() {
        let today = domain::stock::today_algiers(today_now);
        let theoretical: i64 = store::stock::lock_fefo(db.conn(), p.id, today, false)
            .await
            .map_err(err)?
            .iter()
            .map(|l| l.quantity_remaining)
            .sum();
        let short = if i < 4 { 0 } else { 1_000.min(theoretical) };
        let note = (short > 0).then(|| "Écart constaté au comptage de fin de mois".to_string());
        let made = refused(
            tx(db, |t| {
                let d = store::inventory::Declaration {
                    product: p.clone(),
                    declared: theoretical - short,
                    surplus_dlc: None,
                    note: note.clone(),
                };
                let (counter, first, second) = (appro.clone(), admin.clone(), comptable.clone());
                Box::pin(async move {
                    let mut count = store::inventory::declare(&**t, d, &counter, today_now).await?;
                    for v in [first, second] {
                        if !count.status.starts_with("PENDING") {
                            break;
                        }
                        count = store::inventory::validate(&**t, &count.reference, &v, today_now).await?;
                    }
                    Ok(count)
                })
            })
            .await,
        )?;
        n.counts += usize::from(made.is_some());
    }
    let report = store::integrity::run(db, None, false).await.map_err(err)?;
    let mut out = vec![
        "Jeu de démonstration chargé : « Fromagerie Démo des Hauts-Plateaux SARL (DÉMO) ».".to_string(),
        format!(
            "Catalogue : {} MP, {} PF et leurs recettes, {} fournisseurs, {} clients, 3 tarifs.",
            mps.len(),
            pfs.len(),
            suppliers.len(),
            clients.len()
        ),
        format!(
            "Du {} au {} : {} réceptions, {} ordres de production, {} factures et leurs BL, {} règlements, {} avoirs.",
            domain::stock::fmt_date(start),
            domain::stock::fmt_date(today),
            n.receptions,
            n.orders,
            n.invoices,
            n.payments,
            n.credit_notes
        ),
        format!("Stock : {} comptages d'inventaire validés, {} pertes déclarées.", n.counts, n.losses),
        format!("Durée : {:.1} s.", started.elapsed().as_secs_f64()),
        String::new(),
        "Comptes (mot de passe à changer à la première connexion ; affichés une seule fois) :".into(),
    ];
    for (email, pw, role) in &passwords {
        out.push(format!("  {:<11} {email:<36} {pw}", role.code()));
    }
    out.push(String::new());
    out.extend(report.lines());
    if !report.clean() {
        return Err(out.join("\n"));
    }
    Ok(out.join("\n"))
}

/// Pays an invoice in full with its method's details.
async fn pay(
    db: &Db,
    actor: &Actor,
    reference: &str,
    method: &str,
    amount: i64,
    d: NaiveDate,
    now: DateTime<Utc>,
) -> Result<bool, String> {
    let input = domain::sales::PaymentInput {
        method: method.into(),
        amount,
        date: Some(d),
        cheque_number: Some(format!("{:07}", amount % 9_999_999)),
        bank_name: Some("BADR".into()),
        cheque_date: Some(d),
        bank_reference: Some(format!("VIR-{}", d.format("%y%m%d"))),
    };
    let reference = reference.to_string();
    let r = tx(db, |t| {
        let (input, a, reference) = (input.clone(), actor.clone(), reference.clone());
        Box::pin(async move { store::sales::record_payment(&**t, &reference, input, None, &a, now).await.map(|_| ()) })
    })
    .await;
    Ok(refused(r)?.is_some())
}
