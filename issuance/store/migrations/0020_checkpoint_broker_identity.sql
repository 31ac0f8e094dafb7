-- A checkpoint is an offset in one particular log: the topic id (KIP-516) and the cluster id the broker reported
-- when the offset was stored. A broker that lost its state, or a topic deleted and created again, restarts its
-- offsets; with these the night notices it even when the new log has grown past the old offset. NULL where the
-- broker reports no id (older brokers) or the checkpoint predates this migration: offsets alone are checked.
ALTER TABLE checkpoints ADD COLUMN topic_id text;
ALTER TABLE checkpoints ADD COLUMN cluster_id text;
