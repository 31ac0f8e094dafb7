-- Dead-letter reason codes are DeadLetterReason in issuance/domain/model.py, the one home of that list. The
-- table keeps only their shape, so that a new reason (an empty record, an oversized one, a record a stage could
-- not process) needs no migration that restates every earlier code.
ALTER TABLE dead_letters DROP CONSTRAINT IF EXISTS dead_letters_reason_check;
ALTER TABLE dead_letters ADD CONSTRAINT dead_letters_reason_code
    CHECK (length(reason) BETWEEN 3 AND 64 AND reason ~ '^[A-Z][A-Z0-9_]+$');
