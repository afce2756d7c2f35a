-- The shared audit trail becomes a row per batch too (issue 16). A row per event,
-- with its heap tuple, three index entries and their WAL, cost PostgreSQL about
-- 11 us of CPU per event, on the same cores as the server; a batch of up to 512
-- events is one JSON text, in the layout of the embedded store (sqlite/0007): each
-- event an array in the columns' order of 0006 (at_ms, instance, request_id,
-- endpoint, grant_type, client_id, issuer, subject, scopes, decision, rule, error,
-- key_id, token_id, assertion_jti, client_addr).
--
-- `client_ids` holds the distinct clients of a batch's events, so that
-- `jwtgrant audit list --client` still reads only the batches that name the client
-- (through the GIN index) in a table that several instances fill for months.
-- `jwtgrant audit list` reads batches newest first by `last_ms`; the retention
-- sweep drops whole batches and rewrites the one that straddles its limit. The view
-- `audit_events` shows them as rows again, for SQL by hand.
--
-- An instance of an older version still running beside a migrated database (a
-- rolling upgrade) keeps its trail: its row inserts into `audit_events` become
-- one-event batches through the view's INSTEAD OF trigger, and its
-- `jwtgrant audit list` reads the view, whose `event_id` keeps the order of batch
-- and position. Its hourly retention sweep (a DELETE on the view) fails with a
-- warning until it is replaced; the new instances sweep.

CREATE TABLE audit_batches (
    batch_id    BIGSERIAL PRIMARY KEY,
    first_ms    BIGINT NOT NULL,    -- the earliest event's at_ms
    last_ms     BIGINT NOT NULL,    -- the latest event's at_ms
    event_count BIGINT NOT NULL,
    client_ids  TEXT[] NOT NULL,    -- the distinct client_id of its events
    events      TEXT NOT NULL       -- a JSON array of event arrays
);

CREATE INDEX audit_batches_by_last ON audit_batches (last_ms, batch_id); -- listing, newest first
CREATE INDEX audit_batches_by_first ON audit_batches (first_ms);         -- the sweep
CREATE INDEX audit_batches_by_client ON audit_batches USING gin (client_ids);

INSERT INTO audit_batches (first_ms, last_ms, event_count, client_ids, events)
SELECT min(at_ms), max(at_ms), count(*),
       coalesce(array_agg(DISTINCT client_id) FILTER (WHERE client_id IS NOT NULL), '{}'),
       json_agg(json_build_array(
           at_ms, instance, request_id, endpoint, grant_type, client_id, issuer, subject,
           scopes, decision, rule, error, key_id, token_id, assertion_jti, client_addr)
           ORDER BY event_id)::text
FROM (SELECT *, (row_number() OVER (ORDER BY event_id) - 1) / 512 AS chunk
      FROM audit_events) AS numbered
GROUP BY chunk
ORDER BY chunk;

DROP TABLE audit_events;

CREATE VIEW audit_events AS
SELECT b.batch_id * 1024 + e.position - 1 AS event_id,
       b.batch_id,
       e.position - 1              AS position,
       (e.value ->> 0)::BIGINT     AS at_ms,
       e.value ->> 1               AS instance,
       e.value ->> 2               AS request_id,
       e.value ->> 3               AS endpoint,
       e.value ->> 4               AS grant_type,
       e.value ->> 5               AS client_id,
       e.value ->> 6               AS issuer,
       e.value ->> 7               AS subject,
       e.value ->> 8               AS scopes,
       e.value ->> 9               AS decision,
       e.value ->> 10              AS rule,
       e.value ->> 11              AS error,
       e.value ->> 12              AS key_id,
       e.value ->> 13              AS token_id,
       e.value ->> 14              AS assertion_jti,
       e.value ->> 15              AS client_addr
FROM audit_batches AS b,
     jsonb_array_elements(b.events::jsonb) WITH ORDINALITY AS e(value, position);

CREATE FUNCTION audit_events_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_batches (first_ms, last_ms, event_count, client_ids, events)
    VALUES (NEW.at_ms, NEW.at_ms, 1,
            CASE WHEN NEW.client_id IS NULL THEN '{}' ELSE ARRAY[NEW.client_id] END,
            json_build_array(json_build_array(
                NEW.at_ms, NEW.instance, NEW.request_id, NEW.endpoint, NEW.grant_type,
                NEW.client_id, NEW.issuer, NEW.subject, NEW.scopes, NEW.decision, NEW.rule,
                NEW.error, NEW.key_id, NEW.token_id, NEW.assertion_jti, NEW.client_addr))::text);
    RETURN NEW;
END
$$;

CREATE TRIGGER audit_events_insert INSTEAD OF INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_insert();
