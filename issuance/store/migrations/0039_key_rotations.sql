-- Key rotations at rest (`issuance keys rotate`): one row per rotation and one progress row per column it
-- rewrites, advanced in the same transaction as each batch, so that a killed rotation continues where it
-- stopped. While a blind-index rotation is unfinished the night and the consumers refuse to start: their
-- lookups would mix indexes of the old and the new key.
CREATE TABLE key_rotations (
    rotation_id  bigserial PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('data-key', 'blind-index-key')),
    target_key   text NOT NULL,              -- the data key id, or the new blind-index key's public id
    started_by   text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
-- One unfinished rotation of each kind.
CREATE UNIQUE INDEX key_rotations_one_open ON key_rotations (kind) WHERE finished_at IS NULL;

CREATE TABLE key_rotation_progress (
    rotation_id    bigint NOT NULL REFERENCES key_rotations (rotation_id),
    target_column  text NOT NULL,            -- "table.column" (the first one a pass rewrites)
    position       text[],                   -- primary key of the last row done: the next batch starts after it
    rows_done      bigint NOT NULL DEFAULT 0,
    batches        integer NOT NULL DEFAULT 0,
    finished_at    timestamptz,
    PRIMARY KEY (rotation_id, target_column)
);

-- A person's key is the blind index of the ID number: a new blind-index key changes it, and the cards of the
-- registry follow their person.
ALTER TABLE person_cards
    DROP CONSTRAINT person_cards_person_key_fkey,
    ADD CONSTRAINT person_cards_person_key_fkey FOREIGN KEY (person_key) REFERENCES persons (person_key)
        ON UPDATE CASCADE;
