//! `attempts`: delivery history. Written in bulk by the recorder (and once
//! per test send), read newest first by the history route, pruned by
//! retention.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use hookline_proto::{AttemptRecord, AttemptStatus};
use hookline_send::record::status_name;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use super::clean;
use crate::cursor::{Cursor, Page};

/// Longest error excerpt stored, in characters, whatever
/// `delivery.response_excerpt_bytes` the deliverer that sent it was given.
const MAX_ERROR_CHARS: usize = 2000;

/// What one [`write`] did.
#[derive(Debug, Default)]
pub(crate) struct Written {
    /// Rows inserted (redelivered records are skipped, not counted).
    pub inserted: u64,
    /// Subscriptions this write disabled because their receiver answered
    /// 410 Gone.
    pub disabled: Vec<Disabled>,
}

/// A subscription disabled by a 410 Gone answer, to announce.
#[derive(Debug)]
pub(crate) struct Disabled {
    /// The subscription's tenant, for the control message.
    pub tenant: String,
    /// The subscription that answered `410 Gone`.
    pub id: String,
    /// Its revision after the disable; deliverers drop tasks older than it.
    pub revision: i64,
}

fn at_of(record: &AttemptRecord) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(record.at_ms).unwrap_or_else(Utc::now)
}

fn int(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// The records as one array per column, for `UNNEST`: one statement and
/// fourteen parameters however many records a batch holds.
#[derive(Default)]
struct Columns {
    id: Vec<String>,
    tenant: Vec<String>,
    subscription_id: Vec<String>,
    delivery_id: Vec<String>,
    event_id: Vec<String>,
    event_type: Vec<String>,
    attempt: Vec<i32>,
    at: Vec<DateTime<Utc>>,
    status: Vec<String>,
    response_status: Vec<Option<i32>>,
    duration_ms: Vec<i32>,
    error: Vec<Option<String>>,
    test: Vec<bool>,
    batch_id: Vec<Option<String>>,
}

impl Columns {
    fn of(records: &[AttemptRecord]) -> Self {
        let mut c = Columns::default();
        for r in records {
            c.id.push(clean(&r.id, 128));
            c.tenant.push(clean(&r.tenant, 128));
            c.subscription_id.push(clean(&r.subscription_id, 128));
            c.delivery_id.push(clean(&r.delivery_id, 128));
            c.event_id.push(clean(&r.event_id, 256));
            c.event_type.push(clean(&r.event_type, 256));
            c.attempt.push(int(r.attempt));
            c.at.push(at_of(r));
            c.status.push(status_name(r.status()).to_string());
            c.response_status
                .push((r.response_status != 0).then(|| int(r.response_status)));
            c.duration_ms.push(int(r.duration_ms));
            c.error
                .push((!r.error.is_empty()).then(|| clean(&r.error, MAX_ERROR_CHARS)));
            c.test.push(r.test);
            c.batch_id
                .push((!r.batch_id.is_empty()).then(|| clean(&r.batch_id, 128)));
        }
        c
    }

    /// Index of each subscription's newest record: `UPDATE … FROM` with two
    /// matching rows would pick one arbitrarily.
    fn newest_per_subscription(&self) -> Vec<usize> {
        let mut newest: HashMap<(&str, &str), usize> = HashMap::new();
        for i in 0..self.id.len() {
            let entry = newest
                .entry((self.tenant[i].as_str(), self.subscription_id[i].as_str()))
                .or_insert(i);
            if self.at[*entry] < self.at[i] {
                *entry = i;
            }
        }
        newest.into_values().collect()
    }
}

/// Inserts `records` in one statement (a redelivered record is skipped by
/// its id), moves each subscription's `last_*` to its newest attempt, and
/// disables subscriptions whose receiver answered 410 Gone. The caller owns
/// the transaction.
pub(crate) async fn write(
    conn: &mut PgConnection,
    records: &[AttemptRecord],
) -> Result<Written, sqlx::Error> {
    if records.is_empty() {
        return Ok(Written::default());
    }
    let c = Columns::of(records);
    let inserted = sqlx::query(
        "INSERT INTO attempts (id, tenant, subscription_id, delivery_id, event_id, event_type, attempt, at, \
             status, response_status, duration_ms, error, test, batch_id) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
             $7::int4[], $8::timestamptz[], $9::text[], $10::int4[], $11::int4[], $12::text[], $13::bool[], \
             $14::text[]) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&c.id)
    .bind(&c.tenant)
    .bind(&c.subscription_id)
    .bind(&c.delivery_id)
    .bind(&c.event_id)
    .bind(&c.event_type)
    .bind(&c.attempt)
    .bind(&c.at)
    .bind(&c.status)
    .bind(&c.response_status)
    .bind(&c.duration_ms)
    .bind(&c.error)
    .bind(&c.test)
    .bind(&c.batch_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();

    let newest = c.newest_per_subscription();
    let strings = |column: &Vec<String>| {
        newest
            .iter()
            .map(|&i| column[i].clone())
            .collect::<Vec<_>>()
    };
    sqlx::query(
        "UPDATE subscriptions s SET last_attempt_at = u.at, last_status = u.status, \
             last_response_status = u.response_status, last_error = u.error \
         FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::int4[], $6::text[]) \
             AS u(tenant, id, at, status, response_status, error) \
         WHERE s.tenant = u.tenant AND s.id = u.id \
             AND (s.last_attempt_at IS NULL OR s.last_attempt_at <= u.at)",
    )
    .bind(strings(&c.tenant))
    .bind(strings(&c.subscription_id))
    .bind(newest.iter().map(|&i| c.at[i]).collect::<Vec<_>>())
    .bind(strings(&c.status))
    .bind(newest.iter().map(|&i| c.response_status[i]).collect::<Vec<_>>())
    .bind(newest.iter().map(|&i| c.error[i].clone()).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;

    let gone: Vec<usize> = (0..records.len()).filter(|&i| records[i].gone).collect();
    let mut disabled = Vec::new();
    if !gone.is_empty() {
        let rows = sqlx::query(
            "UPDATE subscriptions s SET enabled = false, updated_at = now() \
             FROM UNNEST($1::text[], $2::text[]) AS g(tenant, id) \
             WHERE s.tenant = g.tenant AND s.id = g.id AND s.enabled \
             RETURNING s.tenant, s.id, s.revision",
        )
        .bind(
            gone.iter()
                .map(|&i| c.tenant[i].clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            gone.iter()
                .map(|&i| c.subscription_id[i].clone())
                .collect::<Vec<_>>(),
        )
        .fetch_all(&mut *conn)
        .await?;
        for row in rows {
            disabled.push(Disabled {
                tenant: row.try_get("tenant")?,
                id: row.try_get("id")?,
                revision: row.try_get("revision")?,
            });
        }
    }
    Ok(Written { inserted, disabled })
}

fn read(row: &PgRow) -> Result<AttemptRecord, sqlx::Error> {
    let status: String = row.try_get("status")?;
    let status = match status.as_str() {
        "succeeded" => AttemptStatus::Succeeded,
        "dead" => AttemptStatus::Dead,
        _ => AttemptStatus::Failed,
    };
    let at: DateTime<Utc> = row.try_get("at")?;
    let response: Option<i32> = row.try_get("response_status")?;
    let duration: i32 = row.try_get("duration_ms")?;
    let attempt: i32 = row.try_get("attempt")?;
    Ok(AttemptRecord {
        schema_version: hookline_proto::SCHEMA_VERSION,
        id: row.try_get("id")?,
        delivery_id: row.try_get("delivery_id")?,
        tenant: row.try_get("tenant")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        subscription_id: row.try_get("subscription_id")?,
        attempt: u32::try_from(attempt).unwrap_or(0),
        at_ms: at.timestamp_millis(),
        status: status as i32,
        response_status: response.and_then(|s| u32::try_from(s).ok()).unwrap_or(0),
        duration_ms: u32::try_from(duration).unwrap_or(0),
        error: row
            .try_get::<Option<String>, _>("error")?
            .unwrap_or_default(),
        gone: false,
        test: row.try_get("test")?,
        traceparent: String::new(),
        challenge: false,
        challenge_echoed: false,
        batch_id: row
            .try_get::<Option<String>, _>("batch_id")?
            .unwrap_or_default(),
    })
}

/// A page of one subscription's attempts, newest first, optionally of one
/// status; one row more than the page to detect a next page.
pub(crate) async fn list(
    pool: &PgPool,
    tenant: &str,
    subscription_id: &str,
    status: Option<&str>,
    page: &Page,
) -> Result<Vec<AttemptRecord>, sqlx::Error> {
    let (before_at, before_id) = page.after_key();
    let rows = sqlx::query(
        "SELECT id, delivery_id, tenant, event_id, event_type, subscription_id, attempt, at, status, \
             response_status, duration_ms, error, test, batch_id \
         FROM attempts WHERE subscription_id = $1 AND tenant = $2 \
             AND ($3::text IS NULL OR status = $3) \
             AND ($4::timestamptz IS NULL OR (at, id) < ($4, $5)) \
         ORDER BY at DESC, id DESC LIMIT $6",
    )
    .bind(subscription_id)
    .bind(tenant)
    .bind(status)
    .bind(before_at)
    .bind(before_id)
    .bind(page.fetch())
    .fetch_all(pool)
    .await?;
    rows.iter().map(read).collect()
}

/// The cursor key of an attempt in [`list`]'s order.
pub(crate) fn cursor_of(record: &AttemptRecord) -> Cursor {
    Cursor {
        at: at_of(record),
        id: record.id.clone(),
    }
}
