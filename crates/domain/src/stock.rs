//! Stock rules (DOMAIN.md §0.2, §0.3, §5, §14): units, the lot state machine, the single FEFO order and the plan of a
//! consumption, lot and document numbers, loss reasons. The store locks, writes and calls these.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::json;

use crate::rejection::Rejection;

/// "Today" in Africa/Algiers (UTC+1 all year): the current UTC instant + 1 h, date part.
pub fn today_algiers(now: DateTime<Utc>) -> NaiveDate {
    (now + chrono::Duration::hours(1)).date_naive()
}

/// `14/03/2025`.
pub fn fmt_date(d: NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    Kg,
    G,
    L,
    Ml,
    U,
    Crt,
    Rlx,
}

impl Unit {
    pub const ALL: [Unit; 7] = [Unit::Kg, Unit::G, Unit::L, Unit::Ml, Unit::U, Unit::Crt, Unit::Rlx];

    pub fn code(self) -> &'static str {
        match self {
            Unit::Kg => "KG",
            Unit::G => "G",
            Unit::L => "L",
            Unit::Ml => "ML",
            Unit::U => "U",
            Unit::Crt => "CRT",
            Unit::Rlx => "RLX",
        }
    }

    pub fn parse(s: &str) -> Option<Unit> {
        Unit::ALL.into_iter().find(|u| u.code() == s)
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            Unit::Kg => "kilogramme",
            Unit::G => "gramme",
            Unit::L => "litre",
            Unit::Ml => "millilitre",
            Unit::U => "unité / pièce",
            Unit::Crt => "carton",
            Unit::Rlx => "rouleau",
        }
    }

    /// The short symbol printed after a quantity: `kg`, `pcs`…
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Kg => "kg",
            Unit::G => "g",
            Unit::L => "L",
            Unit::Ml => "mL",
            Unit::U => "pcs",
            Unit::Crt => "crt",
            Unit::Rlx => "rlx",
        }
    }

    /// Counted units show no decimals when whole (UI.md §1.4).
    fn counted(self) -> bool {
        matches!(self, Unit::U | Unit::Crt | Unit::Rlx)
    }
}

/// `12,500 kg` · `1 000,000 L` · `24 pcs` · `2,500 crt` (milli-units, the unit inside the same string).
pub fn fmt_qty(milli: i64, unit: Unit) -> String {
    format!("{}\u{00A0}{}", fmt_qty_number(milli, unit), unit.symbol())
}

/// The number of [`fmt_qty`] alone, for documents that print the unit in its own column: `12,500` · `24`.
pub fn fmt_qty_number(milli: i64, unit: Unit) -> String {
    let sign = if milli < 0 { "\u{2212}" } else { "" };
    let a = milli.unsigned_abs();
    let digits = crate::money::group_thousands(u128::from(a / 1000));
    if unit.counted() && a.is_multiple_of(1000) {
        format!("{sign}{digits}")
    } else {
        format!("{sign}{digits},{:03}", a % 1000)
    }
}

/// Quantities must be > 0; whole pieces for products counted in U when `whole_pieces`.
pub fn check_quantity(milli: i64, whole_pieces: bool) -> Result<(), Rejection> {
    if milli <= 0 {
        return Err(Rejection::new("QUANTITE_INVALIDE", 422, "Quantité invalide (doit être > 0)."));
    }
    if whole_pieces && milli % 1000 != 0 {
        return Err(Rejection::new("QUANTITE_INVALIDE", 422, "Quantité invalide (doit être > 0, en pièces entières)."));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LotStatus {
    Available,
    Quarantine,
    Blocked(BlockReason),
    Consumed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockReason {
    Expired,
    QcFailed,
    Manual,
}

impl BlockReason {
    pub fn code(self) -> &'static str {
        match self {
            BlockReason::Expired => "EXPIRED",
            BlockReason::QcFailed => "QC_FAILED",
            BlockReason::Manual => "MANUAL",
        }
    }

    pub fn parse(s: &str) -> Option<BlockReason> {
        [BlockReason::Expired, BlockReason::QcFailed, BlockReason::Manual].into_iter().find(|r| r.code() == s)
    }
}

impl LotStatus {
    /// `(status, block_reason)` as stored.
    pub fn codes(self) -> (&'static str, Option<&'static str>) {
        match self {
            LotStatus::Available => ("AVAILABLE", None),
            LotStatus::Quarantine => ("QUARANTINE", None),
            LotStatus::Blocked(r) => ("BLOCKED", Some(r.code())),
            LotStatus::Consumed => ("CONSUMED", None),
        }
    }

    pub fn from_codes(status: &str, reason: Option<&str>) -> Option<LotStatus> {
        match status {
            "AVAILABLE" => Some(LotStatus::Available),
            "QUARANTINE" => Some(LotStatus::Quarantine),
            "BLOCKED" => reason.and_then(BlockReason::parse).map(LotStatus::Blocked),
            "CONSUMED" => Some(LotStatus::Consumed),
            _ => None,
        }
    }

    /// The badge word of UI.md §1.5.
    pub fn label_fr(self) -> &'static str {
        match self {
            LotStatus::Available => "Disponible",
            LotStatus::Quarantine => "Quarantaine",
            LotStatus::Blocked(BlockReason::Expired) => "Bloqué · périmé",
            LotStatus::Blocked(BlockReason::QcFailed) => "Bloqué · non conforme",
            LotStatus::Blocked(BlockReason::Manual) => "Bloqué · manuel",
            LotStatus::Consumed => "Épuisé",
        }
    }
}

/// What the rules need to know of a lot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotFacts {
    pub id: String,
    pub number: String,
    pub status: LotStatus,
    pub dlc: Option<NaiveDate>,
    pub remaining: i64,
    /// Unix seconds of `created_at` (FEFO tie-break).
    pub created_at: i64,
}

impl LotFacts {
    pub fn expired(&self, today: NaiveDate) -> bool {
        self.dlc.is_some_and(|d| d < today)
    }

    /// §5.1: AVAILABLE, not past its DLC (today is fine), something left — evaluated at the moment of use.
    pub fn usable(&self, today: NaiveDate) -> bool {
        self.status == LotStatus::Available && !self.expired(today) && self.remaining > 0
    }
}

/// The FEFO key: DLC ascending with undated lots last, then creation, then id.
pub fn fefo_key(l: &LotFacts) -> (bool, Option<NaiveDate>, i64, String) {
    (l.dlc.is_none(), l.dlc, l.created_at, l.id.clone())
}

pub fn sort_fefo(lots: &mut [LotFacts]) {
    lots.sort_by_key(fefo_key);
}

fn motif(note: &str, min: usize) -> Result<(), Rejection> {
    if note.trim().chars().count() < min { Err(Rejection::motif_obligatoire(min)) } else { Ok(()) }
}

fn lot_perime(l: &LotFacts) -> Rejection {
    let dlc = l.dlc.map(fmt_date).unwrap_or_default();
    Rejection::new("LOT_PERIME", 409, format!("Le lot {} est périmé (DLC {dlc}).", l.number))
        .with_details(json!({"lot": l.number, "dlc": l.dlc}))
}

fn statut_invalide(l: &LotFacts) -> Rejection {
    Rejection::new(
        "LOT_STATUT_INVALIDE",
        409,
        format!("Opération impossible sur le lot {} (statut {}).", l.number, l.status.label_fr()),
    )
    .with_details(json!({"lot": l.number, "statut": l.status.codes().0}))
}

/// QC decision on a QUARANTINE lot: conforme → AVAILABLE (not if expired); non conforme (note ≥ 10) → BLOCKED(QC_FAILED).
pub fn qc_release(l: &LotFacts, conforme: bool, note: &str, today: NaiveDate) -> Result<LotStatus, Rejection> {
    if l.status != LotStatus::Quarantine {
        return Err(statut_invalide(l));
    }
    if conforme {
        if l.expired(today) {
            return Err(lot_perime(l));
        }
        Ok(LotStatus::Available)
    } else {
        motif(note, 10)?;
        Ok(LotStatus::Blocked(BlockReason::QcFailed))
    }
}

/// Manual block (ADMIN) of an AVAILABLE or QUARANTINE lot, note ≥ 10.
pub fn block(l: &LotFacts, note: &str) -> Result<LotStatus, Rejection> {
    motif(note, 10)?;
    match l.status {
        LotStatus::Available | LotStatus::Quarantine => Ok(LotStatus::Blocked(BlockReason::Manual)),
        _ => Err(statut_invalide(l)),
    }
}

/// Manual unblock (dérogation, ADMIN) of a MANUAL or QC_FAILED block, note ≥ 10; an expired lot never.
pub fn unblock(l: &LotFacts, note: &str, today: NaiveDate) -> Result<LotStatus, Rejection> {
    match l.status {
        LotStatus::Blocked(BlockReason::Expired) => Err(Rejection::new(
            "LOT_PERIME_DEFINITIF",
            409,
            "Un lot périmé ne peut jamais être débloqué : déclarez la perte.",
        )),
        LotStatus::Blocked(_) => {
            motif(note, 10)?;
            if l.expired(today) {
                return Err(lot_perime(l));
            }
            Ok(LotStatus::Available)
        }
        _ => Err(statut_invalide(l)),
    }
}

/// The nightly job: which lots become BLOCKED(EXPIRED) today.
pub fn expires_now(l: &LotFacts, today: NaiveDate) -> bool {
    l.remaining > 0
        && l.expired(today)
        && !matches!(l.status, LotStatus::Blocked(BlockReason::Expired) | LotStatus::Consumed)
}

/// The pre-expiry alert of a lot on `today` (§5.6, 06:00 job): J-7 INFO, J-3 WARNING, J-1 CRITICAL, for lots still
/// AVAILABLE or in QUARANTINE with something left.
pub fn pre_expiry_alert(l: &LotFacts, today: NaiveDate) -> Option<(&'static str, &'static str)> {
    if l.remaining <= 0 || !matches!(l.status, LotStatus::Available | LotStatus::Quarantine) {
        return None;
    }
    match (l.dlc? - today).num_days() {
        7 => Some(("DLC_J7", "INFO")),
        3 => Some(("DLC_J3", "WARNING")),
        1 => Some(("DLC_J1", "CRITICAL")),
        _ => None,
    }
}

/// Status after an OUT movement left `remaining`.
pub fn after_out(status: LotStatus, remaining: i64) -> LotStatus {
    if remaining == 0 { LotStatus::Consumed } else { status }
}

/// Status after a PRODUCTION_CANCEL put quantity back into a lot (§5.2): a BLOCKED lot keeps its block and reason;
/// otherwise the lot was AVAILABLE when consumed, so it is AVAILABLE again — or BLOCKED(EXPIRED) once past its DLC.
pub fn after_restore(status: LotStatus, dlc: Option<NaiveDate>, today: NaiveDate) -> LotStatus {
    match status {
        LotStatus::Blocked(_) | LotStatus::Quarantine => status,
        LotStatus::Available | LotStatus::Consumed if dlc.is_some_and(|d| d < today) => {
            LotStatus::Blocked(BlockReason::Expired)
        }
        LotStatus::Available | LotStatus::Consumed => LotStatus::Available,
    }
}

/// Where a lot's quantity went (§9 recall report), milli-units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LotBalance {
    pub initial: i64,
    pub remaining: i64,
    /// PRODUCTION_OUT − PRODUCTION_CANCEL.
    pub used_in_production: i64,
    /// SALE movements (deliveries).
    pub delivered: i64,
    pub lost: i64,
    /// INVENTORY_ADJUST OUT − IN.
    pub adjusted: i64,
}

impl LotBalance {
    /// §9: initial = delivered + remaining + lost + adjusted (+ used in production for an MP lot); what does not
    /// reconcile is the "écart", shown on the report and failing `manchengo check`.
    pub fn ecart(&self) -> i64 {
        self.initial - self.remaining - self.used_in_production - self.delivered - self.lost - self.adjusted
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub lot_id: String,
    pub lot_number: String,
    pub dlc: Option<NaiveDate>,
    pub take: i64,
    pub remaining_after: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub sufficient: bool,
    pub available: i64,
    pub missing: i64,
    pub allocations: Vec<Allocation>,
}

/// Which lots feed a need, in FEFO order. `usable_only` for production and deliveries (§5.3); inventory decreases
/// take from every lot with something left, whatever its status (§13).
pub fn plan(lots: &[LotFacts], need: i64, today: NaiveDate, usable_only: bool) -> Plan {
    let mut candidates: Vec<LotFacts> =
        lots.iter().filter(|l| if usable_only { l.usable(today) } else { l.remaining > 0 }).cloned().collect();
    sort_fefo(&mut candidates);
    let available: i64 = candidates.iter().map(|l| l.remaining).sum();
    let mut left = need;
    let mut allocations = Vec::new();
    for l in &candidates {
        if left == 0 {
            break;
        }
        let take = left.min(l.remaining);
        left -= take;
        allocations.push(Allocation {
            lot_id: l.id.clone(),
            lot_number: l.number.clone(),
            dlc: l.dlc,
            take,
            remaining_after: l.remaining - take,
        });
    }
    Plan { sufficient: left == 0, available, missing: left, allocations }
}

/// `STOCK_INSUFFISANT` with its shortage list.
pub fn stock_insuffisant(shortages: &[(String, i64, i64)]) -> Rejection {
    let list: Vec<String> = shortages
        .iter()
        .map(|(code, req, avail)| {
            format!(
                "{code} requis {}, disponible {}, manquant {}",
                fmt_milli(*req),
                fmt_milli(*avail),
                fmt_milli(req - avail)
            )
        })
        .collect();
    Rejection::new("STOCK_INSUFFISANT", 409, format!("Stock insuffisant : {}.", list.join(" ; "))).with_details(json!({
        "shortages": shortages.iter().map(|(code, req, avail)| json!({
            "productCode": code, "required": req, "available": avail, "missing": req - avail
        })).collect::<Vec<_>>()
    }))
}

/// `REC-2025-00317`: prefix, year, 5 digits (grows beyond).
pub fn doc_ref(prefix: &str, year: i32, n: i64) -> String {
    format!("{prefix}-{year}-{n:05}")
}

fn yymmdd(d: NaiveDate) -> String {
    format!("{:02}{:02}{:02}", d.year() % 100, d.month(), d.day())
}

/// `L250314-002` (MP lots, per reception date).
pub fn mp_lot_number(d: NaiveDate, n: i64) -> String {
    format!("L{}-{n:03}", yymmdd(d))
}

/// `PF-EDAM-400-250314-01` (per PF code and completion date).
pub fn pf_lot_number(code: &str, d: NaiveDate, n: i64) -> String {
    format!("{code}-{}-{n:02}", yymmdd(d))
}

/// `AJ250314-001` (inventory adjustments).
pub fn adj_lot_number(d: NaiveDate, n: i64) -> String {
    format!("AJ{}-{n:03}", yymmdd(d))
}

/// `FOUR-0012`, `CLI-0045`.
pub fn party_code(prefix: &str, n: i64) -> String {
    format!("{prefix}-{n:04}")
}

/// Loss reasons (§14) and their conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossReason {
    Expired,
    Damaged,
    QcFailed,
    Other,
}

impl LossReason {
    pub fn parse(s: &str) -> Option<LossReason> {
        match s {
            "EXPIRED" => Some(LossReason::Expired),
            "DAMAGED" => Some(LossReason::Damaged),
            "QC_FAILED" => Some(LossReason::QcFailed),
            "OTHER" => Some(LossReason::Other),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            LossReason::Expired => "EXPIRED",
            LossReason::Damaged => "DAMAGED",
            LossReason::QcFailed => "QC_FAILED",
            LossReason::Other => "OTHER",
        }
    }
}

/// Checks a loss: the lot is not consumed, the quantity fits, the reason matches the lot, the note is long enough.
pub fn check_loss(l: &LotFacts, qty: i64, reason: LossReason, note: &str, today: NaiveDate) -> Result<(), Rejection> {
    check_quantity(qty, false)?;
    if l.status == LotStatus::Consumed {
        return Err(statut_invalide(l));
    }
    if qty > l.remaining {
        return Err(lot_insuffisant(&l.number, qty, l.remaining));
    }
    let invalid = || {
        Rejection::new(
            "MOTIF_PERTE_INVALIDE",
            422,
            format!("Motif de perte incompatible avec l'état du lot {}.", l.number),
        )
        .with_details(json!({"lot": l.number}))
    };
    match reason {
        LossReason::Expired if !l.expired(today) => Err(invalid()),
        LossReason::QcFailed
            if !matches!(l.status, LotStatus::Quarantine | LotStatus::Blocked(BlockReason::QcFailed)) =>
        {
            Err(invalid())
        }
        LossReason::Damaged | LossReason::Other => motif(note, 10),
        _ => Ok(()),
    }
}

/// `STOCK_INSUFFISANT` on one lot (losses, a take from a named lot).
pub fn lot_insuffisant(lot: &str, required: i64, available: i64) -> Rejection {
    let missing = required - available;
    Rejection::new(
        "STOCK_INSUFFISANT",
        409,
        format!(
            "Stock insuffisant : lot {lot} requis {}, disponible {}, manquant {}.",
            fmt_milli(required),
            fmt_milli(available),
            fmt_milli(missing)
        ),
    )
    .with_details(
        json!({"shortages": [{"lot": lot, "required": required, "available": available, "missing": missing}]}),
    )
}

/// A quantity without its unit, `1 234,500` (refusals that name a lot, whose unit the caller shows next to it).
pub fn fmt_milli(milli: i64) -> String {
    let sign = if milli < 0 { "\u{2212}" } else { "" };
    let a = milli.unsigned_abs();
    format!("{sign}{},{:03}", crate::money::group_thousands(u128::from(a / 1000)), a % 1000)
}

/// §14: a loss above 50 000,00 DA declared by anyone but an ADMIN raises `PERTE_IMPORTANTE`.
pub const PERTE_IMPORTANTE_SEUIL: i64 = 5_000_000;

pub fn perte_importante(value: i64, by_admin: bool) -> bool {
    !by_admin && value > PERTE_IMPORTANTE_SEUIL
}

/// §14 write-off from the expired-lots screen: only BLOCKED(EXPIRED) lots with something left; the whole remaining
/// goes, reason EXPIRED. Returns the quantity to write off.
pub fn check_write_off(l: &LotFacts) -> Result<i64, Rejection> {
    if l.status != LotStatus::Blocked(BlockReason::Expired) || l.remaining <= 0 {
        return Err(statut_invalide(l));
    }
    Ok(l.remaining)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recalled_lot_reconciles_or_shows_its_gap() {
        let b = LotBalance { initial: 45_000, remaining: 20_000, delivered: 24_000, lost: 1_000, ..Default::default() };
        assert_eq!(b.ecart(), 0);
        let mp = LotBalance { initial: 320_000, remaining: 120_000, used_in_production: 200_000, ..Default::default() };
        assert_eq!(mp.ecart(), 0);
        assert_eq!(LotBalance { adjusted: -1_000, ..b }.ecart(), 1_000, "a count that found more is a gap to explain");
    }

    /// §5.2 and scenario 34: a cancelled production puts L1 (DLC 03-20) back BLOCKED(EXPIRED) on 03-21, L2 (DLC
    /// 03-25) AVAILABLE; a manually blocked lot keeps its block.
    #[test]
    fn a_restored_lot_is_available_again_unless_expired_or_blocked() {
        let today: NaiveDate = "2025-03-21".parse().unwrap();
        let l1 = Some("2025-03-20".parse().unwrap());
        let l2 = Some("2025-03-25".parse().unwrap());
        assert_eq!(after_restore(LotStatus::Consumed, l1, today), LotStatus::Blocked(BlockReason::Expired));
        assert_eq!(after_restore(LotStatus::Available, l1, today), LotStatus::Blocked(BlockReason::Expired));
        assert_eq!(after_restore(LotStatus::Available, l2, today), LotStatus::Available);
        assert_eq!(after_restore(LotStatus::Consumed, None, today), LotStatus::Available);
        let manual = LotStatus::Blocked(BlockReason::Manual);
        assert_eq!(after_restore(manual, l2, today), manual);
        assert_eq!(after_restore(manual, l1, today), manual);
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn lot(id: &str, dlc: Option<&str>, created: &str, remaining: i64, status: LotStatus) -> LotFacts {
        LotFacts {
            id: id.into(),
            number: format!("L-{id}"),
            status,
            dlc: dlc.map(d),
            remaining,
            created_at: d(created).and_hms_opt(8, 0, 0).unwrap().and_utc().timestamp(),
        }
    }

    const TODAY: &str = "2025-03-14";

    #[test]
    fn today_is_utc_plus_one() {
        let late = DateTime::parse_from_rfc3339("2025-03-14T23:30:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(today_algiers(late), d("2025-03-15"));
        let early = DateTime::parse_from_rfc3339("2025-03-14T22:59:59Z").unwrap().with_timezone(&Utc);
        assert_eq!(today_algiers(early), d("2025-03-14"));
    }

    #[test]
    fn scenario_8_fefo_order() {
        let mut lots = vec![
            lot("A", Some("2025-03-20"), "2025-03-01", 1, LotStatus::Available),
            lot("B", Some("2025-03-18"), "2025-03-05", 1, LotStatus::Available),
            lot("C", None, "2025-02-01", 1, LotStatus::Available),
            lot("D", Some("2025-03-18"), "2025-03-02", 1, LotStatus::Available),
        ];
        sort_fefo(&mut lots);
        let order: Vec<&str> = lots.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(order, vec!["D", "B", "A", "C"]);
    }

    #[test]
    fn scenario_9_and_10_expired_lots_are_never_consumed_and_today_is_usable() {
        let lots = vec![
            lot("E", Some("2025-03-13"), "2025-03-01", 100_000, LotStatus::Available),
            lot("F", Some("2025-03-14"), "2025-03-02", 50_000, LotStatus::Available),
        ];
        let p = plan(&lots, 60_000, d(TODAY), true);
        assert_eq!((p.sufficient, p.available, p.missing), (false, 50_000, 10_000));
        let p = plan(&lots, 50_000, d(TODAY), true);
        assert!(p.sufficient);
        assert_eq!(p.allocations.len(), 1);
        assert_eq!(
            (p.allocations[0].lot_id.as_str(), p.allocations[0].take, p.allocations[0].remaining_after),
            ("F", 50_000, 0)
        );
        assert_eq!(after_out(LotStatus::Available, 0), LotStatus::Consumed);
        // Inventory decreases take whatever is there, in FEFO order, whatever the status.
        let p = plan(&lots, 30_000, d(TODAY), false);
        assert_eq!(p.allocations[0].lot_id, "E");
    }

    #[test]
    fn quarantine_blocked_and_empty_lots_are_not_usable() {
        let lots = vec![
            lot("Q", Some("2025-03-20"), "2025-03-01", 10, LotStatus::Quarantine),
            lot("B", Some("2025-03-20"), "2025-03-01", 10, LotStatus::Blocked(BlockReason::Manual)),
            lot("Z", Some("2025-03-20"), "2025-03-01", 0, LotStatus::Available),
            lot("OK", Some("2025-03-21"), "2025-03-01", 7, LotStatus::Available),
        ];
        let p = plan(&lots, 7, d(TODAY), true);
        assert_eq!(p.available, 7);
        assert_eq!(p.allocations.iter().map(|a| a.lot_id.as_str()).collect::<Vec<_>>(), vec!["OK"]);
    }

    #[test]
    fn a_plan_spreads_over_lots_in_order() {
        // Scenario 31's shape: L1 120 kg then L2 for the rest.
        let lots = vec![
            lot("L2", Some("2025-03-25"), "2025-03-02", 200_000, LotStatus::Available),
            lot("L1", Some("2025-03-20"), "2025-03-01", 120_000, LotStatus::Available),
        ];
        let p = plan(&lots, 200_000, d(TODAY), true);
        let takes: Vec<(&str, i64, i64)> =
            p.allocations.iter().map(|a| (a.lot_id.as_str(), a.take, a.remaining_after)).collect();
        assert_eq!(takes, vec![("L1", 120_000, 0), ("L2", 80_000, 120_000)]);
    }

    #[test]
    fn scenario_11_the_nightly_job_blocks_only_what_expired() {
        let today = d("2025-03-15");
        assert!(expires_now(&lot("X", Some("2025-03-14"), "2025-03-01", 20_000, LotStatus::Available), today));
        assert!(!expires_now(&lot("X", Some("2025-03-15"), "2025-03-01", 20_000, LotStatus::Available), today));
        assert!(!expires_now(
            &lot("X", Some("2025-03-14"), "2025-03-01", 20_000, LotStatus::Blocked(BlockReason::Expired)),
            today
        ));
        assert!(expires_now(
            &lot("X", Some("2025-03-14"), "2025-03-01", 5, LotStatus::Blocked(BlockReason::Manual)),
            today
        ));
        assert!(!expires_now(&lot("X", Some("2025-03-14"), "2025-03-01", 0, LotStatus::Consumed), today));
        assert!(!expires_now(&lot("X", None, "2025-03-01", 5, LotStatus::Available), today));
    }

    #[test]
    fn scenario_12_pre_expiry_alerts() {
        let today = d(TODAY);
        let at = |dlc: &str| pre_expiry_alert(&lot("X", Some(dlc), "2025-03-01", 5, LotStatus::Available), today);
        assert_eq!(at("2025-03-21"), Some(("DLC_J7", "INFO")));
        assert_eq!(at("2025-03-17"), Some(("DLC_J3", "WARNING")));
        assert_eq!(at("2025-03-15"), Some(("DLC_J1", "CRITICAL")));
        assert_eq!(at("2025-03-16"), None);
        let blocked = lot("X", Some("2025-03-15"), "2025-03-01", 5, LotStatus::Blocked(BlockReason::Manual));
        assert_eq!(pre_expiry_alert(&blocked, today), None);
    }

    #[test]
    fn scenarios_13_to_15_block_unblock_and_qc() {
        let today = d(TODAY);
        let expired_block = lot("X", Some("2025-03-13"), "2025-03-01", 5, LotStatus::Blocked(BlockReason::Expired));
        assert_eq!(unblock(&expired_block, "Contrôle refait OK", today).unwrap_err().code, "LOT_PERIME_DEFINITIF");
        let manual = lot("X", Some("2025-03-30"), "2025-03-01", 5, LotStatus::Blocked(BlockReason::Manual));
        assert_eq!(unblock(&manual, "Contrôle refait OK", today), Ok(LotStatus::Available));
        assert_eq!(unblock(&manual, "court", today).unwrap_err().code, "MOTIF_OBLIGATOIRE");
        let q = lot("Q", Some("2025-03-20"), "2025-03-01", 5, LotStatus::Quarantine);
        assert_eq!(qc_release(&q, true, "", today), Ok(LotStatus::Available));
        let q_old = lot("Q", Some("2025-03-13"), "2025-03-01", 5, LotStatus::Quarantine);
        let e = qc_release(&q_old, true, "", today).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), ("LOT_PERIME", "Le lot L-Q est périmé (DLC 13/03/2025)."));
        assert_eq!(qc_release(&q, false, "Texture non conforme", today), Ok(LotStatus::Blocked(BlockReason::QcFailed)));
        assert_eq!(qc_release(&q, false, "non", today).unwrap_err().code, "MOTIF_OBLIGATOIRE");
        let avail = lot("A", Some("2025-03-20"), "2025-03-01", 5, LotStatus::Available);
        assert_eq!(block(&avail, "abc").unwrap_err().code, "MOTIF_OBLIGATOIRE");
        assert_eq!(block(&avail, "Odeur suspecte au contrôle"), Ok(LotStatus::Blocked(BlockReason::Manual)));
        assert_eq!(qc_release(&avail, true, "", today).unwrap_err().code, "LOT_STATUT_INVALIDE");
    }

    #[test]
    fn scenario_61_losses() {
        let today = d(TODAY);
        let blocked = lot("X", Some("2025-03-10"), "2025-03-01", 20_000, LotStatus::Blocked(BlockReason::Expired));
        assert_eq!(check_loss(&blocked, 20_000, LossReason::Expired, "", today), Ok(()));
        let fresh = lot("Y", Some("2025-03-20"), "2025-03-01", 20_000, LotStatus::Available);
        assert_eq!(check_loss(&fresh, 1_000, LossReason::Expired, "", today).unwrap_err().code, "MOTIF_PERTE_INVALIDE");
        assert_eq!(
            check_loss(&fresh, 1_000, LossReason::Damaged, "cassé", today).unwrap_err().code,
            "MOTIF_OBLIGATOIRE"
        );
        assert_eq!(check_loss(&fresh, 1_000, LossReason::Damaged, "Carton écrasé au déchargement", today), Ok(()));
        assert_eq!(
            check_loss(&fresh, 20_001, LossReason::Other, "Retour fournisseur", today).unwrap_err().code,
            "STOCK_INSUFFISANT"
        );
        assert_eq!(
            check_loss(&fresh, 0, LossReason::Other, "Retour fournisseur", today).unwrap_err().code,
            "QUANTITE_INVALIDE"
        );
        assert_eq!(check_loss(&fresh, 5, LossReason::QcFailed, "", today).unwrap_err().code, "MOTIF_PERTE_INVALIDE");
        // 20 kg at 3.00 DA/kg is worth 60.00 DA.
        assert_eq!(crate::money::amount(20_000, 300).unwrap(), 6_000);
    }

    #[test]
    fn numbers_and_quantities_read_as_documented() {
        assert_eq!(doc_ref("REC", 2025, 1), "REC-2025-00001");
        assert_eq!(doc_ref("REC", 2025, 123_456), "REC-2025-123456");
        assert_eq!(mp_lot_number(d("2025-03-14"), 2), "L250314-002");
        assert_eq!(mp_lot_number(d("2025-03-14"), 1000), "L250314-1000");
        assert_eq!(pf_lot_number("PF-EDAM-400", d("2025-03-14"), 1), "PF-EDAM-400-250314-01");
        assert_eq!(adj_lot_number(d("2025-03-14"), 1), "AJ250314-001");
        assert_eq!(party_code("FOUR", 12), "FOUR-0012");
        assert_eq!(fmt_qty(12_500, Unit::Kg), "12,500\u{00A0}kg");
        assert_eq!(fmt_qty(1_000_000_000, Unit::L), "1\u{202F}000\u{202F}000,000\u{00A0}L");
        assert_eq!(fmt_qty(24_000, Unit::U), "24\u{00A0}pcs");
        assert_eq!(fmt_qty(2_500, Unit::Crt), "2,500\u{00A0}crt");
        assert_eq!(check_quantity(0, false).unwrap_err().code, "QUANTITE_INVALIDE");
        assert_eq!(
            check_quantity(1_500, true).unwrap_err().message,
            "Quantité invalide (doit être > 0, en pièces entières)."
        );
        assert!(check_quantity(2_000, true).is_ok());
        let e = stock_insuffisant(&[("MP-B".into(), 10_000, 6_000)]);
        assert_eq!(e.message, "Stock insuffisant : MP-B requis 10,000, disponible 6,000, manquant 4,000.");
        assert_eq!(e.details["shortages"][0]["missing"], 4_000);
    }

    #[test]
    fn write_off_takes_the_whole_remaining_of_expired_blocked_lots_only() {
        let expired = lot("a", Some("2025-03-10"), "2025-03-01", 20_000, LotStatus::Blocked(BlockReason::Expired));
        assert_eq!(check_write_off(&expired), Ok(20_000));
        let manual = LotFacts { status: LotStatus::Blocked(BlockReason::Manual), ..expired.clone() };
        assert_eq!(check_write_off(&manual).unwrap_err().code, "LOT_STATUT_INVALIDE");
        let available = LotFacts { status: LotStatus::Available, ..expired.clone() };
        assert_eq!(check_write_off(&available).unwrap_err().code, "LOT_STATUT_INVALIDE");
        let empty = LotFacts { remaining: 0, ..expired };
        assert_eq!(check_write_off(&empty).unwrap_err().code, "LOT_STATUT_INVALIDE");
    }

    #[test]
    fn large_losses_by_non_admins_raise_an_alert() {
        assert!(!perte_importante(5_000_000, false));
        assert!(perte_importante(5_000_001, false));
        assert!(!perte_importante(9_000_000, true));
        assert_eq!(fmt_milli(1_234_500), "1\u{202F}234,500");
        assert_eq!(fmt_milli(-500), "\u{2212}0,500");
    }
}
