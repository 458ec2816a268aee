//! System views for operators.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::health::{diagnostics_allowed, diagnostics_refused};
use crate::platform::errors::ApiError;
use crate::platform::jobs::{JOBS_PREFIX, JobView};
use crate::state::AppState;

/// Scheduled jobs with their last run, status and next run (read through the cache, 10 s).
#[utoipa::path(get, path = "/api/system/jobs", tag = "platform", responses(
    (status = 200, description = "Tâches planifiées"), (status = 503, description = "Base de données indisponible")))]
pub async fn jobs(State(st): State<AppState>, req: axum::extract::Request) -> Response {
    if !diagnostics_allowed(&req, &st.config.health_detailed_allow) {
        return diagnostics_refused().into_response();
    }
    let loaded = st
        .cache
        .get_or_load(&format!("{JOBS_PREFIX}list"), Duration::from_secs(10), || async {
            let rows = store::jobs::list(st.dbmon.db()).await.map_err(|e| {
                st.dbmon.report(&e);
                ApiError::from(e)
            })?;
            Ok::<_, ApiError>(
                rows.into_iter()
                    .map(|l| JobView {
                        name: l.name,
                        last_run_at: l.last_run_at,
                        last_status: l.last_status,
                        last_error: l.last_error,
                        next_run_at: l.next_run_at,
                        holder: l.holder,
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .await;
    match loaded {
        Ok(items) => Json(serde_json::json!({ "items": items })).into_response(),
        Err(e) => e.into_response(),
    }
}
