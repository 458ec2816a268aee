//! Receptions (DOMAIN.md §6.3): the date window, the line rules (quantity, cost, TVA, DLC), the totals. Purchase
//! orders and supplier scores join this module with the procurement issue.

use chrono::NaiveDate;
use serde_json::json;

use crate::money::{amount, apply_rate};
use crate::rejection::Rejection;
use crate::stock::fmt_date;
use crate::validation::Fields;

/// A reception is dated between today − 7 days and today.
pub fn check_reception_date(d: NaiveDate, today: NaiveDate) -> Result<(), Rejection> {
    let min = today - chrono::Duration::days(7);
    if d < min || d > today {
        return Err(Rejection::new(
            "DATE_RECEPTION_INVALIDE",
            422,
            format!("La date de réception doit être comprise entre le {} et aujourd'hui.", fmt_date(min)),
        )
        .with_details(json!({"min": min, "max": today})));
    }
    Ok(())
}

/// What a line needs to know of its product.
#[derive(Debug, Clone)]
pub struct LineProduct {
    pub code: String,
    pub perishable: bool,
    pub active: bool,
    pub is_mp: bool,
    pub stock_tracked: bool,
}

#[derive(Debug, Clone, Default)]
pub struct LineInput {
    pub quantity: i64,
    pub unit_cost_ht: i64,
    pub tva_rate: Option<i32>,
    pub supplier_lot_number: Option<String>,
    pub dlc: Option<NaiveDate>,
    pub manufacture_date: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineTotals {
    pub ht: i64,
    pub tva: i64,
    pub ttc: i64,
}

/// HT = qty × cost (half-up at the centime), TVA = HT × rate, TTC = HT + TVA.
pub fn line_totals(quantity: i64, unit_cost: i64, rate_bp: i32) -> Result<LineTotals, Rejection> {
    let ht = amount(quantity, unit_cost)?;
    let tva = apply_rate(ht, rate_bp)?;
    let ttc = ht.checked_add(tva).ok_or_else(crate::money::valeur_hors_limites)?;
    Ok(LineTotals { ht, tva, ttc })
}

/// The rules a purchase-order line and a reception line share: an active stock-tracked MP, quantity > 0, price ≥ 0
/// (`price_field` names it), TVA 0 / 9 / 19 %.
pub fn check_mp_line(
    f: &mut Fields,
    i: usize,
    p: &LineProduct,
    quantity: i64,
    price: i64,
    price_field: &str,
    tva_rate: Option<i32>,
) {
    let field = |name: &str| format!("lines[{i}].{name}");
    if !p.is_mp || !p.stock_tracked {
        f.add(
            &field("productCode"),
            "VALEUR_INVALIDE",
            format!("{} n'est pas une matière première suivie en stock.", p.code),
        );
    }
    if !p.active {
        f.reject(&field("productCode"), Rejection::new("PRODUIT_INACTIF", 409, format!("{} est désactivé.", p.code)));
    }
    if quantity <= 0 {
        f.reject(&field("quantity"), Rejection::new("QUANTITE_INVALIDE", 422, "Quantité invalide (doit être > 0)."));
    }
    if price < 0 {
        f.add(&field(price_field), "HORS_LIMITES", "Le prix unitaire doit être positif ou nul.");
    }
    crate::catalogue::tva(f, &field("tvaRate"), tva_rate.unwrap_or(1900));
}

/// Checks one line (index `i`, for the field names `lines[i].…`); returns the accepted warnings (`DLC_JOUR`).
pub fn check_line(
    f: &mut Fields,
    i: usize,
    p: &LineProduct,
    l: &LineInput,
    reception_date: NaiveDate,
    today: NaiveDate,
) -> Vec<Rejection> {
    let field = |name: &str| format!("lines[{i}].{name}");
    let mut warnings = Vec::new();
    check_mp_line(f, i, p, l.quantity, l.unit_cost_ht, "unitCostHt", l.tva_rate);
    if l.supplier_lot_number.as_deref().is_some_and(|s| s.chars().count() > 50) {
        f.add(&field("supplierLotNumber"), "LONGUEUR_INVALIDE", "50 caractères au plus.");
    }
    match l.dlc {
        None if p.perishable => f.reject(
            &field("dlc"),
            Rejection::new(
                "DLC_OBLIGATOIRE",
                422,
                format!("La DLC est obligatoire pour un produit périssable ({}).", p.code),
            )
            .with_details(json!({"produit": p.code})),
        ),
        Some(d) if d < today => f.reject(
            &field("dlc"),
            Rejection::new("DLC_DEPASSEE", 422, format!("La DLC {} est déjà dépassée.", fmt_date(d)))
                .with_details(json!({"dlc": d})),
        ),
        Some(d) if d == today => warnings.push(
            Rejection::new("DLC_JOUR", 200, "Attention : la DLC est aujourd'hui.").with_details(json!({"line": i})),
        ),
        _ => {}
    }
    if let Some(m) = l.manufacture_date
        && (m > reception_date || l.dlc.is_some_and(|d| m > d))
    {
        f.add(
            &field("manufactureDate"),
            "DATE_INVALIDE",
            "La date de fabrication doit précéder la réception et la DLC.",
        );
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn lait() -> LineProduct {
        LineProduct { code: "MP-LAIT".into(), perishable: true, active: true, is_mp: true, stock_tracked: true }
    }

    #[test]
    fn scenario_19_totals() {
        // 100 kg at 50.00 DA, TVA 9 % → HT 5 000.00, TVA 450.00, TTC 5 450.00.
        assert_eq!(line_totals(100_000, 5_000, 900).unwrap(), LineTotals { ht: 500_000, tva: 45_000, ttc: 545_000 });
    }

    #[test]
    fn scenario_18_dlc_rules() {
        let today = d("2025-03-14");
        let mut f = Fields::new();
        check_line(&mut f, 0, &lait(), &LineInput { quantity: 1_000, ..Default::default() }, today, today);
        let e = f.into_result().unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("DLC_OBLIGATOIRE", "La DLC est obligatoire pour un produit périssable (MP-LAIT).")
        );
        assert_eq!(e.details["fields"][0]["field"], "lines[0].dlc");
        let mut f = Fields::new();
        check_line(
            &mut f,
            1,
            &lait(),
            &LineInput { quantity: 1_000, dlc: Some(d("2025-03-13")), ..Default::default() },
            today,
            today,
        );
        assert_eq!(f.into_result().unwrap_err().message, "La DLC 13/03/2025 est déjà dépassée.");
        let mut f = Fields::new();
        let w = check_line(
            &mut f,
            0,
            &lait(),
            &LineInput { quantity: 1_000, dlc: Some(today), ..Default::default() },
            today,
            today,
        );
        assert!(f.is_empty());
        assert_eq!(w[0].code, "DLC_JOUR");
    }

    #[test]
    fn the_date_window_is_seven_days() {
        let today = d("2025-03-14");
        assert!(check_reception_date(d("2025-03-07"), today).is_ok());
        let e = check_reception_date(d("2025-03-06"), today).unwrap_err();
        assert_eq!(e.message, "La date de réception doit être comprise entre le 07/03/2025 et aujourd'hui.");
        assert!(check_reception_date(d("2025-03-15"), today).is_err());
    }

    #[test]
    fn bad_lines_list_every_problem() {
        let today = d("2025-03-14");
        let mut f = Fields::new();
        let l = LineInput {
            quantity: 0,
            unit_cost_ht: -1,
            tva_rate: Some(500),
            dlc: Some(d("2025-04-01")),
            manufacture_date: Some(d("2025-03-20")),
            ..Default::default()
        };
        check_line(&mut f, 2, &lait(), &l, today, today);
        let e = f.into_result().unwrap_err();
        let fields: Vec<&str> =
            e.details["fields"].as_array().unwrap().iter().map(|x| x["field"].as_str().unwrap()).collect();
        assert_eq!(
            fields,
            vec!["lines[2].quantity", "lines[2].unitCostHt", "lines[2].tvaRate", "lines[2].manufactureDate"]
        );
    }
}
