-- Card personalization after the bank opened the account: the Beam stage stages each card's numbers, dates
-- and vendor here (one row per card, replaced per chunk so a retried bundle never adds a row twice); the
-- final transaction applies them set-based. Emptied with the other staging tables.
CREATE UNLOGGED TABLE staged_cards (
    run_id                    bigint NOT NULL,
    chunk                     integer NOT NULL,   -- the listing's chunk the row was staged from
    application_id            text NOT NULL,
    card_number               text NOT NULL,
    card_identification_code  text NOT NULL,
    sequence                  bigint NOT NULL,
    issue_date                date NOT NULL,
    valid_until               date NOT NULL,
    spec_version              text NOT NULL,
    vendor_code               text,               -- NULL: no vendor makes the cards of its area; it waits
    holder_sex_enc            bytea,              -- sealed: for the chip and the card face
    holder_birth_date_enc     bytea,
    PRIMARY KEY (run_id, application_id)
) WITH (autovacuum_enabled = false);
CREATE INDEX staged_cards_chunk ON staged_cards (run_id, chunk);

-- The holder's sex and birth date as the vendor prints and writes them (read from the ID number when the
-- card is personalized), sealed like every personal field; the vendor file carries these envelopes.
ALTER TABLE cards
    ADD COLUMN holder_sex_enc bytea,
    ADD COLUMN holder_birth_date_enc bytea;
-- A run's vendor files: its cards by vendor.
CREATE INDEX cards_production_run ON cards (production_run_id, vendor_code) WHERE production_run_id IS NOT NULL;
