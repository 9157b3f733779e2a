//! Endpoint verification (`verification: "challenge"`): a challenge is a
//! real delivery, published for a deliverer to sign and send like any
//! other, whose echoed token the attempt recorder sees; or the tenant types
//! the token in. Until then the subscription is announced as disabled, so
//! fanout matches nothing for it and nothing is queued for later.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use hookline_amqp::names::DELIVERIES_QUEUE;
use hookline_model::{ids, verification};
use hookline_proto::Message as _;
use serde::Serialize;
use utoipa::ToSchema;

use super::openapi::{VERIFICATION, VERIFY};
use super::views::{self, SubscriptionView};
use crate::auth::Caller;
use crate::control::Announcement;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::metrics::Verification;
use crate::state::AppState;
use crate::store::subscriptions::{self, SubscriptionRow};
use crate::store::verification::{self as challenges, By, Taken};

/// The answer to `POST …/verification`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ChallengeSent {
    /// Always `sent`: the broker confirmed the challenge; a deliverer sends
    /// it next, and its attempt appears in history as `webhook.verification`.
    #[schema(example = "sent")]
    status: &'static str,
    /// The challenge delivery's event id (`vch_…`), as history shows it.
    event_id: String,
    /// When its token stops verifying (`api.verification_ttl`).
    expires_at: String,
}

/// The body of `POST …/verify`, for the OpenAPI document.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct TypedToken {
    /// The token of the latest challenge, as the endpoint received it.
    #[schema(example = "hlvt_5f0c…")]
    token: String,
}

/// Opens a new challenge for `row` (the previous token stops verifying) and
/// publishes it with a confirm. `Unavailable` when the broker does not
/// confirm: the subscription then stays unverified until the tenant asks
/// again.
pub(super) async fn issue(
    state: &AppState,
    row: &SubscriptionRow,
) -> Result<ChallengeSent, ApiError> {
    let now = Utc::now();
    let ttl = chrono::Duration::from_std(state.config.api.verification_ttl)
        .unwrap_or_else(|_| chrono::Duration::hours(24));
    let expires_at = now + ttl;
    let token = verification::new_token();
    let event_id = ids::new_id("vch");
    let task = super::task::challenge_task(row, &event_id, &token, state.keyring(), now)?;
    challenges::open(
        state.db.pool()?,
        &row.id,
        &event_id,
        &verification::token_digest(&token),
        expires_at,
    )
    .await?;
    state
        .publisher
        .publish_confirmed(
            "",
            DELIVERIES_QUEUE,
            &task.encode_to_vec(),
            hookline_amqp::protobuf_properties(),
        )
        .await
        .map_err(|error| {
            tracing::warn!(%error, subscription_id = %row.id, "cannot publish a verification challenge");
            ApiError::Unavailable(
                "the broker is unavailable; no challenge was sent, ask again with POST …/verification"
                    .into(),
            )
        })?;
    state.metrics.verification(Verification::Sent);
    tracing::info!(tenant = %row.tenant, subscription_id = %row.id, event_id, "verification challenge sent");
    Ok(ChallengeSent {
        status: "sent",
        event_id,
        expires_at: views::timestamp(expires_at),
    })
}

/// After a create or a change: a subscription that waits for verification
/// gets its challenge now. A broker that does not confirm it leaves the
/// subscription unverified (logged); the change itself stands.
pub(super) async fn challenge_if_waiting(state: &AppState, row: &SubscriptionRow) {
    if row.verified {
        return;
    }
    if let Err(error) = issue(state, row).await {
        tracing::warn!(%error, subscription_id = %row.id, "the subscription waits for verification without a challenge; POST …/verification sends one");
    }
}

/// `POST …/{id}/verification`: a new challenge, with a new token.
#[utoipa::path(post, path = VERIFICATION, operation_id = "sendVerification", summary = "Send a new verification challenge to the endpoint",
    responses(
        (status = 202, description = "The challenge is on its way", body = ChallengeSent),
        (status = 409, description = "verification_not_requested: the subscription has verification \"none\"", body = ErrorBody),
        (status = 429, description = "rate_limited: the tenant's test sends, replays and challenges exceeded api.manual_sends_per_minute", body = ErrorBody),
    ))]
pub(super) async fn resend(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<ChallengeSent>), ApiError> {
    caller.check_tenant(&tenant)?;
    let row = subscriptions::get(state.db.pool()?, &tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("subscription", &id))?;
    if !wants_challenge(&row) {
        return Err(ApiError::Conflict {
            code: "verification_not_requested",
            message: "this subscription has verification \"none\"; PATCH {\"verification\": \"challenge\"} first".into(),
        });
    }
    // A challenge is a real request to the customer's endpoint.
    state.take_manual_send(&tenant)?;
    Ok((StatusCode::ACCEPTED, Json(issue(&state, &row).await?)))
}

/// `POST …/{id}/verify {"token"}`: the token typed in by hand.
#[utoipa::path(post, path = VERIFY, operation_id = "verifySubscription", summary = "Verify a subscription with the token of its latest challenge",
    request_body = TypedToken,
    responses(
        (status = 200, description = "Verified: deliveries start", body = SubscriptionView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 422, description = "invalid_token (wrong, or already used) or token_expired", body = ErrorBody),
        (status = 429, description = "rate_limited: too many wrong tokens for this subscription; Retry-After says when to try again", body = ErrorBody),
    ))]
pub(super) async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson,
) -> Result<Json<SubscriptionView>, ApiError> {
    caller.check_tenant(&tenant)?;
    let token = match body.get("token") {
        Some(serde_json::Value::String(token)) if !token.trim().is_empty() => token.trim(),
        _ => {
            return Err(ApiError::invalid(
                "invalid_token",
                "token is required: the data.token of the latest webhook.verification delivery",
            ))
        }
    };
    // Wrong tries spend the budget; once it is spent every try is refused
    // before it is checked, so guessing is bounded per subscription
    // whoever guesses.
    if let Err(retry_after) = state.wrong_tokens.check(&id) {
        state.metrics.verification(Verification::RateLimited);
        return Err(ApiError::RateLimited {
            message: format!(
                "more than {} wrong verification tokens a minute for this subscription; retry later",
                crate::limits::WRONG_TOKENS_PER_MINUTE
            ),
            retry_after,
        });
    }
    let pool = state.db.pool()?;
    let digest = verification::token_digest(token);
    let mut tx = pool.begin().await?;
    let taken = challenges::take(&mut tx, &tenant, &id, By::TokenSha256(&digest)).await?;
    tx.commit().await?;
    match taken {
        Taken::Verified(row) => {
            state.metrics.verification(Verification::Manual);
            verified(&state, &row).await?;
            Ok(Json(views::subscription(state.keyring(), &row, None)?))
        }
        Taken::Expired => {
            let _ = state.wrong_tokens.take(&id);
            state.metrics.verification(Verification::Expired);
            Err(ApiError::invalid(
                "token_expired",
                "token: this challenge expired (api.verification_ttl); ask for a new one with POST …/verification",
            ))
        }
        Taken::NoMatch => {
            // An unknown id is a 404, as everywhere.
            if subscriptions::get(pool, &tenant, &id).await?.is_none() {
                return Err(ApiError::not_found("subscription", &id));
            }
            let _ = state.wrong_tokens.take(&id);
            state.metrics.verification(Verification::WrongToken);
            Err(ApiError::invalid(
                "invalid_token",
                "token: it is not the token of this subscription's latest challenge, or it was used already",
            ))
        }
    }
}

/// Announces a subscription that has just been verified: fanouts start
/// matching it, deliverers stop dropping its tasks.
async fn verified(state: &AppState, row: &SubscriptionRow) -> Result<(), ApiError> {
    tracing::info!(tenant = %row.tenant, subscription_id = %row.id, "subscription verified");
    state
        .notifier
        .announce(Announcement::of_row(row, state.keyring())?)
        .await;
    Ok(())
}

/// Whether `row` asks for verification by challenge.
fn wants_challenge(row: &SubscriptionRow) -> bool {
    hookline_render::DeliveryOptions::from_stored(&row.options)
        .is_ok_and(|options| options.wants_challenge())
}
