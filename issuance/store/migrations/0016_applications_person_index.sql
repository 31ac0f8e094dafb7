-- Every query that looks applications up by person asks for the open one (`AND is_open`: duplicates within a
-- night and against open applications), which the partial unique index applications_one_open_per_person
-- answers. The full index on person_key was read by none of them, and cost each new application one more insert
-- at a random place in a large index.
DROP INDEX IF EXISTS applications_person;
