//! A subscription as the shape of its deliveries. One rule for every
//! caller: a row whose stored scheme or headers do not parse is an error
//! (the api validated both on the way in, so it means a damaged row), never
//! silently signed with the default scheme.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hookline_proto::{EndpointPolicy, SubscriptionShape};
use hookline_render::{DeliveryOptions, Ordering};
use hookline_signature::SignatureScheme;

use crate::subscriptions::SubscriptionRow;

/// Why a row cannot be delivered as stored.
#[derive(Debug, thiserror::Error)]
pub enum BadRow {
    /// The `signature` column is not a scheme this version knows.
    #[error("subscription {id}: stored signature scheme: {reason}")]
    Scheme {
        /// The subscription.
        id: String,
        /// What did not parse.
        reason: String,
    },
    /// The `options` column does not parse.
    #[error("subscription {id}: stored options: {reason}")]
    Options {
        /// The subscription.
        id: String,
        /// What did not parse.
        reason: String,
    },
    /// The clear `headers` column (rows from before sealing) is not an
    /// object of strings.
    #[error("subscription {id}: stored headers: {reason}")]
    Headers {
        /// The subscription.
        id: String,
        /// What did not parse.
        reason: String,
    },
}

/// The shape, plus the static headers of a row written before header
/// sealing and not yet re-sealed by the api: fanout (which holds no key)
/// carries them as before, the api seals them.
#[derive(Debug, Clone)]
pub struct Shape {
    /// URL, scheme and sealed credentials.
    pub shape: SubscriptionShape,
    /// Clear headers of a legacy row; empty otherwise.
    pub legacy_headers: BTreeMap<String, String>,
}

/// The sealed secrets a delivery is signed with now: the current one, and
/// the rotated-out one while its overlap lasts (newest first). They travel
/// sealed; only the deliverer opens them.
pub fn sealed_signing_secrets(row: &SubscriptionRow, now: DateTime<Utc>) -> Vec<Bytes> {
    let mut secrets = vec![Bytes::from(row.secret_sealed.clone())];
    if let (Some(previous), Some(expires)) =
        (&row.previous_secret_sealed, row.previous_secret_expires_at)
    {
        if expires > now {
            secrets.push(Bytes::from(previous.clone()));
        }
    }
    secrets
}

/// Where and how `row` delivers at `now`.
pub fn shape(row: &SubscriptionRow, now: DateTime<Utc>) -> Result<Shape, BadRow> {
    let scheme: SignatureScheme =
        serde_json::from_value(row.signature.clone()).map_err(|e| BadRow::Scheme {
            id: row.id.clone(),
            reason: e.to_string(),
        })?;
    let legacy_headers = match &row.headers_sealed {
        Some(_) => BTreeMap::new(),
        None => serde_json::from_value(row.headers.clone()).map_err(|e| BadRow::Headers {
            id: row.id.clone(),
            reason: e.to_string(),
        })?,
    };
    let options = DeliveryOptions::from_stored(&row.options).map_err(|e| BadRow::Options {
        id: row.id.clone(),
        reason: e.to_string(),
    })?;
    Ok(Shape {
        shape: SubscriptionShape {
            policy: endpoint_policy(&options),
            url: row.url.clone(),
            signature: Some(hookline_proto::signature::to_proto(&scheme)),
            sealed_secrets: sealed_signing_secrets(row, now),
            sealed_headers: row
                .headers_sealed
                .clone()
                .map(Bytes::from)
                .unwrap_or_default(),
        },
        legacy_headers,
    })
}

/// The options that give a subscription a queue of its own, as tasks and
/// control messages carry them; `None` for the shared queues.
pub fn endpoint_policy(options: &DeliveryOptions) -> Option<EndpointPolicy> {
    let policy = EndpointPolicy {
        fifo: options.ordering == Some(Ordering::Fifo),
        rate_per_second: options.rate_limit.map_or(0, |r| r.per_second),
        batch_max_events: options.batch.as_ref().map_or(0, |b| b.max_events),
        batch_max_wait_ms: options.batch.as_ref().map_or(0, |b| {
            // Validated by the api; a damaged value waits the longest.
            let wait = hookline_config::parse_duration(&b.max_wait)
                .unwrap_or(hookline_render::BatchOption::MAX_WAIT);
            wait.as_millis().min(u32::MAX as u128) as u32
        }),
    };
    policy.is_active().then_some(policy)
}
