-- Trusted issuers: identity providers and workload issuers whose signed JWTs are
-- accepted as assertions for the integration each is bound to, with the policy the
-- server checks them under; and the external identities linking an issuer's
-- subjects to local users.

CREATE TABLE trusted_issuers (
    issuer_id       TEXT PRIMARY KEY,
    issuer          TEXT NOT NULL UNIQUE,                   -- exactly the tokens' `iss`
    integration_key TEXT NOT NULL REFERENCES integrations(integration_key) ON DELETE CASCADE,
    active          BOOLEAN NOT NULL DEFAULT TRUE,
    policy          TEXT NOT NULL,                          -- JSON object, read by the server
    created_at      BIGINT NOT NULL
);

CREATE TABLE external_identities (
    issuer_id  TEXT NOT NULL REFERENCES trusted_issuers(issuer_id) ON DELETE CASCADE,
    subject    TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (issuer_id, subject)
);
CREATE INDEX external_identities_by_user ON external_identities(user_id);

CREATE TRIGGER trusted_issuers_changed AFTER INSERT OR UPDATE OR DELETE ON trusted_issuers FOR EACH STATEMENT EXECUTE FUNCTION bump_registry_version();
CREATE TRIGGER external_identities_changed AFTER INSERT OR UPDATE OR DELETE ON external_identities FOR EACH STATEMENT EXECUTE FUNCTION bump_registry_version();
