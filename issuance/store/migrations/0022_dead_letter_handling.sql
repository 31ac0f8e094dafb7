-- What an operator did about a dead letter. A dead letter is OPEN until it is re-driven (its record published
-- again, repaired or as it was, to its source topic) or handled (closed without a re-drive, with a reason).
-- Every re-drive is kept, with the position of the new record, so that a second one is visible and refused
-- unless asked for. The nightly ignores these columns: the re-driven record is a new record of the topic.
ALTER TABLE dead_letters
    ADD COLUMN status text NOT NULL DEFAULT 'OPEN' CHECK (status IN ('OPEN', 'REDRIVEN', 'HANDLED')),
    ADD COLUMN closed_by text,
    ADD COLUMN closed_at timestamptz,
    ADD COLUMN handled_reason text,  -- written by an operator; never personal data (the command refuses long digit runs)
    ADD CONSTRAINT dead_letters_closed CHECK ((status = 'OPEN') = (closed_at IS NULL AND closed_by IS NULL)),
    ADD CONSTRAINT dead_letters_handled_reason CHECK ((status = 'HANDLED') = (handled_reason IS NOT NULL));

CREATE INDEX dead_letters_open ON dead_letters (id) WHERE status = 'OPEN';

CREATE TABLE dead_letter_redrives (
    id                bigserial PRIMARY KEY,
    dead_letter_id    bigint NOT NULL REFERENCES dead_letters (id),
    operator          text NOT NULL,
    at                timestamptz NOT NULL DEFAULT now(),
    repaired          boolean NOT NULL,   -- published from a repaired record, not the original bytes
    record_id         text,               -- the application or agreement id of the published record
    topic             text NOT NULL,
    topic_partition   integer NOT NULL,
    topic_offset      bigint NOT NULL,
    UNIQUE (topic, topic_partition, topic_offset)
);
CREATE INDEX dead_letter_redrives_dead_letter ON dead_letter_redrives (dead_letter_id);
