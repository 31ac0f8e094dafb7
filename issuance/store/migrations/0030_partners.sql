-- The card's partners: the vendor's return files, the branches' card events, and the branch simulator's own
-- ledger.

-- The branches' CardReceived / CardCollected applied by the bureau, once each. The digest of the event's
-- content tells a re-delivery (same digest: skipped) from an event id used again with other content (a dead
-- letter). Only applied events are recorded: a refused one may come again once the card is where it must be.
CREATE TABLE card_event_inbox (
    event_id      text PRIMARY KEY,
    digest        bytea NOT NULL,            -- SHA-256 of the event's encoding
    record        text NOT NULL,             -- CardReceived or CardCollected
    card_number   text NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now()
);

-- Return files are found by run and vendor (the report, the simulator's "not answered yet").
CREATE INDEX vendor_returns_file ON vendor_returns (run_id, vendor_code);
-- Cards are looked up by number for every vendor line and branch event.
CREATE INDEX IF NOT EXISTS cards_production ON cards (production_run_id, vendor_code)
    WHERE status = 'IN_PRODUCTION';

-- The branch simulator's ledger, kept apart from the bureau's tables in its own schema: a real branch keeps
-- this in its own system. Each message it decides to send is written here first (with its event id and
-- times), then sent, then marked published: a re-run re-sends exactly what was not acknowledged and never
-- decides a second receipt, collection or activation for one card.
CREATE SCHEMA IF NOT EXISTS branch_sim;

CREATE TABLE branch_sim.runs (
    run_no      bigserial PRIMARY KEY,
    seed        bigint NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE branch_sim.cards (
    card_number               text PRIMARY KEY,
    application_id            text NOT NULL,     -- the bureau's NEW_CARD application (from CardDispatched)
    branch_code               text NOT NULL,
    dispatch_event_id         text NOT NULL,
    receipt_event_id          text NOT NULL,
    receipt_payload           bytea NOT NULL,    -- CardReceived as sent (no personal data)
    receipt_published_at      timestamptz,
    collection_event_id       text,
    collection_payload        bytea,             -- CardCollected as sent (no personal data)
    collection_run_no         bigint REFERENCES branch_sim.runs (run_no),
    collection_published_at   timestamptz,
    activation_application_id text,              -- the holder's FINANCIAL_ACTIVATION, when decided
    activation_agreement_id   text,
    activation_channel        text,
    activation_at             timestamptz,       -- submitted_at / signed_at: the same records on a re-send
    activation_published_at   timestamptz,
    created_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX branch_sim_cards_unsent ON branch_sim.cards (card_number)
    WHERE receipt_published_at IS NULL OR (collection_event_id IS NOT NULL AND collection_published_at IS NULL)
       OR (activation_application_id IS NOT NULL AND activation_published_at IS NULL);
