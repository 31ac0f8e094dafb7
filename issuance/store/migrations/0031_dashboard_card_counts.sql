-- The lifecycle funnel and the card backlogs without scanning the cards: like 0006_dashboard_indexes and
-- 0006_dashboard_waiting, a summary maintained exactly by statement-level triggers. One row set per side of
-- the card: the social-security side from `cards` (status), the financial side from `bank_accounts`
-- (status), each counted under its application's area, branch, bank and first run (which never change) and,
-- for the states the report ages, the UTC day the card entered it:
--   card ORDERED, IN_PRODUCTION   the card's last change (ordered, put into a vendor file, or back from a
--                                 failed production)
--   card PRODUCED                 produced_at (the vendor's return file)
--   card AT_BRANCH                received_at (the branch confirmed receipt)
--   financial REQUESTED           created_at (the account opening was first requested)
-- Each side's rows depend only on that table's own row (and the application's fixed dimensions), so the
-- summary stays exact whatever statements the writers use, even one statement changing both tables.

CREATE TABLE dashboard_card_counts (
    area_code     text,
    branch_code   text NOT NULL,
    bank_code     text NOT NULL,
    first_run_id  bigint,
    side          text NOT NULL CHECK (side IN ('card', 'financial')),
    status        text NOT NULL,
    since_day     date,   -- NULL for the states that are not aged
    n             bigint NOT NULL
);

CREATE FUNCTION dashboard_card_since(
    status text, updated_at timestamptz, produced_at timestamptz, received_at timestamptz
) RETURNS date LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (CASE status
        WHEN 'ORDERED' THEN updated_at
        WHEN 'IN_PRODUCTION' THEN updated_at
        WHEN 'PRODUCED' THEN coalesce(produced_at, updated_at)
        WHEN 'AT_BRANCH' THEN coalesce(received_at, updated_at)
    END AT TIME ZONE 'UTC')::date
$$;

CREATE FUNCTION dashboard_account_since(status text, created_at timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE status WHEN 'REQUESTED' THEN (created_at AT TIME ZONE 'UTC')::date END
$$;

CREATE FUNCTION dashboard_cards_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Each branch names only the transition tables its statement kind has.
    IF TG_OP = 'INSERT' THEN
        INSERT INTO dashboard_card_counts
        SELECT a.area_code, a.branch_code, a.bank_code, a.first_run_id, 'card', x.status, x.since_day, sum(x.d)
        FROM (SELECT application_id, status, dashboard_card_since(status, updated_at, produced_at, received_at) AS since_day, 1 AS d FROM dashboard_new) AS x JOIN applications a USING (application_id)
        GROUP BY 1, 2, 3, 4, 6, 7 HAVING sum(x.d) <> 0;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO dashboard_card_counts
        SELECT a.area_code, a.branch_code, a.bank_code, a.first_run_id, 'card', x.status, x.since_day, sum(x.d)
        FROM (SELECT application_id, status, dashboard_card_since(status, updated_at, produced_at, received_at) AS since_day, -1 AS d FROM dashboard_old) AS x JOIN applications a USING (application_id)
        GROUP BY 1, 2, 3, 4, 6, 7 HAVING sum(x.d) <> 0;
    ELSE
        INSERT INTO dashboard_card_counts
        SELECT a.area_code, a.branch_code, a.bank_code, a.first_run_id, 'card', x.status, x.since_day, sum(x.d)
        FROM (SELECT application_id, status, dashboard_card_since(status, updated_at, produced_at, received_at) AS since_day, -1 AS d FROM dashboard_old UNION ALL SELECT application_id, status, dashboard_card_since(status, updated_at, produced_at, received_at) AS since_day, 1 AS d FROM dashboard_new) AS x JOIN applications a USING (application_id)
        GROUP BY 1, 2, 3, 4, 6, 7 HAVING sum(x.d) <> 0;
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION dashboard_accounts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Each branch names only the transition tables its statement kind has.
    IF TG_OP = 'INSERT' THEN
        INSERT INTO dashboard_card_counts
        SELECT a.area_code, a.branch_code, a.bank_code, a.first_run_id, 'financial', x.status, x.since_day, sum(x.d)
        FROM (SELECT application_id, status, dashboard_account_since(status, created_at) AS since_day, 1 AS d FROM dashboard_new) AS x JOIN applications a USING (application_id)
        GROUP BY 1, 2, 3, 4, 6, 7 HAVING sum(x.d) <> 0;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO dashboard_card_counts
        SELECT a.area_code, a.branch_code, a.bank_code, a.first_run_id, 'financial', x.status, x.since_day, sum(x.d)
        FROM (SELECT application_id, status, dashboard_account_since(status, created_at) AS since_day, -1 AS d FROM dashboard_old) AS x JOIN applications a USING (application_id)
        GROUP BY 1, 2, 3, 4, 6, 7 HAVING sum(x.d) <> 0;
    ELSE
        INSERT INTO dashboard_card_counts
        SELECT a.area_code, a.branch_code, a.bank_code, a.first_run_id, 'financial', x.status, x.since_day, sum(x.d)
        FROM (SELECT application_id, status, dashboard_account_since(status, created_at) AS since_day, -1 AS d FROM dashboard_old UNION ALL SELECT application_id, status, dashboard_account_since(status, created_at) AS since_day, 1 AS d FROM dashboard_new) AS x JOIN applications a USING (application_id)
        GROUP BY 1, 2, 3, 4, 6, 7 HAVING sum(x.d) <> 0;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER dashboard_counts_insert AFTER INSERT ON cards
    REFERENCING NEW TABLE AS dashboard_new
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_cards_apply();
CREATE TRIGGER dashboard_counts_update AFTER UPDATE ON cards
    REFERENCING OLD TABLE AS dashboard_old NEW TABLE AS dashboard_new
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_cards_apply();
CREATE TRIGGER dashboard_counts_delete AFTER DELETE ON cards
    REFERENCING OLD TABLE AS dashboard_old
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_cards_apply();

CREATE TRIGGER dashboard_counts_insert AFTER INSERT ON bank_accounts
    REFERENCING NEW TABLE AS dashboard_new
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_accounts_apply();
CREATE TRIGGER dashboard_counts_update AFTER UPDATE ON bank_accounts
    REFERENCING OLD TABLE AS dashboard_old NEW TABLE AS dashboard_new
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_accounts_apply();
CREATE TRIGGER dashboard_counts_delete AFTER DELETE ON bank_accounts
    REFERENCING OLD TABLE AS dashboard_old
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_accounts_apply();

CREATE FUNCTION dashboard_card_counts_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM dashboard_card_counts WHERE side = TG_ARGV[0];
    RETURN NULL;
END;
$$;
CREATE TRIGGER dashboard_counts_truncate AFTER TRUNCATE ON cards
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_card_counts_truncate('card');
CREATE TRIGGER dashboard_counts_truncate AFTER TRUNCATE ON bank_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_card_counts_truncate('financial');

-- Folded together with the other summaries (the dashboard calls this now and then; safe alongside writers).
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
    WITH folded AS (DELETE FROM dashboard_card_counts RETURNING *)
    INSERT INTO dashboard_card_counts
    SELECT area_code, branch_code, bank_code, first_run_id, side, status, since_day, sum(n)
    FROM folded GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING sum(n) <> 0;
$$;

-- Cards and accounts already stored when this migration runs.
INSERT INTO dashboard_card_counts
SELECT a.area_code, a.branch_code, a.bank_code, a.first_run_id, 'card', c.status,
       dashboard_card_since(c.status, c.updated_at, c.produced_at, c.received_at), count(*)
FROM cards c JOIN applications a USING (application_id) GROUP BY 1, 2, 3, 4, 6, 7;
INSERT INTO dashboard_card_counts
SELECT a.area_code, a.branch_code, a.bank_code, a.first_run_id, 'financial', b.status,
       dashboard_account_since(b.status, b.created_at), count(*)
FROM bank_accounts b JOIN applications a USING (application_id) GROUP BY 1, 2, 3, 4, 6, 7;

-- An account is requested before the bank assigns its number (the lifecycle of 0026): no number, no blind
-- index until it is opened. (Idempotent: the same relaxation may also come with the night's own migration.)
ALTER TABLE bank_accounts ALTER COLUMN account_index DROP NOT NULL;
ALTER TABLE bank_accounts ALTER COLUMN account_number_enc DROP NOT NULL;
