-- API tokens: bearer credentials for the HTTP API.
--
-- Only the SHA-256 of a secret is kept, so a copy of this file does not let
-- anyone call the API. Revoked rows stay (revoked_at set) as an audit trail.
-- Timestamps are RFC 3339 text in UTC as sqlx writes them; with a fixed
-- "+00:00" offset that text sorts chronologically, which ORDER BY and the
-- last_used_at comparison rely on.
CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY NOT NULL,
    secret_sha256 TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'member', 'admin')),
    description   TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,
    revoked_at    TEXT
);
