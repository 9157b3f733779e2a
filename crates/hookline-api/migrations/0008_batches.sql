-- `batch`: the events of one batched request share its `webhook-id`, kept
-- on each event's attempt so history shows which request carried it. NULL
-- for events sent alone (every attempt before batching existed).
ALTER TABLE attempts
    ADD COLUMN batch_id TEXT;
