-- The registry, the replay record and the signing keys, as in the SQLite schema.

CREATE TABLE integrations (
    integration_key          TEXT PRIMARY KEY,
    name                     TEXT NOT NULL,
    active                   BOOLEAN NOT NULL DEFAULT TRUE,
    allow_application_tokens BOOLEAN NOT NULL DEFAULT FALSE,
    require_jti              BOOLEAN NOT NULL DEFAULT FALSE,
    scopes                   TEXT NOT NULL DEFAULT '[]',   -- JSON array of strings
    redirect_uris            TEXT NOT NULL DEFAULT '[]',   -- JSON array of strings
    created_at               BIGINT NOT NULL
);

CREATE TABLE integration_keys (
    integration_key TEXT NOT NULL REFERENCES integrations(integration_key) ON DELETE CASCADE,
    kid             TEXT NOT NULL,
    public_jwk      TEXT NOT NULL,
    active          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (integration_key, kid)
);

CREATE TABLE users (
    user_id       TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    name          TEXT NOT NULL,
    given_name    TEXT NOT NULL DEFAULT '',
    family_name   TEXT NOT NULL DEFAULT '',
    password_hash TEXT,
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE accounts (
    account_id   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    account_name TEXT NOT NULL,
    base_uri     TEXT NOT NULL,
    is_default   BOOLEAN NOT NULL DEFAULT FALSE,
    organization TEXT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX accounts_by_user ON accounts(user_id);

CREATE TABLE consents (
    user_id         TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    integration_key TEXT NOT NULL REFERENCES integrations(integration_key) ON DELETE CASCADE,
    scopes          TEXT NOT NULL,
    granted_at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, integration_key)
);

CREATE TABLE used_jtis (
    issuer     TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, jti)
);
CREATE INDEX used_jtis_by_expiry ON used_jtis(expires_at);

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL,
    private_key  BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    activates_at BIGINT NOT NULL
);

-- Every change to what a running server caches bumps this number; servers poll it.
CREATE TABLE registry_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO registry_version (id, version) VALUES (1, 0);

CREATE FUNCTION bump_registry_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE registry_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER integrations_changed AFTER INSERT OR UPDATE OR DELETE ON integrations FOR EACH STATEMENT EXECUTE FUNCTION bump_registry_version();
CREATE TRIGGER integration_keys_changed AFTER INSERT OR UPDATE OR DELETE ON integration_keys FOR EACH STATEMENT EXECUTE FUNCTION bump_registry_version();
CREATE TRIGGER users_changed AFTER INSERT OR UPDATE OR DELETE ON users FOR EACH STATEMENT EXECUTE FUNCTION bump_registry_version();
CREATE TRIGGER accounts_changed AFTER INSERT OR UPDATE OR DELETE ON accounts FOR EACH STATEMENT EXECUTE FUNCTION bump_registry_version();
CREATE TRIGGER consents_changed AFTER INSERT OR UPDATE OR DELETE ON consents FOR EACH STATEMENT EXECUTE FUNCTION bump_registry_version();
CREATE TRIGGER signing_keys_changed AFTER INSERT OR UPDATE OR DELETE ON signing_keys FOR EACH STATEMENT EXECUTE FUNCTION bump_registry_version();
