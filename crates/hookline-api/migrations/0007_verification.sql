-- `verification: "challenge"`: such a subscription receives nothing until
-- its endpoint echoes a challenge's token (or the tenant types it in).
-- Every other subscription is verified from its creation.
ALTER TABLE subscriptions
    ADD COLUMN verified BOOLEAN NOT NULL DEFAULT TRUE;

-- The one open challenge of a subscription: a new one replaces it, a
-- verification uses it up. Only the token's SHA-256 is kept; `event_id` is
-- the challenge delivery's id, by which an echoed answer, recorded like any
-- attempt, is matched to it.
CREATE TABLE verification_challenges (
    subscription_id TEXT PRIMARY KEY REFERENCES subscriptions (id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    token_sha256 TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Becoming verified, or unverified again, changes what is delivered: a new
-- revision, so deliverers drop or send the tasks already queued.
DROP TRIGGER subscriptions_revision ON subscriptions;
CREATE TRIGGER subscriptions_revision
    BEFORE UPDATE ON subscriptions
    FOR EACH ROW
    WHEN (OLD.url IS DISTINCT FROM NEW.url
       OR OLD.enabled IS DISTINCT FROM NEW.enabled
       OR OLD.verified IS DISTINCT FROM NEW.verified
       OR OLD.event_types IS DISTINCT FROM NEW.event_types
       OR OLD.secret_sealed IS DISTINCT FROM NEW.secret_sealed
       OR OLD.previous_secret_sealed IS DISTINCT FROM NEW.previous_secret_sealed
       OR OLD.previous_secret_expires_at IS DISTINCT FROM NEW.previous_secret_expires_at
       OR OLD.signature IS DISTINCT FROM NEW.signature
       OR OLD.headers IS DISTINCT FROM NEW.headers
       OR OLD.headers_sealed IS DISTINCT FROM NEW.headers_sealed
       OR OLD.options IS DISTINCT FROM NEW.options)
    EXECUTE FUNCTION subscriptions_next_revision();
