-- What the bureau dashboard reads, kept fast at millions of applications.
--
-- Counting 1,000,000 applications by state on every page view costs hundreds of milliseconds, so two
-- small summary tables hold the counts, maintained exactly by statement-level triggers on `applications`:
-- each INSERT / UPDATE / DELETE (COPY and ON CONFLICT included) appends one row per changed group with the
-- signed difference, in the same transaction as the change. Readers sum the rows of a group, so the counts
-- always equal a count(*) over `applications` in the same snapshot (what `issuance report` prints).
-- Appending instead of updating one row per group means concurrent writers never wait on each other.
-- dashboard_compact_counts() folds the appended rows together; the dashboard calls it now and then, and any
-- writer may; it is safe to run concurrently with writers and with itself.

CREATE TABLE dashboard_state_counts (
    area_code         text,
    branch_code       text NOT NULL,
    bank_code         text NOT NULL,
    first_run_id      bigint,
    application_type  text NOT NULL,
    state             text NOT NULL,
    -- for REJECTED: 'AGREEMENT' when every reason is about the agreement (it passed verification),
    -- else 'VERIFICATION'; '' for the other states.
    rejected_at       text NOT NULL,
    n                 bigint NOT NULL
);

CREATE TABLE dashboard_reason_counts (
    area_code     text,
    branch_code   text NOT NULL,
    bank_code     text NOT NULL,
    first_run_id  bigint,
    reason        text NOT NULL,
    n             bigint NOT NULL
);

CREATE FUNCTION dashboard_rejected_at(state text, reasons text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN state <> 'REJECTED' THEN ''
        WHEN reasons <@ ARRAY['AGREEMENT_MISMATCH', 'AGREEMENT_TERMS_OUTDATED', 'AGREEMENT_EXPIRED']
             AND cardinality(reasons) > 0 THEN 'AGREEMENT'
        ELSE 'VERIFICATION'
    END
$$;

-- One function serves the three triggers; a trigger without a transition table never touches it.
CREATE FUNCTION dashboard_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO dashboard_state_counts
        SELECT area_code, branch_code, bank_code, first_run_id, application_type, state,
               dashboard_rejected_at(state, reasons), count(*)
        FROM dashboard_new GROUP BY 1, 2, 3, 4, 5, 6, 7;
        INSERT INTO dashboard_reason_counts
        SELECT area_code, branch_code, bank_code, first_run_id, r, count(*)
        FROM dashboard_new, unnest(reasons) AS r WHERE state = 'REJECTED' GROUP BY 1, 2, 3, 4, 5;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO dashboard_state_counts
        SELECT area_code, branch_code, bank_code, first_run_id, application_type, state,
               dashboard_rejected_at(state, reasons), -count(*)
        FROM dashboard_old GROUP BY 1, 2, 3, 4, 5, 6, 7;
        INSERT INTO dashboard_reason_counts
        SELECT area_code, branch_code, bank_code, first_run_id, r, -count(*)
        FROM dashboard_old, unnest(reasons) AS r WHERE state = 'REJECTED' GROUP BY 1, 2, 3, 4, 5;
    ELSE
        -- Most updates leave every counted column alone: only net differences are appended.
        INSERT INTO dashboard_state_counts
        SELECT area_code, branch_code, bank_code, first_run_id, application_type, state, rejected_at, sum(d)
        FROM (
            SELECT area_code, branch_code, bank_code, first_run_id, application_type, state,
                   dashboard_rejected_at(state, reasons) AS rejected_at, -1 AS d FROM dashboard_old
            UNION ALL
            SELECT area_code, branch_code, bank_code, first_run_id, application_type, state,
                   dashboard_rejected_at(state, reasons), 1 FROM dashboard_new
        ) AS changes
        GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING sum(d) <> 0;
        INSERT INTO dashboard_reason_counts
        SELECT area_code, branch_code, bank_code, first_run_id, r, sum(d)
        FROM (
            SELECT area_code, branch_code, bank_code, first_run_id, r, -1 AS d
            FROM dashboard_old, unnest(reasons) AS r WHERE state = 'REJECTED'
            UNION ALL
            SELECT area_code, branch_code, bank_code, first_run_id, r, 1
            FROM dashboard_new, unnest(reasons) AS r WHERE state = 'REJECTED'
        ) AS changes
        GROUP BY 1, 2, 3, 4, 5 HAVING sum(d) <> 0;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER dashboard_counts_insert AFTER INSERT ON applications
    REFERENCING NEW TABLE AS dashboard_new
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_counts_apply();
CREATE TRIGGER dashboard_counts_update AFTER UPDATE ON applications
    REFERENCING OLD TABLE AS dashboard_old NEW TABLE AS dashboard_new
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_counts_apply();
CREATE TRIGGER dashboard_counts_delete AFTER DELETE ON applications
    REFERENCING OLD TABLE AS dashboard_old
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_counts_apply();

CREATE FUNCTION dashboard_counts_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM dashboard_state_counts;
    DELETE FROM dashboard_reason_counts;
    RETURN NULL;
END;
$$;
CREATE TRIGGER dashboard_counts_truncate AFTER TRUNCATE ON applications
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_counts_truncate();

-- Rows deleted here are only those visible to this statement: rows appended concurrently stay, so the sums
-- never change.
CREATE FUNCTION dashboard_compact_counts() RETURNS void LANGUAGE sql AS $$
    WITH folded AS (DELETE FROM dashboard_state_counts RETURNING *)
    INSERT INTO dashboard_state_counts
    SELECT area_code, branch_code, bank_code, first_run_id, application_type, state, rejected_at, sum(n)
    FROM folded GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING sum(n) <> 0;
    WITH folded AS (DELETE FROM dashboard_reason_counts RETURNING *)
    INSERT INTO dashboard_reason_counts
    SELECT area_code, branch_code, bank_code, first_run_id, reason, sum(n)
    FROM folded GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) <> 0;
$$;

-- Applications already stored when this migration runs.
INSERT INTO dashboard_state_counts
SELECT area_code, branch_code, bank_code, first_run_id, application_type, state,
       dashboard_rejected_at(state, reasons), count(*)
FROM applications GROUP BY 1, 2, 3, 4, 5, 6, 7;
INSERT INTO dashboard_reason_counts
SELECT area_code, branch_code, bank_code, first_run_id, r, count(*)
FROM applications, unnest(reasons) AS r WHERE state = 'REJECTED' GROUP BY 1, 2, 3, 4, 5;

-- Backlogs by age: only the waiting applications are indexed, with what the scope and filters read.
CREATE INDEX applications_awaiting_agreement_age ON applications (submitted_at)
    INCLUDE (branch_code, bank_code, area_code, first_run_id) WHERE state = 'AWAITING_AGREEMENT';
CREATE INDEX applications_awaiting_bank_age ON applications (updated_at)
    INCLUDE (branch_code, bank_code, area_code, first_run_id) WHERE state = 'ACTIVATION_REQUESTED';

-- Dead letters of one branch, newest first (branch and bank users see only their branches' letters).
CREATE INDEX dead_letters_branch ON dead_letters (branch_code, id);
CREATE INDEX runs_business_date ON runs (business_date);
