-- RFC 8707 resources: the resources an integration may ask tokens for, and those an
-- authorization code and a refresh token were granted for (a token's audience); and
-- the scopes an authorization request without `scope` gets.

ALTER TABLE integrations ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';       -- JSON array of strings
ALTER TABLE integrations ADD COLUMN default_scopes TEXT NOT NULL DEFAULT '[]';  -- JSON array of strings
ALTER TABLE authorization_codes ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';
ALTER TABLE refresh_tokens ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';
