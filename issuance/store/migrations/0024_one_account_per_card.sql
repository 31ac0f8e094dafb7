-- One account per card; an existing card's account is the one bound to it when the card was personalized.
--
-- A FINANCIAL_ACTIVATION switches on the account the card already carries: the bank finds it by the card
-- number, and the bureau allocates no account number for it. Its account row therefore holds no number.
ALTER TABLE bank_accounts
    ALTER COLUMN account_index DROP NOT NULL,
    ALTER COLUMN account_number_enc DROP NOT NULL;
ALTER TABLE staged_personalized
    ALTER COLUMN account_index DROP NOT NULL,
    ALTER COLUMN account_number_enc DROP NOT NULL,
    -- The agreement the helper put into the first activation request; the final transaction keeps the row
    -- only when its decision accepted that same agreement.
    ADD COLUMN agreement_id text;

-- The database refuses a second account per card while one is requested or open; a refused one (FAILED)
-- leaves the card free for a new application. Also the lookup "has this card an account" of verification.
CREATE UNIQUE INDEX bank_accounts_one_per_card ON bank_accounts (card_number)
    WHERE status IN ('REQUESTED', 'OPEN');

-- A bank's last refusal leaves nothing that blocks the holder from applying again: the card of an application
-- refused for the last time before this version is cancelled, as the bureau's consumer now does at once.
UPDATE cards c SET status = 'CANCELLED'
FROM applications a
WHERE a.application_id = c.application_id AND a.state = 'ACTIVATION_FAILED' AND NOT a.is_open
  AND c.status = 'IN_PRODUCTION';
