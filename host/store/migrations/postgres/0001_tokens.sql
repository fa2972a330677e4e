-- API tokens: bearer credentials for the HTTP API.
--
-- Only the SHA-256 of a secret is kept, so a database dump does not let
-- anyone call the API. Revoked rows stay (revoked_at set) as an audit trail.
CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'member', 'admin')),
    description   TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    last_used_at  TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ
);
