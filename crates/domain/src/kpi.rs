//! Stock KPIs (DOMAIN.md §7.2, §17): the appro status of an MP, DLC buckets, the stock health score. Inputs are
//! counts and quantities the store reads from the ledger; nothing here is cached.

use chrono::NaiveDate;

/// §7.2 appro status of one MP; the first matching row wins, "below" is strict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApproStatus {
    Rupture,
    Critique,
    ACommander,
    Ok,
}

impl ApproStatus {
    pub fn code(self) -> &'static str {
        match self {
            ApproStatus::Rupture => "RUPTURE",
            ApproStatus::Critique => "CRITIQUE",
            ApproStatus::ACommander => "A_COMMANDER",
            ApproStatus::Ok => "OK",
        }
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            ApproStatus::Rupture => "Rupture",
            ApproStatus::Critique => "Critique",
            ApproStatus::ACommander => "À commander",
            ApproStatus::Ok => "OK",
        }
    }
}

/// What §7.2 needs to know of one MP (quantities in milli-units).
#[derive(Debug, Clone, Copy, Default)]
pub struct MpSupply {
    pub stock_disponible: i64,
    pub safety_threshold: i64,
    pub reorder_threshold: i64,
    /// Σ PRODUCTION_OUT − Σ PRODUCTION_CANCEL over the last 30 days (§7.1).
    pub consumption_30: i64,
    pub lead_time_days: i64,
}

/// §7.2 with the integer form of "coverage < lead time": stock × 30 < consumption_30 × lead_time (no consumption
/// means infinite coverage).
pub fn appro_status(m: &MpSupply) -> ApproStatus {
    let coverage_short = m.consumption_30 > 0
        && i128::from(m.stock_disponible) * 30 < i128::from(m.consumption_30) * i128::from(m.lead_time_days);
    if m.stock_disponible <= 0 {
        ApproStatus::Rupture
    } else if m.stock_disponible < m.safety_threshold || coverage_short {
        ApproStatus::Critique
    } else if m.stock_disponible < m.reorder_threshold {
        ApproStatus::ACommander
    } else {
        ApproStatus::Ok
    }
}

/// §7.1: bloquante by criticité, or used by at least three active recipe versions of active PFs.
pub fn bloquante(criticite: Option<&str>, active_recipe_uses: i64) -> bool {
    criticite == Some("BLOQUANTE") || active_recipe_uses >= 3
}

/// §7.1 coverage in tenths of a day, rounded half up (`17` = 1,7 j); `None` is "∞" (no consumption in 30 days).
pub fn coverage_tenths(stock_disponible: i64, consumption_30: i64) -> Option<i64> {
    (consumption_30 > 0)
        .then(|| crate::money::round_div(i128::from(stock_disponible.max(0)) * 300, i128::from(consumption_30)) as i64)
}

/// §7.2 suggested quantity: target = max(reorder, ⌈consumption_30 × (lead + 7) / 30⌉), minus what is in stock and on
/// order, never negative. Only for MPs that are not OK.
pub fn suggestion(m: &MpSupply, open_order_qty: i64) -> Option<i64> {
    if appro_status(m) == ApproStatus::Ok {
        return None;
    }
    let need = i128::from(m.consumption_30.max(0)) * i128::from(m.lead_time_days + 7);
    let by_use = ((need + 29) / 30) as i64;
    let target = m.reorder_threshold.max(by_use);
    Some((target - m.stock_disponible.max(0) - open_order_qty.max(0)).max(0))
}

/// §7.2 suggestion priority.
pub fn priority(status: ApproStatus, bloquante: bool) -> Option<&'static str> {
    match status {
        ApproStatus::Rupture => Some("URGENTE"),
        ApproStatus::Critique if bloquante => Some("URGENTE"),
        ApproStatus::Critique => Some("HAUTE"),
        ApproStatus::ACommander => Some("NORMALE"),
        ApproStatus::Ok => None,
    }
}

/// §7.2 alert of an MP's status: `(type, severity)`.
pub fn mp_alert(status: ApproStatus, bloquante: bool) -> Option<(&'static str, &'static str)> {
    match status {
        ApproStatus::Rupture if bloquante => Some(("MP_RUPTURE_BLOQUANTE", "CRITICAL")),
        ApproStatus::Rupture => Some(("MP_RUPTURE", "WARNING")),
        ApproStatus::Critique => Some(("MP_CRITIQUE", "WARNING")),
        ApproStatus::ACommander => Some(("MP_A_COMMANDER", "INFO")),
        ApproStatus::Ok => None,
    }
}

/// The MP alert types the cockpit scan owns (it closes them when the condition is gone).
pub const MP_ALERTS: [&str; 4] = ["MP_RUPTURE_BLOQUANTE", "MP_RUPTURE", "MP_CRITIQUE", "MP_A_COMMANDER"];

/// The French label of a risk level of [`risk_index`].
pub fn risk_label(level: &str) -> &'static str {
    match level {
        "CRITIQUE" => "Critique",
        "SURVEILLANCE" => "Surveillance",
        _ => "Sain",
    }
}

/// §7.2 supply-risk index min(100, 30·B + 20·R + 10·C) and its level.
pub fn risk_index(bloquantes_in_rupture: i64, other_ruptures: i64, critiques: i64) -> (i64, &'static str) {
    let v = (30 * bloquantes_in_rupture + 20 * other_ruptures + 10 * critiques).min(100);
    let level = match v {
        0..=30 => "SAIN",
        31..=60 => "SURVEILLANCE",
        _ => "CRITIQUE",
    };
    (v, level)
}

/// Which module an alert type belongs to (by prefix), so that a role sees and handles the alerts of the modules it
/// reads (§2.2, §7.3).
pub fn alert_module(alert_type: &str) -> &'static str {
    let any = |prefixes: &[&str]| prefixes.iter().any(|p| alert_type.starts_with(p));
    if any(&["MP_", "BC_", "FOURNISSEUR_"]) {
        "appro"
    } else if any(&["RENDEMENT_"]) {
        "production"
    } else if any(&["DLC_", "LOT", "PERTE_", "ECART_"]) {
        "stock"
    } else {
        "system"
    }
}

/// §7.3: an alert is listed and acknowledged by the roles that read its module.
pub fn alert_readable_by(role: crate::identity::Role, alert_type: &str) -> bool {
    use crate::identity::Role;
    match alert_module(alert_type) {
        "appro" | "production" => matches!(role, Role::Admin | Role::Appro | Role::Production | Role::Comptable),
        "stock" => true,
        _ => role == Role::Admin,
    }
}

/// §7.3: these alerts are never postponed.
pub fn postponable(alert_type: &str) -> bool {
    !matches!(alert_type, "MP_RUPTURE_BLOQUANTE" | "LOTS_PERIMES")
}

/// §7.3: appro alerts are postponed by ADMIN and APPRO, the others by ADMIN.
pub fn may_postpone(role: crate::identity::Role, alert_type: &str) -> bool {
    use crate::identity::Role;
    role == Role::Admin || (role == Role::Appro && alert_module(alert_type) == "appro")
}

/// §7.3 postpone: not for `MP_RUPTURE_BLOQUANTE` nor `LOTS_PERIMES`, a reason of 10 characters, an end within 7 days.
pub fn check_postpone(
    alert_type: &str,
    status: &str,
    reason: &str,
    until: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, crate::rejection::Rejection> {
    use crate::rejection::Rejection;
    if !postponable(alert_type) {
        return Err(Rejection::new("REPORT_INTERDIT", 409, "Report interdit pour ce type d'alerte."));
    }
    if !matches!(status, "OPEN" | "ACKNOWLEDGED") {
        return Err(alerte_deja_traitee());
    }
    let reason = crate::validation::reason(reason, 10)?;
    if until <= now || until > now + chrono::Duration::days(7) {
        return Err(Rejection::new("DATE_INVALIDE", 422, "Date invalide : le report dure au plus 7 jours.")
            .with_details(serde_json::json!({"field": "until"})));
    }
    Ok(reason)
}

/// §7.3 acknowledge: once, from OPEN.
pub fn check_acknowledge(status: &str) -> Result<(), crate::rejection::Rejection> {
    if status == "OPEN" { Ok(()) } else { Err(alerte_deja_traitee()) }
}

fn alerte_deja_traitee() -> crate::rejection::Rejection {
    crate::rejection::Rejection::new("ALERTE_DEJA_TRAITEE", 409, "Alerte déjà traitée.")
}

/// §17 "Lots à échéance" buckets for a usable-or-quarantined lot: J0, J+1, J+2–3, J+4–7; `None` outside [today,
/// today + 7].
pub fn echeance_bucket(dlc: NaiveDate, today: NaiveDate) -> Option<usize> {
    match (dlc - today).num_days() {
        0 => Some(0),
        1 => Some(1),
        2..=3 => Some(2),
        4..=7 => Some(3),
        _ => None,
    }
}

pub const ECHEANCE_LABELS: [&str; 4] = ["J0", "J+1", "J+2–3", "J+4–7"];

/// The terms of the §17 stock health score.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HealthInputs {
    /// Bloquante MPs in RUPTURE.
    pub b: i64,
    /// Other MPs in RUPTURE.
    pub r: i64,
    /// Active PFs with min_stock > 0 and available_to_promise ≤ 0.
    pub p: i64,
    /// BLOCKED(EXPIRED) lots not written off.
    pub e: i64,
    /// MPs in CRITIQUE.
    pub c: i64,
    /// Usable lots with dlc ≤ today + 3.
    pub x: i64,
    /// Counts in PENDING or PENDING_DOUBLE.
    pub i: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthBand {
    Excellent,
    Bon,
    ASurveiller,
    Critique,
}

impl HealthBand {
    pub fn code(self) -> &'static str {
        match self {
            HealthBand::Excellent => "EXCELLENT",
            HealthBand::Bon => "BON",
            HealthBand::ASurveiller => "A_SURVEILLER",
            HealthBand::Critique => "CRITIQUE",
        }
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            HealthBand::Excellent => "Excellent",
            HealthBand::Bon => "Bon",
            HealthBand::ASurveiller => "À surveiller",
            HealthBand::Critique => "Critique",
        }
    }
}

/// clamp(100 − 10·B − 5·(R + P) − 3·E − 2·C − 1·(X + I), 0, 100) and its band.
pub fn health_score(h: &HealthInputs) -> (i64, HealthBand) {
    let score = (100 - 10 * h.b - 5 * (h.r + h.p) - 3 * h.e - 2 * h.c - (h.x + h.i)).clamp(0, 100);
    let band = match score {
        90.. => HealthBand::Excellent,
        70..=89 => HealthBand::Bon,
        50..=69 => HealthBand::ASurveiller,
        _ => HealthBand::Critique,
    };
    (score, band)
}

/// §17 "Synchro en attente" (UI.md §5): the events still waiting or awaiting an operator's decision, and the tone
/// of the card — Ambre from 50, Rouge from 200 (the `SyncBacklog` alert's level).
pub fn sync_backlog(pending: i64, failed: i64) -> (i64, &'static str) {
    let n = pending + failed;
    let tone = match n {
        200.. => "rouge",
        50.. => "ambre",
        _ => "vert",
    };
    (n, tone)
}

/// §17 "Appareils hors ligne": an active device whose last contact (its last sync, or its registration when it never
/// synced) is older than 24 hours.
pub fn device_offline(
    active: bool,
    last_sync: Option<chrono::DateTime<chrono::Utc>>,
    registered: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> bool {
    active && last_sync.unwrap_or(registered) < now - chrono::Duration::hours(24)
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_sync_backlog_turns_amber_at_50_and_red_at_200() {
        assert_eq!(sync_backlog(0, 0), (0, "vert"));
        assert_eq!(sync_backlog(40, 9), (49, "vert"));
        assert_eq!(sync_backlog(40, 10), (50, "ambre"));
        assert_eq!(sync_backlog(199, 0), (199, "ambre"));
        assert_eq!(sync_backlog(150, 50), (200, "rouge"));
    }

    #[test]
    fn a_device_is_offline_after_a_day_without_contact() {
        let now = chrono::DateTime::parse_from_rfc3339("2025-03-14T10:00:00Z").unwrap().to_utc();
        let h = |n: i64| now - chrono::Duration::hours(n);
        assert!(!device_offline(true, Some(h(23)), h(100), now), "synced 23 h ago");
        assert!(!device_offline(true, Some(h(24)), h(100), now), "exactly 24 h: not yet");
        assert!(device_offline(true, Some(h(25)), h(100), now));
        assert!(device_offline(true, None, h(25), now), "never synced, registered 25 h ago");
        assert!(!device_offline(true, None, h(2), now), "never synced, registered today");
        assert!(!device_offline(false, Some(h(200)), h(300), now), "a revoked device is not counted");
    }

    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn health_score_example_of_domain_17() {
        let h = HealthInputs { b: 0, r: 1, p: 1, e: 2, c: 3, x: 4, i: 1 };
        assert_eq!(health_score(&h), (73, HealthBand::Bon));
    }

    #[test]
    fn health_score_is_clamped_and_banded_at_the_edges() {
        assert_eq!(health_score(&HealthInputs::default()), (100, HealthBand::Excellent));
        assert_eq!(health_score(&HealthInputs { x: 10, ..Default::default() }), (90, HealthBand::Excellent));
        assert_eq!(health_score(&HealthInputs { x: 11, ..Default::default() }).1, HealthBand::Bon);
        assert_eq!(health_score(&HealthInputs { b: 3, ..Default::default() }), (70, HealthBand::Bon));
        assert_eq!(health_score(&HealthInputs { b: 3, x: 1, ..Default::default() }).1, HealthBand::ASurveiller);
        assert_eq!(health_score(&HealthInputs { b: 5, ..Default::default() }), (50, HealthBand::ASurveiller));
        assert_eq!(health_score(&HealthInputs { b: 5, i: 1, ..Default::default() }), (49, HealthBand::Critique));
        assert_eq!(health_score(&HealthInputs { b: 20, ..Default::default() }), (0, HealthBand::Critique));
    }

    #[test]
    fn appro_status_follows_the_first_matching_row() {
        // The §7.2 example: safety 1 000 L, reorder 1 500 L, lead 2 days, 36 000 L in 30 days, 2 000 L in stock.
        let m = MpSupply {
            stock_disponible: 2_000_000,
            safety_threshold: 1_000_000,
            reorder_threshold: 1_500_000,
            consumption_30: 36_000_000,
            lead_time_days: 2,
        };
        assert_eq!(appro_status(&m), ApproStatus::Critique);
        // Without consumption the coverage is infinite: 2 000 ≥ 1 500 → OK.
        assert_eq!(appro_status(&MpSupply { consumption_30: 0, ..m }), ApproStatus::Ok);
        assert_eq!(
            appro_status(&MpSupply { consumption_30: 0, stock_disponible: 1_499_999, ..m }),
            ApproStatus::ACommander
        );
        // "Below" is strict: exactly the reorder threshold is OK, exactly the safety threshold is À commander.
        assert_eq!(appro_status(&MpSupply { consumption_30: 0, stock_disponible: 1_500_000, ..m }), ApproStatus::Ok);
        assert_eq!(
            appro_status(&MpSupply { consumption_30: 0, stock_disponible: 1_000_000, ..m }),
            ApproStatus::ACommander
        );
        assert_eq!(
            appro_status(&MpSupply { consumption_30: 0, stock_disponible: 999_999, ..m }),
            ApproStatus::Critique
        );
        assert_eq!(appro_status(&MpSupply { stock_disponible: 0, ..m }), ApproStatus::Rupture);
        // Coverage exactly the lead time is not short: 2 400 L at 1 200 L/day over 2 days.
        assert_eq!(appro_status(&MpSupply { stock_disponible: 2_400_000, ..m }), ApproStatus::Ok);
    }

    /// Scenarios 25–27 and the postpone rules of 28.
    #[test]
    fn cockpit_suggestions_priorities_and_risk() {
        // 25: coverage 1,7 d < 2 d → CRITIQUE, target max(1 500, 36 000 × 9 / 30 = 10 800) → 8 800 L.
        let milk = MpSupply {
            stock_disponible: 2_000_000,
            safety_threshold: 1_000_000,
            reorder_threshold: 1_500_000,
            consumption_30: 36_000_000,
            lead_time_days: 2,
        };
        assert_eq!(coverage_tenths(milk.stock_disponible, milk.consumption_30), Some(17));
        assert_eq!(suggestion(&milk, 0), Some(8_800_000));
        assert_eq!(suggestion(&milk, 5_000_000), Some(3_800_000), "what is on order counts");
        assert_eq!(priority(appro_status(&milk), false), Some("HAUTE"));
        assert_eq!(priority(appro_status(&milk), true), Some("URGENTE"));
        // 26: min 100 kg (reorder 150), consumption 90 kg, lead 7 d, stock 120 kg → À COMMANDER, 30 kg.
        let salt = MpSupply {
            stock_disponible: 120_000,
            safety_threshold: 100_000,
            reorder_threshold: 150_000,
            consumption_30: 90_000,
            lead_time_days: 7,
        };
        assert_eq!(appro_status(&salt), ApproStatus::ACommander);
        assert_eq!(suggestion(&salt, 0), Some(30_000));
        assert_eq!(priority(ApproStatus::ACommander, false), Some("NORMALE"));
        assert_eq!(suggestion(&MpSupply { stock_disponible: 200_000, ..salt }, 0), None, "OK needs nothing");
        assert_eq!(coverage_tenths(5, 0), None);
        // 27 and the §7.2 example.
        assert_eq!(risk_index(2, 1, 3), (100, "CRITIQUE"));
        assert_eq!(risk_index(0, 1, 1), (30, "SAIN"));
        assert_eq!(risk_index(1, 1, 2), (70, "CRITIQUE"));
        assert_eq!(risk_index(0, 2, 0), (40, "SURVEILLANCE"));
        assert_eq!(risk_label(risk_index(0, 2, 0).1), "Surveillance");
        assert_eq!(risk_label(risk_index(4, 0, 0).1), "Critique");
        assert_eq!(risk_label(risk_index(0, 0, 0).1), "Sain");
        assert!(bloquante(Some("BLOQUANTE"), 0) && bloquante(Some("HAUTE"), 3) && !bloquante(None, 2));
        assert_eq!(mp_alert(ApproStatus::Rupture, true), Some(("MP_RUPTURE_BLOQUANTE", "CRITICAL")));
        assert_eq!(mp_alert(ApproStatus::Rupture, false), Some(("MP_RUPTURE", "WARNING")));
        assert_eq!(mp_alert(ApproStatus::ACommander, false), Some(("MP_A_COMMANDER", "INFO")));
        // 28: postponing a blocking rupture is refused; a reason of 10 characters and at most 7 days otherwise.
        let now: chrono::DateTime<chrono::Utc> = "2025-03-14T09:00:00Z".parse().unwrap();
        let day = chrono::Duration::days(1);
        let e = check_postpone("MP_RUPTURE_BLOQUANTE", "OPEN", "Livraison prévue lundi", now + day, now).unwrap_err();
        assert_eq!((e.code, e.status), ("REPORT_INTERDIT", 409));
        assert_eq!(
            check_postpone("MP_CRITIQUE", "OPEN", "Lundi", now + day, now).unwrap_err().code,
            "MOTIF_TROP_COURT"
        );
        assert_eq!(
            check_postpone("MP_CRITIQUE", "OPEN", "Livraison prévue lundi", now + day * 8, now).unwrap_err().code,
            "DATE_INVALIDE"
        );
        assert_eq!(
            check_postpone("MP_CRITIQUE", "ACKNOWLEDGED", " Livraison prévue lundi ", now + day * 7, now),
            Ok("Livraison prévue lundi".into())
        );
        assert_eq!(
            check_postpone("MP_CRITIQUE", "POSTPONED", "Livraison prévue lundi", now + day, now).unwrap_err().code,
            "ALERTE_DEJA_TRAITEE"
        );
        assert!(check_acknowledge("OPEN").is_ok());
        // Who sees and handles what: appro alerts for the appro readers, stock alerts for everyone, the rest ADMIN.
        use crate::identity::Role;
        assert!(
            alert_readable_by(Role::Production, "MP_CRITIQUE") && !alert_readable_by(Role::Commercial, "BC_EN_RETARD")
        );
        assert!(
            alert_readable_by(Role::Commercial, "DLC_J1")
                && alert_readable_by(Role::Comptable, "RENDEMENT_HORS_TOLERANCE")
        );
        assert!(!alert_readable_by(Role::Appro, "SYNC_ECHEC") && alert_readable_by(Role::Admin, "SYNC_ECHEC"));
        assert!(may_postpone(Role::Appro, "MP_CRITIQUE") && !may_postpone(Role::Appro, "DLC_J3"));
        assert!(!may_postpone(Role::Production, "MP_CRITIQUE") && may_postpone(Role::Admin, "DLC_J3"));
        assert!(!postponable("LOTS_PERIMES") && postponable("MP_A_COMMANDER"));
        assert_eq!(check_acknowledge("ACKNOWLEDGED").unwrap_err().code, "ALERTE_DEJA_TRAITEE");
    }

    #[test]
    fn echeance_buckets() {
        let today = d("2025-03-14");
        let b = |s: &str| echeance_bucket(d(s), today);
        assert_eq!(b("2025-03-13"), None);
        assert_eq!(b("2025-03-14"), Some(0));
        assert_eq!(b("2025-03-15"), Some(1));
        assert_eq!(b("2025-03-16"), Some(2));
        assert_eq!(b("2025-03-17"), Some(2));
        assert_eq!(b("2025-03-18"), Some(3));
        assert_eq!(b("2025-03-21"), Some(3));
        assert_eq!(b("2025-03-22"), None);
    }
}
