//! Catalogue and parties (DOMAIN.md §3, §4): what a valid MP, PF, supplier or client is, with the defaults the
//! domain gives. Every problem of a submission is listed at once (`validation::Fields`).

use chrono::NaiveDate;

use crate::rejection::Rejection;
use crate::validation::Fields;

pub const MP_CATEGORIES: [&str; 4] = ["RAW_MATERIAL", "PACKAGING", "ADDITIVE", "CONSUMABLE"];
pub const CRITICITES: [&str; 4] = ["FAIBLE", "MOYENNE", "HAUTE", "BLOQUANTE"];
pub const PACKAGING_TYPES: [&str; 7] = ["SAC_THERMO", "SEAU", "BARQUETTE", "BOITE", "FILM", "VRAC", "AUTRE"];
pub const STORAGE_TYPES: [&str; 4] = ["REFRIGERE", "FRAIS", "SEC", "CONGELE"];
/// The 58 wilayas by code (01 Adrar … 58 El Meniaa), printed on documents after the commune.
pub const WILAYAS: [&str; 58] = [
    "Adrar",
    "Chlef",
    "Laghouat",
    "Oum El Bouaghi",
    "Batna",
    "Béjaïa",
    "Biskra",
    "Béchar",
    "Blida",
    "Bouira",
    "Tamanrasset",
    "Tébessa",
    "Tlemcen",
    "Tiaret",
    "Tizi Ouzou",
    "Alger",
    "Djelfa",
    "Jijel",
    "Sétif",
    "Saïda",
    "Skikda",
    "Sidi Bel Abbès",
    "Annaba",
    "Guelma",
    "Constantine",
    "Médéa",
    "Mostaganem",
    "M'Sila",
    "Mascara",
    "Ouargla",
    "Oran",
    "El Bayadh",
    "Illizi",
    "Bordj Bou Arréridj",
    "Boumerdès",
    "El Tarf",
    "Tindouf",
    "Tissemsilt",
    "El Oued",
    "Khenchela",
    "Souk Ahras",
    "Tipaza",
    "Mila",
    "Aïn Defla",
    "Naâma",
    "Aïn Témouchent",
    "Ghardaïa",
    "Relizane",
    "Timimoun",
    "Bordj Badji Mokhtar",
    "Ouled Djellal",
    "Béni Abbès",
    "In Salah",
    "In Guezzam",
    "Touggourt",
    "Djanet",
    "El M'Ghair",
    "El Meniaa",
];

/// "Sétif (19)" for code 19; an unknown code is shown as stored.
pub fn wilaya_label(code: &str) -> String {
    match code.trim().parse::<usize>() {
        Ok(n @ 1..=58) => format!("{} ({:02})", WILAYAS[n - 1], n),
        _ => code.to_string(),
    }
}

/// The largest logo accepted (it is printed about 15 mm high: a small image is plenty).
pub const LOGO_MAX_BYTES: usize = 256 * 1024;

/// A company logo: a PNG or JPEG (read from its first bytes, not from its name) of at most 256 KiB; its content type.
pub fn check_logo(bytes: &[u8]) -> Result<&'static str, Rejection> {
    let kind = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "image/jpeg"
    } else {
        return Err(Rejection::new("VALEUR_HORS_LIMITES", 422, "Le logo doit être une image PNG ou JPEG.")
            .with_details(serde_json::json!({"field": "logo"})));
    };
    if bytes.len() > LOGO_MAX_BYTES {
        return Err(Rejection::new("VALEUR_HORS_LIMITES", 422, "Le logo dépasse 256 Kio : réduisez l'image.")
            .with_details(serde_json::json!({"field": "logo", "bytes": bytes.len(), "max": LOGO_MAX_BYTES})));
    }
    Ok(kind)
}

/// The key a logo is kept under: the lowercase hex SHA-256 of its bytes.
pub fn logo_key(bytes: &[u8]) -> String {
    use sha2::Digest;
    crate::audit::hex(&sha2::Sha256::digest(bytes))
}

/// French label of each storage type, with its temperature: printed on pages, labels and delivery notes.
pub const STORAGE_LABELS: [(&str, &str); 4] =
    [("REFRIGERE", "Réfrigéré (2–8 °C)"), ("FRAIS", "Frais (0–4 °C)"), ("SEC", "Sec"), ("CONGELE", "Congelé (−18 °C)")];

/// The French label of a storage type code; an unknown code is shown as stored.
pub fn storage_label(code: &str) -> &str {
    STORAGE_LABELS.iter().find(|(c, _)| *c == code).map_or(code, |(_, l)| l)
}
pub const TVA_RATES: [i32; 3] = [0, 900, 1900];
pub const FORMES_JURIDIQUES: [&str; 6] = ["SARL", "EURL", "SPA", "SNC", "EI", "AUTRE"];
pub const CLIENT_TYPES: [&str; 4] = ["DISTRIBUTEUR", "GROSSISTE", "SUPERETTE", "FAST_FOOD"];
pub const PAYMENT_METHODS: [&str; 3] = ["ESPECES", "CHEQUE", "VIREMENT"];

/// `MP-` / `PF-` followed by 3–30 of [A-Z0-9-]; upper-cased and trimmed first.
pub fn product_code(f: &mut Fields, prefix: &str, raw: &str) -> String {
    let v = raw.trim().to_uppercase();
    let rest = v.strip_prefix(prefix).unwrap_or("");
    let ok = (3..=30).contains(&rest.chars().count())
        && rest.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        f.add("code", "CODE_INVALIDE", format!("Code attendu : {prefix} suivi de 3 à 30 caractères (A-Z, 0-9, -)."));
    }
    v
}

fn one_of(f: &mut Fields, field: &str, value: &str, allowed: &[&str]) -> String {
    if !allowed.contains(&value) {
        f.add(field, "VALEUR_INVALIDE", format!("Valeur attendue : {}.", allowed.join(", ")));
    }
    value.to_string()
}

fn non_negative(f: &mut Fields, field: &str, v: i64) -> i64 {
    if v < 0 {
        f.add(field, "HORS_LIMITES", "Valeur positive ou nulle attendue.");
    }
    v
}

pub fn tva(f: &mut Fields, field: &str, v: i32) -> i32 {
    if !TVA_RATES.contains(&v) {
        f.reject(field, Rejection::new("TVA_INVALIDE", 422, "Taux de TVA invalide (0 %, 9 % ou 19 %)."));
    }
    v
}

/// An MP as submitted (quantities in milli-units; `None` takes the domain's default).
#[derive(Debug, Clone, Default)]
pub struct MpInput {
    pub code: String,
    pub name: String,
    pub category: String,
    pub base_unit: String,
    pub perishable: Option<bool>,
    pub qc_required: Option<bool>,
    pub min_stock: Option<i64>,
    pub safety_threshold: Option<i64>,
    pub reorder_threshold: Option<i64>,
    pub lead_time_days: Option<i32>,
    pub criticite: Option<String>,
    pub stock_tracked: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mp {
    pub code: String,
    pub name: String,
    pub category: String,
    pub base_unit: String,
    pub perishable: bool,
    pub qc_required: bool,
    pub min_stock: i64,
    pub safety_threshold: i64,
    pub reorder_threshold: i64,
    pub lead_time_days: i32,
    pub criticite: String,
    pub stock_tracked: bool,
}

/// §3.3 with its defaults: perishable for raw materials and additives, safety = min, reorder = min × 1.5 (half-up).
pub fn check_mp(i: &MpInput) -> Result<Mp, Rejection> {
    let mut f = Fields::new();
    let code = product_code(&mut f, "MP-", &i.code);
    let name = f.text("name", &i.name, 2, 120);
    let category = one_of(&mut f, "category", &i.category, &MP_CATEGORIES);
    let base_unit = i.base_unit.clone();
    if crate::stock::Unit::parse(&base_unit).is_none() {
        f.add("baseUnit", "VALEUR_INVALIDE", "Unité attendue : KG, G, L, ML, U, CRT ou RLX.");
    }
    let min_stock = non_negative(&mut f, "minStock", i.min_stock.unwrap_or(0));
    let safety_threshold = non_negative(&mut f, "safetyThreshold", i.safety_threshold.unwrap_or(min_stock));
    let reorder_default = crate::money::round_div(i128::from(min_stock) * 15, 10) as i64;
    let reorder_threshold = i.reorder_threshold.unwrap_or(reorder_default.max(safety_threshold));
    if reorder_threshold < safety_threshold {
        f.add("reorderThreshold", "HORS_LIMITES", "Le seuil de commande doit être au moins égal au seuil de sécurité.");
    }
    let lead_time_days = i.lead_time_days.unwrap_or(7);
    f.range("leadTimeDays", i64::from(lead_time_days), 1, 365);
    let criticite = one_of(&mut f, "criticite", i.criticite.as_deref().unwrap_or("MOYENNE"), &CRITICITES);
    f.into_result()?;
    Ok(Mp {
        perishable: i.perishable.unwrap_or(matches!(category.as_str(), "RAW_MATERIAL" | "ADDITIVE")),
        qc_required: i.qc_required.unwrap_or(false),
        stock_tracked: i.stock_tracked.unwrap_or(true),
        code,
        name,
        category,
        base_unit,
        min_stock,
        safety_threshold,
        reorder_threshold,
        lead_time_days,
        criticite,
    })
}

/// A brand or family named by a product form, as the store found it (§3.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefChoice {
    pub code: String,
    pub exists: bool,
    pub active: bool,
    /// Already the product's: a deactivated one stays on existing products.
    pub kept: bool,
}

fn reference_choice(f: &mut Fields, field: &str, label: &str, c: &RefChoice) -> Option<String> {
    if !c.exists {
        f.add(field, "NON_TROUVE", format!("{label} {} introuvable.", c.code));
        None
    } else if !c.active && !c.kept {
        f.add(field, "VALEUR_INVALIDE", format!("{label} {} est désactivée : choisissez-en une autre.", c.code));
        None
    } else {
        Some(c.code.clone())
    }
}

#[derive(Debug, Clone, Default)]
pub struct PfInput {
    pub code: String,
    pub name: String,
    pub base_unit: String,
    pub weight_g: Option<i32>,
    pub packaging_type: String,
    pub storage_type: String,
    pub shelf_life_days: i32,
    pub list_price_ht: i64,
    pub tva_rate: Option<i32>,
    pub min_stock: Option<i64>,
    /// Exactly one family (§3.2).
    pub family: Option<RefChoice>,
    /// At most one brand.
    pub brand: Option<RefChoice>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pf {
    pub code: String,
    pub name: String,
    pub base_unit: String,
    pub weight_g: Option<i32>,
    pub packaging_type: String,
    pub storage_type: String,
    pub shelf_life_days: i32,
    pub list_price_ht: i64,
    pub tva_rate: i32,
    pub min_stock: i64,
    pub family_code: String,
    pub brand_code: Option<String>,
}

/// §3.4: pieces (U, with a weight) or kilograms; shelf life 1–730 days; TVA 0, 9 or 19 %.
pub fn check_pf(i: &PfInput) -> Result<Pf, Rejection> {
    let mut f = Fields::new();
    let code = product_code(&mut f, "PF-", &i.code);
    let name = f.text("name", &i.name, 2, 120);
    let base_unit = one_of(&mut f, "baseUnit", &i.base_unit, &["U", "KG"]);
    if base_unit == "U" && i.weight_g.is_none_or(|w| w < 1) {
        f.add(
            "weightG",
            "OBLIGATOIRE",
            "Le poids d'une pièce (en grammes, ≥ 1) est obligatoire pour un produit à la pièce.",
        );
    }
    let packaging_type = one_of(&mut f, "packagingType", &i.packaging_type, &PACKAGING_TYPES);
    let storage_type = one_of(&mut f, "storageType", &i.storage_type, &STORAGE_TYPES);
    f.range("shelfLifeDays", i64::from(i.shelf_life_days), 1, 730);
    let list_price_ht = non_negative(&mut f, "listPriceHt", i.list_price_ht);
    let tva_rate = tva(&mut f, "tvaRate", i.tva_rate.unwrap_or(1900));
    let min_stock = non_negative(&mut f, "minStock", i.min_stock.unwrap_or(0));
    let family_code = match &i.family {
        Some(c) => reference_choice(&mut f, "familyCode", "La famille", c),
        None => {
            f.add("familyCode", "OBLIGATOIRE", "Choisissez la famille du produit.");
            None
        }
    };
    let brand_code = i.brand.as_ref().and_then(|c| reference_choice(&mut f, "brandCode", "La marque", c));
    f.into_result()?;
    Ok(Pf {
        family_code: family_code.unwrap_or_default(),
        brand_code,
        code,
        name,
        base_unit,
        weight_g: i.weight_g,
        packaging_type,
        storage_type,
        shelf_life_days: i.shelf_life_days,
        list_price_ht,
        tva_rate,
        min_stock,
    })
}

/// Identity fields common to suppliers and clients (§4.1).
#[derive(Debug, Clone, Default)]
pub struct PartyInput {
    pub raison_sociale: String,
    pub forme_juridique: Option<String>,
    pub adresse: Option<String>,
    pub wilaya: Option<String>,
    pub commune: Option<String>,
    pub telephone: Option<String>,
    pub email: Option<String>,
    pub rc: Option<String>,
    pub nif: Option<String>,
    pub ai: Option<String>,
    pub nis: Option<String>,
    pub contact_name: Option<String>,
    pub notes: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Party {
    pub raison_sociale: String,
    pub forme_juridique: Option<String>,
    pub adresse: Option<String>,
    pub wilaya: Option<String>,
    pub commune: Option<String>,
    pub telephone: Option<String>,
    pub email: Option<String>,
    pub rc: Option<String>,
    pub nif: Option<String>,
    pub ai: Option<String>,
    pub nis: Option<String>,
    pub contact_name: Option<String>,
    pub notes: Option<String>,
}

fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Normalises and checks the identity of a party; returns it with the accepted warnings (`AI_FORMAT_INHABITUEL`).
pub fn check_party(i: &PartyInput) -> Result<(Party, Vec<Rejection>), Rejection> {
    let mut f = Fields::new();
    let mut warnings = Vec::new();
    let party = party_fields(&mut f, i, &mut warnings);
    f.into_result()?;
    Ok((party, warnings))
}

/// The identity fields of a party (or of the company), their problems gathered in `f`.
fn party_fields(f: &mut Fields, i: &PartyInput, warnings: &mut Vec<Rejection>) -> Party {
    let raison_sociale = f.text("raisonSociale", &i.raison_sociale, 2, 120);
    let forme_juridique = present(&i.forme_juridique).map(|v| one_of(f, "formeJuridique", v, &FORMES_JURIDIQUES));
    let wilaya = present(&i.wilaya).map(|w| {
        let ok = w.len() == 2 && w.parse::<u8>().is_ok_and(|n| (1..=58).contains(&n));
        if !ok {
            f.add("wilaya", "VALEUR_INVALIDE", "Wilaya attendue : 01 à 58.");
        }
        w.to_string()
    });
    let telephone = present(&i.telephone).and_then(|v| f.take("telephone", crate::parties::phone(v)));
    let email = present(&i.email).and_then(|v| f.take("email", crate::parties::email(v)));
    let rc = present(&i.rc).and_then(|v| f.take("rc", crate::parties::rc(v)));
    let nif = present(&i.nif).and_then(|v| f.take("nif", crate::parties::nif(v)));
    let nis = present(&i.nis).and_then(|v| f.take("nis", crate::parties::nis(v)));
    let ai = present(&i.ai).and_then(|v| f.take("ai", crate::parties::ai(v))).map(|c| {
        warnings.extend(c.warning);
        c.value
    });
    let keep = |v: &Option<String>| present(v).map(str::to_string);
    Party {
        raison_sociale,
        forme_juridique,
        adresse: keep(&i.adresse),
        wilaya,
        commune: keep(&i.commune),
        telephone,
        email,
        rc,
        nif,
        ai,
        nis,
        contact_name: keep(&i.contact_name),
        notes: keep(&i.notes),
    }
}

/// Company settings (§3.1) beyond the party fields they share.
#[derive(Debug, Clone, Default)]
pub struct CompanyInput {
    pub identity: PartyInput,
    pub capital_social: Option<i64>,
    pub rib: Option<String>,
    pub bank_name: Option<String>,
    pub invoice_footer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Company {
    pub identity: Party,
    pub capital_social: Option<i64>,
    pub rib: Option<String>,
    pub bank_name: Option<String>,
    pub invoice_footer: Option<String>,
}

/// §3.1: raison sociale, forme juridique, address, wilaya and commune mandatory; identifiers as §4.2; capital ≥ 0
/// (optional for an EI); RIB 20 digits; footer ≤ 300 characters. RC, NIF, AI and NIS are only demanded before the
/// first invoice (`PARAMETRES_SOCIETE_INCOMPLETS`, sales issue).
pub fn check_company(i: &CompanyInput) -> Result<(Company, Vec<Rejection>), Rejection> {
    let mut f = Fields::new();
    let mut warnings = Vec::new();
    let identity = party_fields(&mut f, &i.identity, &mut warnings);
    for (field, v) in [
        ("formeJuridique", &i.identity.forme_juridique),
        ("adresse", &i.identity.adresse),
        ("wilaya", &i.identity.wilaya),
        ("commune", &i.identity.commune),
    ] {
        if present(v).is_none() {
            f.add(field, "OBLIGATOIRE", "Ce champ est obligatoire.");
        }
    }
    match i.capital_social {
        Some(c) if c < 0 => f.add("capitalSocial", "HORS_LIMITES", "Capital positif ou nul attendu."),
        None if identity.forme_juridique.as_deref().is_some_and(|fj| fj != "EI") => {
            f.add("capitalSocial", "OBLIGATOIRE", "Le capital social est obligatoire (sauf pour une EI).")
        }
        _ => {}
    }
    let rib = present(&i.rib).map(|r| r.chars().filter(|c| !c.is_whitespace()).collect::<String>());
    if rib.as_ref().is_some_and(|r| r.len() != 20 || !r.chars().all(|c| c.is_ascii_digit())) {
        f.add("rib", "VALEUR_INVALIDE", "RIB attendu : 20 chiffres.");
    }
    let footer = present(&i.invoice_footer).map(str::to_string);
    if footer.as_ref().is_some_and(|t| t.chars().count() > 300) {
        f.add("invoiceFooter", "LONGUEUR_INVALIDE", "300 caractères au plus.");
    }
    f.into_result()?;
    Ok((
        Company {
            identity,
            capital_social: i.capital_social,
            rib,
            bank_name: present(&i.bank_name).map(str::to_string),
            invoice_footer: footer,
        },
        warnings,
    ))
}

/// A brand or family (§3.2): code of A–Z, 0–9, `_`, 2–20 characters (upper-cased), name 2–120.
pub fn check_reference(code: &str, name: &str) -> Result<(String, String), Rejection> {
    let mut f = Fields::new();
    let code = code.trim().to_uppercase();
    let n = code.chars().count();
    if !(2..=20).contains(&n) || !code.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
        f.add("code", "VALEUR_INVALIDE", "Code attendu : 2 à 20 caractères parmi A–Z, 0–9 et _.");
    }
    let name = f.text("name", name, 2, 120);
    f.into_result()?;
    Ok((code, name))
}

/// A supplier's payment terms: 0–180 days (§4.3).
pub fn check_supplier_terms(days: i32) -> Result<i32, Rejection> {
    let mut f = Fields::new();
    f.range("paymentTermsDays", i64::from(days), 0, 180);
    f.into_result().map(|_| days)
}

/// A supplier block (§4.3): reason ≥ 10 characters, end date after today or none ("indéfini").
pub fn check_supplier_block(reason: &str, until: Option<NaiveDate>, today: NaiveDate) -> Result<(), Rejection> {
    let mut f = Fields::new();
    if reason.trim().chars().count() < 10 {
        f.add("reason", "MOTIF_TROP_COURT", "Le motif doit contenir au moins 10 caractères.");
    }
    if until.is_some_and(|u| u <= today) {
        f.add("until", "DATE_INVALIDE", "Date invalide : la fin du blocage doit être postérieure à aujourd'hui.");
    }
    f.into_result()
}

/// Whether a block is in force today; it lapses the day after its end date.
pub fn supplier_blocked(reason: Option<&str>, until: Option<NaiveDate>, today: NaiveDate) -> bool {
    reason.is_some() && until.is_none_or(|u| today <= u)
}

/// `FOURNISSEUR_BLOQUE` naming the supplier, the end of the block and its reason.
pub fn fournisseur_bloque(name: &str, until: Option<NaiveDate>, reason: &str) -> Rejection {
    let date = until.map(crate::stock::fmt_date).unwrap_or_else(|| "nouvel ordre".into());
    Rejection::new("FOURNISSEUR_BLOQUE", 409, format!("Le fournisseur {name} est bloqué jusqu'au {date} : {reason}."))
        .with_details(serde_json::json!({"nom": name, "date": until, "motif": reason}))
}

/// A client's commercial terms (§4.4): type, credit limit ≥ 0 or none, 0–120 days, payment method.
pub fn check_client_terms(
    client_type: &str,
    credit_limit: Option<i64>,
    days: i32,
    method: &str,
) -> Result<(), Rejection> {
    let mut f = Fields::new();
    one_of(&mut f, "clientType", client_type, &CLIENT_TYPES);
    if credit_limit.is_some_and(|c| c < 0) {
        f.add("creditLimit", "HORS_LIMITES", "Plafond positif ou nul attendu.");
    }
    f.range("paymentTermsDays", i64::from(days), 0, 120);
    one_of(&mut f, "defaultPaymentMethod", method, &PAYMENT_METHODS);
    f.into_result()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_logo_is_a_small_png_or_jpeg() {
        assert_eq!(check_logo(b"\x89PNG\r\n\x1a\n...").unwrap(), "image/png");
        assert_eq!(check_logo(&[0xFF, 0xD8, 0xFF, 0xE0, 0]).unwrap(), "image/jpeg");
        assert_eq!(check_logo(b"GIF89a").unwrap_err().message, "Le logo doit être une image PNG ou JPEG.");
        let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
        big.resize(LOGO_MAX_BYTES, 0);
        assert!(check_logo(&big).is_ok());
        big.push(0);
        assert_eq!(check_logo(&big).unwrap_err().message, "Le logo dépasse 256 Kio : réduisez l'image.");
    }

    #[test]
    fn wilayas_and_storage_types_print_in_french() {
        assert_eq!(wilaya_label("19"), "Sétif (19)");
        assert_eq!(wilaya_label("01"), "Adrar (01)");
        assert_eq!(wilaya_label("58"), "El Meniaa (58)");
        assert_eq!(wilaya_label("16"), "Alger (16)");
        assert_eq!(wilaya_label("59"), "59");
        assert_eq!(storage_label("REFRIGERE"), "Réfrigéré (2–8 °C)");
        assert_eq!(storage_label("CONGELE"), "Congelé (−18 °C)");
        assert_eq!(storage_label("AUTRE"), "AUTRE");
    }

    use super::*;

    #[test]
    fn company_settings_demand_address_and_capital_and_check_the_rib() {
        let mut i = CompanyInput {
            identity: PartyInput {
                raison_sociale: "Fromagerie des Hauts-Plateaux".into(),
                forme_juridique: Some("SARL".into()),
                adresse: Some("Zone industrielle, lot 12".into()),
                wilaya: Some("19".into()),
                commune: Some("Sétif".into()),
                rc: Some("19 b  0123456 00/19".into()),
                ..Default::default()
            },
            capital_social: Some(100_000_000),
            rib: Some("0012 3456 7890 1234 5678".into()),
            ..Default::default()
        };
        let (c, _) = check_company(&i).unwrap();
        assert_eq!(c.rib.as_deref(), Some("00123456789012345678"));
        assert_eq!(c.identity.rc.as_deref(), Some("19 B 0123456 00/19"));
        i.capital_social = None;
        i.rib = Some("123".into());
        i.identity.commune = None;
        let e = check_company(&i).unwrap_err();
        let fields: Vec<&str> =
            e.details["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["commune", "capitalSocial", "rib"]);
        i.identity.forme_juridique = Some("EI".into());
        i.identity.commune = Some("Sétif".into());
        i.rib = None;
        assert!(check_company(&i).is_ok());
    }

    #[test]
    fn brand_and_family_codes() {
        assert_eq!(check_reference(" fromages_frais ", "Fromages frais").unwrap().0, "FROMAGES_FRAIS");
        assert_eq!(check_reference("A", "x").unwrap_err().details["fields"].as_array().unwrap().len(), 2);
        assert!(check_reference("PÂTE-DURE", "Pâte dure").is_err());
    }

    #[test]
    fn supplier_blocks_need_a_reason_and_a_future_end_and_lapse_the_day_after() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let today = d("2025-03-14");
        assert!(check_supplier_block("Retards répétés de livraison", Some(d("2025-04-30")), today).is_ok());
        assert!(check_supplier_block("Retards répétés de livraison", None, today).is_ok());
        let e = check_supplier_block("court", Some(today), today).unwrap_err();
        let fields: Vec<&str> =
            e.details["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["reason", "until"]);
        let until = Some(d("2025-04-30"));
        assert!(supplier_blocked(Some("x"), until, d("2025-04-30")));
        assert!(!supplier_blocked(Some("x"), until, d("2025-05-01")));
        assert!(supplier_blocked(Some("x"), None, d("2030-01-01")));
        assert!(!supplier_blocked(None, None, today));
        let r = fournisseur_bloque("Laiterie du Tell", until, "Retards répétés");
        assert_eq!(r.message, "Le fournisseur Laiterie du Tell est bloqué jusqu'au 30/04/2025 : Retards répétés.");
        assert_eq!(r.status, 409);
    }

    fn mp() -> MpInput {
        MpInput {
            code: "mp-lait-cru".into(),
            name: "Lait cru".into(),
            category: "RAW_MATERIAL".into(),
            base_unit: "L".into(),
            min_stock: Some(1_000_000),
            ..Default::default()
        }
    }

    #[test]
    fn mp_defaults_follow_the_domain() {
        let m = check_mp(&mp()).unwrap();
        assert_eq!(m.code, "MP-LAIT-CRU");
        assert!(m.perishable, "raw materials are perishable by default");
        assert_eq!((m.safety_threshold, m.reorder_threshold, m.lead_time_days), (1_000_000, 1_500_000, 7));
        assert_eq!(m.criticite, "MOYENNE");
        let carton = check_mp(&MpInput { category: "PACKAGING".into(), base_unit: "U".into(), ..mp() }).unwrap();
        assert!(!carton.perishable);
    }

    #[test]
    fn mp_problems_are_all_listed() {
        let e = check_mp(&MpInput {
            code: "MP-X".into(),
            name: "L".into(),
            category: "LAIT".into(),
            base_unit: "TONNE".into(),
            safety_threshold: Some(100),
            reorder_threshold: Some(50),
            lead_time_days: Some(0),
            ..Default::default()
        })
        .unwrap_err();
        let fields: Vec<&str> =
            e.details["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
        assert_eq!(fields, vec!["code", "name", "category", "baseUnit", "reorderThreshold", "leadTimeDays"]);
        assert_eq!(e.status, 400);
    }

    #[test]
    fn pf_in_pieces_needs_a_weight_and_a_known_tva() {
        let base = PfInput {
            code: "PF-EDAM-400".into(),
            name: "Edam 400 g".into(),
            base_unit: "U".into(),
            weight_g: Some(400),
            packaging_type: "SAC_THERMO".into(),
            storage_type: "REFRIGERE".into(),
            shelf_life_days: 180,
            list_price_ht: 65_000,
            family: Some(RefChoice { code: "PATE_PRESSEE".into(), exists: true, active: true, kept: false }),
            ..Default::default()
        };
        assert_eq!(check_pf(&base).unwrap().tva_rate, 1900);
        assert_eq!(check_pf(&base).unwrap().family_code, "PATE_PRESSEE");
        let e = check_pf(&PfInput { weight_g: None, ..base.clone() }).unwrap_err();
        assert_eq!(e.details["fields"][0]["field"], "weightG");
        let e = check_pf(&PfInput { tva_rate: Some(700), ..base.clone() }).unwrap_err();
        assert_eq!((e.code, e.status), ("TVA_INVALIDE", 422));
        assert!(check_pf(&PfInput { base_unit: "KG".into(), weight_g: None, ..base.clone() }).is_ok());
        // §3.2: exactly one family; a deactivated family or brand stays on a product but is not chosen anew.
        let e = check_pf(&PfInput { family: None, ..base.clone() }).unwrap_err();
        assert_eq!((e.details["fields"][0]["field"].as_str(), e.status), (Some("familyCode"), 400));
        let off = RefChoice { code: "ANCIENNE".into(), exists: true, active: false, kept: false };
        let e = check_pf(&PfInput { brand: Some(off.clone()), ..base.clone() }).unwrap_err();
        assert_eq!(e.details["fields"][0]["message"], "La marque ANCIENNE est désactivée : choisissez-en une autre.");
        assert!(check_pf(&PfInput { brand: Some(RefChoice { kept: true, ..off }), ..base.clone() }).is_ok());
        let missing = RefChoice { code: "X".into(), ..Default::default() };
        let e = check_pf(&PfInput { family: Some(missing), ..base }).unwrap_err();
        assert_eq!(e.details["fields"][0]["code"], "NON_TROUVE");
    }

    #[test]
    fn commercial_terms_stay_within_their_ranges() {
        assert!(check_client_terms("GROSSISTE", Some(50_000_000), 30, "CHEQUE").is_ok());
        assert!(check_client_terms("SUPERETTE", None, 0, "ESPECES").is_ok());
        let e = check_client_terms("PARTICULIER", Some(-1), 121, "CARTE").unwrap_err();
        let fields: Vec<&str> =
            e.details["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
        assert_eq!(fields, vec!["clientType", "creditLimit", "paymentTermsDays", "defaultPaymentMethod"]);
        assert_eq!(check_supplier_terms(180), Ok(180));
        assert_eq!(check_supplier_terms(181).unwrap_err().details["fields"][0]["field"], "paymentTermsDays");
    }

    #[test]
    fn parties_are_normalised_with_warnings() {
        let (p, w) = check_party(&PartyInput {
            raison_sociale: "Laiterie du Djurdjura SARL".into(),
            telephone: Some("+213 555 12 34 56".into()),
            rc: Some("25 b  1204921 16/00".into()),
            nif: Some("0016 1234 5678 901".into()),
            ai: Some("1601234".into()),
            email: Some(" Contact@Djurdjura.DZ".into()),
            wilaya: Some("15".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.telephone.as_deref(), Some("0555123456"));
        assert_eq!(p.rc.as_deref(), Some("25 B 1204921 16/00"));
        assert_eq!(p.nif.as_deref(), Some("001612345678901"));
        assert_eq!(p.email.as_deref(), Some("contact@djurdjura.dz"));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].code, "AI_FORMAT_INHABITUEL");
        let e =
            check_party(&PartyInput { raison_sociale: "X".into(), wilaya: Some("59".into()), ..Default::default() })
                .unwrap_err();
        assert_eq!(e.details["fields"].as_array().unwrap().len(), 2);
        // Identifiers are optional when creating a party.
        assert!(
            check_party(&PartyInput { raison_sociale: "Supérette El Baraka".into(), ..Default::default() }).is_ok()
        );
    }
}
