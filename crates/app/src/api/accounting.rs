//! Accounting exports (DOMAIN.md §19; ADMIN, COMPTABLE): for a period of Algiers dates, the sales and purchases
//! journals, the G50 summary, the timbre journal and the journal entries — as JSON, CSV or Excel. The entries CSV
//! is the accountant's import format; every piece is checked balanced before anything is written.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use domain::rejection::Rejection;
use domain::sales::VatRow;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::export::Cell::{self, Number, Text};
use crate::platform::errors::ApiError;
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct PeriodQuery {
    /// First day (Algiers), included.
    pub from: Option<NaiveDate>,
    /// Last day (Algiers), included.
    pub to: Option<NaiveDate>,
    /// `csv`, `xlsx` or `pdf`; JSON otherwise.
    pub format: Option<String>,
}

pub const EXPORTS: [(&str, &str); 6] = [
    ("journal-ventes", "Journal des ventes"),
    ("journal-achats", "Journal des achats"),
    ("g50", "Récapitulatif TVA (G50)"),
    ("journal-timbre", "Journal du timbre"),
    ("etat-stocks", "État des stocks"),
    ("ecritures", "Écritures comptables"),
];

fn qty(milli: i64) -> Cell {
    Number(domain::format::qty_dot(milli))
}

/// `RECEPTION 500.000 = 26000.00 ; LOSS 0.333 = 11.10`: the detail by origin of a stock statement column.
fn by_origin(m: &std::collections::BTreeMap<String, domain::accounting::QtyValue>) -> String {
    m.iter()
        .map(|(o, v)| {
            let a = v.value.unsigned_abs();
            format!("{o} {} = {}.{:02}", domain::format::qty_dot(v.quantity), a / 100, a % 100)
        })
        .collect::<Vec<_>>()
        .join(" ; ")
}

fn amount(c: i64) -> Cell {
    let sign = if c < 0 { "-" } else { "" };
    let a = c.unsigned_abs();
    Number(format!("{sign}{}.{:02}", a / 100, a % 100))
}

fn vat_text(rows: &[VatRow]) -> String {
    rows.iter()
        .map(|r| {
            format!(
                "{} : base {} TVA {}",
                domain::money::fmt_rate(r.rate_bp, 0),
                domain::money::fmt_money(r.base),
                domain::money::fmt_money(r.tva)
            )
        })
        .collect::<Vec<_>>()
        .join(" ; ")
}

fn vat_json(rows: &[VatRow]) -> Value {
    json!(rows.iter().map(|r| json!({"rateBp": r.rate_bp, "base": r.base, "tva": r.tva})).collect::<Vec<_>>())
}

/// One export as rows (header first) and as JSON.
pub async fn export(
    st: &AppState,
    kind: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<(Vec<Vec<Cell>>, Value), ApiError> {
    let c = st.dbmon.db().conn();
    let t = |s: &str| Text(s.to_string());
    match kind {
        "journal-ventes" | "journal-timbre" => {
            let rows = if kind == "journal-ventes" {
                store::accounting::sales_journal(c, from, to).await?
            } else {
                store::accounting::timbre_journal(c, from, to).await?
            };
            let mut out = vec![if kind == "journal-ventes" {
                ["date", "numero", "client", "nif", "ht", "tva_par_taux", "tva", "ttc", "timbre", "net", "mode"]
                    .map(t)
                    .to_vec()
            } else {
                ["date", "numero", "client", "ttc", "regle", "tranches", "timbre"].map(t).to_vec()
            }];
            for r in &rows {
                let date = Text(domain::stock::fmt_date(r.date));
                if kind == "journal-ventes" {
                    out.push(vec![
                        date,
                        Text(r.number.clone()),
                        Text(format!("{} ({})", r.client_name, r.client_code)),
                        Text(r.nif.clone()),
                        amount(r.ht),
                        Text(vat_text(&r.vat)),
                        amount(r.vat.iter().map(|v| v.tva).sum()),
                        amount(r.ttc),
                        amount(r.timbre),
                        amount(r.net),
                        Text(r.method.clone()),
                    ]);
                } else {
                    out.push(vec![
                        date,
                        Text(r.number.clone()),
                        Text(format!("{} ({})", r.client_name, r.client_code)),
                        amount(r.ttc),
                        Text(r.timbre_rule.clone().unwrap_or_default()),
                        Text(r.timbre_tranches.map(|n| n.to_string()).unwrap_or_default()),
                        amount(r.timbre),
                    ]);
                }
            }
            let v = json!({"rows": rows.iter().map(|r| json!({
                "date": r.date, "number": r.number, "clientCode": r.client_code, "clientName": r.client_name, "nif": r.nif,
                "ht": r.ht, "vat": vat_json(&r.vat), "ttc": r.ttc, "timbre": r.timbre, "net": r.net, "method": r.method,
                "timbreRule": r.timbre_rule, "timbreTranches": r.timbre_tranches,
            })).collect::<Vec<_>>(), "totals": {
                "ht": rows.iter().map(|r| r.ht).sum::<i64>(), "ttc": rows.iter().map(|r| r.ttc).sum::<i64>(),
                "timbre": rows.iter().map(|r| r.timbre).sum::<i64>(), "net": rows.iter().map(|r| r.net).sum::<i64>(),
            }});
            Ok((out, v))
        }
        "journal-achats" => {
            let rows = store::accounting::purchases_journal(c, from, to).await?;
            let mut out = vec![
                ["date", "numero", "fournisseur", "nif", "piece_fournisseur", "ht", "tva_par_taux", "tva", "ttc"]
                    .map(t)
                    .to_vec(),
            ];
            for r in &rows {
                out.push(vec![
                    Text(domain::stock::fmt_date(r.date)),
                    Text(r.number.clone()),
                    Text(format!("{} ({})", r.supplier_name, r.supplier_code)),
                    Text(r.nif.clone()),
                    Text(r.supplier_document.clone()),
                    amount(r.ht),
                    Text(vat_text(&r.vat)),
                    amount(r.vat.iter().map(|v| v.tva).sum()),
                    amount(r.ttc),
                ]);
            }
            let v = json!({"rows": rows.iter().map(|r| json!({
                "date": r.date, "number": r.number, "supplierCode": r.supplier_code, "nif": r.nif,
                "supplierDocument": r.supplier_document, "ht": r.ht, "vat": vat_json(&r.vat), "ttc": r.ttc,
            })).collect::<Vec<_>>()});
            Ok((out, v))
        }
        "g50" => {
            let g = store::accounting::g50(c, from, to).await?;
            let mut out = vec![["rubrique", "taux", "base_ht", "tva"].map(t).to_vec()];
            for (label, rows) in [("TVA collectée", &g.collected), ("TVA déductible", &g.deductible)] {
                for r in rows.iter() {
                    out.push(vec![
                        t(label),
                        Text(domain::money::fmt_rate(r.rate_bp, 0)),
                        amount(r.base),
                        amount(r.tva),
                    ]);
                }
            }
            let verdict = if g.net >= 0 { "TVA à payer" } else { "Crédit de TVA" };
            out.push(vec![t(verdict), t(""), t(""), amount(g.net.abs())]);
            out.push(vec![t("Timbre du mois"), t(""), t(""), amount(g.timbre)]);
            let v = json!({"collected": vat_json(&g.collected), "deductible": vat_json(&g.deductible), "net": g.net,
                           "verdict": verdict, "timbre": g.timbre});
            Ok((out, v))
        }
        "etat-stocks" => {
            let (lines, products) = store::accounting::stock_statement(st.dbmon.db(), from, to)
                .await
                .map_err(|e| crate::auth::session::op_err(st, e))?;
            let mut out = vec![
                [
                    "code",
                    "produit",
                    "unite",
                    "initial_qte",
                    "initial_valeur",
                    "entrees_qte",
                    "entrees_valeur",
                    "entrees_par_origine",
                    "sorties_qte",
                    "sorties_valeur",
                    "sorties_par_origine",
                    "final_qte",
                    "final_valeur",
                    "solde_des_lots",
                    "ecart",
                ]
                .map(t)
                .to_vec(),
            ];
            let mut json_lines = Vec::new();
            for l in &lines {
                let (p, balance) = match products.get(&l.product) {
                    Some((p, b)) => (Some(p), *b),
                    None => (None, 0),
                };
                let (i, o) = (l.total_in(), l.total_out());
                let gap = balance - l.closing.quantity;
                out.push(vec![
                    Text(l.product.clone()),
                    Text(p.map(|p| p.name.clone()).unwrap_or_default()),
                    Text(p.map(|p| p.base_unit.clone()).unwrap_or_default()),
                    qty(l.opening.quantity),
                    amount(l.opening.value),
                    qty(i.quantity),
                    amount(i.value),
                    Text(by_origin(&l.inbound)),
                    qty(o.quantity),
                    amount(o.value),
                    Text(by_origin(&l.outbound)),
                    qty(l.closing.quantity),
                    amount(l.closing.value),
                    qty(balance),
                    qty(gap),
                ]);
                let origins = |m: &std::collections::BTreeMap<String, domain::accounting::QtyValue>| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), json!({"quantity": v.quantity, "value": v.value})))
                        .collect::<serde_json::Map<_, _>>()
                };
                json_lines.push(json!({
                    "code": l.product, "name": p.map(|p| p.name.clone()), "unit": p.map(|p| p.base_unit.clone()),
                    "opening": {"quantity": l.opening.quantity, "value": l.opening.value},
                    "in": {"quantity": i.quantity, "value": i.value, "byOrigin": origins(&l.inbound)},
                    "out": {"quantity": o.quantity, "value": o.value, "byOrigin": origins(&l.outbound)},
                    "closing": {"quantity": l.closing.quantity, "value": l.closing.value},
                    "lotBalance": balance, "difference": gap,
                }));
            }
            let differences = json_lines.iter().filter(|l| l["difference"] != 0).count();
            Ok((out, json!({"lines": json_lines, "differences": differences})))
        }
        "ecritures" => {
            let pieces = store::accounting::pieces(c, from, to).await?;
            for p in &pieces {
                domain::accounting::check_balanced(p)?;
            }
            let chart = store::sales::chart(c).await?;
            let mut out =
                vec![["date", "journal", "piece", "compte", "libelle", "debit", "credit", "tiers"].map(t).to_vec()];
            let mut lines = Vec::new();
            for p in &pieces {
                for l in &p.lines {
                    let account = chart.get(l.account).cloned().unwrap_or_else(|| l.account.to_string());
                    out.push(vec![
                        Text(p.date.format("%d/%m/%Y").to_string()),
                        Text(p.journal.to_string()),
                        Text(p.piece.clone()),
                        Text(account.clone()),
                        Text(l.label.clone()),
                        amount(l.debit),
                        amount(l.credit),
                        Text(l.tiers.clone().unwrap_or_default()),
                    ]);
                    lines.push(json!({"date": p.date, "journal": p.journal, "piece": p.piece, "account": account,
                                      "label": l.label, "debit": l.debit, "credit": l.credit, "tiers": l.tiers}));
                }
            }
            Ok((out, json!({"lines": lines, "pieces": pieces.len()})))
        }
        _ => Err(Rejection::non_trouve("Export").into()),
    }
}

/// The entries in the accountant's import format: `date;journal;piece;compte;libelle;debit;credit;tiers`, UTF-8
/// without BOM, CRLF.
fn entries_csv(rows: &[Vec<Cell>]) -> String {
    rows.iter()
        .map(|r| {
            let fields: Vec<String> = r
                .iter()
                .map(|c| match c {
                    Text(s) | Number(s) => s.clone(),
                })
                .collect();
            domain::format::csv_line(&fields)
        })
        .collect()
}

pub fn period(q: &PeriodQuery, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let from = q.from.unwrap_or_else(|| today.with_day0(0).unwrap_or(today));
    let to = q.to.unwrap_or(today);
    if to < from {
        return Err(
            Rejection::new("DATE_INVALIDE", 422, "Date invalide : la fin de la période précède son début.").into()
        );
    }
    Ok((from, to))
}

use chrono::Datelike;

#[utoipa::path(get, path = "/api/accounting/{export}", tag = "accounting", params(PeriodQuery), responses(
    (status = 200, description = "journal-ventes, journal-achats, g50, journal-timbre, etat-stocks ou ecritures, en JSON, CSV, Excel ou PDF"),
    (status = 500, description = "ECRITURE_DESEQUILIBREE (export refusé)")))]
pub async fn get(State(st): State<AppState>, Path(kind): Path<String>, Query(q): Query<PeriodQuery>) -> Response {
    let today = domain::stock::today_algiers(st.clock.now());
    let result = async {
        let (from, to) = period(&q, today)?;
        let (rows, v) = export(&st, &kind, from, to).await?;
        Ok::<_, ApiError>((from, to, rows, v))
    }
    .await;
    match result {
        Err(e) => e.into_response(),
        Ok((from, to, rows, v)) => {
            let name = format!("{kind}_{}_{}", from.format("%Y%m%d"), to.format("%Y%m%d"));
            match q.format.as_deref() {
                Some(f) if f.eq_ignore_ascii_case("csv") && kind == "ecritures" => (
                    [
                        (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                        (axum::http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.csv\"")),
                    ],
                    entries_csv(&rows),
                )
                    .into_response(),
                Some(f) if f.eq_ignore_ascii_case("pdf") => {
                    let title = EXPORTS.iter().find(|(k, _)| *k == kind).map_or(kind.as_str(), |(_, l)| l);
                    let period = format!("Du {} au {}", domain::stock::fmt_date(from), domain::stock::fmt_date(to));
                    crate::print::report(&st, title, period, &rows).await
                }
                Some(f) if f.eq_ignore_ascii_case("csv") || f.eq_ignore_ascii_case("xlsx") => {
                    super::production::file_answer("Compta", &name, f, &rows)
                }
                _ => Json(v).into_response(),
            }
        }
    }
}
