-- The system of record. Sensitive values (ID numbers, names, phone numbers, bank account numbers, raw
-- dead-letter payloads) are stored only as AES-GCM envelopes (*_enc, key id inside the envelope) and looked up
-- through HMAC blind indexes (*_key / *_index). Invariants live in constraints.

-- Reference data -------------------------------------------------------------------------------------------

CREATE TABLE issuing_areas (
    area_code     text PRIMARY KEY CHECK (area_code ~ '^[0-9]{6}$'),
    name          text NOT NULL,
    approved      boolean NOT NULL,
    approval_ref  text,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE banks (
    bank_code      text PRIMARY KEY,
    name           text NOT NULL,
    bin            text NOT NULL CHECK (bin ~ '^[0-9]{6,8}$'),
    terms_version  text NOT NULL,
    area_codes     text[] NOT NULL DEFAULT '{}',
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE branches (
    branch_code  text PRIMARY KEY,
    bank_code    text NOT NULL,
    area_code    text NOT NULL,
    name         text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- The person registry: one row per person, keyed by the blind index of the ID number.
CREATE TABLE persons (
    person_key     bytea PRIMARY KEY,
    id_number_enc  bytea NOT NULL,
    name_enc       bytea NOT NULL,
    insured        boolean NOT NULL,
    fingerprint    bytea,                   -- keyed HMAC of (id number, name): detects a change without decrypting
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Cards a person already holds (from the registry); card numbers are not personal data on their own.
CREATE TABLE person_cards (
    card_number       text PRIMARY KEY,
    person_key        bytea NOT NULL REFERENCES persons (person_key),
    bank_code         text NOT NULL,
    status            text NOT NULL CHECK (status IN ('VALID', 'LOST', 'CANCELLED')),
    financial_status  text NOT NULL CHECK (financial_status IN ('INACTIVE', 'ACTIVE')),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX person_cards_person ON person_cards (person_key);

-- Nightly runs -----------------------------------------------------------------------------------------------

CREATE TABLE runs (
    run_id          bigserial PRIMARY KEY,
    business_date   date NOT NULL,
    status          text NOT NULL CHECK (status IN ('PLANNED', 'RUNNING', 'SUCCEEDED', 'FAILED')),
    plan            jsonb NOT NULL,          -- [{topic, partition, start, end}], fixed when the run is created
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    records_read    bigint NOT NULL DEFAULT 0,
    balanced        boolean,
    reconciliation  jsonb,                   -- per run and per branch
    counters        jsonb,                   -- Beam counters per stage and reason
    error           text
);
-- At most one run is in flight at a time; a crashed one is resumed over the same plan.
CREATE UNIQUE INDEX runs_one_open ON runs ((true)) WHERE status IN ('PLANNED', 'RUNNING');

-- Where the next run starts reading, advanced only after a run's writes have committed.
CREATE TABLE checkpoints (
    topic        text NOT NULL,
    partition    integer NOT NULL,
    next_offset  bigint NOT NULL CHECK (next_offset >= 0),
    run_id       bigint REFERENCES runs (run_id),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

-- Applications -----------------------------------------------------------------------------------------------

CREATE TABLE applications (
    application_id      text PRIMARY KEY,
    application_type    text NOT NULL CHECK (application_type IN ('NEW_CARD', 'FINANCIAL_ACTIVATION')),
    branch_code         text NOT NULL,
    bank_code           text NOT NULL,
    channel             text NOT NULL CHECK (channel IN ('COUNTER', 'SELF_SERVICE_TERMINAL')),
    person_key          bytea NOT NULL,
    id_number_enc       bytea NOT NULL,
    name_enc            bytea NOT NULL,
    phone_enc           bytea,
    guardian_id_enc     bytea,
    card_number         text,                -- the existing card, for FINANCIAL_ACTIVATION
    materials           text[] NOT NULL,
    submitted_at        timestamptz NOT NULL,
    area_code           text,                -- the issuing area, from the branch
    state               text NOT NULL CHECK (state IN ('SUBMITTED', 'REJECTED', 'AWAITING_AGREEMENT',
                            'PERSONALIZED', 'ACTIVATION_REQUESTED', 'ACTIVE', 'ACTIVATION_FAILED')),
    reasons             text[] NOT NULL DEFAULT '{}',
    is_open             boolean NOT NULL,    -- counts for DUPLICATE_APPLICATION
    version             integer NOT NULL DEFAULT 1,
    agreement_id        text,
    activation_attempts integer NOT NULL DEFAULT 0,
    first_run_id        bigint REFERENCES runs (run_id),
    last_run_id         bigint REFERENCES runs (run_id),
    source_topic        text,
    source_partition    integer,
    source_offset       bigint,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
-- One open application per person.
CREATE UNIQUE INDEX applications_one_open_per_person ON applications (person_key) WHERE is_open;
CREATE INDEX applications_state ON applications (state);
CREATE INDEX applications_branch_state ON applications (branch_code, state);
CREATE INDEX applications_bank_state ON applications (bank_code, state);
CREATE INDEX applications_person ON applications (person_key);
CREATE INDEX applications_last_run ON applications (last_run_id);

-- Every state change, with its time, stage and reasons.
CREATE TABLE application_history (
    id              bigserial PRIMARY KEY,
    application_id  text NOT NULL REFERENCES applications (application_id),
    at              timestamptz NOT NULL DEFAULT now(),
    from_state      text,
    to_state        text NOT NULL,
    stage           text NOT NULL,           -- verify, agreement, personalize, activation, ...
    reasons         text[] NOT NULL DEFAULT '{}',
    run_id          bigint REFERENCES runs (run_id),
    event_id        text,
    detail          text
);
CREATE INDEX application_history_application ON application_history (application_id, id);
-- A state change caused by one event or one run stage is recorded once, even when re-applied.
CREATE UNIQUE INDEX application_history_once ON application_history (application_id, to_state, stage,
    coalesce(event_id, ''), coalesce(run_id, 0));

CREATE TABLE agreements (
    agreement_id      text PRIMARY KEY,
    application_id    text NOT NULL,
    bank_code         text NOT NULL,
    terms_version     text NOT NULL,
    document_sha256   text NOT NULL CHECK (document_sha256 ~ '^[0-9a-f]{64}$'),
    signed_at         timestamptz NOT NULL,
    channel           text NOT NULL,
    status            text NOT NULL DEFAULT 'PENDING'
                          CHECK (status IN ('PENDING', 'MATCHED', 'INVALID', 'EXPIRED')),
    received_run_id   bigint REFERENCES runs (run_id),
    source_topic      text,
    source_partition  integer,
    source_offset     bigint,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agreements_application ON agreements (application_id);
CREATE INDEX agreements_pending ON agreements (status) WHERE status = 'PENDING';

-- Personalization ------------------------------------------------------------------------------------------

CREATE TABLE cards (
    card_number                 text PRIMARY KEY CHECK (card_number ~ '^[0-9A-Z]{9}$'),
    application_id              text NOT NULL UNIQUE REFERENCES applications (application_id),
    person_key                  bytea NOT NULL,
    card_identification_code    text NOT NULL UNIQUE CHECK (card_identification_code ~ '^[0-9A-F]{32}$'),
    area_code                   text NOT NULL,
    bank_code                   text NOT NULL,
    sequence                    bigint NOT NULL UNIQUE,
    issue_date                  date NOT NULL,
    valid_until                 date NOT NULL,
    spec_version                text NOT NULL DEFAULT '3.00',
    status                      text NOT NULL CHECK (status IN ('IN_PRODUCTION', 'ISSUED_NOT_ACTIVATED',
                                    'ACTIVE', 'LOST_TEMPORARY', 'LOST_FORMAL', 'CANCELLED')),
    run_id                      bigint REFERENCES runs (run_id),
    created_at                  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cards_person ON cards (person_key);

CREATE TABLE bank_accounts (
    application_id      text PRIMARY KEY REFERENCES applications (application_id),
    bank_code           text NOT NULL,
    sequence            bigint NOT NULL,
    account_index       bytea NOT NULL UNIQUE,      -- blind index of the account number
    account_number_enc  bytea NOT NULL,
    card_number         text,                       -- the card the account is linked to
    status              text NOT NULL DEFAULT 'REQUESTED' CHECK (status IN ('REQUESTED', 'OPEN', 'FAILED')),
    run_id              bigint REFERENCES runs (run_id),
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (bank_code, sequence)
);

-- Allocation counters, advanced by a run in one transaction with the numbers it allocates.
CREATE TABLE allocation_counters (
    name        text PRIMARY KEY,            -- 'card', 'account:<bank_code>'
    next_value  bigint NOT NULL CHECK (next_value >= 0)
);

-- Events ---------------------------------------------------------------------------------------------------

-- Written in the same transaction as the state change; a relay publishes and stamps published_at.
CREATE TABLE outbox (
    event_id      text PRIMARY KEY,
    topic         text NOT NULL,
    message_key   bytea,
    payload       bytea NOT NULL,            -- Avro single-object encoding; never carries plaintext PII
    event_type    text NOT NULL,
    run_id        bigint REFERENCES runs (run_id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (created_at) WHERE published_at IS NULL;

-- Processed event ids per consumer: an event is applied at most once.
CREATE TABLE inbox (
    consumer      text NOT NULL,
    event_id      text NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

CREATE TABLE dead_letters (
    id                bigserial PRIMARY KEY,
    source_topic      text NOT NULL,
    source_partition  integer NOT NULL,
    source_offset     bigint NOT NULL,
    stage             text NOT NULL,
    reason            text NOT NULL CHECK (reason IN ('MALFORMED_MESSAGE', 'UNKNOWN_SCHEMA', 'SCHEMA_VIOLATION')),
    detail            text NOT NULL,         -- never contains message content
    payload_enc       bytea NOT NULL,        -- the original bytes, encrypted: they may hold personal data
    branch_code       text,                  -- when it could be read, for per-branch reconciliation
    run_id            bigint REFERENCES runs (run_id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source_topic, source_partition, source_offset)
);
CREATE INDEX dead_letters_reason ON dead_letters (reason);

-- Append-only audit log: who changed what, when.
CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    action     text NOT NULL,
    entity     text NOT NULL,
    entity_id  text NOT NULL,
    detail     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
