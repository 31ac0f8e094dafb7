-- A record's position on a topic is (topic, partition, offset) only within one life of that topic. A broker that
-- lost its state, or a topic deleted and created again, starts its offsets at 0 under a new topic id, so a dead
-- letter or a re-sent application at a position an earlier record held is a different record. The topic id the
-- night planned with (checkpoints keep it since 0020; '' where the broker reports none) joins the key.
ALTER TABLE dead_letters ADD COLUMN source_topic_id text NOT NULL DEFAULT '';
ALTER TABLE dead_letters DROP CONSTRAINT dead_letters_source_topic_source_partition_source_offset_key;
ALTER TABLE dead_letters ADD CONSTRAINT dead_letters_source_position
    UNIQUE (source_topic, source_topic_id, source_partition, source_offset);

ALTER TABLE resent_applications ADD COLUMN source_topic_id text NOT NULL DEFAULT '';
ALTER TABLE resent_applications DROP CONSTRAINT resent_applications_pkey;
ALTER TABLE resent_applications ADD PRIMARY KEY (source_topic, source_topic_id, source_partition, source_offset);
