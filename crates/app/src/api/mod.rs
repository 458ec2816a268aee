//! The JSON API under `/api`. Every route is declared through `OpenApiRouter`, so the OpenAPI document served at
//! `/api/openapi.json` is generated from the handlers themselves and cannot miss one.

use axum::Router;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::platform::errors::ApiError;
use crate::state::AppState;

pub mod accounting;
pub mod admin;
pub mod appro;
pub mod audit;
pub mod auth;
pub mod catalogue;
pub mod dashboard;
pub mod delivery;
pub mod health;
pub mod idempotency;
pub mod production;
pub mod purchase;
pub mod sales;
pub mod settings;
pub mod stock;
pub mod sync;
pub mod system;

#[derive(OpenApi)]
#[openapi(
    info(title = "Manchengo Smart ERP", description = "API JSON de Manchengo Smart ERP. Erreurs : enveloppe {error:{code,message,details},requestId}."),
    tags((name = "platform", description = "Santé, supervision et tâches planifiées"),
         (name = "auth", description = "Sessions : connexion, renouvellement, déconnexion, mot de passe"),
         (name = "identity", description = "Utilisateurs et appareils (ADMIN)"),
         (name = "audit", description = "Journal d'audit chaîné (ADMIN, COMPTABLE)"),
         (name = "catalogue", description = "Matières premières et produits finis"),
         (name = "parties", description = "Fournisseurs et clients"),
         (name = "stock", description = "Réceptions, lots, mouvements, pertes, comptages"),
         (name = "procurement", description = "Bons de commande et notes fournisseurs"),
         (name = "production", description = "Recettes et ordres de production"),
         (name = "sales", description = "Tarifs, factures, règlements, avoirs, relevés clients"),
         (name = "accounting", description = "Exports comptables : journaux, G50, timbre, écritures"),
         (name = "delivery", description = "Bons de livraison, validation par QR code, preuve de livraison"),
         (name = "settings", description = "Paramètres de la société"),
         (name = "sync", description = "Synchronisation des appareils hors ligne : envoi, journal, état ; opérations (ADMIN)"))
)]
struct ApiDoc;

/// The `/api` router and its OpenAPI document.
pub fn router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
        .routes(routes!(health::detailed))
        .routes(routes!(system::jobs))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::change_password))
        .routes(routes!(admin::register_device))
        .routes(routes!(admin::list_devices))
        .routes(routes!(admin::revoke_device))
        .routes(routes!(admin::reactivate_device))
        .routes(routes!(sync::push))
        .routes(routes!(sync::pull))
        .routes(routes!(sync::bootstrap))
        .routes(routes!(sync::status))
        .routes(routes!(sync::ack))
        .routes(routes!(sync::list_events))
        .routes(routes!(sync::retry))
        .routes(routes!(sync::retry_all))
        .routes(routes!(admin::list_users, admin::create_user))
        .routes(routes!(admin::get_user, admin::edit_user))
        .routes(routes!(admin::deactivate_user))
        .routes(routes!(admin::reactivate_user))
        .routes(routes!(admin::reset_user_password))
        .routes(routes!(admin::unlock_user))
        .routes(routes!(audit::list))
        .routes(routes!(audit::verify))
        .routes(routes!(audit::get))
        .routes(routes!(catalogue::list_mp, catalogue::create_mp))
        .routes(routes!(catalogue::get_mp, catalogue::update_mp))
        .routes(routes!(catalogue::deactivate_mp))
        .routes(routes!(catalogue::reactivate_mp))
        .routes(routes!(catalogue::list_pf, catalogue::create_pf))
        .routes(routes!(catalogue::get_pf, catalogue::update_pf))
        .routes(routes!(catalogue::list_suppliers, catalogue::create_supplier))
        .routes(routes!(catalogue::get_supplier, catalogue::update_supplier))
        .routes(routes!(catalogue::list_clients, catalogue::create_client))
        .routes(routes!(catalogue::get_client, catalogue::update_client))
        .routes(routes!(purchase::list, purchase::create))
        .routes(routes!(purchase::get, purchase::update))
        .routes(routes!(purchase::send))
        .routes(routes!(purchase::confirm))
        .routes(routes!(purchase::close))
        .routes(routes!(purchase::cancel))
        .routes(routes!(purchase::performance))
        .routes(routes!(purchase::pdf))
        .routes(routes!(production::list_recipes))
        .routes(routes!(production::get_recipe, production::post_recipe))
        .routes(routes!(production::list, production::create))
        .routes(routes!(production::get))
        .routes(routes!(production::reschedule))
        .routes(routes!(production::start))
        .routes(routes!(production::complete))
        .routes(routes!(production::cancel))
        .routes(routes!(production::trace))
        .routes(routes!(production::recall))
        .routes(routes!(production::recall_block))
        .routes(routes!(appro::get_cockpit))
        .routes(routes!(appro::suggestion_orders))
        .routes(routes!(appro::list_alerts))
        .routes(routes!(appro::acknowledge))
        .routes(routes!(appro::postpone))
        .routes(routes!(sales::list_price_lists, sales::create_price_list))
        .routes(routes!(sales::get_price_list, sales::update_price_list))
        .routes(routes!(sales::list, sales::create))
        .routes(routes!(sales::get, sales::update, sales::delete))
        .routes(routes!(sales::validate))
        .routes(routes!(sales::pay))
        .routes(routes!(sales::credit))
        .routes(routes!(sales::cancel_pay))
        .routes(routes!(sales::refund))
        .routes(routes!(sales::get_statement))
        .routes(routes!(sales::get_credit_note, sales::delete_credit))
        .routes(routes!(sales::validate_credit))
        .routes(routes!(sales::invoice_pdf))
        .routes(routes!(sales::credit_note_pdf))
        .routes(routes!(accounting::get))
        .routes(routes!(delivery::list, delivery::create))
        .routes(routes!(delivery::scan))
        .routes(routes!(delivery::get))
        .routes(routes!(delivery::validate))
        .routes(routes!(delivery::deliver))
        .routes(routes!(delivery::cancel))
        .routes(routes!(delivery::proof))
        .routes(routes!(delivery::pdf))
        .routes(routes!(stock::list_receptions, stock::create_reception))
        .routes(routes!(stock::get_reception))
        .routes(routes!(stock::list_lots))
        .routes(routes!(stock::get_lot))
        .routes(routes!(stock::lot_label))
        .routes(routes!(stock::reception_labels))
        .routes(routes!(stock::qc_lot))
        .routes(routes!(stock::block_lot))
        .routes(routes!(stock::unblock_lot))
        .routes(routes!(stock::declare_loss))
        .routes(routes!(stock::fefo_plan))
        .routes(routes!(stock::list_counts, stock::declare_count))
        .routes(routes!(stock::get_count))
        .routes(routes!(stock::validate_count))
        .routes(routes!(stock::reject_count))
        .routes(routes!(stock::stock_by_product))
        .routes(routes!(stock::list_movements))
        .routes(routes!(stock::list_losses))
        .routes(routes!(stock::write_off_expired))
        .routes(routes!(dashboard::stock_dashboard))
        .routes(routes!(dashboard::echeances))
        .routes(routes!(catalogue::block_supplier))
        .routes(routes!(catalogue::unblock_supplier))
        .routes(routes!(settings::get_company, settings::put_company))
        .routes(routes!(settings::get_chart, settings::put_chart))
        .routes(routes!(settings::list_brands, settings::create_brand))
        .routes(routes!(settings::update_brand))
        .routes(routes!(settings::list_families, settings::create_family))
        .routes(routes!(settings::update_family))
        .split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    annotate_roles(&mut doc);
    let doc_json = doc.clone();
    let router =
        router.route("/api/openapi.json", axum::routing::get(move || async move { axum::Json(doc_json.clone()) }));
    (router, doc)
}

/// Writes each operation's declared roles into the document (`x-roles`, and a line of its description), from the
/// same table the guard enforces.
fn annotate_roles(doc: &mut utoipa::openapi::OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let ops = [
            ("GET", &mut item.get),
            ("POST", &mut item.post),
            ("PUT", &mut item.put),
            ("PATCH", &mut item.patch),
            ("DELETE", &mut item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op.as_mut() else { continue };
            let roles = crate::access::lookup(method, path).map(|a| a.describe()).unwrap_or_default();
            let line = if roles.is_empty() {
                "Rôles : aucun (route non déclarée, refusée)".to_string()
            } else {
                format!("Rôles : {}", roles.join(", "))
            };
            op.description = Some(match op.description.take() {
                Some(d) if !d.is_empty() => format!("{d}\n\n{line}"),
                _ => line,
            });
            let mut ext = utoipa::openapi::extensions::Extensions::default();
            ext.insert("x-roles".into(), serde_json::json!(roles));
            match op.extensions.as_mut() {
                Some(e) => e.merge(ext),
                None => op.extensions = Some(ext),
            }
        }
    }
}

/// Unknown paths: the envelope under `/api`, the French 404 page elsewhere.
pub async fn fallback(uri: Uri) -> Response {
    if uri.path() == "/api" || uri.path().starts_with("/api/") {
        ApiError::route_not_found().into_response()
    } else {
        crate::web::not_found().await
    }
}

/// Wrong method on a known path: 405 with `Allow` (set by the router); the pipeline wraps it in the envelope.
pub async fn method_not_allowed() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, "").into_response()
}
