-- The lifecycle as practised (issuance/domain/lifecycle.py names every state and transition): the bank opens
-- the account and assigns its number, the vendor personalizes and produces the card, the branch receives it
-- and hands it to its holder, and the holder activates the savings function at the bank.

-- Applications: SUBMITTED, REJECTED, AWAITING_AGREEMENT, ACCEPTED, COMPLETED, FAILED. -----------------------
ALTER TABLE applications DROP CONSTRAINT applications_state_check;
-- A refused request with attempts left, due again in the next night (was ACTIVATION_FAILED and open).
ALTER TABLE applications ADD COLUMN retry_due boolean NOT NULL DEFAULT false;
UPDATE applications SET retry_due = true WHERE state = 'ACTIVATION_FAILED' AND is_open;
UPDATE applications SET state = CASE
        WHEN state IN ('PERSONALIZED', 'ACTIVATION_REQUESTED') THEN 'ACCEPTED'
        WHEN state = 'ACTIVATION_FAILED' AND is_open THEN 'ACCEPTED'
        WHEN state = 'ACTIVATION_FAILED' THEN 'FAILED'
        WHEN state = 'ACTIVE' THEN 'COMPLETED'
        ELSE state END
    WHERE state IN ('PERSONALIZED', 'ACTIVATION_REQUESTED', 'ACTIVATION_FAILED', 'ACTIVE');
ALTER TABLE applications ADD CONSTRAINT applications_state_check CHECK (state IN ('SUBMITTED', 'REJECTED',
    'AWAITING_AGREEMENT', 'ACCEPTED', 'COMPLETED', 'FAILED'));
ALTER TABLE applications ADD CONSTRAINT applications_retry_due_only_accepted
    CHECK (NOT retry_due OR state = 'ACCEPTED');
-- The bank's refusals of the application's current request (attempt = refusals + 1).
ALTER TABLE applications RENAME COLUMN activation_attempts TO bank_refusals;

-- Waiting for the bank is now "accepted" (the dashboard's backlog by age).
DROP INDEX IF EXISTS applications_awaiting_bank_age;
CREATE OR REPLACE FUNCTION dashboard_waiting_since(state text, submitted_at timestamptz, updated_at timestamptz)
RETURNS date LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE state
        WHEN 'AWAITING_AGREEMENT' THEN (submitted_at AT TIME ZONE 'UTC')::date
        WHEN 'ACCEPTED' THEN (updated_at AT TIME ZONE 'UTC')::date
    END
$$;
CREATE OR REPLACE FUNCTION dashboard_waiting_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO dashboard_waiting_counts
        SELECT area_code, branch_code, bank_code, first_run_id, state,
               dashboard_waiting_since(state, submitted_at, updated_at), count(*)
        FROM dashboard_new WHERE state IN ('AWAITING_AGREEMENT', 'ACCEPTED')
        GROUP BY 1, 2, 3, 4, 5, 6;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO dashboard_waiting_counts
        SELECT area_code, branch_code, bank_code, first_run_id, state,
               dashboard_waiting_since(state, submitted_at, updated_at), -count(*)
        FROM dashboard_old WHERE state IN ('AWAITING_AGREEMENT', 'ACCEPTED')
        GROUP BY 1, 2, 3, 4, 5, 6;
    ELSE
        INSERT INTO dashboard_waiting_counts
        SELECT area_code, branch_code, bank_code, first_run_id, state, since_day, sum(d)
        FROM (
            SELECT area_code, branch_code, bank_code, first_run_id, state,
                   dashboard_waiting_since(state, submitted_at, updated_at) AS since_day, -1 AS d
            FROM dashboard_old WHERE state IN ('AWAITING_AGREEMENT', 'ACCEPTED')
            UNION ALL
            SELECT area_code, branch_code, bank_code, first_run_id, state,
                   dashboard_waiting_since(state, submitted_at, updated_at), 1
            FROM dashboard_new WHERE state IN ('AWAITING_AGREEMENT', 'ACCEPTED')
        ) AS changes
        GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(d) <> 0;
    END IF;
    RETURN NULL;
END;
$$;
-- The summaries follow the renamed states.
DELETE FROM dashboard_state_counts;
INSERT INTO dashboard_state_counts
SELECT area_code, branch_code, bank_code, first_run_id, application_type, state,
       dashboard_rejected_at(state, reasons), count(*)
FROM applications GROUP BY 1, 2, 3, 4, 5, 6, 7;
DELETE FROM dashboard_waiting_counts;
INSERT INTO dashboard_waiting_counts
SELECT area_code, branch_code, bank_code, first_run_id, state,
       dashboard_waiting_since(state, submitted_at, updated_at), count(*)
FROM applications WHERE state IN ('AWAITING_AGREEMENT', 'ACCEPTED')
GROUP BY 1, 2, 3, 4, 5, 6;

-- Cards: one per accepted new-card application from the moment it is ordered; numbered when personalized. ---
ALTER TABLE cards DROP CONSTRAINT cards_pkey;
ALTER TABLE cards ADD PRIMARY KEY (application_id);
ALTER TABLE cards DROP CONSTRAINT IF EXISTS cards_application_id_key;
ALTER TABLE cards
    ALTER COLUMN card_number DROP NOT NULL,
    ALTER COLUMN card_identification_code DROP NOT NULL,
    ALTER COLUMN sequence DROP NOT NULL,
    ALTER COLUMN issue_date DROP NOT NULL,
    ALTER COLUMN valid_until DROP NOT NULL;
ALTER TABLE cards ADD CONSTRAINT cards_card_number_key UNIQUE (card_number);
ALTER TABLE cards DROP CONSTRAINT cards_status_check;
UPDATE cards SET status = 'ISSUED' WHERE status IN ('ISSUED_NOT_ACTIVATED', 'ACTIVE');
ALTER TABLE cards ADD CONSTRAINT cards_status_check CHECK (status IN ('ORDERED', 'IN_PRODUCTION', 'PRODUCED',
    'AT_BRANCH', 'ISSUED', 'LOST_TEMPORARY', 'LOST_FORMAL', 'REPLACED', 'CANCELLED', 'EXPIRED'));
-- Numbered when it goes into a vendor file (status IN_PRODUCTION or later), never before.
ALTER TABLE cards ADD CONSTRAINT cards_numbered_when_personalized
    CHECK (status IN ('ORDERED', 'CANCELLED') OR card_number IS NOT NULL);
ALTER TABLE cards
    ADD COLUMN branch_code text,                 -- where the holder collects it
    ADD COLUMN vendor_code text,                 -- who makes it (its current vendor file)
    ADD COLUMN production_run_id bigint,         -- the run whose vendor file holds it now
    ADD COLUMN productions integer NOT NULL DEFAULT 0,          -- vendor files it was put into
    ADD COLUMN production_failures integer NOT NULL DEFAULT 0,  -- the vendor could not make it
    ADD COLUMN chip_serial text,                 -- from the vendor's return file
    ADD COLUMN produced_at timestamptz,
    ADD COLUMN dispatched_at timestamptz,
    ADD COLUMN received_at timestamptz,
    ADD COLUMN collected_at timestamptz,
    ADD COLUMN collected_by text,                -- the counter operator who checked the holder's identity
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
UPDATE cards c SET branch_code = a.branch_code FROM applications a WHERE a.application_id = c.application_id;
CREATE INDEX cards_status ON cards (status);
CREATE INDEX cards_ordered ON cards (application_id) WHERE status = 'ORDERED';
CREATE INDEX cards_at_branch ON cards (branch_code, received_at) WHERE status = 'AT_BRANCH';

-- Bank accounts: the financial side (REQUESTED, OPENED, ACTIVE, REFUSED, FROZEN, CLOSED); the number is the
-- bank's, stored when its answer says the account is opened. -----------------------------------------------
DROP INDEX bank_accounts_one_per_card;
ALTER TABLE bank_accounts DROP CONSTRAINT bank_accounts_status_check;
UPDATE bank_accounts SET status = CASE status WHEN 'OPEN' THEN 'ACTIVE' WHEN 'FAILED' THEN 'REFUSED'
    ELSE status END;
ALTER TABLE bank_accounts ADD CONSTRAINT bank_accounts_status_check
    CHECK (status IN ('REQUESTED', 'OPENED', 'ACTIVE', 'REFUSED', 'FROZEN', 'CLOSED'));
ALTER TABLE bank_accounts ALTER COLUMN sequence DROP NOT NULL;
ALTER TABLE bank_accounts
    ADD COLUMN opened_at timestamptz,
    ADD COLUMN activated_at timestamptz,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
-- One live account per card (the card's number is known once it is personalized).
CREATE UNIQUE INDEX bank_accounts_one_per_card ON bank_accounts (card_number)
    WHERE status IN ('REQUESTED', 'OPENED', 'ACTIVE', 'FROZEN');

-- Every step of a card's two sides, with its time and source (bank, vendor, branch, nightly run). -----------
CREATE TABLE card_history (
    id              bigserial PRIMARY KEY,
    application_id  text NOT NULL,
    at              timestamptz NOT NULL DEFAULT now(),
    side            text NOT NULL CHECK (side IN ('card', 'financial')),
    from_status     text,
    to_status       text NOT NULL,
    source          text NOT NULL,           -- nightly, bank:<code>, vendor:<code>, branch:<code>
    run_id          bigint,
    event_id        text,
    detail          text
);
CREATE INDEX card_history_application ON card_history (application_id, id);
CREATE UNIQUE INDEX card_history_once ON card_history (application_id, side, to_status,
    coalesce(event_id, ''), coalesce(run_id, 0));

-- Card vendors and the areas whose cards they make (reference data). ----------------------------------------
CREATE TABLE vendors (
    vendor_code  text PRIMARY KEY,
    name         text NOT NULL,
    area_codes   text[] NOT NULL DEFAULT '{}',
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Vendor files written and return files applied (a return file is applied once, by its digest). ------------
CREATE TABLE vendor_files (
    run_id        bigint NOT NULL,
    vendor_code   text NOT NULL,
    record_count  integer NOT NULL,
    sha256        text NOT NULL,
    written_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, vendor_code)
);
CREATE TABLE vendor_returns (
    sha256        text PRIMARY KEY,          -- of the return file: the same file received twice is applied once
    run_id        bigint NOT NULL,
    vendor_code   text NOT NULL,
    produced      integer NOT NULL,
    failed        integer NOT NULL,
    refused_lines integer NOT NULL,
    received_by   text NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now()
);
