-- The party an outbox event is for ("bank:ICBC", "branch:BR-001", "bureau:bureau" for dead letters): the relay
-- authenticates each event to that party (the bureau's channel headers), so it is written with the event.
-- Rows written before this column existed have none: the relay derives it from the topic and the record where
-- it can, and sets the event aside with a reason where it cannot.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS recipient text;
ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_recipient_party;
ALTER TABLE outbox ADD CONSTRAINT outbox_recipient_party
    CHECK (recipient IS NULL OR recipient ~ '^(bureau|branch|bank|vendor):[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$');

-- A dead letter keeps the headers its message came with (Vault-sealed like its payload: a forged message may
-- put anything there), so that a re-drive of the original sends it with its sender's authentication and the
-- dead-letter event can seal them with the excerpt. NULL: kept before headers were, or none.
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS headers_enc bytea;
ALTER TABLE staged_dead_letters ADD COLUMN IF NOT EXISTS headers_enc bytea;
