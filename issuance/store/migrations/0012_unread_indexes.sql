-- Indexes every night maintains row by row but no query reads: the dashboards count states from
-- dashboard_state_counts (kept by statement triggers), and history is only read per application
-- (application_history_once leads with application_id). Each was one more index insert for each of the
-- night's 200,000 applications or 550,000 history rows.
DROP INDEX IF EXISTS applications_branch_state;
DROP INDEX IF EXISTS applications_bank_state;
DROP INDEX IF EXISTS application_history_stage;
