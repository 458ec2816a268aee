//! Accounting entries (DOMAIN.md §19): one balanced piece per document, over a configurable chart of accounts whose
//! shipped defaults must be confirmed by the company's accountant.

use chrono::NaiveDate;
use serde_json::json;

use crate::rejection::Rejection;
use crate::timbre::Method;

/// (key, account, label) — loaded by the migration, ADMIN-editable afterwards.
pub const DEFAULT_CHART: &[(&str, &str, &str)] = &[
    ("STOCK_MP", "31", "Stocks de matières premières"),
    ("STOCK_PF", "35", "Stocks de produits finis"),
    ("FOURNISSEURS", "401", "Fournisseurs"),
    ("CLIENTS", "411", "Clients"),
    ("TVA_DEDUCTIBLE", "4456", "TVA déductible"),
    ("TVA_COLLECTEE", "4457", "TVA collectée"),
    ("BANQUE", "512", "Banque"),
    ("CAISSE", "53", "Caisse"),
    ("MATIERES_CONSOMMEES", "601", "Matières consommées"),
    ("VENTES_PF", "701", "Ventes de produits finis"),
    ("TIMBRE", "6411", "Droits de timbre"),
    ("PRODUCTION_STOCKEE", "72", "Production stockée"),
];

/// Checks the accounts an ADMIN sets on the chart (§19): every key of the chart, an account number of 2 to 10 digits
/// (SCF numbering). All fields are reported at once; the result is in chart order.
pub fn check_chart(accounts: &std::collections::HashMap<String, String>) -> Result<Vec<(String, String)>, Rejection> {
    let mut f = crate::validation::Fields::new();
    let mut out = Vec::new();
    for (key, _, _) in DEFAULT_CHART {
        let account = accounts.get(*key).map(|a| a.trim()).unwrap_or_default();
        if account.is_empty() {
            f.add(key, "OBLIGATOIRE", "Ce champ est obligatoire.");
        } else if !(2..=10).contains(&account.len()) || !account.chars().all(|c| c.is_ascii_digit()) {
            f.add(key, "VALEUR_INVALIDE", "Numéro de compte attendu : 2 à 10 chiffres (plan comptable SCF).");
        } else {
            out.push((key.to_string(), account.to_string()));
        }
    }
    for key in accounts.keys() {
        if !DEFAULT_CHART.iter().any(|(k, _, _)| k == key) {
            f.add(key, "VALEUR_INVALIDE", "Rubrique inconnue du plan comptable.");
        }
    }
    f.into_result()?;
    Ok(out)
}

/// One line of a piece: an account key of the chart, debit or credit in centimes, the third party's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryLine {
    pub account: &'static str,
    pub label: String,
    pub debit: i64,
    pub credit: i64,
    pub tiers: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub date: NaiveDate,
    pub journal: &'static str,
    pub piece: String,
    pub lines: Vec<EntryLine>,
}

impl Piece {
    fn new(date: NaiveDate, journal: &'static str, piece: &str) -> Piece {
        Piece { date, journal, piece: piece.to_string(), lines: Vec::new() }
    }

    fn debit(mut self, account: &'static str, label: &str, amount: i64, tiers: Option<&str>) -> Piece {
        if amount != 0 {
            self.lines.push(EntryLine {
                account,
                label: label.to_string(),
                debit: amount,
                credit: 0,
                tiers: tiers.map(str::to_string),
            });
        }
        self
    }

    fn credit(mut self, account: &'static str, label: &str, amount: i64, tiers: Option<&str>) -> Piece {
        if amount != 0 {
            self.lines.push(EntryLine {
                account,
                label: label.to_string(),
                debit: 0,
                credit: amount,
                tiers: tiers.map(str::to_string),
            });
        }
        self
    }

    pub fn totals(&self) -> (i64, i64) {
        (self.lines.iter().map(|l| l.debit).sum(), self.lines.iter().map(|l| l.credit).sum())
    }
}

/// Σ debit = Σ credit, or `ECRITURE_DESEQUILIBREE` (the export is refused).
pub fn check_balanced(p: &Piece) -> Result<(), Rejection> {
    let (d, c) = p.totals();
    if d != c {
        return Err(Rejection::new(
            "ECRITURE_DESEQUILIBREE",
            500,
            format!(
                "Écriture {} déséquilibrée (débit {}, crédit {}).",
                p.piece,
                crate::money::fmt_money(d),
                crate::money::fmt_money(c)
            ),
        )
        .with_details(json!({"piece": p.piece, "d": d, "c": c})));
    }
    Ok(())
}

/// Invoice (VE, validation date): D 411 net; C 701 HT, C 4457 TVA, C 6411 timbre.
pub fn invoice_piece(date: NaiveDate, number: &str, client: &str, ht: i64, tva: i64, timbre: i64, net: i64) -> Piece {
    let label = format!("Facture {number}");
    Piece::new(date, "VE", number)
        .debit("CLIENTS", &label, net, Some(client))
        .credit("VENTES_PF", &label, ht, None)
        .credit("TVA_COLLECTEE", &label, tva, None)
        .credit("TIMBRE", &label, timbre, None)
}

/// Credit note (VE, validation date): the invoice reversed.
pub fn credit_note_piece(
    date: NaiveDate,
    number: &str,
    client: &str,
    ht: i64,
    tva: i64,
    timbre: i64,
    net: i64,
) -> Piece {
    let label = format!("Avoir {number}");
    Piece::new(date, "VE", number)
        .debit("VENTES_PF", &label, ht, None)
        .debit("TVA_COLLECTEE", &label, tva, None)
        .debit("TIMBRE", &label, timbre, None)
        .credit("CLIENTS", &label, net, Some(client))
}

fn treasury(method: Method) -> (&'static str, &'static str) {
    match method {
        Method::Especes => ("CA", "CAISSE"),
        Method::Cheque | Method::Virement => ("BQ", "BANQUE"),
    }
}

/// Payment: D 53 / 512, C 411. A cancelled payment or a refund is the reverse (D 411, C 53 / 512); the caller names
/// the piece (a cancellation is `{REG}-ANNUL`).
pub fn payment_piece(date: NaiveDate, number: &str, client: &str, method: Method, amount: i64, reverse: bool) -> Piece {
    let (journal, account) = treasury(method);
    let piece = number.to_string();
    if reverse {
        let label = format!("Annulation / remboursement {number}");
        Piece::new(date, journal, &piece)
            .debit("CLIENTS", &label, amount, Some(client))
            .credit(account, &label, amount, None)
    } else {
        let label = format!("Règlement {number}");
        Piece::new(date, journal, &piece).debit(account, &label, amount, None).credit(
            "CLIENTS",
            &label,
            amount,
            Some(client),
        )
    }
}

/// Reception (AC): D 31 HT, D 4456 TVA; C 401 TTC.
pub fn reception_piece(date: NaiveDate, number: &str, supplier: &str, ht: i64, tva: i64, ttc: i64) -> Piece {
    let label = format!("Réception {number}");
    Piece::new(date, "AC", number)
        .debit("STOCK_MP", &label, ht, None)
        .debit("TVA_DEDUCTIBLE", &label, tva, None)
        .credit("FOURNISSEURS", &label, ttc, Some(supplier))
}

/// A stock movement valued at lot cost (OD). `None` for origins without an entry (receptions have their own piece).
pub fn movement_piece(
    date: NaiveDate,
    reference: &str,
    origin: &str,
    is_pf: bool,
    direction_in: bool,
    value: i64,
) -> Option<Piece> {
    let stock = if is_pf { "STOCK_PF" } else { "STOCK_MP" };
    let other = if is_pf { "PRODUCTION_STOCKEE" } else { "MATIERES_CONSOMMEES" };
    let (debit, credit) = match origin {
        "PRODUCTION_OUT" => ("MATIERES_CONSOMMEES", "STOCK_MP"),
        "PRODUCTION_CANCEL" => ("STOCK_MP", "MATIERES_CONSOMMEES"),
        "PRODUCTION_IN" => ("STOCK_PF", "PRODUCTION_STOCKEE"),
        "SALE" => ("PRODUCTION_STOCKEE", "STOCK_PF"),
        "CUSTOMER_RETURN" => ("STOCK_PF", "PRODUCTION_STOCKEE"),
        "LOSS" => (other, stock),
        "INVENTORY_ADJUST" if direction_in => (stock, other),
        "INVENTORY_ADJUST" => (other, stock),
        _ => return None,
    };
    let label = format!("{origin} {reference}");
    Some(Piece::new(date, "OD", reference).debit(debit, &label, value, None).credit(credit, &label, value, None))
}

/// `date;journal;piece;compte;libelle;debit;credit;tiers` — DD/MM/YYYY, a dot and two decimals.
pub fn csv_lines(p: &Piece, account_of: impl Fn(&str) -> String) -> Vec<String> {
    let amount = |c: i64| format!("{}.{:02}", c / 100, c % 100);
    p.lines
        .iter()
        .map(|l| {
            crate::format::csv_line(&[
                p.date.format("%d/%m/%Y").to_string(),
                p.journal.to_string(),
                p.piece.clone(),
                account_of(l.account),
                l.label.clone(),
                amount(l.debit),
                amount(l.credit),
                l.tiers.clone().unwrap_or_default(),
            ])
        })
        .collect()
}

/// The G50 summary of a month (§19): TVA collected per rate (invoices − credit notes), deductible per rate
/// (receptions), the net — positive "TVA à payer", negative "crédit de TVA" — and the month's timbre.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct G50 {
    pub collected: Vec<crate::sales::VatRow>,
    pub deductible: Vec<crate::sales::VatRow>,
    pub net: i64,
    pub timbre: i64,
}

/// Adds signed VAT rows by rate (credit notes come negative), highest rate first.
pub fn sum_vat<'a>(rows: impl IntoIterator<Item = &'a crate::sales::VatRow>) -> Vec<crate::sales::VatRow> {
    let mut out: Vec<crate::sales::VatRow> = Vec::new();
    for r in rows {
        match out.iter_mut().find(|o| o.rate_bp == r.rate_bp) {
            Some(o) => {
                o.base += r.base;
                o.tva += r.tva;
            }
            None => out.push(*r),
        }
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.rate_bp));
    out
}

pub fn g50(collected: Vec<crate::sales::VatRow>, deductible: Vec<crate::sales::VatRow>, timbre: i64) -> G50 {
    let net = collected.iter().map(|r| r.tva).sum::<i64>() - deductible.iter().map(|r| r.tva).sum::<i64>();
    G50 { collected, deductible, net, timbre }
}

/// One ledger movement as the stock statement reads it (§19 "État des stocks").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockMove {
    /// The product's code: the statement has one line per product, in code order.
    pub product: String,
    pub date: NaiveDate,
    pub inbound: bool,
    pub origin: String,
    pub quantity: i64,
    pub unit_cost: i64,
}

/// Quantity and value (centimes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QtyValue {
    pub quantity: i64,
    pub value: i64,
}

impl QtyValue {
    fn add(&mut self, q: i64, v: i64) {
        self.quantity += q;
        self.value += v;
    }
}

/// One product of the stock statement: opening, IN and OUT by origin, closing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StockLine {
    pub product: String,
    pub opening: QtyValue,
    pub inbound: std::collections::BTreeMap<String, QtyValue>,
    pub outbound: std::collections::BTreeMap<String, QtyValue>,
    pub closing: QtyValue,
}

impl StockLine {
    pub fn total_in(&self) -> QtyValue {
        self.inbound.values().fold(QtyValue::default(), |mut a, v| {
            a.add(v.quantity, v.value);
            a
        })
    }
    pub fn total_out(&self) -> QtyValue {
        self.outbound.values().fold(QtyValue::default(), |mut a, v| {
            a.add(v.quantity, v.value);
            a
        })
    }
}

/// The stock statement of [from, to]: movements before `from` make the opening, those of the period the IN and OUT
/// by origin, later ones are ignored. Each movement is valued `round_half_up(qty × unit_cost / 1000)` and
/// closing = opening + IN − OUT, in quantity and in value.
pub fn stock_statement(moves: &[StockMove], from: NaiveDate, to: NaiveDate) -> Result<Vec<StockLine>, Rejection> {
    let mut lines: std::collections::BTreeMap<&str, StockLine> = std::collections::BTreeMap::new();
    for m in moves.iter().filter(|m| m.date <= to) {
        let value = crate::money::amount(m.quantity, m.unit_cost)?;
        let line = lines
            .entry(m.product.as_str())
            .or_insert_with(|| StockLine { product: m.product.clone(), ..Default::default() });
        let sign = if m.inbound { 1 } else { -1 };
        if m.date < from {
            line.opening.add(sign * m.quantity, sign * value);
        } else if m.inbound {
            line.inbound.entry(m.origin.clone()).or_default().add(m.quantity, value);
        } else {
            line.outbound.entry(m.origin.clone()).or_default().add(m.quantity, value);
        }
    }
    Ok(lines
        .into_values()
        .map(|mut l| {
            let (i, o) = (l.total_in(), l.total_out());
            l.closing = QtyValue {
                quantity: l.opening.quantity + i.quantity - o.quantity,
                value: l.opening.value + i.value - o.value,
            };
            l
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn chart_accounts_are_digits_for_every_key() {
        let mut m: std::collections::HashMap<String, String> =
            DEFAULT_CHART.iter().map(|(k, a, _)| (k.to_string(), a.to_string())).collect();
        m.insert("CLIENTS".into(), " 4111 ".into());
        let ok = check_chart(&m).unwrap();
        assert_eq!(ok.len(), DEFAULT_CHART.len());
        assert!(ok.contains(&("CLIENTS".into(), "4111".into())));
        m.insert("CAISSE".into(), "53A".into());
        m.insert("BANQUE".into(), "".into());
        m.insert("INCONNU".into(), "999".into());
        let e = check_chart(&m).unwrap_err();
        assert_eq!(e.code, "VALIDATION_ERROR");
        let fields: Vec<&str> =
            e.details["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
        assert!(fields.contains(&"CAISSE") && fields.contains(&"BANQUE") && fields.contains(&"INCONNU"), "{fields:?}");
    }

    #[test]
    fn the_stock_statement_values_each_movement_and_closes_on_opening_plus_in_minus_out() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let mv = |p: &str, date: &str, inbound: bool, origin: &str, quantity: i64, unit_cost: i64| StockMove {
            product: p.into(),
            date: d(date),
            inbound,
            origin: origin.into(),
            quantity,
            unit_cost,
        };
        let moves = vec![
            // Before the period: 1 000 kg of milk received at 50,00 DA, 400 kg used.
            mv("MP-LAIT", "2025-02-20", true, "RECEPTION", 1_000_000, 5_000),
            mv("MP-LAIT", "2025-02-28", false, "PRODUCTION_OUT", 400_000, 5_000),
            // In March: 500 kg received at 52,00 DA; 300,5 kg used; 0,333 kg lost at 33,33 DA (rounded half up).
            mv("MP-LAIT", "2025-03-01", true, "RECEPTION", 500_000, 5_200),
            mv("MP-LAIT", "2025-03-10", false, "PRODUCTION_OUT", 300_500, 5_000),
            mv("MP-LAIT", "2025-03-31", false, "LOSS", 333, 3_333),
            // After the period: ignored.
            mv("MP-LAIT", "2025-04-01", true, "RECEPTION", 9_000_000, 5_000),
            // A PF only made in the period.
            mv("PF-GOUDA", "2025-03-05", true, "PRODUCTION_IN", 24_000, 30_000),
            mv("PF-GOUDA", "2025-03-06", false, "SALE", 10_000, 30_000),
        ];
        let s = stock_statement(&moves, d("2025-03-01"), d("2025-03-31")).unwrap();
        assert_eq!(s.len(), 2);
        let lait = &s[0];
        assert_eq!(lait.product, "MP-LAIT");
        assert_eq!(lait.opening, QtyValue { quantity: 600_000, value: 3_000_000 });
        assert_eq!(lait.inbound["RECEPTION"], QtyValue { quantity: 500_000, value: 2_600_000 });
        assert_eq!(lait.outbound["PRODUCTION_OUT"], QtyValue { quantity: 300_500, value: 1_502_500 });
        // 333 × 3 333 / 1 000 = 1 109,889 → 1 110 centimes.
        assert_eq!(lait.outbound["LOSS"], QtyValue { quantity: 333, value: 1_110 });
        assert_eq!(lait.total_out(), QtyValue { quantity: 300_833, value: 1_503_610 });
        assert_eq!(lait.closing, QtyValue { quantity: 799_167, value: 4_096_390 });
        let gouda = &s[1];
        assert_eq!(gouda.opening, QtyValue::default());
        assert_eq!(gouda.closing, QtyValue { quantity: 14_000, value: 420_000 });
    }

    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn chart(key: &str) -> String {
        DEFAULT_CHART.iter().find(|(k, _, _)| *k == key).map(|(_, a, _)| a.to_string()).unwrap()
    }

    #[test]
    fn scenario_64_the_invoice_piece() {
        let p = invoice_piece(d("2025-03-14"), "F-2025-00007", "CLI-0045", 1_970_000, 374_300, 23_500, 2_367_800);
        check_balanced(&p).unwrap();
        let lines: Vec<String> = csv_lines(&p, chart).iter().map(|l| l.trim_end().to_string()).collect();
        assert_eq!(lines[0], "14/03/2025;VE;F-2025-00007;411;Facture F-2025-00007;23678.00;0.00;CLI-0045");
        assert_eq!(lines[1], "14/03/2025;VE;F-2025-00007;701;Facture F-2025-00007;0.00;19700.00;");
        assert_eq!(lines[2], "14/03/2025;VE;F-2025-00007;4457;Facture F-2025-00007;0.00;3743.00;");
        assert_eq!(lines[3], "14/03/2025;VE;F-2025-00007;6411;Facture F-2025-00007;0.00;235.00;");
    }

    #[test]
    fn scenario_44_a_cancelled_payment_reverses_into_the_till() {
        let p = payment_piece(d("2025-03-14"), "REG-2025-00002", "CLI-0045", Method::Especes, 1_367_800, true);
        check_balanced(&p).unwrap();
        let lines: Vec<String> = csv_lines(&p, chart).iter().map(|l| l.trim_end().to_string()).collect();
        assert!(lines[0].contains(";411;") && lines[0].contains(";13678.00;0.00;CLI-0045"));
        assert!(lines[1].contains(";53;") && lines[1].ends_with(";0.00;13678.00;"));
        let q = payment_piece(d("2025-03-14"), "REG-2025-00003", "CLI-0045", Method::Cheque, 100, false);
        assert_eq!((q.journal, q.lines[0].account), ("BQ", "BANQUE"));
    }

    #[test]
    fn scenario_65_the_g50_of_march() {
        use crate::sales::VatRow;
        let sales = [
            VatRow { rate_bp: 1900, base: 12_000_000, tva: 2_280_000 },
            VatRow { rate_bp: 900, base: 1_000_000, tva: 90_000 },
            // A credit note of the month comes negative.
            VatRow { rate_bp: 1900, base: -2_000_000, tva: -380_000 },
        ];
        let purchases = [
            VatRow { rate_bp: 900, base: 10_555_556, tva: 950_000 },
            VatRow { rate_bp: 1900, base: 236_842, tva: 45_000 },
        ];
        let g = g50(sum_vat(&sales), sum_vat(&purchases), 23_500);
        assert_eq!(
            g.collected,
            vec![
                VatRow { rate_bp: 1900, base: 10_000_000, tva: 1_900_000 },
                VatRow { rate_bp: 900, base: 1_000_000, tva: 90_000 }
            ]
        );
        assert_eq!(g.deductible.iter().map(|r| r.tva).sum::<i64>(), 995_000);
        assert_eq!(g.net, 995_000, "TVA à payer 9 950,00 DA");
        assert_eq!(g50(vec![], sum_vat(&purchases), 0).net, -995_000, "crédit de TVA");
    }

    #[test]
    fn every_piece_balances_and_an_unbalanced_one_is_refused() {
        let day = d("2025-03-14");
        let pieces = [
            credit_note_piece(day, "AV-2025-00001", "CLI-1", 260_000, 49_400, 3_100, 312_500),
            reception_piece(day, "REC-2025-00001", "FRS-1", 500_000, 45_000, 545_000),
            movement_piece(day, "OP-2025-00001", "PRODUCTION_OUT", false, false, 12_345).unwrap(),
            movement_piece(day, "LIV-2025-00001", "SALE", true, false, 99).unwrap(),
            movement_piece(day, "INV-2025-00001", "INVENTORY_ADJUST", true, true, 10).unwrap(),
        ];
        for p in &pieces {
            check_balanced(p).unwrap();
        }
        assert_eq!(pieces[3].lines[0].account, "PRODUCTION_STOCKEE");
        assert!(movement_piece(day, "REC-1", "RECEPTION", false, true, 10).is_none());
        let mut bad = pieces[0].clone();
        bad.lines[0].debit += 1;
        assert_eq!(check_balanced(&bad).unwrap_err().code, "ECRITURE_DESEQUILIBREE");
    }
}
