-- Retention prunes dead letters and parked messages by age, and history
-- pages filtered by `?status=` need an index of their own.
CREATE INDEX dead_letters_by_age ON dead_letters (dead_at);
CREATE INDEX parked_messages_by_age ON parked_messages (parked_at);
CREATE INDEX attempts_by_subscription_status
    ON attempts (subscription_id, status, at DESC, id DESC);

-- Static header values are sealed like secrets (hookline_model::sealed);
-- `headers` keeps nothing but '{}' once a row is written by this version.
ALTER TABLE subscriptions ADD COLUMN headers_sealed BYTEA;
