//! Actions on one subscription: a synchronous test send, and secret
//! rotation with an overlap during which both secrets sign.

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use hookline_model::retry::Classification;
use hookline_proto::AttemptStatus;
use hookline_send::record::{attempt_record, attempt_view, AttemptView};
use hookline_signature::{generate_secret, SignatureScheme};
use tracing::Instrument;

use super::openapi::{ROTATE_SECRET, TEST_SEND};
use super::task;
use super::views::{self, SubscriptionView};
use crate::auth::Caller;
use crate::control::Announcement;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::store::{attempts, event_types, subscriptions};
use crate::validate;

/// `POST …/{id}/test`: one real, signed delivery of a sample payload, sent
/// now with the deliverer's client (so the SSRF guard and timeout apply),
/// recorded in the history, and answered as the attempt. Works on a
/// disabled subscription too: that is when a customer wants to check it.
#[utoipa::path(post, path = TEST_SEND, operation_id = "sendTest", summary = "Send one real, signed sample delivery now and answer the attempt",
    request_body = TestSend,
    responses(
        (status = 200, description = "The attempt, as history records it", body = AttemptView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 422, description = "Invalid field value; `code` and `message` name the field", body = ErrorBody),
        (status = 429, description = "rate_limited: the tenant's test sends and replays exceeded api.manual_sends_per_minute; Retry-After says when to try again", body = ErrorBody),
    ))]
pub(super) async fn test_send(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson,
) -> Result<Json<AttemptView>, ApiError> {
    caller.check_tenant(&tenant)?;
    let event_type = validate::event_type(body.get("event_type"))?;
    state.take_manual_send(&tenant)?;
    let pool = state.db.pool()?;
    let row = subscriptions::get(pool, &tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("subscription", &id))?;
    let example = event_types::get(pool, &event_type)
        .await?
        .and_then(|entry| entry.example);
    let task = task::test_task(&row, &event_type, example, state.keyring(), Utc::now())?;
    // A test send starts its own trace: the same span as a real attempt.
    let span = tracing::info_span!(
        "api.test_send",
        otel.kind = "client",
        hookline.tenant = %tenant,
        hookline.subscription_id = %id,
        hookline.event_type = %event_type,
    );
    let trace = hookline_runtime::telemetry::continue_trace(&span, None);
    let result = state.sender.send(&task, trace).instrument(span).await;
    let status = if result.classification == Classification::Succeeded {
        AttemptStatus::Succeeded
    } else {
        AttemptStatus::Failed
    };
    let record = attempt_record(&task, &result, status, Utc::now());
    // The delivery happened whatever the database says now, so a failure to
    // record it is logged and the attempt is still the answer.
    let write = async {
        let mut tx = pool.begin().await?;
        let written = attempts::write(&mut tx, std::slice::from_ref(&record)).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(written)
    };
    match write.await {
        Ok(written) => {
            state
                .metrics
                .attempt_records_written
                .inc_by(written.inserted);
            for gone in written.disabled {
                state
                    .notifier
                    .announce(Announcement::disabled(
                        &gone.tenant,
                        &gone.id,
                        gone.revision,
                    ))
                    .await;
            }
        }
        Err(error) => tracing::warn!(%error, subscription_id = %id, "cannot record a test attempt"),
    }
    Ok(Json(attempt_view(&record)))
}

/// `POST …/{id}/rotate-secret`: a new secret (generated, or given as
/// `{"secret": …}`); the old one keeps signing for
/// `api.secret_rotation_overlap` so receivers can switch without a gap.
#[utoipa::path(post, path = ROTATE_SECRET, operation_id = "rotateSecret", summary = "Rotate the secret; the old one keeps signing during the overlap",
    request_body = RotateSecret,
    responses(
        (status = 200, description = "The subscription with its new secret", body = SubscriptionView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 422, description = "Invalid field value; `code` and `message` name the field", body = ErrorBody),
    ))]
pub(super) async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson,
) -> Result<Json<SubscriptionView>, ApiError> {
    caller.check_tenant(&tenant)?;
    let pool = state.db.pool()?;
    let keyring = state.keyring();
    let overlap = chrono::Duration::from_std(state.config.api.secret_rotation_overlap)
        .unwrap_or_else(|_| chrono::Duration::hours(24));
    let mut secret = String::new();
    let row = subscriptions::modify(pool, &tenant, &id, |row| {
        let scheme: SignatureScheme =
            serde_json::from_value(row.signature.clone()).unwrap_or_default();
        // A generated `whsec_` secret fits every scheme.
        secret = match body.get("secret").filter(|v| !v.is_null()) {
            Some(given) => validate::secret(&scheme, given)?,
            None => generate_secret(),
        };
        let new = views::seal_secret(keyring, &row.id, &secret)?;
        let old = std::mem::replace(&mut row.secret_sealed, new);
        row.previous_secret_sealed = Some(old);
        row.previous_secret_expires_at = Some(Utc::now() + overlap);
        Ok::<_, ApiError>(())
    })
    .await?
    .ok_or_else(|| ApiError::not_found("subscription", &id))?;
    state
        .notifier
        .announce(Announcement::of_row(&row, keyring)?)
        .await;
    Ok(Json(views::subscription(keyring, &row, Some(&secret))?))
}

/// The body of a test send, for the OpenAPI document (read by
/// `validate::event_type`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct TestSend {
    /// The sample's type; its catalogue `example` is the sample's `data`.
    event_type: String,
}

/// The body of a rotation, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct RotateSecret {
    /// A secret of your own; generated when absent.
    secret: Option<String>,
}
