//! Recipes and production orders (DOMAIN.md §8): recipe versions, the order state machine, needs per item, and the
//! completion computations (PF lot number and DLC, costs, unit cost, yield, tolerance).

use chrono::NaiveDate;
use serde_json::json;

use crate::money::round_div;
use crate::rejection::Rejection;

pub const LOSS_TOLERANCE_DEFAULT_BP: i64 = 200;
pub const LOSS_TOLERANCE_MAX_BP: i64 = 5_000;
pub const BATCHES_MAX: i64 = 100;
pub const REASON_MIN: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    Mp,
    Packaging,
    Fluid,
}

impl ItemKind {
    pub fn code(self) -> &'static str {
        match self {
            ItemKind::Mp => "MP",
            ItemKind::Packaging => "PACKAGING",
            ItemKind::Fluid => "FLUID",
        }
    }

    pub fn parse(code: &str) -> Option<ItemKind> {
        [ItemKind::Mp, ItemKind::Packaging, ItemKind::Fluid].into_iter().find(|k| k.code() == code)
    }

    /// MP and packaging come out of stock; a fluid only adds cost.
    pub fn stocked(self) -> bool {
        self != ItemKind::Fluid
    }
}

/// One recipe item as entered: a stock item names its MP (`code`), a fluid its name, unit label and unit cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemInput {
    pub kind: ItemKind,
    pub code: String,
    pub quantity: i64,
    /// FLUID only: centimes per unit.
    pub unit_cost: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipeInput {
    pub output_quantity: i64,
    pub batch_weight_g: i64,
    pub loss_tolerance_bp: Option<i64>,
    pub shelf_life_override_days: Option<i64>,
    pub items: Vec<ItemInput>,
}

/// The checks of §8.1 that need no database: quantities, tolerance, shelf life, at least one stock item, an MP once.
/// `output_in_pieces`: the PF counts in U, so the output is whole pieces. Returns the tolerance to store.
pub fn check_recipe(r: &RecipeInput, output_in_pieces: bool) -> Result<i64, Rejection> {
    let mut f = crate::validation::Fields::new();
    if r.output_quantity <= 0 {
        f.add("outputQuantity", "MUST_BE_POSITIVE", "La quantité produite par lot doit être positive.");
    } else if output_in_pieces && r.output_quantity % 1000 != 0 {
        f.add("outputQuantity", "PIECES_ENTIERES", "Le produit se compte en pièces : quantité entière attendue.");
    }
    if r.batch_weight_g <= 0 {
        f.add("batchWeightG", "MUST_BE_POSITIVE", "Le poids d'un lot (g) doit être positif.");
    }
    let tol = r.loss_tolerance_bp.unwrap_or(LOSS_TOLERANCE_DEFAULT_BP);
    f.range("lossToleranceBp", tol, 0, LOSS_TOLERANCE_MAX_BP);
    if let Some(days) = r.shelf_life_override_days {
        f.range("shelfLifeOverrideDays", days, 1, 730);
    }
    for (i, item) in r.items.iter().enumerate() {
        if item.quantity <= 0 {
            f.add(&format!("items[{i}].quantity"), "MUST_BE_POSITIVE", "La quantité par lot doit être positive.");
        }
        match (item.kind, item.unit_cost) {
            (ItemKind::Fluid, None) => {
                f.add(&format!("items[{i}].unitCost"), "REQUIRED", "Coût unitaire obligatoire pour un fluide.")
            }
            (ItemKind::Fluid, Some(c)) if c < 0 => {
                f.add(&format!("items[{i}].unitCost"), "MUST_BE_POSITIVE", "Le coût unitaire ne peut pas être négatif.")
            }
            _ => {}
        }
        if item.code.trim().is_empty() {
            f.add(&format!("items[{i}].code"), "REQUIRED", "Matière ou fluide obligatoire.");
        }
    }
    if !r.items.iter().any(|i| i.kind.stocked()) {
        f.add("items", "RECETTE_SANS_MATIERE", "La recette doit contenir au moins une matière ou un emballage.");
    }
    f.into_result()?;
    let mut seen = std::collections::HashSet::new();
    for item in r.items.iter().filter(|i| i.kind.stocked()) {
        if !seen.insert(item.code.as_str()) {
            return Err(Rejection::new("RECETTE_DOUBLON", 422, format!("Matière {} en double.", item.code))
                .with_details(json!({"productCode": item.code})));
        }
    }
    Ok(tol)
}

/// What an item check needs to know of the product a stock item names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemProduct {
    pub code: String,
    pub is_mp: bool,
    pub category: Option<String>,
    pub stock_tracked: bool,
    pub active: bool,
}

/// A stock item names an active, stock-tracked MP; a PACKAGING item an MP of that category (§8.1, §3.3).
pub fn check_item_product(f: &mut crate::validation::Fields, i: usize, kind: ItemKind, p: &ItemProduct) {
    let field = format!("items[{i}].code");
    if !p.is_mp {
        f.add(&field, "PRODUIT_INVALIDE", format!("{} n'est pas une matière première.", p.code));
    } else if !p.stock_tracked {
        f.add(
            &field,
            "PRODUIT_NON_STOCKE",
            format!("{} n'est pas suivi en stock : il ne peut pas entrer dans une recette.", p.code),
        );
    } else if !p.active {
        f.add(&field, "PRODUIT_INACTIF", format!("{} est désactivé.", p.code));
    } else if kind == ItemKind::Packaging && p.category.as_deref() != Some("PACKAGING") {
        f.add(&field, "PRODUIT_INVALIDE", format!("{} n'est pas un emballage.", p.code));
    }
}

/// `RECETTE_ABSENTE`: no active recipe for the PF.
pub fn recette_absente(pf_code: &str) -> Rejection {
    Rejection::new("RECETTE_ABSENTE", 422, format!("Recette active absente pour {pf_code}."))
        .with_details(json!({"productCode": pf_code}))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpStatus {
    Pending,
    InProgress,
    Completed,
    Cancelled,
}

impl OpStatus {
    pub fn code(self) -> &'static str {
        match self {
            OpStatus::Pending => "PENDING",
            OpStatus::InProgress => "IN_PROGRESS",
            OpStatus::Completed => "COMPLETED",
            OpStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(code: &str) -> Option<OpStatus> {
        [OpStatus::Pending, OpStatus::InProgress, OpStatus::Completed, OpStatus::Cancelled]
            .into_iter()
            .find(|s| s.code() == code)
    }

    pub fn label(self) -> &'static str {
        match self {
            OpStatus::Pending => "Planifié",
            OpStatus::InProgress => "En cours",
            OpStatus::Completed => "Terminé",
            OpStatus::Cancelled => "Annulé",
        }
    }
}

/// Creation: 1–100 whole batches, planned today or later.
pub fn check_order(batch_count: i64, planned: NaiveDate, today: NaiveDate) -> Result<(), Rejection> {
    let mut f = crate::validation::Fields::new();
    f.range("batchCount", batch_count, 1, BATCHES_MAX);
    f.into_result()?;
    check_planned_date(planned, today)
}

pub fn check_planned_date(planned: NaiveDate, today: NaiveDate) -> Result<(), Rejection> {
    if planned < today {
        return Err(Rejection::new("DATE_INVALIDE", 422, "Date invalide : la date prévue est passée.")
            .with_details(json!({"field": "plannedDate", "min": today})));
    }
    Ok(())
}

/// Rescheduling keeps a PENDING order pending.
pub fn check_reschedule(status: OpStatus, planned: NaiveDate, today: NaiveDate) -> Result<(), Rejection> {
    if status != OpStatus::Pending {
        return Err(Rejection::transition_invalide(status.code(), OpStatus::Pending.code()));
    }
    check_planned_date(planned, today)
}

pub fn check_start(status: OpStatus) -> Result<(), Rejection> {
    if status != OpStatus::Pending {
        return Err(Rejection::transition_invalide(status.code(), OpStatus::InProgress.code()));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QcStatus {
    Passed,
    Pending,
    Failed,
}

impl QcStatus {
    pub fn code(self) -> &'static str {
        match self {
            QcStatus::Passed => "PASSED",
            QcStatus::Pending => "PENDING",
            QcStatus::Failed => "FAILED",
        }
    }

    pub fn parse(code: &str) -> Option<QcStatus> {
        [QcStatus::Passed, QcStatus::Pending, QcStatus::Failed].into_iter().find(|s| s.code() == code)
    }

    /// The PF lot's status (§8.3) and its block reason.
    pub fn lot_status(self) -> (&'static str, Option<&'static str>) {
        match self {
            QcStatus::Passed => ("AVAILABLE", None),
            QcStatus::Pending => ("QUARANTINE", None),
            QcStatus::Failed => ("BLOCKED", Some("QC_FAILED")),
        }
    }
}

/// IN_PROGRESS → COMPLETED: a positive quantity (whole pieces for a PF in U), a QC note ≥ 10 characters when FAILED.
pub fn check_complete(
    status: OpStatus,
    quantity_produced: i64,
    output_in_pieces: bool,
    qc: QcStatus,
    qc_note: Option<&str>,
) -> Result<(), Rejection> {
    if status != OpStatus::InProgress {
        return Err(Rejection::transition_invalide(status.code(), OpStatus::Completed.code()));
    }
    if quantity_produced <= 0 || (output_in_pieces && quantity_produced % 1000 != 0) {
        return Err(Rejection::new(
            "QUANTITE_INVALIDE",
            422,
            if quantity_produced <= 0 {
                "Quantité invalide : la quantité produite doit être positive."
            } else {
                "Quantité invalide : le produit se compte en pièces entières."
            },
        )
        .with_details(json!({"field": "quantityProduced"})));
    }
    if qc == QcStatus::Failed {
        crate::validation::reason(qc_note.unwrap_or(""), REASON_MIN)?;
    }
    Ok(())
}

/// PENDING or IN_PROGRESS → CANCELLED with a reason ≥ 10 characters.
pub fn check_cancel(status: OpStatus, reason: &str) -> Result<String, Rejection> {
    if !matches!(status, OpStatus::Pending | OpStatus::InProgress) {
        return Err(Rejection::transition_invalide(status.code(), OpStatus::Cancelled.code()));
    }
    crate::validation::reason(reason, REASON_MIN)
}

/// Need of an item for the order: quantity per batch × batches.
pub fn need(quantity_per_batch: i64, batch_count: i64) -> Result<i64, Rejection> {
    quantity_per_batch.checked_mul(batch_count).ok_or_else(crate::money::valeur_hors_limites)
}

/// Completion date + the recipe's override or the PF's shelf life; no DLC when neither is set.
pub fn pf_dlc(completed: NaiveDate, override_days: Option<i64>, pf_shelf_life_days: Option<i64>) -> Option<NaiveDate> {
    override_days.or(pf_shelf_life_days).map(|d| completed + chrono::Duration::days(d))
}

/// §8.3: a yield outside 100 % ± the tolerance (both in basis points); exactly on the edge is inside.
pub fn outside_tolerance(yield_bp: i64, tolerance_bp: i64) -> bool {
    (yield_bp - 10_000).abs() > tolerance_bp
}

/// What a completion computes (§8.3); amounts in centimes, yield in basis points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub consumed_cost: i64,
    pub fluid_cost: i64,
    pub unit_cost: i64,
    pub yield_bp: i64,
    /// `RENDEMENT_HORS_TOLERANCE` severity when outside the tolerance (never blocking).
    pub yield_alert: Option<&'static str>,
}

/// `consumed`: (quantity, lot unit cost) per consumption row; `fluids`: (quantity per batch, unit cost) per FLUID item.
pub fn completion(
    consumed: &[(i64, i64)],
    fluids: &[(i64, i64)],
    batch_count: i64,
    quantity_produced: i64,
    target_quantity: i64,
    tolerance_bp: i64,
) -> Result<Completion, Rejection> {
    let fit = |v: i128| i64::try_from(v).map_err(|_| crate::money::valeur_hors_limites());
    let consumed_cost: i128 = consumed.iter().map(|(q, c)| round_div(*q as i128 * *c as i128, 1000)).sum();
    let fluid_cost: i128 =
        fluids.iter().map(|(q, c)| round_div(*q as i128 * batch_count as i128 * *c as i128, 1000)).sum();
    if quantity_produced <= 0 || target_quantity <= 0 {
        return Err(Rejection::new(
            "QUANTITE_INVALIDE",
            422,
            "Quantité invalide : la quantité produite doit être positive.",
        ));
    }
    let unit_cost = round_div((consumed_cost + fluid_cost) * 1000, quantity_produced as i128);
    let yield_bp = round_div(quantity_produced as i128 * 10_000, target_quantity as i128);
    let yield_alert = outside_tolerance(fit(yield_bp)?, tolerance_bp).then_some(if yield_bp < 8_000 {
        "CRITICAL"
    } else {
        "WARNING"
    });
    Ok(Completion {
        consumed_cost: fit(consumed_cost)?,
        fluid_cost: fit(fluid_cost)?,
        unit_cost: fit(unit_cost)?,
        yield_bp: fit(yield_bp)?,
        yield_alert,
    })
}

/// How an item of a recipe version differs from the previous version (UI.md row 55).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemChange {
    Added,
    Removed,
    /// The quantity (or the fluid's cost) changed: (before, after).
    Changed(i64, i64),
    Same,
}

/// Items are matched by key (MP code, or fluid name); the result follows the current version's order, then what was
/// removed.
pub fn diff_items<'a>(previous: &[(&'a str, i64)], current: &[(&'a str, i64)]) -> Vec<(&'a str, ItemChange)> {
    let mut out: Vec<(&str, ItemChange)> = current
        .iter()
        .map(|(k, q)| match previous.iter().find(|(pk, _)| pk == k) {
            None => (*k, ItemChange::Added),
            Some((_, pq)) if pq != q => (*k, ItemChange::Changed(*pq, *q)),
            Some(_) => (*k, ItemChange::Same),
        })
        .collect();
    out.extend(
        previous.iter().filter(|(k, _)| !current.iter().any(|(ck, _)| ck == k)).map(|(k, _)| (*k, ItemChange::Removed)),
    );
    out
}

/// A completed order as the production dashboard reads it (§17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub date: NaiveDate,
    pub produced: i64,
    pub yield_bp: i64,
    pub tolerance_bp: i64,
    /// Consumed + fluid cost, centimes.
    pub cost: i64,
}

/// One day of a PF's production: output, mean yield, cost per unit (centimes per base unit, weighted by output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayPoint {
    pub date: NaiveDate,
    pub output: i64,
    pub mean_yield_bp: Option<i64>,
    pub unit_cost: Option<i64>,
}

/// Every day of [from, to], empty days included, so the charts keep their time axis.
pub fn daily_series(done: &[Done], from: NaiveDate, to: NaiveDate) -> Vec<DayPoint> {
    let mut out = Vec::new();
    let mut d = from;
    while d <= to {
        let day: Vec<&Done> = done.iter().filter(|x| x.date == d).collect();
        let output: i64 = day.iter().map(|x| x.produced).sum();
        let cost: i128 = day.iter().map(|x| i128::from(x.cost)).sum();
        let mean_yield_bp = (!day.is_empty())
            .then(|| round_div(day.iter().map(|x| i128::from(x.yield_bp)).sum(), day.len() as i128) as i64);
        let unit_cost = (output > 0).then(|| round_div(cost * 1000, i128::from(output)) as i64);
        out.push(DayPoint { date: d, output, mean_yield_bp, unit_cost });
        d += chrono::Duration::days(1);
    }
    out
}

/// §17 "Rendement production (7 j)": the mean yield of orders completed in the last 7 days (today included) and
/// how many were outside their tolerance.
pub fn yield_7_days(done: &[Done], today: NaiveDate) -> (Option<i64>, usize) {
    let week: Vec<&Done> =
        done.iter().filter(|x| x.date <= today && x.date > today - chrono::Duration::days(7)).collect();
    let mean = (!week.is_empty())
        .then(|| round_div(week.iter().map(|x| i128::from(x.yield_bp)).sum(), week.len() as i128) as i64);
    let outside = week.iter().filter(|x| outside_tolerance(x.yield_bp, x.tolerance_bp)).count();
    (mean, outside)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn recipe(items: Vec<ItemInput>) -> RecipeInput {
        RecipeInput {
            output_quantity: 50_000,
            batch_weight_g: 20_000,
            loss_tolerance_bp: None,
            shelf_life_override_days: None,
            items,
        }
    }

    fn mp(code: &str, q: i64) -> ItemInput {
        ItemInput { kind: ItemKind::Mp, code: code.into(), quantity: q, unit_cost: None }
    }

    #[test]
    fn recipes_are_checked_before_a_version_is_written() {
        let fluid = ItemInput { kind: ItemKind::Fluid, code: "Vapeur".into(), quantity: 2_000, unit_cost: Some(150) };
        assert_eq!(check_recipe(&recipe(vec![mp("MP-LAIT", 200_000), fluid.clone()]), true), Ok(200));
        let e =
            check_recipe(&recipe(vec![mp("MP-LAIT", 200_000), mp("MP-SEL", 1), mp("MP-LAIT", 5)]), true).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), ("RECETTE_DOUBLON", "Matière MP-LAIT en double."));
        let e = check_recipe(&recipe(vec![fluid.clone()]), true).unwrap_err();
        assert_eq!(e.details["fields"][0]["code"], "RECETTE_SANS_MATIERE");
        let mut r = recipe(vec![mp("MP-LAIT", 0)]);
        r.output_quantity = 12_500;
        r.loss_tolerance_bp = Some(5_001);
        r.shelf_life_override_days = Some(731);
        let e = check_recipe(&r, true).unwrap_err();
        let fields: Vec<_> =
            e.details["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap().to_string()).collect();
        assert_eq!(fields, ["outputQuantity", "lossToleranceBp", "shelfLifeOverrideDays", "items[0].quantity"]);
        r.output_quantity = 12_500;
        r.loss_tolerance_bp = Some(5_000);
        r.shelf_life_override_days = Some(730);
        r.items = vec![mp("MP-LAIT", 1)];
        assert_eq!(check_recipe(&r, false), Ok(5_000), "12.5 kg is fine for a PF sold by weight");
        let no_cost = ItemInput { unit_cost: None, ..fluid };
        assert_eq!(
            check_recipe(&recipe(vec![mp("MP-LAIT", 1), no_cost]), true).unwrap_err().details["fields"][0]["field"],
            "items[1].unitCost"
        );
    }

    #[test]
    fn recipe_items_name_stock_tracked_mps_and_packaging_is_packaging() {
        let p = |code: &str, is_mp, cat: &str, tracked, active| ItemProduct {
            code: code.into(),
            is_mp,
            category: Some(cat.into()),
            stock_tracked: tracked,
            active,
        };
        let codes = |kind, prod: ItemProduct| {
            let mut f = crate::validation::Fields::new();
            check_item_product(&mut f, 0, kind, &prod);
            f.into_result().err().map(|e| e.details["fields"][0]["code"].as_str().unwrap().to_string())
        };
        assert_eq!(codes(ItemKind::Mp, p("MP-LAIT", true, "RAW_MATERIAL", true, true)), None);
        assert_eq!(codes(ItemKind::Packaging, p("MP-FILM", true, "PACKAGING", true, true)), None);
        assert_eq!(
            codes(ItemKind::Packaging, p("MP-LAIT", true, "RAW_MATERIAL", true, true)).unwrap(),
            "PRODUIT_INVALIDE"
        );
        assert_eq!(codes(ItemKind::Mp, p("PF-EDAM", false, "RAW_MATERIAL", true, true)).unwrap(), "PRODUIT_INVALIDE");
        assert_eq!(codes(ItemKind::Mp, p("MP-JAVEL", true, "CONSUMABLE", false, true)).unwrap(), "PRODUIT_NON_STOCKE");
        assert_eq!(codes(ItemKind::Mp, p("MP-OLD", true, "RAW_MATERIAL", true, false)).unwrap(), "PRODUIT_INACTIF");
        assert_eq!(recette_absente("PF-EDAM").message, "Recette active absente pour PF-EDAM.");
    }

    /// "Starting twice, completing a PENDING order or cancelling a COMPLETED one → TRANSITION_INVALIDE."
    #[test]
    fn the_order_state_machine() {
        let today = d("2025-03-14");
        assert!(check_order(1, today, today).is_ok());
        assert_eq!(check_order(101, today, today).unwrap_err().code, "VALIDATION_ERROR");
        assert_eq!(check_order(0, today, today).unwrap_err().code, "VALIDATION_ERROR");
        assert_eq!(check_order(2, d("2025-03-13"), today).unwrap_err().code, "DATE_INVALIDE");
        assert!(check_reschedule(OpStatus::Pending, d("2025-03-20"), today).is_ok());
        assert_eq!(
            check_reschedule(OpStatus::InProgress, d("2025-03-20"), today).unwrap_err().code,
            "TRANSITION_INVALIDE"
        );
        assert!(check_start(OpStatus::Pending).is_ok());
        assert_eq!(check_start(OpStatus::InProgress).unwrap_err().code, "TRANSITION_INVALIDE");
        let e = check_complete(OpStatus::Pending, 45_000, true, QcStatus::Passed, None).unwrap_err();
        assert_eq!((e.code, e.status), ("TRANSITION_INVALIDE", 409));
        assert_eq!(
            check_complete(OpStatus::InProgress, 0, true, QcStatus::Passed, None).unwrap_err().code,
            "QUANTITE_INVALIDE"
        );
        assert_eq!(
            check_complete(OpStatus::InProgress, 45_500, true, QcStatus::Passed, None).unwrap_err().code,
            "QUANTITE_INVALIDE"
        );
        assert!(check_complete(OpStatus::InProgress, 45_500, false, QcStatus::Passed, None).is_ok());
        assert_eq!(
            check_complete(OpStatus::InProgress, 45_000, true, QcStatus::Failed, Some("pâte")).unwrap_err().code,
            "MOTIF_TROP_COURT"
        );
        assert!(
            check_complete(OpStatus::InProgress, 45_000, true, QcStatus::Failed, Some("Pâte trop acide, pH 4,2"))
                .is_ok()
        );
        assert_eq!(
            check_cancel(OpStatus::Completed, "Erreur de planification").unwrap_err().code,
            "TRANSITION_INVALIDE"
        );
        assert_eq!(check_cancel(OpStatus::InProgress, "Panne").unwrap_err().code, "MOTIF_TROP_COURT");
        assert_eq!(check_cancel(OpStatus::InProgress, " Panne du pasteurisateur ").unwrap(), "Panne du pasteurisateur");
        assert_eq!(QcStatus::Failed.lot_status(), ("BLOCKED", Some("QC_FAILED")));
        assert_eq!(QcStatus::Pending.lot_status().0, "QUARANTINE");
        for s in [OpStatus::Pending, OpStatus::InProgress, OpStatus::Completed, OpStatus::Cancelled] {
            assert_eq!(OpStatus::parse(s.code()), Some(s));
        }
    }

    /// §8.3 examples: lot number and DLC (180 days after 2025-03-15 → 2025-09-11).
    #[test]
    fn pf_lot_number_and_dlc() {
        assert_eq!(crate::stock::pf_lot_number("PF-EDAM-400", d("2025-03-15"), 3), "PF-EDAM-400-250315-03");
        assert_eq!(pf_dlc(d("2025-03-15"), None, Some(180)), Some(d("2025-09-11")));
        assert_eq!(pf_dlc(d("2025-03-15"), Some(30), Some(180)), Some(d("2025-04-14")));
        assert_eq!(pf_dlc(d("2025-03-15"), None, None), None);
        assert_eq!(need(200_000, 3), Ok(600_000));
        assert_eq!(need(i64::MAX, 2).unwrap_err().code, "VALEUR_HORS_LIMITES");
    }

    /// Scenario 29's v3 → v4: milk up, salt unchanged, rennet added, the old ferment removed.
    #[test]
    fn versions_are_compared_item_by_item() {
        let v3 = [("MP-LAIT", 200_000), ("MP-SEL", 1_000), ("MP-FERMENT", 50)];
        let v4 = [("MP-LAIT", 210_000), ("MP-SEL", 1_000), ("MP-PRESURE", 20)];
        assert_eq!(
            diff_items(&v3, &v4),
            vec![
                ("MP-LAIT", ItemChange::Changed(200_000, 210_000)),
                ("MP-SEL", ItemChange::Same),
                ("MP-PRESURE", ItemChange::Added),
                ("MP-FERMENT", ItemChange::Removed),
            ]
        );
        assert!(diff_items(&[], &v4).iter().all(|(_, c)| *c == ItemChange::Added));
    }

    #[test]
    fn the_dashboard_series_and_the_week_yield() {
        let done =
            |date: &str, produced, yield_bp, cost| Done { date: d(date), produced, yield_bp, tolerance_bp: 200, cost };
        let all = [
            done("2025-03-10", 45_000, 9_000, 70_000),
            done("2025-03-12", 50_000, 10_000, 70_000),
            done("2025-03-12", 49_000, 9_800, 70_000),
            done("2025-03-14", 51_000, 10_200, 70_000),
        ];
        let s = daily_series(&all, d("2025-03-11"), d("2025-03-13"));
        assert_eq!(s.len(), 3);
        assert_eq!(s[0], DayPoint { date: d("2025-03-11"), output: 0, mean_yield_bp: None, unit_cost: None });
        // 99 pieces for 1 400,00 DA → 1 414 c per piece; yields 100 % and 98 % → 99 %.
        assert_eq!(
            s[1],
            DayPoint { date: d("2025-03-12"), output: 99_000, mean_yield_bp: Some(9_900), unit_cost: Some(1_414) }
        );
        // Seven days to the 14th include the 10th: mean of 90, 100, 98, 102 = 97,5 % → 9 750 bp; only 90 % is out.
        assert_eq!(yield_7_days(&all, d("2025-03-14")), (Some(9_750), 1));
        assert_eq!(yield_7_days(&all, d("2025-03-17")), (Some(10_000), 0), "the 10th left the window");
        assert_eq!(yield_7_days(&[], d("2025-03-17")), (None, 0));
    }

    /// §8.3: 120 kg + 80 kg at 3.00 DA/kg and 10 U at 10.00 DA, 45 pieces of 50 → 1 556 c per piece, yield 9 000 bp,
    /// outside a 2 % tolerance (WARNING); 9 850 bp inside; below 8 000 CRITICAL.
    #[test]
    fn completion_costs_and_yield() {
        let consumed = [(120_000, 300), (80_000, 300), (10_000, 1_000)];
        let c = completion(&consumed, &[], 1, 45_000, 50_000, 200).unwrap();
        assert_eq!(
            c,
            Completion {
                consumed_cost: 70_000,
                fluid_cost: 0,
                unit_cost: 1_556,
                yield_bp: 9_000,
                yield_alert: Some("WARNING")
            }
        );
        assert_eq!(completion(&consumed, &[], 1, 49_250, 50_000, 200).unwrap().yield_alert, None);
        assert!(!outside_tolerance(9_800, 200) && !outside_tolerance(10_200, 200), "the edges are inside");
        assert!(outside_tolerance(9_799, 200) && outside_tolerance(10_201, 200));
        assert_eq!(completion(&consumed, &[], 1, 51_500, 50_000, 200).unwrap().yield_alert, Some("WARNING"));
        assert_eq!(completion(&consumed, &[], 1, 39_000, 50_000, 200).unwrap().yield_alert, Some("CRITICAL"));
        // Fluids: 2 kWh per batch at 1.50 DA, 3 batches → 900 c.
        let c = completion(&consumed, &[(2_000, 150)], 3, 45_000, 150_000, 200).unwrap();
        assert_eq!((c.fluid_cost, c.unit_cost), (900, 1_576));
        assert_eq!(completion(&consumed, &[], 1, 0, 50_000, 200).unwrap_err().code, "QUANTITE_INVALIDE");
    }
}
