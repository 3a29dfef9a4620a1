-- zonedist schema, version 10: checkpoint chunks compressed with LZ4 where
-- the server has it (PostgreSQL 14 or later, built with lz4).  A first
-- checkpoint of a large zone is written before its serial is served, and
-- the database's work is most of its time: at 1M domains (256 MB of
-- records) 2.5 s with the default pglz, 2.1 s with lz4, which keeps the
-- chunks about as small (docs/BENCHMARKS.md).  Chunks
-- already written keep their compression; a server without lz4 keeps pglz.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings
               WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        EXECUTE 'ALTER TABLE zonedist.checkpoint_chunk ALTER COLUMN data SET COMPRESSION lz4';
    END IF;
END
$$;
