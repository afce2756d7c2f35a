-- A batch's events (about 60-150 KB of JSON text) are compressed with lz4 rather
-- than PostgreSQL's default pglz when the server was built with lz4 (PostgreSQL 14
-- and later, `default_toast_compression` lists it; Debian's and the official images
-- have it). `pglz_compress` was the largest single item of PostgreSQL's CPU during
-- JWT bearer grants (8 % of its samples); with lz4, four alternating pairs of
-- 30,000 grants took 50-61 us of PostgreSQL's CPU per grant against 58-64 us.
-- Batches written before keep pglz and read as before; a server without lz4 keeps
-- pglz for all.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings
               WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE audit_batches ALTER COLUMN events SET COMPRESSION lz4;
    END IF;
END
$$;
