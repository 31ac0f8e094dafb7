-- Re-sent applications. Each application keeps a keyed digest of its content (HMAC with the blind-index key
-- over the canonical record, so it says nothing about the personal data in it), so that a record repeating an
-- application id is told apart: the same application sent again gets its first decision again; a different
-- application under a used id is a dead letter (APPLICATION_ID_REUSED). Applications stored before this
-- migration have no digest: a record repeating one of their ids counts as a different application.
ALTER TABLE staged_applications ADD COLUMN content_digest bytea;
ALTER TABLE applications ADD COLUMN content_digest bytea;

-- Every re-sent record, with the run that read it and the event that re-issued the decision: the
-- reconciliation counts them (read = ... + re-sent) and an operator can trace each one.
CREATE TABLE resent_applications (
    run_id            bigint NOT NULL REFERENCES runs (run_id),
    source_topic      text NOT NULL,
    source_partition  integer NOT NULL,
    source_offset     bigint NOT NULL,
    application_id    text NOT NULL REFERENCES applications (application_id),
    branch_code       text NOT NULL,
    event_id          text NOT NULL,
    PRIMARY KEY (source_topic, source_partition, source_offset)
);
CREATE INDEX resent_applications_run ON resent_applications (run_id);
