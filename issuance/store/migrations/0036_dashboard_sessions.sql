-- Dashboard sessions kept by the server, so that a logout or an operator ends a session for good (a signed
-- cookie stays valid until it expires, wherever a copy of it went). The browser holds a random session id;
-- the table holds only its SHA-256, so that reading this table (a backup, a replica) gives no usable cookie.
-- `id` is the handle operators use (`issuance dashboard sessions list|revoke`), never a secret.

CREATE TABLE dashboard_sessions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_hash  bytea NOT NULL UNIQUE CHECK (octet_length(session_hash) = 32),
    username      text NOT NULL,
    address       text NOT NULL,          -- the client's address at login (the trusted proxy's client, if any)
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,   -- the absolute end, set at login; the idle end is last_seen_at + idle
    revoked_at    timestamptz,
    revoked_by    text,                   -- 'logout', 'login' (replaced by a new login) or the operator's identity
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);

-- The operator's list and "revoke every session of this user" read the live sessions of a user.
CREATE INDEX dashboard_sessions_live ON dashboard_sessions (username, expires_at) WHERE revoked_at IS NULL;
-- Old rows are deleted by the dashboard some time after they ended.
CREATE INDEX dashboard_sessions_expires ON dashboard_sessions (expires_at);
