-- Migration 9 (the shared audit trail's batches compressed with lz4) changes
-- PostgreSQL only: the embedded store does not compress its batches.
SELECT 1;
