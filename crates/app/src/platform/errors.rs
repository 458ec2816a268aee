//! The one error type of the HTTP layer and its JSON envelope (PLATFORM.md §2.3).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

tokio::task_local! {
    /// The request id of the request being served, so that every error body carries it.
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Boxed: the error travels in every `Result` of the HTTP layer and should stay small.
    pub details: Box<Value>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), details: Box::new(json!({})), retry_after: None }
    }

    pub fn with_details(mut self, details: Value) -> ApiError {
        self.details = Box::new(details);
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> ApiError {
        self.retry_after = Some(secs);
        self
    }

    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
    }

    pub fn route_not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "ROUTE_NOT_FOUND", "Cette adresse de l'API n'existe pas.")
    }

    pub fn forbidden() -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "ACCES_REFUSE", "Accès refusé.")
    }

    pub fn database_unavailable() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "DATABASE_UNAVAILABLE",
            "Base de données momentanément indisponible. Réessayez dans quelques instants.",
        )
        .with_retry_after(5)
    }

    pub fn draining() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_DRAINING",
            "Le serveur redémarre. Réessayez dans quelques instants.",
        )
        .with_retry_after(5)
    }

    pub fn conflict() -> ApiError {
        ApiError::new(
            StatusCode::CONFLICT,
            "CONFLIT_CONCURRENCE",
            "Les données ont été modifiées entre-temps, veuillez réessayer.",
        )
    }

    /// A bug: the body never carries internals, only the request id to quote.
    pub fn internal() -> ApiError {
        let id = current_request_id();
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            format!("Une erreur interne est survenue. Référence : {id}."),
        )
    }

    /// The envelope for a bare status produced outside our handlers (router fallbacks, body limits, panics).
    pub fn for_status(status: StatusCode) -> ApiError {
        match status.as_u16() {
            400 => ApiError::validation("Requête invalide."),
            404 => ApiError::route_not_found(),
            405 => ApiError::new(status, "METHOD_NOT_ALLOWED", "Méthode non autorisée pour cette adresse."),
            413 => ApiError::new(status, "PAYLOAD_TOO_LARGE", "La requête dépasse la taille autorisée."),
            415 => ApiError::new(
                status,
                "UNSUPPORTED_MEDIA_TYPE",
                "Le corps de la requête doit être du JSON (Content-Type: application/json).",
            ),
            408 => ApiError::new(status, "REQUEST_TIMEOUT", "La requête a pris trop de temps."),
            422 => ApiError::validation("Requête invalide."),
            429 => ApiError::new(status, "RATE_LIMITED", "Trop de requêtes. Réessayez dans quelques instants."),
            503 => {
                ApiError::new(status, "SERVICE_UNAVAILABLE", "Service momentanément indisponible.").with_retry_after(5)
            }
            s if s >= 500 => ApiError::internal(),
            _ => ApiError::new(status, "ERREUR", "La requête n'a pas pu être traitée."),
        }
    }

    pub fn body(&self) -> Value {
        json!({
            "error": {"code": self.code, "message": self.message, "details": self.details},
            "requestId": current_request_id(),
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() && self.code == "INTERNAL_ERROR" {
            tracing::error!(error_code = self.code, "internal error");
        }
        let mut res = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res.extensions_mut().insert(Enveloped);
        res
    }
}

/// Marks a response whose body already is the envelope, so the pipeline leaves it alone.
#[derive(Debug, Clone, Copy)]
pub struct Enveloped;

impl From<domain::rejection::Rejection> for ApiError {
    fn from(r: domain::rejection::Rejection) -> ApiError {
        let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
        ApiError::new(status, r.code, r.message).with_details(r.details)
    }
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> ApiError {
        match e {
            store::StoreError::Unavailable(_) => ApiError::database_unavailable(),
            store::StoreError::Conflict(_) => ApiError::conflict(),
            store::StoreError::Other(m) => {
                tracing::error!(error = %m, "storage error");
                ApiError::internal()
            }
        }
    }
}

/// JSON body extractor whose rejections speak the envelope: 400 for bad JSON or unknown fields, 413, 415.
pub struct ApiJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        use axum::extract::rejection::JsonRejection;
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => {
                Err(ApiError::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE))
            }
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::validation(
                "Le corps de la requête n'est pas du JSON valide.",
            )
            .with_details(json!({"fields": [{"field": "", "code": "JSON_INVALIDE", "message": e.body_text()}]}))),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::validation("Données invalides.")
                .with_details(json!({"fields": [{"field": "", "code": "TYPE_INVALIDE", "message": e.body_text()}]}))),
            Err(JsonRejection::BytesRejection(e)) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE))
            }
            Err(e) => Err(ApiError::for_status(e.status())),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::post;
    use tower::ServiceExt;

    use super::*;

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Input {
        quantity: i64,
    }

    async fn call(content_type: Option<&str>, body: &str) -> (StatusCode, Value) {
        let app = Router::new().route("/x", post(|ApiJson(_): ApiJson<Input>| async { "ok" }));
        let mut req = Request::post("/x");
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let res = app.oneshot(req.body(Body::from(body.to_string())).unwrap()).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn bad_json_bodies_are_client_errors_in_the_envelope() {
        let (s, b) = call(Some("application/json"), "{\"quantity\": ").await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("VALIDATION_ERROR")));
        assert_eq!(b["error"]["details"]["fields"][0]["code"], "JSON_INVALIDE");

        let (s, b) = call(Some("application/json"), "{\"quantity\": \"beaucoup\"}").await;
        assert_eq!(
            (s, b["error"]["details"]["fields"][0]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("TYPE_INVALIDE"))
        );

        let (s, b) = call(Some("application/json"), "{\"quantity\": 1, \"prix\": 2}").await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "unknown fields are refused");
        assert_eq!(b["error"]["code"], "VALIDATION_ERROR");

        let (s, b) = call(None, "{\"quantity\": 1}").await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("UNSUPPORTED_MEDIA_TYPE"))
        );

        let (s, _) = call(Some("application/json"), "{\"quantity\": 1}").await;
        assert_eq!(s, StatusCode::OK);
    }

    #[test]
    fn server_errors_never_leak_internals() {
        let e = REQUEST_ID.sync_scope("req-1".into(), ApiError::internal);
        assert_eq!(e.message, "Une erreur interne est survenue. Référence : req-1.");
        let e = ApiError::from(store::StoreError::Other("relation \"secret_table\" does not exist".into()));
        assert_eq!(e.code, "INTERNAL_ERROR");
        assert!(!e.message.contains("secret_table"));
        let e = ApiError::from(store::StoreError::Unavailable("refused".into()));
        assert_eq!((e.status.as_u16(), e.code, e.retry_after), (503, "DATABASE_UNAVAILABLE", Some(5)));
    }
}
