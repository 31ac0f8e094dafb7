-- Least-privilege roles: each process assumes its group role after connecting and can do only this.
--
-- RULE FOR EVERY LATER MIGRATION: a migration that creates a table grants, in the same file, what each of
-- the roles below may do to it (nothing is a decision too), and adds the table's line to DECISIONS in
-- issuance/store/roles.py. tests/integration/test_db_roles.py fails for a table without a decision for
-- every role, and for a grant that differs from the decision.
--
-- The roles are NOLOGIN groups. A deployment creates one LOGIN role per service and makes it a member of
-- its group (README, "Database roles"). Roles belong to the cluster: they are created once and reused by
-- every database of the cluster (a migration run by a role without CREATEROLE needs them created first).

DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['issuance_nightly', 'issuance_consumer', 'issuance_dashboard',
                                'issuance_bank_simulator', 'issuance_branch_simulator', 'issuance_operator']
    LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by the migration of another database of the cluster
            END;
        END IF;
    END LOOP;
END;
$$;

-- Start from nothing: no table of this schema is open to PUBLIC, and the roles hold only what follows.
REVOKE ALL ON ALL TABLES IN SCHEMA public, bank_sim, branch_sim FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA public, bank_sim, branch_sim
    FROM issuance_nightly, issuance_consumer, issuance_dashboard, issuance_bank_simulator,
         issuance_branch_simulator, issuance_operator;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

GRANT USAGE ON SCHEMA public TO issuance_nightly, issuance_consumer, issuance_dashboard,
    issuance_bank_simulator, issuance_branch_simulator, issuance_operator;
GRANT USAGE ON SCHEMA bank_sim TO issuance_bank_simulator;
GRANT USAGE ON SCHEMA branch_sim TO issuance_branch_simulator;

GRANT SELECT ON schema_migrations TO issuance_nightly, issuance_consumer, issuance_dashboard,
    issuance_bank_simulator, issuance_branch_simulator, issuance_operator;

-- Reference data: loaded by the operators, read by the bureau's processes.
GRANT SELECT, INSERT, UPDATE, DELETE ON issuing_areas, banks, branches, vendors, persons, person_cards
    TO issuance_operator;
GRANT SELECT ON issuing_areas, banks, branches, vendors, persons
    TO issuance_nightly, issuance_consumer, issuance_dashboard;
GRANT SELECT ON banks TO issuance_bank_simulator, issuance_branch_simulator;
GRANT SELECT, INSERT, UPDATE, DELETE ON person_cards TO issuance_nightly, issuance_consumer;
GRANT SELECT ON person_cards TO issuance_dashboard;

-- What the night alone changes (the consumers and the dashboard read it).
GRANT SELECT, INSERT, UPDATE, DELETE ON runs, checkpoints, allocation_counters, vendor_files, vendor_returns
    TO issuance_nightly, issuance_operator;
GRANT SELECT ON runs, checkpoints, allocation_counters, vendor_files, vendor_returns
    TO issuance_consumer, issuance_dashboard;

-- The state of applications, cards and accounts: changed by the night, the consumers and the operators.
GRANT SELECT, INSERT, UPDATE, DELETE ON applications, application_history, agreements, cards, bank_accounts,
    card_history, inbox, card_event_inbox, resent_applications, dead_letter_redrives, dead_letters, outbox,
    dashboard_state_counts, dashboard_reason_counts, dashboard_waiting_counts, dashboard_card_counts
    TO issuance_nightly, issuance_consumer, issuance_operator;
GRANT SELECT ON applications, application_history, agreements, cards, bank_accounts, card_history, inbox,
    card_event_inbox, resent_applications, dead_letter_redrives, dead_letters, outbox,
    dashboard_state_counts, dashboard_reason_counts, dashboard_waiting_counts, dashboard_card_counts
    TO issuance_dashboard;
-- The branch simulator reads the holder of the cards it hands out from the bureau's (sealed) records.
GRANT SELECT ON applications TO issuance_branch_simulator;
-- A simulated bank stores the requests it cannot read as dead letters and relays their events (it shares the
-- bureau's outbox in this model): it adds dead letters without reading them.
GRANT INSERT ON dead_letters TO issuance_bank_simulator;
GRANT SELECT (id) ON dead_letters TO issuance_bank_simulator;
GRANT SELECT, INSERT, UPDATE ON outbox TO issuance_bank_simulator;

-- Staging: the night's scratch tables, emptied between runs.
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON staged_applications, staged_agreements, staged_dead_letters,
    staged_chunks, staged_personalized, staged_cards TO issuance_nightly;
GRANT SELECT ON staged_applications, staged_agreements, staged_dead_letters, staged_chunks,
    staged_personalized, staged_cards TO issuance_operator;

-- The audit log: appended to, never changed. Only the owner may UPDATE, DELETE or TRUNCATE it (and its
-- append-only trigger refuses even the owner); the chain head is written by the chain trigger as the owner.
GRANT SELECT, INSERT ON audit_log TO issuance_nightly, issuance_consumer, issuance_operator;
GRANT INSERT ON audit_log TO issuance_dashboard;
REVOKE ALL ON audit_chain_head FROM PUBLIC;
GRANT SELECT ON audit_chain_head TO issuance_operator;  -- `issuance audit verify` compares it

-- The simulated partners' own ledgers.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA bank_sim TO issuance_bank_simulator;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA branch_sim TO issuance_branch_simulator;

-- Sequences behind the identity columns of the tables each role inserts into.
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO issuance_nightly, issuance_consumer, issuance_operator;
GRANT USAGE ON SEQUENCE audit_log_id_seq TO issuance_dashboard;
GRANT USAGE ON SEQUENCE dead_letters_id_seq, outbox_seq_seq TO issuance_bank_simulator;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA bank_sim TO issuance_bank_simulator;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA branch_sim TO issuance_branch_simulator;

-- The dashboard folds its appended summary rows together without the right to write them.
ALTER FUNCTION dashboard_compact_counts() SECURITY DEFINER SET search_path = pg_catalog, public;

-- The dashboard's own sessions (a table of a migration that may not be applied yet in every database).
DO $$
BEGIN
    IF to_regclass('public.dashboard_sessions') IS NOT NULL THEN
        EXECUTE 'REVOKE ALL ON dashboard_sessions FROM PUBLIC';
        EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON dashboard_sessions TO issuance_dashboard';
    END IF;
END;
$$;
