-- The bank simulator's own ledger, kept apart from the bureau's tables in its own schema: a real bank keeps
-- this in its core system. Account numbers are encrypted at rest here too (envelope + blind index).

CREATE SCHEMA IF NOT EXISTS bank_sim;

-- Savings accounts the simulated banks opened: at most one per bank and application.
CREATE TABLE bank_sim.accounts (
    bank_code           text NOT NULL,
    application_id      text NOT NULL,
    account_index       bytea NOT NULL,
    account_number_enc  bytea NOT NULL,
    card_number         text,
    request_event_id    text NOT NULL,
    opened_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bank_code, application_id),
    UNIQUE (bank_code, account_index)
);

-- Requests a bank has answered, with the answer kept so that a re-delivered request gets the same answer again.
CREATE TABLE bank_sim.inbox (
    bank_code         text NOT NULL,
    request_event_id  text NOT NULL,
    application_id    text NOT NULL,
    answer_event_id   text NOT NULL UNIQUE,
    answer_type       text NOT NULL CHECK (answer_type IN ('ActivationCompleted', 'ActivationFailed')),
    answer_payload    bytea NOT NULL,           -- Avro single-object encoding, as sent
    processed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bank_code, request_event_id)
);

-- Per-bank account sequences, for requests that do not carry an account number.
CREATE TABLE bank_sim.counters (
    bank_code   text PRIMARY KEY,
    next_value  bigint NOT NULL CHECK (next_value >= 0)
);

-- Bureau side: the report and the consumer look applications up by state and attempt.
CREATE INDEX IF NOT EXISTS application_history_stage ON application_history (stage, to_state);
