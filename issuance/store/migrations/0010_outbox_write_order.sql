-- The relay reads unpublished events in the order they were written (its keyset): a batch is then a short
-- index range over neighbouring heap pages, instead of random page reads in event-id (UUID) order.
ALTER TABLE outbox ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY (CACHE 1000);
DROP INDEX IF EXISTS outbox_unpublished;
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
