-- An event the broker will never take (larger than the largest message, or refused for that record) is set
-- aside instead of published: the relay skips it, so it never blocks the events after it. The reason says what
-- was refused and how large the event was; never any of the event's content.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS set_aside_at timestamptz;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS set_aside_reason text;
ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_set_aside_reason;
ALTER TABLE outbox ADD CONSTRAINT outbox_set_aside_reason
    CHECK ((set_aside_at IS NULL) = (set_aside_reason IS NULL));
CREATE INDEX IF NOT EXISTS outbox_set_aside ON outbox (seq) WHERE set_aside_at IS NOT NULL;
