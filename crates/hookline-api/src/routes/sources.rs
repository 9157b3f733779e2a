//! Inbound webhooks: a tenant creates a source and gets a URL that any
//! system may POST to; ingest turns each request into an event of the
//! source's tenant and type. The URL's token is shown once and stored as
//! its SHA-256; ingest learns the sources through [`feed`] and the
//! `Sources` control message, so it never reads PostgreSQL.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::Utc;
use hookline_model::{ids, sealed};
use hookline_signature::SignatureScheme;
use rand::rngs::OsRng;
use rand::RngCore;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::openapi::{SOURCE, SOURCES, SOURCE_FEED, SOURCE_REQUESTS};
use super::views::{self, List};
use crate::auth::{hash_token, Caller};
use crate::control::Announcement;
use crate::cursor::Page;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::store::sources::{self, SourceRow};
use crate::validate;

/// The path under ingest's public URL that serves sources.
const INBOUND_PATH: &str = "/v1/in/";
/// Characters of the token kept in clear to tell URLs apart.
const PREFIX_CHARS: usize = 6;

/// A source as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Source)]
pub(crate) struct SourceView {
    /// `src_…`.
    id: String,
    /// A label for people.
    name: String,
    /// The type of every event this source makes.
    #[schema(example = "form.submitted")]
    event_type: String,
    /// Where senders POST; only in the answer to the create, since only
    /// the token's hash is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "https://hooks.example.com/v1/in/hlin_3q2Z…")]
    url: Option<String>,
    /// The URL with all but the token's first characters elided, to tell
    /// sources apart in a list.
    #[schema(example = "https://hooks.example.com/v1/in/hlin_3q…")]
    url_hint: String,
    /// How senders must sign; null when requests are not verified.
    #[schema(value_type = Option<Object>, example = json!({"scheme": "standard", "secret": "whsec_…"}))]
    verify: Option<Value>,
    /// RFC 3339 UTC with milliseconds.
    created_at: String,
    /// When ingest last answered a request to this URL; null: never.
    last_request_at: Option<String>,
    /// What it answered then (`202`, `401`, …).
    last_status: Option<i32>,
}

/// One request ingest answered at a source.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SourceRequest)]
pub(crate) struct RequestView {
    /// `sreq_…`.
    id: String,
    /// RFC 3339 UTC with milliseconds.
    received_at: String,
    /// The HTTP status ingest answered.
    #[schema(example = 401)]
    status: i32,
    /// The error code of a refusal (`signature_mismatch`, …); null on 202.
    #[schema(example = "signature_mismatch")]
    reason: Option<String>,
    /// The event it made, for a 202.
    event_id: Option<String>,
}

/// One entry of the feed ingest loads: what it needs to serve the URL.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SourceFeedEntry)]
pub(crate) struct FeedEntry {
    /// `src_…`.
    id: String,
    /// The tenant of its events.
    tenant: String,
    /// The type of its events.
    event_type: String,
    /// Hex SHA-256 of the URL token.
    token_hash: String,
    /// The signature scheme, without the secret; null: no verification.
    #[schema(value_type = Option<Object>)]
    verify: Option<Value>,
    /// Base64 of the verification secret as sealed with `api.secret_key`:
    /// ingest opens it with the same keyring, so it never crosses in clear.
    sealed_secret: Option<String>,
}

/// The body of a create, for the OpenAPI document.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct SourceFields {
    /// Up to 200 characters.
    name: Option<String>,
    /// An exact event type (no wildcard).
    #[schema(example = "form.submitted")]
    event_type: String,
    /// null, or a signature object (as a subscription's) plus `secret`
    /// (generated when absent); requests that do not verify are `401`.
    #[schema(value_type = Option<Object>, example = json!({"scheme": "hmac", "header": "X-Signature", "encoding": "hex", "prefix": "sha256=", "secret": "a-secret-the-sender-has"}))]
    verify: Option<()>,
}

/// A fresh URL token: `hlin_` and 32 random bytes (256 bits), URL-safe.
fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!("hlin_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A field validator's refusal, under `verify`'s own code and name.
fn under_verify(separator: &'static str) -> impl Fn(ApiError) -> ApiError {
    move |e| match e {
        ApiError::Invalid { message, .. } => {
            ApiError::invalid("invalid_verify", format!("verify{separator}{message}"))
        }
        other => other,
    }
}

/// `verify` of a create: the scheme (stored in clear, it is no secret)
/// and the secret (sealed). A missing secret is generated, so a sender
/// can be given one.
fn verify_fields(value: Option<&Value>) -> Result<Option<(SignatureScheme, String)>, ApiError> {
    let object = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(object)) => object,
        Some(_) => {
            return Err(ApiError::invalid(
                "invalid_verify",
                "verify must be null or a signature object with an optional secret",
            ))
        }
    };
    let mut scheme_fields: Map<String, Value> = object.clone();
    let secret = scheme_fields.remove("secret");
    let scheme = validate::signature(&Value::Object(scheme_fields)).map_err(under_verify(": "))?;
    let secret = match secret {
        None | Some(Value::Null) => hookline_signature::generate_secret(),
        Some(value) => validate::secret(&scheme, &value).map_err(under_verify("."))?,
    };
    Ok(Some((scheme, secret)))
}

impl AppState {
    /// `<ingest.public_url>/v1/in/` and what follows.
    fn inbound_url(&self, rest: &str) -> String {
        format!("{}{INBOUND_PATH}{rest}", self.config.ingest_public_url)
    }
}

/// The view of `row`; `token` only right after the create, `secret` when
/// the caller may see it.
fn view(
    state: &AppState,
    row: &SourceRow,
    token: Option<&str>,
    with_secret: bool,
) -> Result<SourceView, ApiError> {
    let verify = match (&row.verify, &row.secret_sealed) {
        (Some(Value::Object(scheme)), Some(sealed_secret)) => {
            let mut shown = scheme.clone();
            if with_secret {
                let secret = state
                    .keyring()
                    .open_string(&sealed::source_secret(&row.id), sealed_secret)
                    .map_err(views::unopenable)?;
                shown.insert("secret".into(), Value::String(secret));
            }
            Some(Value::Object(shown))
        }
        (other, _) => other.clone(),
    };
    Ok(SourceView {
        id: row.id.clone(),
        name: row.name.clone(),
        event_type: row.event_type.clone(),
        url: token.map(|token| state.inbound_url(token)),
        url_hint: state.inbound_url(&format!("{}…", row.token_prefix)),
        verify,
        created_at: views::timestamp(row.created_at),
        last_request_at: row.last_request_at.map(views::timestamp),
        last_status: row.last_status,
    })
}

/// `POST /v1/tenants/{tenant}/sources`: `201` with the URL, shown once.
#[utoipa::path(post, path = SOURCES, operation_id = "createSource",
    summary = "Create an inbound webhook URL that turns requests into events; the URL is shown once",
    request_body = SourceFields,
    responses(
        (status = 201, description = "The source, with its URL", body = SourceView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 409, description = "limit_reached: api.max_sources_per_tenant", body = ErrorBody),
        (status = 422, description = "Invalid field value; `code` and `message` name the field", body = ErrorBody),
    ))]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(body): ApiJson,
) -> Result<(StatusCode, Json<SourceView>), ApiError> {
    caller.check_tenant(&tenant)?;
    let name = match body.get("name") {
        None | Some(Value::Null) => String::new(),
        Some(value) => validate::name(value)?,
    };
    let event_type = validate::event_type(body.get("event_type"))?;
    let verify = verify_fields(body.get("verify"))?;
    let id = ids::new_id("src");
    let token = generate_token();
    let (scheme, secret_sealed) = match &verify {
        Some((scheme, secret)) => (
            Some(serde_json::to_value(scheme).unwrap_or_default()),
            Some(
                state
                    .keyring()
                    .seal(&sealed::source_secret(&id), secret.as_bytes())
                    .map_err(views::unsealable)?,
            ),
        ),
        None => (None, None),
    };
    let row = SourceRow {
        id,
        tenant: tenant.clone(),
        name,
        event_type,
        token_hash: hash_token(&token),
        token_prefix: token.chars().take("hlin_".len() + PREFIX_CHARS).collect(),
        verify: scheme,
        secret_sealed,
        created_at: Utc::now(),
        last_request_at: None,
        last_status: None,
    };
    let max = state.config.api.max_sources_per_tenant;
    let created = sources::insert(state.db.pool()?, &row, max)
        .await?
        .ok_or_else(|| ApiError::Conflict {
            code: "limit_reached",
            message: format!("tenant `{tenant}` already has the maximum of {max} sources"),
        })?;
    state
        .notifier
        .announce(Announcement::sources(&tenant, &created.id))
        .await;
    Ok((
        StatusCode::CREATED,
        Json(view(&state, &created, Some(&token), true)?),
    ))
}

/// `GET /v1/tenants/{tenant}/sources`: oldest first, secrets left out.
#[utoipa::path(get, path = SOURCES, operation_id = "listSources", summary = "List a tenant's sources",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Items per page; 50 unless given"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of sources", body = List<SourceView>),
        (status = 422, description = "Invalid limit or cursor", body = ErrorBody),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(tenant): ApiPath<String>,
    query: ApiQuery,
) -> Result<Json<List<SourceView>>, ApiError> {
    caller.check_tenant(&tenant)?;
    let page = Page::parse(query.get("limit"), query.get("cursor"))?;
    let mut rows = sources::list(state.db.pool()?, Some(&tenant), &page).await?;
    let next = page.finish(&mut rows, sources::cursor_of);
    let data = rows
        .iter()
        .map(|row| view(&state, row, None, false))
        .collect::<Result<_, _>>()?;
    Ok(Json(views::list(data, next)))
}

/// `GET /v1/tenants/{tenant}/sources/{id}`: with the verification secret.
#[utoipa::path(get, path = SOURCE, operation_id = "getSource", summary = "Get one source (verification secret included)",
    responses((status = 200, description = "The source", body = SourceView)))]
pub(super) async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> Result<Json<SourceView>, ApiError> {
    caller.check_tenant(&tenant)?;
    let row = sources::get(state.db.pool()?, &tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("source", &id))?;
    Ok(Json(view(&state, &row, None, true)?))
}

/// `DELETE /v1/tenants/{tenant}/sources/{id}`: `204`; every ingest answers
/// `404` for its URL within a second.
#[utoipa::path(delete, path = SOURCE, operation_id = "deleteSource", summary = "Delete a source; its URL answers 404 within a second",
    responses((status = 204, description = "Deleted")))]
pub(super) async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.check_tenant(&tenant)?;
    if sources::delete(state.db.pool()?, &tenant, &id).await? {
        state
            .notifier
            .announce(Announcement::sources(&tenant, &id))
            .await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("source", &id))
    }
}

/// `GET /v1/tenants/{tenant}/sources/{id}/requests`: newest first.
#[utoipa::path(get, path = SOURCE_REQUESTS, operation_id = "listSourceRequests",
    summary = "The requests ingest answered at a source, newest first (recorded within a second or so)",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Items per page; 50 unless given"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of requests", body = List<RequestView>),
        (status = 422, description = "Invalid limit or cursor", body = ErrorBody),
    ))]
pub(super) async fn requests(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    query: ApiQuery,
) -> Result<Json<List<RequestView>>, ApiError> {
    caller.check_tenant(&tenant)?;
    let page = Page::parse(query.get("limit"), query.get("cursor"))?;
    let pool = state.db.pool()?;
    if sources::get(pool, &tenant, &id).await?.is_none() {
        return Err(ApiError::not_found("source", &id));
    }
    let mut rows = sources::list_requests(pool, &id, &page).await?;
    let next = page.finish(&mut rows, sources::request_cursor_of);
    let data = rows
        .into_iter()
        .map(|row| RequestView {
            id: row.id,
            received_at: views::timestamp(row.received_at),
            status: row.status,
            reason: row.reason,
            event_id: row.event_id,
        })
        .collect();
    Ok(Json(views::list(data, next)))
}

/// `GET /v1/sources` (admin): every tenant's sources as ingest needs them.
#[utoipa::path(get, path = SOURCE_FEED, operation_id = "sourceFeed",
    summary = "Every source, as ingest loads them (admin token only; secrets stay sealed)",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Items per page; 50 unless given"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of sources", body = List<FeedEntry>),
        (status = 403, description = "Not the admin token", body = ErrorBody),
    ))]
pub(super) async fn feed(
    State(state): State<AppState>,
    caller: Caller,
    query: ApiQuery,
) -> Result<Json<List<FeedEntry>>, ApiError> {
    caller.require_admin("read every source")?;
    let page = Page::parse(query.get("limit"), query.get("cursor"))?;
    let mut rows = sources::list(state.db.pool()?, None, &page).await?;
    let next = page.finish(&mut rows, sources::cursor_of);
    let data = rows
        .into_iter()
        .map(|row| FeedEntry {
            sealed_secret: row.secret_sealed.as_deref().map(|s| STANDARD.encode(s)),
            id: row.id,
            tenant: row.tenant,
            event_type: row.event_type,
            token_hash: row.token_hash,
            verify: row.verify,
        })
        .collect();
    Ok(Json(views::list(data, next)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tokens_carry_256_random_bits() {
        let token = generate_token();
        assert!(token.starts_with("hlin_"));
        assert_eq!(URL_SAFE_NO_PAD.decode(&token[5..]).unwrap().len(), 32);
        assert_ne!(token, generate_token());
    }

    #[test]
    fn verify_takes_a_scheme_and_generates_a_missing_secret() {
        assert!(verify_fields(None).unwrap().is_none());
        assert!(verify_fields(Some(&Value::Null)).unwrap().is_none());
        let (scheme, secret) = verify_fields(Some(&json!({"scheme": "standard"})))
            .unwrap()
            .unwrap();
        assert_eq!(scheme, SignatureScheme::Standard);
        assert!(secret.starts_with("whsec_"));
        let (_, given) = verify_fields(Some(&json!({
            "scheme": "hmac", "header": "X-Signature", "secret": "0123456789abcdef"
        })))
        .unwrap()
        .unwrap();
        assert_eq!(given, "0123456789abcdef");
    }

    #[test]
    fn bad_verify_objects_name_the_field() {
        for bad in [
            json!("standard"),
            json!({"scheme": "rot13"}),
            json!({"scheme": "hmac", "header": "X-Signature", "secret": "short"}),
        ] {
            match verify_fields(Some(&bad)) {
                Err(ApiError::Invalid { code, message }) => {
                    assert_eq!(code, "invalid_verify");
                    assert!(message.starts_with("verify"), "{message}");
                }
                other => panic!("{bad} gave {other:?}"),
            }
        }
    }
}
