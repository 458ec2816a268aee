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

pub mod health;
pub mod system;

#[derive(OpenApi)]
#[openapi(
    info(title = "Manchengo Smart ERP", description = "API JSON de Manchengo Smart ERP. Erreurs : enveloppe {error:{code,message,details},requestId}."),
    tags((name = "platform", description = "Santé, supervision et tâches planifiées"))
)]
struct ApiDoc;

/// The `/api` router and its OpenAPI document.
pub fn router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
        .routes(routes!(health::detailed))
        .routes(routes!(system::jobs))
        .split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let doc_json = doc.clone();
    let router =
        router.route("/api/openapi.json", axum::routing::get(move || async move { axum::Json(doc_json.clone()) }));
    (router, doc)
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
