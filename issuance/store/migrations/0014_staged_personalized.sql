-- Personalization leaves the Beam workers. Their two cores are busy reading, verifying and staging, while the
-- final transaction keeps one PostgreSQL backend busy and leaves the other core idle: a helper personalizes the
-- applications that passed verification there, into this table, while the transaction decides the night.
-- One row per staged application id (the first record of a repeated id, the one the run keeps).
CREATE UNLOGGED TABLE staged_personalized (
    run_id                    bigint NOT NULL,
    application_id            text NOT NULL,
    new_card_number           text,             -- NEW_CARD: the card to personalize
    card_identification_code  text,             -- NEW_CARD
    account_index             bytea NOT NULL,   -- blind index of the account number
    account_number_enc        bytea NOT NULL,
    request_event_id          text NOT NULL,    -- the first activation request (attempt 1)
    request_payload           bytea NOT NULL,   -- its Avro bytes, sealed (personal data)
    PRIMARY KEY (run_id, application_id)
);

ALTER TABLE staged_applications
    DROP COLUMN new_card_number,
    DROP COLUMN card_identification_code,
    DROP COLUMN account_index,
    DROP COLUMN account_number_enc,
    DROP COLUMN request_event_id,
    DROP COLUMN request_payload;
