-- Migration 8 (the shared audit trail as batches) changes PostgreSQL only: the
-- embedded store has kept its audit trail as a row per batch since migration 7.
SELECT 1;
