-- Backlogs by age without scanning the waiting applications: at 1,000,000 applications tens of thousands
-- wait at any time, and bucketing them per page view took about 300 ms. Like 0006_dashboard_indexes, a summary
-- maintained exactly by statement-level triggers: waiting applications per day they started waiting (submission
-- for AWAITING_AGREEMENT, the last change for ACTIVATION_REQUESTED), in UTC days.

CREATE TABLE dashboard_waiting_counts (
    area_code     text,
    branch_code   text NOT NULL,
    bank_code     text NOT NULL,
    first_run_id  bigint,
    state         text NOT NULL,
    since_day     date NOT NULL,
    n             bigint NOT NULL
);

CREATE FUNCTION dashboard_waiting_since(state text, submitted_at timestamptz, updated_at timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE state
        WHEN 'AWAITING_AGREEMENT' THEN (submitted_at AT TIME ZONE 'UTC')::date
        WHEN 'ACTIVATION_REQUESTED' THEN (updated_at AT TIME ZONE 'UTC')::date
    END
$$;

CREATE FUNCTION dashboard_waiting_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO dashboard_waiting_counts
        SELECT area_code, branch_code, bank_code, first_run_id, state,
               dashboard_waiting_since(state, submitted_at, updated_at), count(*)
        FROM dashboard_new WHERE state IN ('AWAITING_AGREEMENT', 'ACTIVATION_REQUESTED')
        GROUP BY 1, 2, 3, 4, 5, 6;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO dashboard_waiting_counts
        SELECT area_code, branch_code, bank_code, first_run_id, state,
               dashboard_waiting_since(state, submitted_at, updated_at), -count(*)
        FROM dashboard_old WHERE state IN ('AWAITING_AGREEMENT', 'ACTIVATION_REQUESTED')
        GROUP BY 1, 2, 3, 4, 5, 6;
    ELSE
        INSERT INTO dashboard_waiting_counts
        SELECT area_code, branch_code, bank_code, first_run_id, state, since_day, sum(d)
        FROM (
            SELECT area_code, branch_code, bank_code, first_run_id, state,
                   dashboard_waiting_since(state, submitted_at, updated_at) AS since_day, -1 AS d
            FROM dashboard_old WHERE state IN ('AWAITING_AGREEMENT', 'ACTIVATION_REQUESTED')
            UNION ALL
            SELECT area_code, branch_code, bank_code, first_run_id, state,
                   dashboard_waiting_since(state, submitted_at, updated_at), 1
            FROM dashboard_new WHERE state IN ('AWAITING_AGREEMENT', 'ACTIVATION_REQUESTED')
        ) AS changes
        GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(d) <> 0;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER dashboard_waiting_insert AFTER INSERT ON applications
    REFERENCING NEW TABLE AS dashboard_new
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_waiting_apply();
CREATE TRIGGER dashboard_waiting_update AFTER UPDATE ON applications
    REFERENCING OLD TABLE AS dashboard_old NEW TABLE AS dashboard_new
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_waiting_apply();
CREATE TRIGGER dashboard_waiting_delete AFTER DELETE ON applications
    REFERENCING OLD TABLE AS dashboard_old
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_waiting_apply();

CREATE OR REPLACE FUNCTION dashboard_counts_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM dashboard_state_counts;
    DELETE FROM dashboard_reason_counts;
    DELETE FROM dashboard_waiting_counts;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION dashboard_compact_counts() RETURNS void LANGUAGE sql AS $$
    WITH folded AS (DELETE FROM dashboard_state_counts RETURNING *)
    INSERT INTO dashboard_state_counts
    SELECT area_code, branch_code, bank_code, first_run_id, application_type, state, rejected_at, sum(n)
    FROM folded GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING sum(n) <> 0;
    WITH folded AS (DELETE FROM dashboard_reason_counts RETURNING *)
    INSERT INTO dashboard_reason_counts
    SELECT area_code, branch_code, bank_code, first_run_id, reason, sum(n)
    FROM folded GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) <> 0;
    WITH folded AS (DELETE FROM dashboard_waiting_counts RETURNING *)
    INSERT INTO dashboard_waiting_counts
    SELECT area_code, branch_code, bank_code, first_run_id, state, since_day, sum(n)
    FROM folded GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(n) <> 0;
$$;

INSERT INTO dashboard_waiting_counts
SELECT area_code, branch_code, bank_code, first_run_id, state,
       dashboard_waiting_since(state, submitted_at, updated_at), count(*)
FROM applications WHERE state IN ('AWAITING_AGREEMENT', 'ACTIVATION_REQUESTED')
GROUP BY 1, 2, 3, 4, 5, 6;

-- The summary replaces these: fewer indexes for the nightly batch to maintain.
DROP INDEX applications_awaiting_agreement_age;
DROP INDEX applications_awaiting_bank_age;
