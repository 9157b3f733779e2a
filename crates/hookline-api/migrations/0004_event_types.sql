-- The event type catalogue: what producers may send and what a settings
-- page lists. `schema` (JSON Schema) is checked against each event's
-- `data`; `example` is the sample of test sends and previews.
CREATE TABLE event_types (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    schema      JSONB,
    example     JSONB,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
