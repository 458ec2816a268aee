//! Purchase orders (bons de commande, DOMAIN.md §6.1, §6.2), over-receipt (§6.2), supplier performance and late
//! orders (§6.4). The reception rules themselves are in `procurement`.

use chrono::NaiveDate;
use serde_json::json;

use crate::money::round_div;
use crate::rejection::Rejection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BcStatus {
    Draft,
    Sent,
    Confirmed,
    Partial,
    Received,
    Cancelled,
}

impl BcStatus {
    pub const ALL: [BcStatus; 6] = [
        BcStatus::Draft,
        BcStatus::Sent,
        BcStatus::Confirmed,
        BcStatus::Partial,
        BcStatus::Received,
        BcStatus::Cancelled,
    ];

    pub fn code(self) -> &'static str {
        match self {
            BcStatus::Draft => "DRAFT",
            BcStatus::Sent => "SENT",
            BcStatus::Confirmed => "CONFIRMED",
            BcStatus::Partial => "PARTIAL",
            BcStatus::Received => "RECEIVED",
            BcStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(code: &str) -> Option<BcStatus> {
        BcStatus::ALL.into_iter().find(|s| s.code() == code)
    }

    /// What the pages show.
    pub fn label(self) -> &'static str {
        match self {
            BcStatus::Draft => "Brouillon",
            BcStatus::Sent => "Envoyé",
            BcStatus::Confirmed => "Confirmé",
            BcStatus::Partial => "Reçu partiellement",
            BcStatus::Received => "Reçu",
            BcStatus::Cancelled => "Annulé",
        }
    }

    /// Goods may arrive against the order.
    pub fn receivable(self) -> bool {
        matches!(self, BcStatus::Sent | BcStatus::Confirmed | BcStatus::Partial)
    }
}

/// Lines and header change only in DRAFT.
pub fn check_editable(reference: &str, status: BcStatus) -> Result<(), Rejection> {
    if status != BcStatus::Draft {
        return Err(Rejection::new(
            "BC_NON_MODIFIABLE",
            409,
            format!("Le bon de commande {reference} n'est plus modifiable (statut {}).", status.label()),
        )
        .with_details(json!({"reference": reference, "status": status.code()})));
    }
    Ok(())
}

/// The same MP appears once per order.
pub fn check_unique_lines<'a>(mp_codes: impl IntoIterator<Item = &'a str>) -> Result<(), Rejection> {
    let mut seen = std::collections::HashSet::new();
    for code in mp_codes {
        if !seen.insert(code) {
            return Err(Rejection::new(
                "LIGNE_DOUBLON",
                422,
                format!("Le produit {code} figure déjà sur ce document."),
            )
            .with_details(json!({"productCode": code})));
        }
    }
    Ok(())
}

/// The expected delivery date is not before the order's creation.
pub fn check_expected_date(expected: NaiveDate, created: NaiveDate) -> Result<(), Rejection> {
    if expected < created {
        return Err(Rejection::new(
            "DATE_INVALIDE",
            422,
            "Date invalide : la livraison prévue ne peut pas précéder la date du bon de commande.",
        )
        .with_details(json!({"field": "expectedDate", "min": created})));
    }
    Ok(())
}

/// How the order reached the supplier (§6.2 DRAFT → SENT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendProof {
    /// The PDF e-mailed to this address.
    Email(String),
    /// Handed over or phoned: what was done, at least 20 characters.
    Manual(String),
}

pub const MANUAL_NOTE_MIN: usize = 20;

fn preuve_requise() -> Rejection {
    Rejection::new(
        "PREUVE_ENVOI_REQUISE",
        422,
        "Preuve d'envoi requise : adresse e-mail valide ou note d'au moins 20 caractères.",
    )
}

/// DRAFT → SENT: a proof, at least one line, an expected date. (The supplier block is checked by the caller with
/// `catalogue::check_supplier_block`, as at creation.) Returns the normalised proof.
pub fn check_send(
    reference: &str,
    status: BcStatus,
    proof: &SendProof,
    lines: usize,
    expected: Option<NaiveDate>,
) -> Result<SendProof, Rejection> {
    if status != BcStatus::Draft {
        return Err(Rejection::transition_invalide(status.code(), BcStatus::Sent.code()));
    }
    let proof = match proof {
        SendProof::Email(address) => SendProof::Email(crate::parties::email(address).map_err(|_| preuve_requise())?),
        SendProof::Manual(note) if note.trim().chars().count() >= MANUAL_NOTE_MIN => {
            SendProof::Manual(note.trim().to_string())
        }
        SendProof::Manual(_) => return Err(preuve_requise()),
    };
    if lines == 0 {
        return Err(Rejection::new(
            "BC_VIDE",
            422,
            format!("Le bon de commande {reference} ne contient aucune ligne."),
        ));
    }
    if expected.is_none() {
        return Err(Rejection::new(
            "DATE_INVALIDE",
            422,
            "Date invalide : la date de livraison prévue est obligatoire pour envoyer le bon de commande.",
        )
        .with_details(json!({"field": "expectedDate"})));
    }
    Ok(proof)
}

/// SENT → CONFIRMED (the supplier's confirmation, optional step).
pub fn check_confirm(status: BcStatus) -> Result<(), Rejection> {
    if status != BcStatus::Sent {
        return Err(Rejection::transition_invalide(status.code(), BcStatus::Confirmed.code()));
    }
    Ok(())
}

pub const REASON_MIN: usize = 10;

fn check_reason(reason: &str) -> Result<String, Rejection> {
    crate::validation::reason(reason, REASON_MIN)
}

/// Cancellation (ADMIN): never once goods were received, never from a terminal state; reason ≥ 10 characters.
pub fn check_cancel(status: BcStatus, anything_received: bool, reason: &str) -> Result<String, Rejection> {
    let deja_recu =
        || Rejection::new("BC_DEJA_RECU", 409, "Annulation impossible : des quantités ont déjà été réceptionnées.");
    match status {
        BcStatus::Partial | BcStatus::Received => Err(deja_recu()),
        BcStatus::Draft | BcStatus::Sent | BcStatus::Confirmed if anything_received => Err(deja_recu()),
        BcStatus::Draft | BcStatus::Sent | BcStatus::Confirmed => check_reason(reason),
        BcStatus::Cancelled => Err(Rejection::transition_invalide(status.code(), BcStatus::Cancelled.code())),
    }
}

/// PARTIAL → RECEIVED by closing ("solder"): the remaining quantities are abandoned; reason ≥ 10 characters.
pub fn check_close(status: BcStatus, reason: &str) -> Result<String, Rejection> {
    if status != BcStatus::Partial {
        return Err(Rejection::transition_invalide(status.code(), BcStatus::Received.code()));
    }
    check_reason(reason)
}

/// A reception may be made against the order: receivable status, same supplier.
pub fn check_receivable(reference: &str, status: BcStatus, same_supplier: bool) -> Result<(), Rejection> {
    if !status.receivable() || !same_supplier {
        let why = if same_supplier { status.label() } else { "autre fournisseur" };
        return Err(Rejection::new(
            "BC_STATUT_INVALIDE",
            409,
            format!("Le bon de commande {reference} ne peut pas être réceptionné (statut {why})."),
        )
        .with_details(json!({"reference": reference, "status": status.code(), "sameSupplier": same_supplier})));
    }
    Ok(())
}

/// One order line as the reception sees it (milli-units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    pub product_code: String,
    pub ordered: i64,
    pub received: i64,
}

/// The most a line may still receive: cumulative received × 10 ≤ ordered × 11 (110 %).
pub fn max_receivable(line: &OrderLine) -> i64 {
    (line.ordered * 11 / 10 - line.received).max(0)
}

/// Applies a reception's quantities to the order's lines (all of them or none): `SURLIVRAISON` names the first line
/// that would pass 110 %. Returns the lines after the reception and the order's new status.
pub fn receive(lines: &[OrderLine], incoming: &[(String, i64)]) -> Result<(Vec<OrderLine>, BcStatus), Rejection> {
    let mut after = lines.to_vec();
    for (code, qty) in incoming {
        let Some(line) = after.iter_mut().find(|l| &l.product_code == code) else {
            return Err(Rejection::new(
                "LIGNE_HORS_BC",
                422,
                format!("Le produit {code} ne figure pas sur le bon de commande."),
            )
            .with_details(json!({"productCode": code})));
        };
        let total = line.received + qty;
        if (total as i128) * 10 > (line.ordered as i128) * 11 {
            let max = max_receivable(line);
            return Err(Rejection::new(
                "SURLIVRAISON",
                422,
                format!(
                    "Réception supérieure à 110 % de la quantité commandée pour {code} (maximum {}).",
                    crate::stock::fmt_milli(max)
                ),
            )
            .with_details(json!({
                "productCode": code, "ordered": line.ordered, "alreadyReceived": line.received,
                "attempted": qty, "maximum": max,
            })));
        }
        line.received = total;
    }
    let status = if after.iter().all(|l| l.received >= l.ordered) { BcStatus::Received } else { BcStatus::Partial };
    Ok((after, status))
}

/// An order of the performance window: its expected date, its first reception, its lines.
#[derive(Debug, Clone)]
pub struct DeliveredOrder {
    pub expected: NaiveDate,
    pub first_reception: NaiveDate,
    /// (ordered, received) per line, milli-units.
    pub lines: Vec<(i64, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Performance {
    pub on_time_bp: Option<i64>,
    pub accuracy_bp: Option<i64>,
    pub score: Option<i64>,
    pub grade: &'static str,
}

/// Orders the score looks at: the supplier's last 20 PARTIAL or RECEIVED orders.
pub const PERFORMANCE_WINDOW: usize = 20;

/// §6.4 over the window the caller selected (last 20 orders by date of last reception).
pub fn performance(orders: &[DeliveredOrder]) -> Performance {
    let orders = &orders[..orders.len().min(PERFORMANCE_WINDOW)];
    let ratios: Vec<i128> = orders
        .iter()
        .flat_map(|o| o.lines.iter())
        .filter(|(ordered, _)| *ordered > 0)
        .map(|(ordered, received)| round_div(*received as i128 * 10_000, *ordered as i128).min(10_000))
        .collect();
    if orders.is_empty() || ratios.is_empty() {
        return Performance { on_time_bp: None, accuracy_bp: None, score: None, grade: "N/A" };
    }
    let on_time = orders.iter().filter(|o| o.first_reception <= o.expected).count() as i128;
    let on_time_bp = round_div(10_000 * on_time, orders.len() as i128);
    let accuracy_bp = round_div(ratios.iter().sum(), ratios.len() as i128);
    let score = round_div(on_time_bp + accuracy_bp, 200) as i64;
    Performance {
        on_time_bp: Some(on_time_bp as i64),
        accuracy_bp: Some(accuracy_bp as i64),
        score: Some(score),
        grade: grade(score),
    }
}

pub fn grade(score: i64) -> &'static str {
    match score {
        90.. => "A",
        70..=89 => "B",
        _ => "C",
    }
}

/// An open order past its expected date: days late (> 0), else `None`.
pub fn days_late(expected: NaiveDate, today: NaiveDate) -> Option<i64> {
    let d = (today - expected).num_days();
    (d > 0).then_some(d)
}

/// `BC_EN_RETARD`: CRITICAL when ≥ 3 days late with an MP of criticité HAUTE or BLOQUANTE, else WARNING.
pub fn late_severity(days_late: i64, has_critical_mp: bool) -> &'static str {
    if days_late >= 3 && has_critical_mp { "CRITICAL" } else { "WARNING" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn line(code: &str, ordered: i64, received: i64) -> OrderLine {
        OrderLine { product_code: code.into(), ordered, received }
    }

    #[test]
    fn statuses_round_trip() {
        for s in BcStatus::ALL {
            assert_eq!(BcStatus::parse(s.code()), Some(s));
        }
        assert_eq!(BcStatus::parse("OPEN"), None);
        assert!(BcStatus::Partial.receivable() && !BcStatus::Draft.receivable() && !BcStatus::Received.receivable());
    }

    #[test]
    fn only_drafts_are_edited_and_lines_are_unique() {
        assert!(check_editable("BC-2025-00001", BcStatus::Draft).is_ok());
        let e = check_editable("BC-2025-00001", BcStatus::Sent).unwrap_err();
        assert_eq!((e.code, e.status), ("BC_NON_MODIFIABLE", 409));
        assert_eq!(e.message, "Le bon de commande BC-2025-00001 n'est plus modifiable (statut Envoyé).");
        assert!(check_unique_lines(["MP-LAIT", "MP-SEL"]).is_ok());
        assert_eq!(check_unique_lines(["MP-LAIT", "MP-SEL", "MP-LAIT"]).unwrap_err().code, "LIGNE_DOUBLON");
        assert!(check_expected_date(d("2025-03-14"), d("2025-03-14")).is_ok());
        assert_eq!(check_expected_date(d("2025-03-13"), d("2025-03-14")).unwrap_err().code, "DATE_INVALIDE");
    }

    /// Scenario 20: a 15-character note is refused, 25 characters send the order.
    #[test]
    fn sending_needs_a_proof_lines_and_a_date() {
        let when = Some(d("2025-03-20"));
        let short = SendProof::Manual("Remis en main p".into());
        assert_eq!(check_send("BC", BcStatus::Draft, &short, 2, when).unwrap_err().code, "PREUVE_ENVOI_REQUISE");
        let ok = SendProof::Manual("  Remis en main propre au livreur  ".into());
        assert_eq!(
            check_send("BC", BcStatus::Draft, &ok, 2, when).unwrap(),
            SendProof::Manual("Remis en main propre au livreur".into())
        );
        let mail = SendProof::Email("achats@laiterie-djurdjura.dz".into());
        assert!(check_send("BC", BcStatus::Draft, &mail, 1, when).is_ok());
        let bad = SendProof::Email("achats@".into());
        assert_eq!(check_send("BC", BcStatus::Draft, &bad, 1, when).unwrap_err().code, "PREUVE_ENVOI_REQUISE");
        assert_eq!(check_send("BC", BcStatus::Draft, &ok, 0, when).unwrap_err().code, "BC_VIDE");
        assert_eq!(check_send("BC", BcStatus::Draft, &ok, 1, None).unwrap_err().code, "DATE_INVALIDE");
        assert_eq!(check_send("BC", BcStatus::Sent, &ok, 1, when).unwrap_err().code, "TRANSITION_INVALIDE");
        assert!(check_confirm(BcStatus::Sent).is_ok());
        assert_eq!(check_confirm(BcStatus::Draft).unwrap_err().code, "TRANSITION_INVALIDE");
    }

    /// Scenario 22 (the role part is the access table's): PARTIAL → `BC_DEJA_RECU`; "Annulé" → too short.
    #[test]
    fn cancellation_and_closing() {
        assert_eq!(check_cancel(BcStatus::Partial, true, "Erreur de prix").unwrap_err().code, "BC_DEJA_RECU");
        assert_eq!(check_cancel(BcStatus::Received, true, "Erreur de prix").unwrap_err().code, "BC_DEJA_RECU");
        assert_eq!(check_cancel(BcStatus::Sent, false, "Annulé").unwrap_err().code, "MOTIF_TROP_COURT");
        assert_eq!(check_cancel(BcStatus::Sent, false, " Erreur de prix ").unwrap(), "Erreur de prix");
        assert!(check_cancel(BcStatus::Draft, false, "Doublon de saisie").is_ok());
        assert_eq!(check_cancel(BcStatus::Cancelled, false, "Erreur de prix").unwrap_err().code, "TRANSITION_INVALIDE");
        assert_eq!(check_close(BcStatus::Partial, "Reliquat abandonné").unwrap(), "Reliquat abandonné");
        assert_eq!(check_close(BcStatus::Partial, "Solde").unwrap_err().code, "MOTIF_TROP_COURT");
        assert_eq!(check_close(BcStatus::Sent, "Reliquat abandonné").unwrap_err().code, "TRANSITION_INVALIDE");
        assert!(check_receivable("BC-2025-00007", BcStatus::Confirmed, true).is_ok());
        let e = check_receivable("BC-2025-00007", BcStatus::Draft, true).unwrap_err();
        assert_eq!(e.message, "Le bon de commande BC-2025-00007 ne peut pas être réceptionné (statut Brouillon).");
        assert_eq!(check_receivable("BC-2025-00007", BcStatus::Sent, false).unwrap_err().code, "BC_STATUT_INVALIDE");
    }

    /// Scenario 21: 1 000 kg ordered, 600 received; 501 kg refused (max 500), 500 kg accepted → RECEIVED.
    #[test]
    fn over_receipt_stops_at_110_percent() {
        let lines = vec![line("MP-LAIT", 1_000_000, 600_000), line("MP-SEL", 50_000, 0)];
        assert_eq!(max_receivable(&lines[0]), 500_000);
        let e = receive(&lines, &[("MP-LAIT".into(), 501_000)]).unwrap_err();
        assert_eq!(e.code, "SURLIVRAISON");
        assert_eq!(e.details["maximum"], 500_000);
        assert_eq!(e.details["alreadyReceived"], 600_000);
        let (after, status) = receive(&lines, &[("MP-LAIT".into(), 500_000)]).unwrap();
        assert_eq!(after[0].received, 1_100_000);
        assert_eq!(status, BcStatus::Partial, "MP-SEL still expected");
        let (_, status) = receive(&lines, &[("MP-LAIT".into(), 400_000), ("MP-SEL".into(), 50_000)]).unwrap();
        assert_eq!(status, BcStatus::Received);
        let single = vec![line("MP-LAIT", 1_000_000, 600_000)];
        assert_eq!(receive(&single, &[("MP-LAIT".into(), 500_000)]).unwrap().1, BcStatus::Received);
        assert_eq!(receive(&single, &[("MP-LAIT".into(), 100_000)]).unwrap().1, BcStatus::Partial);
        assert_eq!(receive(&single, &[("MP-CAILLE".into(), 1)]).unwrap_err().code, "LIGNE_HORS_BC");
        // One refused line refuses the whole reception: the first line's quantity is not kept.
        let e = receive(&lines, &[("MP-SEL".into(), 10_000), ("MP-LAIT".into(), 900_000)]).unwrap_err();
        assert_eq!(e.details["productCode"], "MP-LAIT");
    }

    /// §6.4 example: 10 orders, 8 on time (8 000 bp), accuracy 9 500 bp → 87.5 → 88 → B.
    #[test]
    fn supplier_score_and_grade() {
        let mut orders = Vec::new();
        for i in 0..10 {
            let late = i >= 8;
            orders.push(DeliveredOrder {
                expected: d("2025-03-10"),
                first_reception: if late { d("2025-03-12") } else { d("2025-03-10") },
                lines: vec![(1_000_000, 950_000)],
            });
        }
        let p = performance(&orders);
        assert_eq!(p, Performance { on_time_bp: Some(8_000), accuracy_bp: Some(9_500), score: Some(88), grade: "B" });
        // Over-delivery counts as 100 %, not more; no order yet → N/A.
        let perfect = vec![DeliveredOrder {
            expected: d("2025-03-10"),
            first_reception: d("2025-03-09"),
            lines: vec![(1_000, 1_100), (3_000, 3_000)],
        }];
        assert_eq!(performance(&perfect).score, Some(100));
        assert_eq!(performance(&perfect).grade, "A");
        assert_eq!(performance(&[]).grade, "N/A");
        assert_eq!(performance(&[]).score, None);
        // Accuracy ratios are rounded one by one, then averaged: 1/3 → 3333, 2/3 → 6667.
        let thirds = vec![DeliveredOrder {
            expected: d("2025-03-10"),
            first_reception: d("2025-03-11"),
            lines: vec![(3_000, 1_000), (3_000, 2_000)],
        }];
        let p = performance(&thirds);
        assert_eq!((p.on_time_bp, p.accuracy_bp, p.score, p.grade), (Some(0), Some(5_000), Some(25), "C"));
        assert_eq!((grade(90), grade(89), grade(70), grade(69)), ("A", "B", "B", "C"));
    }

    #[test]
    fn late_orders() {
        assert_eq!(days_late(d("2025-03-10"), d("2025-03-10")), None);
        assert_eq!(days_late(d("2025-03-10"), d("2025-03-13")), Some(3));
        assert_eq!(late_severity(3, true), "CRITICAL");
        assert_eq!(late_severity(2, true), "WARNING");
        assert_eq!(late_severity(10, false), "WARNING");
    }
}
