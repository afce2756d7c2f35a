-- OpenID Connect and token exchange (issue 14): the `nonce` an authorization request
-- sent and the time the user signed in (`auth_time`), kept with its code and then
-- with its refresh chain, so that every ID token of the grant carries them; and the
-- trust targets, the operator's list of the servers (audiences) a client may get
-- ID-JAGs for, with the client's id there and what the ID-JAG may carry.

ALTER TABLE authorization_codes ADD COLUMN nonce TEXT;
ALTER TABLE authorization_codes ADD COLUMN auth_time INTEGER;
ALTER TABLE refresh_tokens ADD COLUMN auth_time INTEGER;

CREATE TABLE trust_targets (
    audience         TEXT NOT NULL,                          -- the other server's issuer
    integration_key  TEXT NOT NULL REFERENCES integrations(integration_key) ON DELETE CASCADE,
    remote_client_id TEXT NOT NULL,                          -- the client's id there
    resources        TEXT NOT NULL DEFAULT '[]',             -- JSON array of strings
    scopes           TEXT NOT NULL DEFAULT '[]',             -- JSON array of strings
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (audience, integration_key)
) STRICT;
