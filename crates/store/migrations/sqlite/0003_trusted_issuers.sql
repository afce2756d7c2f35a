-- Trusted issuers: identity providers and workload issuers whose signed JWTs are
-- accepted as assertions for the integration each is bound to, with the policy the
-- server checks them under; and the external identities linking an issuer's
-- subjects to local users.

CREATE TABLE trusted_issuers (
    issuer_id       TEXT PRIMARY KEY,
    issuer          TEXT NOT NULL UNIQUE,                   -- exactly the tokens' `iss`
    integration_key TEXT NOT NULL REFERENCES integrations(integration_key) ON DELETE CASCADE,
    active          INTEGER NOT NULL DEFAULT 1,
    policy          TEXT NOT NULL,                          -- JSON object, read by the server
    created_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE external_identities (
    issuer_id  TEXT NOT NULL REFERENCES trusted_issuers(issuer_id) ON DELETE CASCADE,
    subject    TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (issuer_id, subject)
) STRICT;
CREATE INDEX external_identities_by_user ON external_identities(user_id);

CREATE TRIGGER trusted_issuers_ins AFTER INSERT ON trusted_issuers BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER trusted_issuers_upd AFTER UPDATE ON trusted_issuers BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER trusted_issuers_del AFTER DELETE ON trusted_issuers BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER external_identities_ins AFTER INSERT ON external_identities BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER external_identities_upd AFTER UPDATE ON external_identities BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER external_identities_del AFTER DELETE ON external_identities BEGIN UPDATE registry_version SET version = version + 1; END;
