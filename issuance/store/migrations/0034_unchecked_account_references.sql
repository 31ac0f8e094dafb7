-- Until the bureau checked the account a bank's ActivationCompleted names (AccountPersonal, sealed to the bureau,
-- validated against the bank's BIN and the card's own account), its free-text `account_reference` went into the
-- history lines of the application and of its card as received: anyone who could write the answer topic could
-- put any text there, including an account number in clear, and the dashboard's application pages and API and
-- `issuance status` showed it. Those lines keep the bank and the step; the unchecked reference is withheld.
-- Lines written from now on carry only the checked number, masked.

UPDATE application_history
   SET detail = regexp_replace(detail, ' switched on account .*$',
                               ' switched on account (reference withheld: received unchecked)')
 WHERE detail LIKE '% switched on account %';

UPDATE card_history
   SET detail = regexp_replace(detail, ' switched on account .*$',
                               ' switched on account (reference withheld: received unchecked)')
 WHERE source LIKE 'bank:%' AND detail LIKE '% switched on account %';

-- Before the lifecycle, the same unchecked reference was written by the activation stage as "opened account".
UPDATE application_history
   SET detail = regexp_replace(detail, ' opened account .*$',
                               ' opened account (reference withheld: received unchecked)')
 WHERE stage = 'activation' AND detail LIKE '% opened account %';
