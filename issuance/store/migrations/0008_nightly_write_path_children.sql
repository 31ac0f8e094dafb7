-- The nightly commit writes about seven rows per application in one transaction. Like 0007, drop the per-row
-- foreign-key checks whose parent row is written or read by the same statement: each costs an index probe and
-- a row lock on the parent, about a million of them for 200,000 applications.
--  * history, cards and bank accounts of a run are selected from the run's decisions joined to `applications`,
--    and the run fails unless every decision has its application (`decisions_repo.apply_decisions`); the
--    consumers lock the application before they add its history;
--  * agreements, dead letters and staged rows name the run that writes them (the run row exists before them).
ALTER TABLE application_history DROP CONSTRAINT IF EXISTS application_history_application_id_fkey;
ALTER TABLE cards DROP CONSTRAINT IF EXISTS cards_application_id_fkey;
ALTER TABLE bank_accounts DROP CONSTRAINT IF EXISTS bank_accounts_application_id_fkey;
ALTER TABLE agreements DROP CONSTRAINT IF EXISTS agreements_received_run_id_fkey;
ALTER TABLE dead_letters DROP CONSTRAINT IF EXISTS dead_letters_run_id_fkey;
ALTER TABLE staged_applications DROP CONSTRAINT IF EXISTS staged_applications_run_id_fkey;
ALTER TABLE staged_agreements DROP CONSTRAINT IF EXISTS staged_agreements_run_id_fkey;
ALTER TABLE staged_dead_letters DROP CONSTRAINT IF EXISTS staged_dead_letters_run_id_fkey;

-- Indexes the night maintains for every application but nothing reads in full: the state index serves only
-- the two waiting states the runs look for; the reconciliation reads a run's applications by first run.
DROP INDEX IF EXISTS applications_state;
CREATE INDEX applications_waiting ON applications (state)
    WHERE state IN ('AWAITING_AGREEMENT', 'ACTIVATION_FAILED');
DROP INDEX IF EXISTS applications_last_run;
CREATE INDEX applications_first_run ON applications (first_run_id);

-- A history lookup by application is served by application_history_once (application_id leads it).
DROP INDEX IF EXISTS application_history_application;

-- The relay reads unpublished events in event-id order (its keyset): index exactly that, so each batch is a
-- short index range instead of a sort of everything still unpublished.
DROP INDEX IF EXISTS outbox_unpublished;
CREATE INDEX outbox_unpublished ON outbox (event_id) WHERE published_at IS NULL;
