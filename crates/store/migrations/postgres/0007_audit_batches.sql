-- Migration 7 (audit batches) changes the embedded store only: SQLite, with its one
-- writer, keeps the audit trail as a row per batch (sqlite/0007_audit_batches.sql).
-- PostgreSQL, shared by every instance, keeps its row per event, indexed for
-- `jwtgrant audit list`, so there is nothing to do here.
SELECT 1;
