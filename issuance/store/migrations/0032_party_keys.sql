-- The public keys of every party that exchanges messages with the bureau (branches, banks, card vendors and
-- the bureau itself): reference data, registered by an operator (issuance keys register) or, with the
-- embedded services, by issuance setup for the simulated partners. A key is never updated: a new key is a new
-- row, an old one is revoked. Every unrevoked sign key verifies; the newest unrevoked seal key of a party is
-- the one others seal to. The key id names the party, the purpose and the key (see issuance/trust/keys.py).

CREATE TABLE party_keys (
    key_id         text PRIMARY KEY,
    party          text NOT NULL CHECK (party ~ '^(bureau|branch|bank|vendor):[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    purpose        text NOT NULL CHECK (purpose IN ('sign', 'seal')),
    public_key     bytea NOT NULL CHECK (octet_length(public_key) = 32),
    registered_at  timestamptz NOT NULL DEFAULT now(),
    registered_by  text NOT NULL,
    revoked_at     timestamptz,
    CHECK (key_id = party || ':' || purpose || ':' || substr(encode(sha256(public_key), 'hex'), 1, 12))
);

-- One key belongs to one party: the same public key under two parties' names is refused.
CREATE UNIQUE INDEX party_keys_public_key ON party_keys (public_key, purpose);
