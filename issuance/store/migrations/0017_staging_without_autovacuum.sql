-- The staging tables are emptied and refilled by every run, and the final transaction analyzes them itself
-- before it reads them. An autovacuum of a table the stage has just filled found nothing to clean and only
-- competed with the night for a core.
ALTER TABLE staged_applications SET (autovacuum_enabled = false);
ALTER TABLE staged_agreements SET (autovacuum_enabled = false);
ALTER TABLE staged_dead_letters SET (autovacuum_enabled = false);
ALTER TABLE staged_personalized SET (autovacuum_enabled = false);
ALTER TABLE staged_chunks SET (autovacuum_enabled = false);
