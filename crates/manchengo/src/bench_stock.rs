//! `manchengo bench stock`: stock movements per second through the raw database (the same transaction shape by hand),
//! through the store layer, and through the HTTP API, in one run on one machine; then the stock at a past date once
//! the ledger holds a million movements. Figures for BENCHMARKS.md, never assertions.

use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn stmt(b: DbBackend, sql: &str, v: Vec<Value>) -> sea_orm::Statement {
    store::stock::stmt(b, sql, v)
}

/// One OUT movement written by hand: lock the lot, update its balance, insert the movement, commit.
async fn raw_out(db: &store::Db, lot_id: Uuid, product_id: Uuid, i: usize) -> Result<(), String> {
    let b = db.sea_backend();
    let tx = db.begin_write().await.map_err(|e| e.to_string())?;
    let lock = if b == DbBackend::Postgres { " FOR UPDATE" } else { "" };
    let row = tx
        .query_one_raw(stmt(
            b,
            &format!("SELECT quantity_remaining, movement_count FROM lots WHERE id = $1{lock}"),
            vec![lot_id.into()],
        ))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("lot vanished")?;
    let remaining: i64 = row.try_get("", "quantity_remaining").map_err(|e| e.to_string())?;
    let count: i64 = row.try_get("", "movement_count").map_err(|e| e.to_string())?;
    tx.execute_raw(stmt(
        b,
        "UPDATE lots SET quantity_remaining = $1, movement_count = $2 WHERE id = $3",
        vec![(remaining - 1).into(), (count + 1).into(), lot_id.into()],
    ))
    .await
    .map_err(|e| e.to_string())?;
    let now = Utc::now();
    tx.execute_raw(stmt(
        b,
        "INSERT INTO stock_movements (id, created_at, business_date, lot_id, product_id, direction, quantity, origin, unit_cost, \
         idempotency_key, remaining_after, lot_seq) VALUES ($1, $2, $3, $4, $5, 'OUT', 1, 'SALE', 300, $6, $7, $8)",
        vec![
            Uuid::now_v7().into(),
            now.into(),
            domain::stock::today_algiers(now).into(),
            lot_id.into(),
            product_id.into(),
            format!("RAW:{i}:{}", Uuid::now_v7()).into(),
            (remaining - 1).into(),
            (count + 1).into(),
        ],
    ))
    .await
    .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())
}

async fn http_post(addr: std::net::SocketAddr, path: &str, token: &str, body: &str) -> Result<u16, String> {
    let mut s = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
    let head = String::from_utf8_lossy(&out[..out.len().min(32)]).to_string();
    head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| format!("réponse illisible : {head}"))
}

/// Fills the ledger with `lots × per_lot` movements over a year (bulk inserts, consistent balances).
async fn fill(db: &store::Db, products: &[Uuid], lots: usize, per_lot: usize) -> Result<(), String> {
    let b = db.sea_backend();
    let start = NaiveDate::from_ymd_opt(2025, 1, 1).expect("date");
    let mut lot_rows: Vec<(Uuid, Uuid, usize)> = Vec::with_capacity(lots);
    for i in 0..lots {
        lot_rows.push((Uuid::now_v7(), products[i % products.len()], i));
    }
    for chunk in lot_rows.chunks(400) {
        let mut sql = String::from(
            "INSERT INTO lots (id, lot_number, product_id, origin, initial_quantity, quantity_remaining, unit_cost, status, created_at, movement_count) VALUES ",
        );
        let mut vals: Vec<Value> = Vec::new();
        for (k, (id, pid, i)) in chunk.iter().enumerate() {
            let day = start + chrono::Duration::days((i % 300) as i64);
            let created = day.and_hms_opt(8, 0, 0).expect("time").and_utc();
            let n = vals.len();
            if k > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, 'RECEPTION', 100000, ${}, 300, 'AVAILABLE', ${}, ${})",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5,
                n + 6
            ));
            vals.extend([
                (*id).into(),
                format!("B{i:07}").into(),
                (*pid).into(),
                (100_000 - (per_lot as i64 - 1) * 1_000).into(),
                created.into(),
                (per_lot as i64).into(),
            ]);
        }
        db.conn().execute_raw(stmt(b, &sql, vals)).await.map_err(|e| e.to_string())?;
    }
    let mut batch: Vec<Value> = Vec::new();
    let mut sql = String::new();
    let mut rows = 0;
    let flush = |sql: &mut String, batch: &mut Vec<Value>| {
        let s = std::mem::take(sql);
        let v = std::mem::take(batch);
        async move {
            if v.is_empty() {
                return Ok(());
            }
            db.conn().execute_raw(stmt(b, &s, v)).await.map(|_| ()).map_err(|e| e.to_string())
        }
    };
    for (id, pid, i) in &lot_rows {
        let day0 = start + chrono::Duration::days((*i % 300) as i64);
        for m in 0..per_lot {
            let day = day0 + chrono::Duration::days(m as i64 * 2);
            let at = day.and_hms_opt(9, 0, 0).expect("time").and_utc();
            let remaining = 100_000 - m as i64 * 1_000;
            if rows == 0 {
                sql.push_str(
                    "INSERT INTO stock_movements (id, created_at, business_date, lot_id, product_id, direction, quantity, origin, unit_cost, idempotency_key, remaining_after, lot_seq) VALUES ",
                );
            } else {
                sql.push(',');
            }
            let n = batch.len();
            let (dir, qty, origin) = if m == 0 { ("IN", 100_000, "RECEPTION") } else { ("OUT", 1_000, "SALE") };
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, '{dir}', {qty}, '{origin}', 300, ${}, ${}, ${})",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5,
                n + 6,
                n + 7,
                n + 8
            ));
            batch.extend([
                Uuid::now_v7().into(),
                at.into(),
                day.into(),
                (*id).into(),
                (*pid).into(),
                format!("B:{i}:{m}").into(),
                remaining.into(),
                (m as i64 + 1).into(),
            ]);
            rows += 1;
            if rows == 500 {
                flush(&mut sql, &mut batch).await?;
                rows = 0;
            }
        }
    }
    flush(&mut sql, &mut batch).await?;
    Ok(())
}

pub async fn stock_bench(database_url: Option<String>, ops: usize, million: usize) -> Result<String, String> {
    let server = crate::bench::BenchServer::start(
        database_url,
        &[("RATE_LIMIT_MAX", "100000000"), ("RATE_LIMIT_LOGIN_MAX", "1000")],
    )
    .await?;
    let (state, addr, backend) = (server.state.clone(), server.addr, server.backend);
    let db = state.dbmon.db().clone();
    let now = Utc::now();
    let actor = store::audit::Actor::system("bench");
    // An administrator for the API, a product and one big lot per measured path.
    let admin_email = format!("banc.{}@essai.dz", Uuid::now_v7().simple());
    let password = "Banc#Essai2026!";
    let new_user = store::identity::NewUser {
        email: admin_email.clone(),
        first_name: "Banc".into(),
        last_name: "Essai".into(),
        role: domain::identity::Role::Admin,
        password_hash: app::auth::password::hash_now(password),
        must_change_password: false,
    };
    let (product, lots) = db
        .write(|tx| {
            let (actor, new_user) = (actor.clone(), new_user.clone());
            Box::pin(async move {
                store::identity::create_user(&**tx, new_user, &actor, now, false).await?;
                let p = store::stock::create_product(
                    &**tx,
                    store::stock::NewProduct {
                        kind: "MP",
                        code: format!("MP-BANC-{}", &Uuid::now_v7().simple().to_string()[..6]).to_uppercase(),
                        name: "Banc".into(),
                        base_unit: "KG",
                        perishable: false,
                        qc_required: false,
                        shelf_life_days: None,
                        min_stock: 0,
                    },
                    now,
                )
                .await?;
                let mut lots = Vec::new();
                for tag in ["RAW", "STORE", "API"] {
                    let (l, _) = store::stock::create_lot(
                        &**tx,
                        store::stock::NewLot {
                            number: format!("BANC-{tag}-{}", Uuid::now_v7().simple()).to_uppercase(),
                            product_id: p.id,
                            supplier_lot_number: None,
                            lot_origin: "RECEPTION",
                            quantity: 1_000_000_000,
                            unit_cost: 300,
                            dlc: None,
                            manufacture_date: None,
                            status: domain::stock::LotStatus::Available,
                        },
                        &store::stock::Source {
                            origin: "RECEPTION",
                            source_type: None,
                            source_id: None,
                            reference: None,
                        },
                        format!("BANC:{tag}:{}", Uuid::now_v7()),
                        &store::stock::Mover::default(),
                        now,
                    )
                    .await?;
                    lots.push(l);
                }
                Ok::<_, store::OpError>((p, lots))
            })
        })
        .await
        .map_err(|e| format!("{e}"))?;

    // 1. The raw database: the same transaction shape by hand.
    let t = Instant::now();
    for i in 0..ops {
        raw_out(&db, lots[0].id, product.id, i).await?;
    }
    let raw = per_sec(ops, t.elapsed());
    // 2. The store layer: lock, domain check, balance and movement, in `Db::write`.
    let t = Instant::now();
    for i in 0..ops {
        let lot_id = lots[1].id;
        db.write(|tx| {
            Box::pin(async move {
                store::stock::take_from_lot(
                    &**tx,
                    lot_id,
                    1,
                    &store::stock::Source { origin: "SALE", source_type: None, source_id: None, reference: None },
                    format!("ST:{i}:{}", Uuid::now_v7()),
                    &store::stock::Mover::default(),
                    Utc::now(),
                )
                .await
            })
        })
        .await
        .map_err(|e| format!("{e}"))?;
    }
    let store_rate = per_sec(ops, t.elapsed());
    // 3. The HTTP API: a loss of 1 g per request (authentication, role, validation, PER number, audit entry).
    let login = format!("{{\"email\":\"{admin_email}\",\"password\":\"{password}\",\"client\":\"device\"}}");
    let token = {
        let mut s = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let req = format!(
            "POST /api/auth/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{login}",
            login.len()
        );
        s.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.map_err(|e| e.to_string())?;
        let body = out.split("\r\n\r\n").nth(1).unwrap_or("");
        let v: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))?;
        v["accessToken"].as_str().ok_or("pas de jeton")?.to_string()
    };
    let body = format!(
        "{{\"lotNumber\":\"{}\",\"quantity\":1,\"reason\":\"OTHER\",\"note\":\"Banc d'essai du registre\"}}",
        lots[2].lot_number
    );
    let t = Instant::now();
    for _ in 0..ops {
        let s = http_post(addr, "/api/stock/losses", &token, &body).await?;
        if s != 201 {
            return Err(format!("perte refusée : HTTP {s}"));
        }
    }
    let api = per_sec(ops, t.elapsed());
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (token, body) = (token.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..ops / 4 {
                http_post(addr, "/api/stock/losses", &token, &body).await?;
            }
            Ok::<_, String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let api4 = per_sec(ops / 4 * 4, t.elapsed());

    // 4. A million movements, then the stock at a past date.
    let mut products = Vec::new();
    for k in 0..200 {
        let p = store::stock::create_product(
            db.conn(),
            store::stock::NewProduct {
                kind: "MP",
                code: format!("MP-M{k:03}-{}", &Uuid::now_v7().simple().to_string()[..6]).to_uppercase(),
                name: "Masse".into(),
                base_unit: "KG",
                perishable: false,
                qc_required: false,
                shelf_life_days: None,
                min_stock: 0,
            },
            now,
        )
        .await
        .map_err(|e| e.to_string())?;
        products.push(p.id);
    }
    let per_lot = 20;
    let t = Instant::now();
    fill(&db, &products, million / per_lot, per_lot).await?;
    let fill_time = t.elapsed();
    let mut timings = Vec::new();
    for day in ["2025-03-31", "2025-07-15", "2025-12-31"] {
        let d = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|e| e.to_string())?;
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            let rows = store::stock::stock_at(&db, d).await.map_err(|e| e.to_string())?;
            best = best.min(t.elapsed());
            if rows.is_empty() {
                return Err("stock à date vide".into());
            }
        }
        timings.push((day, best));
    }
    // 5. Backup and restore test of that database (PLATFORM.md §12): verified compressed copy, then restore into a
    // throw-away database with the integrity check (ledger recomputed over the million movements).
    let t = Instant::now();
    let report = app::ops::backup::backup(&state.config, &db, Some("banc"), Utc::now()).await?;
    let backup_time = t.elapsed();
    let t = Instant::now();
    let tested = app::ops::backup::test_restore(&state.config, &db, &report.files[0], Utc::now()).await?;
    let restore_time = t.elapsed();
    if !tested.ok {
        return Err(format!("test de restauration en échec : {:?}", tested.check));
    }
    let tag = server.tag();
    server.stop().await;

    let date = Utc::now().format("%Y-%m-%d");
    let at_rows: String = timings
        .iter()
        .map(|(d, t)| format!("| Stock of every product at the end of {d} | {:.0} ms |\n", t.as_secs_f64() * 1000.0))
        .collect();
    Ok(format!(
        "<!-- bench:stock:{tag} -->\n## Stock movements, {backend} — {date}\n\n\
         Written by `manchengo bench stock` (release build, {cores} cores). One OUT movement = lock the lot, update its \
         balance, insert the movement, commit; {ops} sequential operations per path.\n\n\
         | Path | Movements/s | Share of the raw limit |\n|---|---|---|\n\
         | Raw database, same transaction shape by hand | {raw:.0} | 100 % |\n\
         | Store layer (`take_from_lot` in `Db::write`: domain checks, guarded update) | {store_rate:.0} | {:.0} % |\n\
         | HTTP API `POST /api/stock/losses`, one client (auth, role, validation, PER number, audit) | {api:.0} | {:.0} % |\n\
         | HTTP API, four clients | {api4:.0} | {:.0} % |\n\n\
         | Ledger of {million} movements ({} lots × {per_lot}, bulk-filled in {:.1} s) | Best of 3 |\n|---|---|\n{at_rows}\
         | `manchengo backup` of that database (consistent copy, verified, compressed: {:.1} MiB) | {:.1} s |\n\
         | `manchengo backup test-restore` (restore into a throw-away database + integrity check of the whole ledger) | {:.1} s |\n\
         <!-- /bench:stock:{tag} -->\n",
        store_rate / raw * 100.0,
        api / raw * 100.0,
        api4 / raw * 100.0,
        million / per_lot,
        fill_time.as_secs_f64(),
        report.size_bytes as f64 / 1_048_576.0,
        backup_time.as_secs_f64(),
        restore_time.as_secs_f64(),
        cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
    ))
}
