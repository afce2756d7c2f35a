-- The audit trail (issue 15): one row per decision of the token, introspection,
-- revocation and authorization endpoints, written in batches by each instance.
-- Nothing secret is kept: no assertion, token, secret or key, only their names
-- (the client, the issuer, the key id that verified, the access token's `jti`).

CREATE TABLE audit_events (
    event_id      BIGSERIAL PRIMARY KEY,
    at_ms         BIGINT NOT NULL,   -- when the decision was made, Unix milliseconds
    instance      TEXT NOT NULL,      -- which server instance decided
    request_id    TEXT NOT NULL,
    endpoint      TEXT NOT NULL,      -- token, introspect, revoke, authorize
    grant_type    TEXT,
    client_id     TEXT,
    issuer        TEXT,               -- the assertion's `iss` (an integration or a trusted issuer)
    subject       TEXT,
    scopes        TEXT,               -- space separated
    decision      TEXT NOT NULL,      -- issued, refused
    rule          TEXT,               -- the rule code of a refusal
    error         TEXT,               -- the OAuth error code of a refusal
    key_id        TEXT,               -- the kid of the key that verified the assertion
    token_id      TEXT,               -- the `jti` of the token issued (or introspected, revoked)
    assertion_jti TEXT,
    client_addr   TEXT
);

CREATE INDEX audit_events_by_time ON audit_events (at_ms);
CREATE INDEX audit_events_by_client ON audit_events (client_id, at_ms);
