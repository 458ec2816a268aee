//! The direction dashboard (UI.md row 10, ADMIN) and the finance dashboard (row 14, ADMIN and COMPTABLE): the cards of
//! their columns in UI.md §5, each one KPI of DOMAIN.md §17 computed now from the ledger and the documents, labelled
//! with its §17 name and linked to the list that reproduces its number. The rules are `domain`'s; the sums `store`'s.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use chrono::Duration;
use domain::money::fmt_money;

use super::{Layout, PageCtx, page};
use crate::platform::errors::ApiError;
use crate::state::AppState;

pub struct Card {
    id: &'static str,
    title: &'static str,
    value: String,
    detail: String,
    href: &'static str,
    link: &'static str,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    crumb: &'static str,
    cards: Vec<Card>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Board {
    Direction,
    Finances,
}

async fn cards(st: &AppState, board: Board) -> Result<Vec<Card>, ApiError> {
    let db = st.dbmon.db();
    let c = db.conn();
    let now = st.clock.now();
    let today = domain::stock::today_algiers(now);
    let sales = store::kpi::sales_kpis(c, today).await?;
    let stock = store::kpi::stock_dashboard(c, &["MP", "PF"], now).await?;
    let mut out = vec![
        Card {
            id: "ca-jour",
            title: "CA HT du jour",
            value: fmt_money(sales.ca_ht),
            detail: format!("{} facture(s) validée(s) aujourd'hui", sales.invoices_today),
            href: "/ventes/factures",
            link: "Factures",
        },
        Card {
            id: "encaissements",
            title: "Encaissements du jour",
            value: fmt_money(sales.collected.iter().sum()),
            detail: format!(
                "Espèces {} · Chèques {} · Virements {}",
                fmt_money(sales.collected[0]),
                fmt_money(sales.collected[1]),
                fmt_money(sales.collected[2])
            ),
            href: "/ventes/reglements",
            link: "Règlements",
        },
    ];
    let [mp, pf] = stock.value;
    out.push(Card {
        id: "valeur-stock",
        title: "Valeur du stock",
        value: fmt_money(mp.iter().sum::<i64>() + pf.iter().sum::<i64>()),
        detail: format!(
            "MP {} (quarantaine {}, bloqué {}) · PF {} (quarantaine {}, bloqué {})",
            fmt_money(mp[0]),
            fmt_money(mp[1]),
            fmt_money(mp[2]),
            fmt_money(pf[0]),
            fmt_money(pf[1]),
            fmt_money(pf[2])
        ),
        href: "/stock/produits",
        link: "Stock par produit",
    });
    let e = stock.echeances;
    out.push(Card {
        id: "echeances",
        title: "Lots à échéance",
        value: e.iter().map(|t| t.count).sum::<i64>().to_string(),
        detail: format!(
            "J0 {} · J+1 {} · J+2–3 {} · J+4–7 {} — {}",
            e[0].count,
            e[1].count,
            e[2].count,
            e[3].count,
            fmt_money(e.iter().map(|t| t.value).sum())
        ),
        href: "/stock/echeances",
        link: "Échéances DLC",
    });
    if board == Board::Direction {
        out.push(Card {
            id: "perimes",
            title: "Lots périmés à sortir",
            value: stock.expired.count.to_string(),
            detail: format!("valeur {} — à déclarer en perte", fmt_money(stock.expired.value)),
            href: "/stock/echeances",
            link: "Échéances DLC",
        });
        let i = &stock.inputs;
        out.push(Card {
            id: "ruptures",
            title: "Ruptures",
            value: (i.b + i.r + i.p).to_string(),
            detail: format!("MP en rupture {} (dont bloquantes {}) · PF {}", i.b + i.r, i.b, i.p),
            href: "/appro",
            link: "Cockpit appro",
        });
        let lines = store::appro::metrics(c, now).await?;
        let (index, level, b, r, crit) = store::appro::risk(&lines);
        out.push(Card {
            id: "risque-appro",
            title: "Indice de risque appro",
            value: index.to_string(),
            detail: format!("{} — bloquantes {b}, ruptures {r}, critiques {crit}", domain::kpi::risk_label(level)),
            href: "/appro",
            link: "Cockpit appro",
        });
    }
    out.push(Card {
        id: "score-sante",
        title: "Score santé du stock",
        value: stock.score.to_string(),
        detail: stock.band.label_fr().to_string(),
        href: "/stock",
        link: "Santé du stock",
    });
    if board == Board::Direction {
        let done = store::production::completed_since(db, today - Duration::days(6)).await?;
        let facts: Vec<domain::production::Done> =
            done.iter().filter_map(|(o, _, tol)| store::production::done_fact(o, *tol)).collect();
        let (mean, outside) = domain::production::yield_7_days(&facts, today);
        out.push(Card {
            id: "rendement",
            title: "Rendement production (7 j)",
            value: mean.map(domain::format::percent_bp).unwrap_or_else(|| "—".into()),
            detail: format!("{} ordre(s) terminé(s), {outside} hors tolérance", facts.len()),
            href: "/production/ordres",
            link: "Ordres",
        });
    }
    out.push(Card {
        id: "balance-agee",
        title: "Balance âgée",
        value: fmt_money(sales.aging.buckets.iter().sum()),
        detail: domain::sales::AGING_LABELS
            .iter()
            .zip(sales.aging.buckets)
            .map(|(l, v)| format!("{l} {}", fmt_money(v)))
            .chain(std::iter::once(format!("échu {}", fmt_money(sales.aging.overdue))))
            .collect::<Vec<_>>()
            .join(" · "),
        href: "/ventes/balance-agee",
        link: "Balance âgée",
    });
    match board {
        Board::Direction => {
            let perf = store::purchase::all_performance(c).await?;
            let grade = |g: &str| perf.iter().filter(|p| p.grade == g).count();
            let mut names = Vec::new();
            for p in perf.iter().filter(|p| p.grade == "C") {
                names.push(store::purchase::supplier_names(c, p.supplier_id).await?.1);
            }
            out.push(Card {
                id: "notes-fournisseurs",
                title: "Notes fournisseurs",
                value: format!("A {} · B {} · C {}", grade("A"), grade("B"), grade("C")),
                detail: if names.is_empty() {
                    format!("{} sans note", grade("N/A"))
                } else {
                    format!("En C : {}", names.join(", "))
                },
                href: "/fournisseurs",
                link: "Fournisseurs",
            });
            let silent = store::identity::all_devices(c)
                .await?
                .iter()
                .filter(|d| domain::kpi::device_offline(d.is_active, d.last_sync_at, d.registered_at, now))
                .count();
            let n = store::sync::counts(c, None, now - chrono::Duration::hours(24)).await?;
            let (waiting, tone) = domain::kpi::sync_backlog(n.pending, n.failed);
            out.push(Card {
                id: "synchro-attente",
                title: "Synchro en attente",
                value: waiting.to_string(),
                detail: format!(
                    "{} en attente · {} en échec (24 h) — {}",
                    n.pending,
                    n.failed,
                    match tone {
                        "rouge" => "file très chargée",
                        "ambre" => "file chargée",
                        _ => "normal",
                    }
                ),
                href: "/systeme/synchronisation",
                link: "Synchronisation",
            });
            out.push(Card {
                id: "appareils-hors-ligne",
                title: "Appareils hors ligne",
                value: silent.to_string(),
                detail: "appareils actifs sans contact depuis plus de 24 h".into(),
                href: "/systeme/appareils",
                link: "Appareils",
            });
        }
        Board::Finances => {
            let pending = store::inventory::list(db).await?.iter().filter(|c| c.status.starts_with("PENDING")).count();
            out.push(Card {
                id: "comptages-attente",
                title: "Comptages à valider",
                value: pending.to_string(),
                detail: "comptages d'inventaire en attente de validation".into(),
                href: "/stock/comptages",
                link: "Comptages",
            });
        }
    }
    Ok(out)
}

async fn board(st: &AppState, pc: &PageCtx, board: Board) -> Response {
    let (title, path, crumb) = match board {
        Board::Direction => ("Tableau de bord", "/tableau-de-bord", "Accueil › Tableau de bord"),
        Board::Finances => ("Tableau de bord finances", "/comptabilite", "Comptabilité › Tableau de bord"),
    };
    match cards(st, board).await {
        Ok(cards) => {
            page(StatusCode::OK, DashboardPage { layout: Layout::for_page(title, path, pc), crumb, cards }, pc)
        }
        Err(e) => super::unavailable_page(&e.message),
    }
}

async fn direction(State(st): State<AppState>, pc: PageCtx) -> Response {
    board(&st, &pc, Board::Direction).await
}

async fn finances(State(st): State<AppState>, pc: PageCtx) -> Response {
    board(&st, &pc, Board::Finances).await
}

pub fn router() -> Router<AppState> {
    Router::new().route("/tableau-de-bord", get(direction)).route("/comptabilite", get(finances))
}
