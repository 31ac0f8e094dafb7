-- The agreement join's outcome, staged by the night's Beam stage (`pipelines/transforms/agreement_join.py`):
-- one row per application the join decides (a surviving application of the run, or one still awaiting its
-- agreement from an earlier night), with the decision the domain rule gives it over tonight's and the pending
-- agreements. Each range of application ids replaces its earlier rows, so a retried bundle never adds a row
-- twice; the final transaction applies the rows set-based. Emptied with the other staging tables.
CREATE UNLOGGED TABLE staged_agreement_decisions (
    run_id          bigint NOT NULL,
    application_id  text NOT NULL,
    is_new          boolean NOT NULL,   -- read tonight (false: awaiting since an earlier night)
    state           text NOT NULL,      -- ACCEPTED, AWAITING_AGREEMENT or REJECTED
    reasons         text[] NOT NULL,    -- the rejection's reason codes (sorted), else empty
    agreement_id    text,               -- the agreement accepted on
    PRIMARY KEY (run_id, application_id)
) WITH (autovacuum_enabled = false);

REVOKE ALL ON staged_agreement_decisions FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON staged_agreement_decisions TO issuance_nightly;
GRANT SELECT ON staged_agreement_decisions TO issuance_operator;
