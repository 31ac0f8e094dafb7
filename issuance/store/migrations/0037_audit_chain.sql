-- The audit log becomes a hash chain (Article 6: who did what must stay as it was written).
--
-- Each row carries a gapless sequence number, the hash of the row before it and its own hash:
--   row_hash = SHA-256 of the netstring encoding ("<byte length>:<UTF-8 bytes>,") of, in this order,
--   'ssc-audit-v1', seq, hex(prev_hash), at as integer microseconds since 1970-01-01 UTC, actor, action,
--   entity, entity_id, detail as jsonb text (PostgreSQL's canonical form: keys ordered, fixed spacing).
-- The first row's prev_hash is 32 zero bytes. `issuance audit verify` recomputes the same in Python.
--
-- The chain is computed here, as the owner (SECURITY DEFINER), so that an inserting role chooses neither the
-- sequence, the time, the previous hash nor the hash: a BEFORE INSERT trigger stamps the time and clears
-- whatever the writer put in the chain columns; a constraint trigger deferred to the commit numbers, links
-- and hashes the row under the row lock of the one-row audit_chain_head. The lock is taken at commit and
-- held only to its end: concurrent writers chain one after another, a rolled-back row takes no number (no
-- gaps), and a transaction never waits for the chain while it holds other locks (no deadlock between a
-- consumer's batch and the night's commit, whatever their order of work).

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

-- A row is chained (all three set) or, inside its inserting transaction only, not yet (none set).
ALTER TABLE audit_log
    ADD CONSTRAINT audit_log_seq_unique UNIQUE (seq),
    ADD CONSTRAINT audit_log_chained CHECK (
        (seq IS NULL) = (prev_hash IS NULL) AND (seq IS NULL) = (row_hash IS NULL)
    );
CREATE INDEX audit_log_at ON audit_log (at);

CREATE FUNCTION audit_log_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.at := clock_timestamp();
    NEW.detail := coalesce(NEW.detail, '{}'::jsonb);
    NEW.seq := NULL;
    NEW.prev_hash := NULL;
    NEW.row_hash := NULL;
    RETURN NEW;
END;
$$;
CREATE TRIGGER audit_log_stamp BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_stamp();

CREATE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public AS $$
DECLARE
    head audit_chain_head%ROWTYPE;
    n bigint;
    digest bytea;
BEGIN
    -- At commit: the row lock makes the next committing writer chain to this row.
    SELECT * INTO STRICT head FROM audit_chain_head FOR UPDATE;
    n := head.seq + 1;
    digest := audit_row_hash(n, head.row_hash, NEW.at, NEW.actor, NEW.action, NEW.entity, NEW.entity_id, NEW.detail);
    UPDATE audit_log SET seq = n, prev_hash = head.row_hash, row_hash = digest WHERE id = NEW.id;
    UPDATE audit_chain_head SET seq = n, row_hash = digest;
    RETURN NULL;
END;
$$;
REVOKE ALL ON FUNCTION audit_log_chain() FROM PUBLIC;

CREATE CONSTRAINT TRIGGER audit_log_chain AFTER INSERT ON audit_log DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION audit_log_chain();

-- Append-only, as before, except for the chain trigger's one update of a row it numbers (nested in that
-- trigger, the row not chained yet, nothing but the chain columns changed).
CREATE FUNCTION audit_log_chain_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() > 1 AND OLD.seq IS NULL AND NEW.seq IS NOT NULL
       AND (NEW.id, NEW.at, NEW.actor, NEW.action, NEW.entity, NEW.entity_id, NEW.detail)
           IS NOT DISTINCT FROM (OLD.id, OLD.at, OLD.actor, OLD.action, OLD.entity, OLD.entity_id, OLD.detail)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;
DROP TRIGGER audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_append_only BEFORE DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_update_chain_only BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_chain_only();
