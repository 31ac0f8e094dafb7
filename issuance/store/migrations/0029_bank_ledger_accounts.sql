-- The simulated banks open the account of a new card themselves and number it within their own BIN by their
-- own sequence; the holder later switches it on. Their ledger keeps the sequence and the account's state, and
-- their inbox keeps every kind of answer (account opened or refused, activation completed or failed).

ALTER TABLE bank_sim.accounts
    ADD COLUMN sequence bigint,                               -- the bank's own sequence (NULL: a stand-in)
    ADD COLUMN status text NOT NULL DEFAULT 'OPENED' CHECK (status IN ('OPENED', 'ACTIVE')),
    ADD COLUMN activated_at timestamptz,
    ADD CONSTRAINT accounts_one_sequence_per_bank UNIQUE (bank_code, sequence);
-- Accounts opened before this version were switched on at once.
UPDATE bank_sim.accounts SET status = 'ACTIVE', activated_at = opened_at;

ALTER TABLE bank_sim.inbox DROP CONSTRAINT inbox_answer_type_check;
ALTER TABLE bank_sim.inbox ADD CONSTRAINT inbox_answer_type_check CHECK (answer_type IN ('AccountOpened',
    'AccountRefused', 'ActivationCompleted', 'ActivationFailed'));

-- The bureau's consumer of the banks' answers is renamed (activation-results -> bank-results); the answers it
-- applied stay applied under the new name.
INSERT INTO inbox (consumer, event_id, processed_at)
SELECT 'bank-results', event_id, processed_at FROM inbox WHERE consumer = 'activation-results'
ON CONFLICT DO NOTHING;
DELETE FROM inbox WHERE consumer = 'activation-results';
