-- The audit trail on the embedded store becomes a row per batch (issue 15): a row
-- per event, with its two indexes, cost the single writer about 8 us of CPU per
-- event, a tenth of a grant's. A batch is one JSON text of the events the server
-- wrote together, each an array in the columns' order of 0006 (at_ms, instance,
-- request_id, endpoint, grant_type, client_id, issuer, subject, scopes, decision,
-- rule, error, key_id, token_id, assertion_jti, client_addr). `jwtgrant audit list`
-- reads batches newest first by `last_ms`; the retention sweep drops whole batches
-- and rewrites the one that straddles its limit. The view `audit_events` shows them
-- as rows again, for SQL by hand.

CREATE TABLE audit_batches (
    batch_id    INTEGER PRIMARY KEY,
    first_ms    INTEGER NOT NULL,   -- the earliest event's at_ms
    last_ms     INTEGER NOT NULL,   -- the latest event's at_ms
    event_count INTEGER NOT NULL,
    events      TEXT NOT NULL       -- a JSON array of event arrays
) STRICT;

CREATE INDEX audit_batches_by_last ON audit_batches (last_ms);  -- listing, newest first
CREATE INDEX audit_batches_by_first ON audit_batches (first_ms); -- the sweep

INSERT INTO audit_batches (first_ms, last_ms, event_count, events)
SELECT min(at_ms), max(at_ms), count(*), json_group_array(json_array(
           at_ms, instance, request_id, endpoint, grant_type, client_id, issuer, subject,
           scopes, decision, rule, error, key_id, token_id, assertion_jti, client_addr))
FROM (SELECT * FROM audit_events ORDER BY event_id)
HAVING count(*) > 0;

DROP TABLE audit_events;

CREATE VIEW audit_events AS
SELECT b.batch_id,
       e.key            AS position,
       e.value ->> 0    AS at_ms,
       e.value ->> 1    AS instance,
       e.value ->> 2    AS request_id,
       e.value ->> 3    AS endpoint,
       e.value ->> 4    AS grant_type,
       e.value ->> 5    AS client_id,
       e.value ->> 6    AS issuer,
       e.value ->> 7    AS subject,
       e.value ->> 8    AS scopes,
       e.value ->> 9    AS decision,
       e.value ->> 10   AS rule,
       e.value ->> 11   AS error,
       e.value ->> 12   AS key_id,
       e.value ->> 13   AS token_id,
       e.value ->> 14   AS assertion_jti,
       e.value ->> 15   AS client_addr
FROM audit_batches AS b, json_each(b.events) AS e;
