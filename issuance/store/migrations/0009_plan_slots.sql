-- Numbers from the plan: a run reserves one slot per application record of its plan when it is planned (the
-- `slot` counter), and an application's card and account sequences are its slot. The numbers are then known as
-- soon as a record is read, so the Beam workers compute them (and the sealed activation request) in parallel;
-- the final transaction keeps those of the accepted applications. Unused slots leave gaps in the sequences.

-- The first slot of the run's plan (its application records take first_slot, first_slot + 1, ... in plan order).
ALTER TABLE runs ADD COLUMN first_slot bigint;

-- An application keeps its slot: one accepted in a later run (a late agreement) is numbered from it.
ALTER TABLE applications ADD COLUMN slot bigint;

-- Continue after every sequence handed out by the per-counter allocation of earlier versions.
INSERT INTO allocation_counters (name, next_value)
SELECT 'slot', greatest(1, max(next_value)) FROM allocation_counters
ON CONFLICT (name) DO NOTHING;

-- What the Beam workers computed for an application that passed verification.
ALTER TABLE staged_applications
    ADD COLUMN slot bigint,
    ADD COLUMN new_card_number text,            -- NEW_CARD: the card to personalize
    ADD COLUMN card_identification_code text,   -- NEW_CARD
    ADD COLUMN account_index bytea,             -- blind index of the account number
    ADD COLUMN account_number_enc bytea,
    ADD COLUMN request_event_id text,           -- the first activation request (attempt 1)
    ADD COLUMN request_payload bytea;           -- its Avro bytes, sealed (personal data)
