//! `manchengo bench trace`: a year of production written through the store (a reception of three MPs and three
//! orders started and completed every day), then the time of backward traces from PF lots and forward traces from
//! milk lots — the "within minutes" of a supplier recall (DOMAIN.md §9).

use std::time::Instant;

use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use uuid::Uuid;

pub async fn trace_bench(database_url: Option<String>, days: usize, samples: usize) -> Result<String, String> {
    let dir = std::env::temp_dir().join(format!("manchengo-bench-{}", Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let url = database_url.unwrap_or_else(|| format!("sqlite://{}/bench.db?mode=rwc", dir.display()));
    let backend = if url.starts_with("sqlite:") { "SQLite (embarquée)" } else { "PostgreSQL" };
    let db = store::Db::open(&store::DbOptions::new(url).patient()).await.map_err(|e| e.to_string())?;
    store::migration::migrate(&db).await.map_err(|e| e.to_string())?;
    let actor = store::audit::Actor::system("bench");
    let start = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default();
    let at = |d: NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(7, 0, 0).unwrap_or_default());
    let t0 = at(start);
    let suffix = Uuid::now_v7().simple().to_string()[..6].to_uppercase();
    let (supplier, products, pf) = db
        .write(|tx| {
            let (actor, suffix) = (actor.clone(), suffix.clone());
            Box::pin(async move {
                let party = domain::catalogue::Party {
                    raison_sociale: format!("Laiterie du banc {suffix}"),
                    telephone: Some("0550123456".into()),
                    ..Default::default()
                };
                let s = store::catalogue::save_supplier(&**tx, None, party, 30, &actor, t0).await?;
                let mut mps = Vec::new();
                for (code, unit, perishable) in [("LAIT", "L", true), ("SEL", "KG", false), ("SAC", "U", false)] {
                    let p = store::stock::create_product(
                        &**tx,
                        store::stock::NewProduct {
                            kind: "MP",
                            code: format!("MP-{code}-{suffix}"),
                            name: format!("Banc {code}"),
                            base_unit: unit,
                            perishable,
                            qc_required: false,
                            shelf_life_days: None,
                            min_stock: 0,
                        },
                        t0,
                    )
                    .await?;
                    mps.push(p);
                }
                let pf = store::stock::create_product(
                    &**tx,
                    store::stock::NewProduct {
                        kind: "PF",
                        code: format!("PF-BANC-{suffix}"),
                        name: "Fromage du banc".into(),
                        base_unit: "U",
                        perishable: true,
                        qc_required: false,
                        shelf_life_days: Some(60),
                        min_stock: 0,
                    },
                    t0,
                )
                .await?;
                let items = vec![
                    (domain::production::ItemKind::Mp, &mps[0], 400_000),
                    (domain::production::ItemKind::Mp, &mps[1], 2_000),
                    (domain::production::ItemKind::Packaging, &mps[2], 100_000),
                ];
                let new = store::production::NewVersion {
                    output_quantity: 100_000,
                    batch_weight_g: 40_000,
                    loss_tolerance_bp: 200,
                    shelf_life_override_days: None,
                    notes: None,
                    items: items
                        .into_iter()
                        .map(|(kind, p, quantity)| store::production::NewItem {
                            kind,
                            product: Some(p.clone()),
                            fluid_name: None,
                            unit_label: None,
                            quantity,
                            unit_cost: None,
                        })
                        .collect(),
                };
                store::production::create_version(&**tx, &pf, new, &actor, t0).await?;
                Ok::<_, store::OpError>((s, mps, pf))
            })
        })
        .await
        .map_err(|e| format!("{e:?}"))?;

    // A year: each day one reception (milk for the day, salt and bags), three orders started and completed.
    let fill = Instant::now();
    let mut pf_lots = Vec::new();
    let mut milk_lots = Vec::new();
    for day in 0..days {
        let d = start + chrono::Duration::days(day as i64);
        let now = at(d);
        let reception = store::procurement::NewReception {
            supplier_id: supplier.id,
            purchase_order_id: None,
            reception_date: d,
            supplier_delivery_note: Some(format!("BL-{}", d.ordinal())),
            supplier_invoice_number: None,
            lines: products
                .iter()
                .zip([1_250_000, 7_000, 300_000])
                .map(|(p, quantity)| store::procurement::NewLine {
                    product: p.clone(),
                    quantity,
                    unit_cost_ht: 80,
                    tva_rate: 900,
                    supplier_lot_number: Some(format!("F{}", d.format("%y%m%d"))),
                    dlc: p.perishable.then(|| d + chrono::Duration::days(4)),
                    manufacture_date: None,
                })
                .collect(),
        };
        let (made, milk) = db
            .write(|tx| {
                let (reception, actor, pf) = (reception.clone(), actor.clone(), pf.clone());
                Box::pin(async move {
                    let (_, lines) = store::procurement::create_reception(&**tx, reception, &actor, now).await?;
                    let milk = lines[0].1.lot_number.clone();
                    let mut made = Vec::new();
                    for _ in 0..3 {
                        let o = store::production::create_order(&**tx, &pf, 1, d, None, &actor, now).await?;
                        store::production::start(&**tx, &o.reference, &actor, now).await?;
                        let done = store::production::Completion {
                            quantity_produced: 97_000,
                            qc: domain::production::QcStatus::Passed,
                            qc_note: None,
                            actual_batch_weight_g: None,
                        };
                        let (_, lot) = store::production::complete(&**tx, &o.reference, done, &actor, now).await?;
                        made.push(lot.lot_number);
                    }
                    Ok::<_, store::OpError>((made, milk))
                })
            })
            .await
            .map_err(|e| format!("jour {d} : {e:?}"))?;
        pf_lots.extend(made);
        milk_lots.push(milk);
    }
    let fill_time = fill.elapsed();

    let pick = |v: &[String], i: usize| v[(i * 7919) % v.len()].clone();
    let mut backward = Vec::new();
    let mut forward = Vec::new();
    for i in 0..samples {
        let lot = pick(&pf_lots, i);
        let t = Instant::now();
        let v =
            store::trace::trace(db.conn(), &lot, store::trace::Direction::Backward).await.map_err(|e| e.to_string())?;
        backward.push(t.elapsed());
        let inputs = v.as_ref().and_then(|v| v["backward"]["inputs"].as_array().map(Vec::len)).unwrap_or(0);
        if inputs == 0 {
            return Err(format!("trace amont vide pour {lot}"));
        }
        // FEFO runs a few days behind the deliveries by the end of the run (the daily surplus builds a buffer), so the
        // last days' milk is not used yet: forward traces start from lots at least a week old.
        let lot = pick(&milk_lots[..milk_lots.len().saturating_sub(7).max(1)], i);
        let t = Instant::now();
        let v =
            store::trace::trace(db.conn(), &lot, store::trace::Direction::Forward).await.map_err(|e| e.to_string())?;
        forward.push(t.elapsed());
        if v.as_ref().and_then(|v| v["forward"]["usedBy"].as_array().map(Vec::len)).unwrap_or(0) == 0 {
            return Err(format!("trace aval vide pour {lot}"));
        }
    }
    let (b50, b95) = crate::bench::spread_ms(backward);
    let (f50, f95) = crate::bench::spread_ms(forward);
    let orders = pf_lots.len();
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
    let date = Utc::now().format("%Y-%m-%d");
    let tag = if backend.starts_with("SQLite") { "sqlite" } else { "postgres" };
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    Ok(format!(
        "<!-- bench:trace:{tag} -->\n## Traceability on {days} days of production, {backend} — {date}\n\n\
         Written by `manchengo bench trace` ({profile} build, {cores} cores). {days} days, each with one reception of \
         three MPs and three production orders started (FEFO) and completed through the store: {orders} PF lots, \
         {} MP lots, written in {:.1} s. {samples} traces of each kind on lots spread over the year.\n\n\
         | Trace | Median | 95th percentile |\n|---|---|---|\n\
         | Backward from a PF lot (order, 3–6 MP lots, receptions, supplier) | {b50:.1} ms | {b95:.1} ms |\n\
         | Forward from a milk lot (orders that used it, PF lots) | {f50:.1} ms | {f95:.1} ms |\n\
         <!-- /bench:trace:{tag} -->\n",
        days * 3,
        fill_time.as_secs_f64(),
    ))
}
