-- The night no longer numbers cards or accounts when it accepts an application: the bank assigns the account
-- number (AccountOpened) and a later night personalizes the card from the application's slot. The helper
-- beside the final transaction now prepares only each verified application's first request to the bank,
-- sealed: an AccountOpeningRequested (NEW_CARD) or an ActivationRequested (FINANCIAL_ACTIVATION).
TRUNCATE staged_personalized;  -- staging: a run in progress prepares its rows again when it is resumed
ALTER TABLE staged_personalized
    DROP COLUMN new_card_number,
    DROP COLUMN card_identification_code,
    DROP COLUMN account_index,
    DROP COLUMN account_number_enc,
    ADD COLUMN request_type text NOT NULL,       -- the event type of request_payload
    ADD COLUMN request_sealed boolean NOT NULL;  -- the outbox's payload_encrypted of it

-- The account of a card (an activation names the card; its request carries the bank's number of the account).
CREATE INDEX IF NOT EXISTS bank_accounts_card_number ON bank_accounts (card_number);

-- The refused requests due again tonight (few among the accepted applications that wait for their bank).
CREATE INDEX IF NOT EXISTS applications_retry_due ON applications (application_id) WHERE retry_due;
