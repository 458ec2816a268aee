//! `manchengo check` and its nightly job (DOMAIN.md §5.4, §15, §16, §20): the audit chain, the ledger and the
//! numbering, recomputed and reported, never repaired. A failure seen by the job raises `INTEGRITE_ECHEC`.

use chrono::{DateTime, Utc};

use crate::audit::Verification;
use crate::error::StoreError;
use crate::stock::Violation;

#[derive(Debug, Clone)]
pub struct Report {
    pub audit: Verification,
    /// `None` for `--audit` alone.
    pub ledger: Option<Vec<Violation>>,
    pub numbering: Option<Vec<Violation>>,
    /// Validated ESPECES invoices whose stored timbre differs from the rule table's (DOMAIN.md §11).
    pub timbre: Option<Vec<Violation>>,
}

impl Report {
    pub fn clean(&self) -> bool {
        self.audit.broken.is_none()
            && self.ledger.as_ref().is_none_or(Vec::is_empty)
            && self.numbering.as_ref().is_none_or(Vec::is_empty)
            && self.timbre.as_ref().is_none_or(Vec::is_empty)
    }

    /// The report in French, one finding per line, as the CLI prints it.
    pub fn lines(&self) -> Vec<String> {
        self.render(true)
    }

    /// Only what is wrong: what the alert and the job's error carry.
    pub fn problems(&self) -> Vec<String> {
        self.render(false)
    }

    fn render(&self, with_ok: bool) -> Vec<String> {
        let mut out = Vec::new();
        let a = &self.audit;
        match &a.broken {
            None if !with_ok => {}
            None => out.push(format!(
                "chaîne d'audit intacte : {} entrées vérifiées, dernière n° {}, empreinte {}",
                a.verified, a.last_seq, a.last_hash
            )),
            Some(b) => {
                out.push(format!("chaîne d'audit ROMPUE à l'entrée {} : {}", b.seq(), b.describe_fr()));
                out.push(format!(
                    "{} entrées vérifiées avant la rupture, dernière intacte n° {}",
                    a.verified, a.last_seq
                ));
            }
        }
        match &self.ledger {
            Some(v) if v.is_empty() && !with_ok => {}
            Some(v) if v.is_empty() => out.push("registre des stocks cohérent : chaque lot = entrées − sorties".into()),
            Some(v) => {
                out.push(format!("registre des stocks : {} écart(s)", v.len()));
                for x in v {
                    out.push(format!(
                        "  lot {} — {} : attendu {}, constaté {}",
                        x.subject, x.what, x.expected, x.actual
                    ));
                }
            }
            None => {}
        }
        match &self.numbering {
            Some(v) if v.is_empty() && !with_ok => {}
            Some(v) if v.is_empty() => out.push("numérotation continue : aucun numéro manquant".into()),
            Some(v) => {
                out.push(format!("numérotation : {} trou(s)", v.len()));
                for x in v {
                    out.push(format!(
                        "  {} — {} : {} numéro(s) attribué(s), {} document(s)",
                        x.subject, x.what, x.expected, x.actual
                    ));
                }
            }
            None => {}
        }
        match &self.timbre {
            Some(v) if v.is_empty() && !with_ok => {}
            Some(v) if v.is_empty() => {
                out.push("timbre fiscal cohérent : chaque facture en espèces suit la table".into())
            }
            Some(v) => {
                out.push(format!("timbre fiscal : {} facture(s) incohérente(s)", v.len()));
                for x in v {
                    out.push(format!("  {} — timbre attendu {}, enregistré {}", x.subject, x.expected, x.actual));
                }
            }
            None => {}
        }
        out
    }
}

/// Every validated ESPECES invoice's timbre recomputed with the rule of its date (§11 `TIMBRE_INCOHERENT`).
pub async fn timbre_mismatches<C: sea_orm::ConnectionTrait>(c: &C) -> Result<Vec<Violation>, StoreError> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let rules = crate::sales::timbre_rules(c).await?;
    let mut out = Vec::new();
    for i in crate::sales::invoices::Entity::find()
        .filter(crate::sales::invoices::Column::Status.ne("DRAFT"))
        .filter(crate::sales::invoices::Column::PaymentMethod.eq("ESPECES"))
        .all(c)
        .await?
    {
        let Some(d) = i.invoice_date else { continue };
        let expected = domain::timbre::timbre(i.total_ttc, domain::timbre::Method::Especes, d, &rules);
        if expected != i.timbre {
            out.push(Violation {
                subject: i.reference.clone().unwrap_or_default(),
                what: "timbre".into(),
                expected,
                actual: i.timbre,
            });
        }
    }
    Ok(out)
}

pub async fn run(db: &crate::Db, from: Option<i64>, audit_only: bool) -> Result<Report, StoreError> {
    let audit = crate::audit::verify(db, from).await?;
    if audit_only {
        return Ok(Report { audit, ledger: None, numbering: None, timbre: None });
    }
    let ledger = crate::stock::check(db).await?;
    let numbering = crate::stock::numbering_gaps(db).await?;
    let timbre = timbre_mismatches(db.conn()).await?;
    Ok(Report { audit, ledger: Some(ledger), numbering: Some(numbering), timbre: Some(timbre) })
}

/// Raises (or refreshes) the one open `INTEGRITE_ECHEC` alert with the report's findings.
pub async fn raise_failure(db: &crate::Db, report: &Report, now: DateTime<Utc>) -> Result<(), StoreError> {
    let lines = report.problems();
    let tx = db.begin_write().await?;
    crate::alerts::raise(
        &*tx,
        crate::alerts::Raise {
            alert_type: "INTEGRITE_ECHEC",
            severity: "CRITICAL",
            entity_type: "system",
            entity_id: "integrity",
            message: "La vérification d'intégrité a échoué : lancez `manchengo check` et suivez le runbook.".into(),
            data: serde_json::json!({"findings": lines}),
        },
        now,
    )
    .await?;
    if let Some(v) = report.timbre.as_ref().filter(|v| !v.is_empty()) {
        crate::alerts::raise(
            &*tx,
            crate::alerts::Raise {
                alert_type: "TIMBRE_INCOHERENT",
                severity: "CRITICAL",
                entity_type: "system",
                entity_id: "timbre",
                message: format!(
                    "{} facture(s) en espèces portent un timbre différent de la table des règles.",
                    v.len()
                ),
                data: serde_json::json!({"invoices": v.iter().map(|x| x.subject.clone()).collect::<Vec<_>>()}),
            },
            now,
        )
        .await?;
    }
    tx.commit().await
}
