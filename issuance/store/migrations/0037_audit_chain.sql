-- The audit log becomes a hash chain (Article 6: who did what must stay as it was written).
--
-- Each row carries a gapless sequence number, the hash of the row before it and its own hash:
--   row_hash = SHA-256 of the netstring encoding ("<byte length>:<UTF-8 bytes>,") of, in this order,
--   'ssc-audit-v1', seq, hex(prev_hash), at as integer microseconds since 1970-01-01 UTC, actor, action,
--   entity, entity_id, detail as jsonb text (PostgreSQL's canonical form: keys ordered, fixed spacing).
-- The first row's prev_hash is 32 zero bytes. `issuance audit verify` recomputes the same in Python.
--
-- The hash is computed here, by a BEFORE INSERT trigger running as the owner (SECURITY DEFINER), so that
-- an inserting role chooses neither the sequence, the time, the previous hash nor the hash. Writers are
-- serialized by the row lock on the one-row audit_chain_head, held to the end of the inserting transaction:
-- the next writer waits until this row is committed (or rolled back, which frees its sequence number), so
-- concurrent writers chain correctly and the sequence has no gaps.

CREATE TABLE audit_chain_head (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    seq       bigint NOT NULL,
    row_hash  bytea NOT NULL
);
REVOKE ALL ON audit_chain_head FROM PUBLIC;

CREATE FUNCTION audit_netstring(value text) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT convert_to(octet_length(convert_to(value, 'UTF8'))::text || ':', 'UTF8')
        || convert_to(value, 'UTF8') || '\x2c'::bytea
$$;

CREATE FUNCTION audit_row_hash(
    p_seq bigint, p_prev bytea, p_at timestamptz, p_actor text, p_action text, p_entity text,
    p_entity_id text, p_detail jsonb
) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT sha256(
        audit_netstring('ssc-audit-v1')
        || audit_netstring(p_seq::text)
        || audit_netstring(encode(p_prev, 'hex'))
        || audit_netstring((extract(epoch FROM p_at) * 1000000)::bigint::text)
        || audit_netstring(p_actor)
        || audit_netstring(p_action)
        || audit_netstring(p_entity)
        || audit_netstring(p_entity_id)
        || audit_netstring(p_detail::text)
    )
$$;

ALTER TABLE audit_log
    ADD COLUMN seq bigint,
    ADD COLUMN prev_hash bytea,
    ADD COLUMN row_hash bytea;

-- The rows written before this migration are chained in the order they were written.
ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;
DO $$
DECLARE
    r record;
    n bigint := 0;
    previous bytea := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
BEGIN
    FOR r IN SELECT id, at, actor, action, entity, entity_id, detail FROM audit_log ORDER BY id LOOP
        n := n + 1;
        UPDATE audit_log
           SET seq = n, prev_hash = previous,
               row_hash = audit_row_hash(n, previous, r.at, r.actor, r.action, r.entity, r.entity_id, r.detail)
         WHERE id = r.id
        RETURNING row_hash INTO previous;
    END LOOP;
    INSERT INTO audit_chain_head (seq, row_hash) VALUES (n, previous);
END;
$$;
ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only;

ALTER TABLE audit_log
    ALTER COLUMN seq SET NOT NULL,
    ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN row_hash SET NOT NULL,
    ADD CONSTRAINT audit_log_seq_unique UNIQUE (seq);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public AS $$
DECLARE
    head audit_chain_head%ROWTYPE;
BEGIN
    -- The row lock serializes writers until this transaction ends: the next writer chains to this row.
    SELECT * INTO STRICT head FROM audit_chain_head FOR UPDATE;
    NEW.seq := head.seq + 1;
    NEW.prev_hash := head.row_hash;
    NEW.at := clock_timestamp();  -- taken under the lock: times follow the sequence
    NEW.detail := coalesce(NEW.detail, '{}'::jsonb);
    NEW.row_hash := audit_row_hash(
        NEW.seq, NEW.prev_hash, NEW.at, NEW.actor, NEW.action, NEW.entity, NEW.entity_id, NEW.detail
    );
    UPDATE audit_chain_head SET seq = NEW.seq, row_hash = NEW.row_hash;
    RETURN NEW;
END;
$$;
REVOKE ALL ON FUNCTION audit_log_chain() FROM PUBLIC;

CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_chain();
