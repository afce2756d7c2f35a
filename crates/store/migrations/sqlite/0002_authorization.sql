-- The authorization code flow: client secrets, authorization codes, refresh tokens
-- in rotation chains ("families"), revoked access tokens, and server secrets (the
-- session key of the login pages). Codes and refresh tokens are kept only as the
-- SHA-256 of their value.

ALTER TABLE integrations ADD COLUMN client_secret_hash TEXT;

CREATE TABLE authorization_codes (
    code_hash       TEXT PRIMARY KEY,
    integration_key TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    redirect_uri    TEXT NOT NULL,
    scopes          TEXT NOT NULL,                          -- JSON array of strings
    code_challenge  TEXT,
    family_id       TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    used_at         INTEGER
) STRICT;
CREATE INDEX authorization_codes_by_expiry ON authorization_codes(expires_at);

CREATE TABLE refresh_tokens (
    token_hash        TEXT PRIMARY KEY,
    family_id         TEXT NOT NULL,
    integration_key   TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    scopes            TEXT NOT NULL,                        -- JSON array of strings
    access_jti        TEXT NOT NULL,                        -- the access token issued with it
    access_expires_at INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    rotated_at        INTEGER,
    revoked_at        INTEGER
) STRICT;
CREATE INDEX refresh_tokens_by_family ON refresh_tokens(family_id);
CREATE INDEX refresh_tokens_by_grant ON refresh_tokens(user_id, integration_key);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens(expires_at);

-- Servers read new rows by `seq` to refuse revoked access tokens.
CREATE TABLE revoked_tokens (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    jti        TEXT NOT NULL UNIQUE,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE TABLE server_secrets (
    name       TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
