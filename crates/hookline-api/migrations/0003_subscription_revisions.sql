-- Every change to where or how a subscription delivers takes a new number
-- from one sequence: tasks carry the number they were built from, control
-- messages the number after the change, and a deliverer re-shapes or drops a
-- task older than the newest change it has read. Recording attempts
-- (last_* columns) is not such a change and keeps the number.
CREATE SEQUENCE subscription_revisions;
ALTER TABLE subscriptions
    ADD COLUMN revision BIGINT NOT NULL DEFAULT nextval('subscription_revisions');

CREATE FUNCTION subscriptions_next_revision() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.revision := nextval('subscription_revisions');
    RETURN NEW;
END
$$;

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
       OR OLD.headers_sealed IS DISTINCT FROM NEW.headers_sealed)
    EXECUTE FUNCTION subscriptions_next_revision();
