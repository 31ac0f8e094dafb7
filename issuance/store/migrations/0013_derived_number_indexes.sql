-- A card's number and its identification code are both derived from its sequence (`issuance.domain.numbers`),
-- and so is an account's number from its bank and sequence: the unique card number (primary key) and the unique
-- account index (blind index of the account number) already make a repeated sequence fail. The separate unique
-- indexes on the sequences were two more index inserts per accepted application, read by no query.
ALTER TABLE cards DROP CONSTRAINT IF EXISTS cards_sequence_key;
ALTER TABLE bank_accounts DROP CONSTRAINT IF EXISTS bank_accounts_bank_code_sequence_key;
