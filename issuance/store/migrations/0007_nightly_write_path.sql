-- The nightly commit writes several rows per application (history, outbox, card, account) in one transaction.
-- Their run_id columns name the run that wrote them in that same transaction, so a foreign key to runs adds a
-- per-row check (about two million per 200,000 applications) that can never fail. Keep the column, drop the check.
ALTER TABLE application_history DROP CONSTRAINT IF EXISTS application_history_run_id_fkey;
ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_run_id_fkey;
ALTER TABLE cards DROP CONSTRAINT IF EXISTS cards_run_id_fkey;
ALTER TABLE bank_accounts DROP CONSTRAINT IF EXISTS bank_accounts_run_id_fkey;
ALTER TABLE applications DROP CONSTRAINT IF EXISTS applications_first_run_id_fkey;
ALTER TABLE applications DROP CONSTRAINT IF EXISTS applications_last_run_id_fkey;
