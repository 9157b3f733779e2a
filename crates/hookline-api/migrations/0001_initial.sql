-- Hookline's control-plane schema. Applied by the api at start, in a
-- transaction, under an advisory lock (several api replicas may start at once).

CREATE TABLE subscriptions (
    id                          TEXT PRIMARY KEY,
    tenant                      TEXT NOT NULL,
    name                        TEXT NOT NULL DEFAULT '',
    url                         TEXT NOT NULL,
    event_types                 TEXT[] NOT NULL,
    enabled                     BOOLEAN NOT NULL DEFAULT TRUE,
    -- Secrets are sealed (hookline_model::sealed) with api.secret_key.
    secret_sealed               BYTEA NOT NULL,
    previous_secret_sealed      BYTEA,
    previous_secret_expires_at  TIMESTAMPTZ,
    signature                   JSONB NOT NULL,
    headers                     JSONB NOT NULL DEFAULT '{}'::jsonb,
    last_attempt_at             TIMESTAMPTZ,
    last_status                 TEXT,
    last_response_status        INTEGER,
    last_error                  TEXT,
    created_at                  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_tenant ON subscriptions (tenant, id);

CREATE TABLE attempts (
    id               TEXT PRIMARY KEY,
    tenant           TEXT NOT NULL,
    subscription_id  TEXT NOT NULL,
    delivery_id      TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    attempt          INTEGER NOT NULL,
    at               TIMESTAMPTZ NOT NULL,
    status           TEXT NOT NULL,
    response_status  INTEGER,
    duration_ms      INTEGER NOT NULL,
    error            TEXT,
    test             BOOLEAN NOT NULL DEFAULT FALSE,
    recorded_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX attempts_by_subscription ON attempts (subscription_id, at DESC, id DESC);
CREATE INDEX attempts_by_age ON attempts (at);

CREATE TABLE dead_letters (
    id                    TEXT PRIMARY KEY,
    tenant                TEXT NOT NULL,
    subscription_id       TEXT NOT NULL,
    delivery_id           TEXT NOT NULL,
    event_id              TEXT NOT NULL,
    event_type            TEXT NOT NULL,
    attempts              INTEGER NOT NULL,
    last_response_status  INTEGER,
    last_error            TEXT,
    dead_at               TIMESTAMPTZ NOT NULL,
    -- The encoded DeliveryTask, replayed with the subscription's current URL
    -- and secret.
    task                  BYTEA NOT NULL,
    replay_count          INTEGER NOT NULL DEFAULT 0,
    last_replayed_at      TIMESTAMPTZ
);
CREATE INDEX dead_letters_by_tenant ON dead_letters (tenant, dead_at DESC, id DESC);
-- One dead letter per parked delivery even if the parking message is redelivered.
CREATE UNIQUE INDEX dead_letters_once ON dead_letters (delivery_id, dead_at);

-- Messages nobody could decode, kept for an operator instead of looping.
CREATE TABLE parked_messages (
    id         TEXT PRIMARY KEY,
    queue      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    payload    BYTEA NOT NULL,
    parked_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL,
    -- SHA-256 of the key, hex; the key itself is shown once and never stored.
    key_hash    TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at  TIMESTAMPTZ
);
