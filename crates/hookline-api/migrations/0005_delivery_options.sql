-- A subscription's delivery options (`method`, `body`, `filter`, and later
-- the endpoint-queue policies) as one JSON object, validated by the api and
-- compiled by fanout once per revision. `{}` is the standard delivery.
ALTER TABLE subscriptions
    ADD COLUMN options JSONB NOT NULL DEFAULT '{}';

-- Changing how a subscription delivers is a new revision, like its url.
DROP TRIGGER subscriptions_revision ON subscriptions;
CREATE TRIGGER subscriptions_revision
    BEFORE UPDATE ON subscriptions
    FOR EACH ROW
    WHEN (OLD.url IS DISTINCT FROM NEW.url
       OR OLD.enabled IS DISTINCT FROM NEW.enabled
       OR OLD.event_types IS DISTINCT FROM NEW.event_types
       OR OLD.secret_sealed IS DISTINCT FROM NEW.secret_sealed
       OR OLD.previous_secret_sealed IS DISTINCT FROM NEW.previous_secret_sealed
       OR OLD.previous_secret_expires_at IS DISTINCT FROM NEW.previous_secret_expires_at
       OR OLD.signature IS DISTINCT FROM NEW.signature
       OR OLD.headers IS DISTINCT FROM NEW.headers
       OR OLD.headers_sealed IS DISTINCT FROM NEW.headers_sealed
       OR OLD.options IS DISTINCT FROM NEW.options)
    EXECUTE FUNCTION subscriptions_next_revision();
