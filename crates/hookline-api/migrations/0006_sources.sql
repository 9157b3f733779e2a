-- Inbound webhooks: a URL that any system may POST to, turned by ingest
-- into an event of the source's tenant and type. The URL's token is kept
-- only as its SHA-256 (it is shown once, at create); the verification
-- secret only sealed, like a subscription's.
CREATE TABLE sources (
    id             TEXT PRIMARY KEY,
    tenant         TEXT NOT NULL,
    name           TEXT NOT NULL,
    event_type     TEXT NOT NULL,
    token_hash     TEXT NOT NULL UNIQUE,
    -- The first characters of the token, so a list can tell URLs apart.
    token_prefix   TEXT NOT NULL,
    -- The signature object of `verify`, without its secret; NULL: none.
    verify         JSONB,
    secret_sealed  BYTEA,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX sources_by_tenant ON sources (tenant, created_at, id);

-- The requests ingest saw at each source (status and reason, the event it
-- made), recorded from hookline.source-requests; pruned with the delivery
-- history (api.attempt_retention).
CREATE TABLE source_requests (
    id          TEXT PRIMARY KEY,
    source_id   TEXT NOT NULL,
    tenant      TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    status      INTEGER NOT NULL,
    reason      TEXT,
    event_id    TEXT
);

CREATE INDEX source_requests_by_source ON source_requests (source_id, received_at DESC, id DESC);
CREATE INDEX source_requests_by_time ON source_requests (received_at);

ALTER TABLE sources ADD COLUMN last_request_at TIMESTAMPTZ;
ALTER TABLE sources ADD COLUMN last_status INTEGER;
