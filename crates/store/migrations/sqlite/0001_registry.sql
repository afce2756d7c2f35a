-- The registry (integrations, their keys, users, accounts, consents), the replay
-- record of used assertion ids, and the server's own signing keys.

CREATE TABLE integrations (
    integration_key          TEXT PRIMARY KEY,
    name                     TEXT NOT NULL,
    active                   INTEGER NOT NULL DEFAULT 1,
    allow_application_tokens INTEGER NOT NULL DEFAULT 0,
    require_jti              INTEGER NOT NULL DEFAULT 0,
    scopes                   TEXT NOT NULL DEFAULT '[]',   -- JSON array of strings
    redirect_uris            TEXT NOT NULL DEFAULT '[]',   -- JSON array of strings
    created_at               INTEGER NOT NULL
) STRICT;

CREATE TABLE integration_keys (
    integration_key TEXT NOT NULL REFERENCES integrations(integration_key) ON DELETE CASCADE,
    kid             TEXT NOT NULL,
    public_jwk      TEXT NOT NULL,                          -- the public JWK, JSON
    active          INTEGER NOT NULL DEFAULT 1,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (integration_key, kid)
) STRICT;

CREATE TABLE users (
    user_id       TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name          TEXT NOT NULL,
    given_name    TEXT NOT NULL DEFAULT '',
    family_name   TEXT NOT NULL DEFAULT '',
    password_hash TEXT,
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE accounts (
    account_id   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    account_name TEXT NOT NULL,
    base_uri     TEXT NOT NULL,
    is_default   INTEGER NOT NULL DEFAULT 0,
    organization TEXT,                                      -- JSON object or NULL
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX accounts_by_user ON accounts(user_id);

CREATE TABLE consents (
    user_id         TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    integration_key TEXT NOT NULL REFERENCES integrations(integration_key) ON DELETE CASCADE,
    scopes          TEXT NOT NULL,                          -- JSON array of strings
    granted_at      INTEGER NOT NULL,
    PRIMARY KEY (user_id, integration_key)
) STRICT;

CREATE TABLE used_jtis (
    issuer     TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (issuer, jti)
) STRICT, WITHOUT ROWID;
CREATE INDEX used_jtis_by_expiry ON used_jtis(expires_at);

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL,
    private_key  BLOB NOT NULL,                             -- PKCS#8 DER
    created_at   INTEGER NOT NULL,
    activates_at INTEGER NOT NULL
) STRICT;

-- Every change to what a running server caches bumps this number; servers poll it
-- and reload, so admin commands take effect within the poll interval.
CREATE TABLE registry_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
) STRICT;
INSERT INTO registry_version (id, version) VALUES (1, 0);

CREATE TRIGGER integrations_ins AFTER INSERT ON integrations BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER integrations_upd AFTER UPDATE ON integrations BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER integrations_del AFTER DELETE ON integrations BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER integration_keys_ins AFTER INSERT ON integration_keys BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER integration_keys_upd AFTER UPDATE ON integration_keys BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER integration_keys_del AFTER DELETE ON integration_keys BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER users_ins AFTER INSERT ON users BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER users_upd AFTER UPDATE ON users BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER users_del AFTER DELETE ON users BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER accounts_ins AFTER INSERT ON accounts BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER accounts_upd AFTER UPDATE ON accounts BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER accounts_del AFTER DELETE ON accounts BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER consents_ins AFTER INSERT ON consents BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER consents_upd AFTER UPDATE ON consents BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER consents_del AFTER DELETE ON consents BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER signing_keys_ins AFTER INSERT ON signing_keys BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER signing_keys_del AFTER DELETE ON signing_keys BEGIN UPDATE registry_version SET version = version + 1; END;
