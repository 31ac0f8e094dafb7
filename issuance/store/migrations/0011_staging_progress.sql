-- Progress of a run's staging: one row per chunk, written in the chunk's own transaction, so the progress display
-- sums a few dozen rows instead of counting the staging tables (a count over 200,000 staged rows every half
-- second took a third of a core from the pipeline).
CREATE UNLOGGED TABLE staged_chunks (
    run_id            bigint NOT NULL,
    source_topic      text NOT NULL,
    source_partition  integer NOT NULL,
    start_offset      bigint NOT NULL,
    applications      integer NOT NULL,
    agreements        integer NOT NULL,
    dead_letters      integer NOT NULL,
    PRIMARY KEY (run_id, source_topic, source_partition, start_offset)
);
