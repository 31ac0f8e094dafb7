-- The nightly batch: run-scoped staging of what the Beam stages produced, applied to the system of record by one
-- final transaction. Staging rows are keyed by (run_id, source topic, partition, offset): a retried bundle
-- replaces its chunk's rows instead of adding to them. Unlogged: a crashed run re-stages from Kafka anyway.

-- When the Beam part of a run finished staging (a resumed run then goes straight to the final transaction).
ALTER TABLE runs ADD COLUMN staged_at timestamptz;

-- The submitter's UTC offset, in seconds: the submission day "in its own offset" decides ages and the
-- agreement window of applications re-examined in later runs.
ALTER TABLE applications ADD COLUMN submitted_utc_offset integer;

-- Events whose Avro payload carries personal data (activation requests, dead letters) are kept as an AES-GCM
-- envelope of the payload; the relay opens it just before publishing.
ALTER TABLE outbox ADD COLUMN payload_encrypted boolean NOT NULL DEFAULT false;

CREATE UNLOGGED TABLE staged_applications (
    run_id                bigint NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    source_topic          text NOT NULL,
    source_partition      integer NOT NULL,
    source_offset         bigint NOT NULL,
    application_id        text NOT NULL,
    application_type      text NOT NULL,
    branch_code           text NOT NULL,
    bank_code             text NOT NULL,
    channel               text NOT NULL,
    person_key            bytea NOT NULL,
    id_number_enc         bytea NOT NULL,
    name_enc              bytea NOT NULL,
    phone_enc             bytea,
    guardian_id_enc       bytea,
    card_number           text,
    materials             text[] NOT NULL,
    submitted_at          timestamptz NOT NULL,
    submitted_utc_offset  integer NOT NULL,
    area_code             text,
    reasons               text[] NOT NULL,     -- verification reasons (empty: passed)
    PRIMARY KEY (run_id, source_topic, source_partition, source_offset)
);
CREATE INDEX staged_applications_id ON staged_applications (run_id, application_id);

CREATE UNLOGGED TABLE staged_agreements (
    run_id            bigint NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    source_topic      text NOT NULL,
    source_partition  integer NOT NULL,
    source_offset     bigint NOT NULL,
    agreement_id      text NOT NULL,
    application_id    text NOT NULL,
    bank_code         text NOT NULL,
    terms_version     text NOT NULL,
    document_sha256   text NOT NULL,
    signed_at         timestamptz NOT NULL,
    channel           text NOT NULL,
    PRIMARY KEY (run_id, source_topic, source_partition, source_offset)
);

CREATE UNLOGGED TABLE staged_dead_letters (
    run_id            bigint NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    source_topic      text NOT NULL,
    source_partition  integer NOT NULL,
    source_offset     bigint NOT NULL,
    stage             text NOT NULL,
    reason            text NOT NULL,
    detail            text NOT NULL,
    payload_enc       bytea NOT NULL,
    branch_code       text,
    PRIMARY KEY (run_id, source_topic, source_partition, source_offset)
);
