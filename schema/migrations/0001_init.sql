-- zonedist schema, version 1: the outbox (change + touch), the journal of
-- signed deltas, checkpoints, and the record of registry rows that could not
-- become records.
--
-- Applied by `zonedistd --init-db` inside one transaction that also records
-- version 1 in zonedist.schema_migration (created by zonedistd itself).  So
-- this file has no BEGIN/COMMIT and does not create schema_migration.
--
-- Registry independent: a registry plugs in by calling zonedist.touch() from
-- its triggers and by providing zonedist.zone_rrs() (docs/REGISTRY.md).

CREATE SCHEMA IF NOT EXISTS zonedist;

-- The outbox.  A row is a dirty marker: "the records of owner `name` in `zone`
-- may have changed in transaction `txid`".  It carries no record data; the
-- adapter re-reads the owner through zonedist.zone_rrs() in the same snapshot
-- and deletes the rows it consumed in the transaction that writes the journal
-- (DESIGN.md, decisions 1 and 2).  Never read it with a "last id" cursor:
-- ids are assigned at insert, not at commit.
CREATE TABLE zonedist.change (
    id      bigserial   PRIMARY KEY,
    zone    text        NOT NULL,
    name    text        NOT NULL,
    txid    bigint      NOT NULL DEFAULT txid_current(),
    created timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- A transaction marks an owner once; touch() relies on this constraint
    -- (ON CONFLICT DO NOTHING).  txids are 64-bit and never reused.
    CONSTRAINT change_txid_zone_name_key UNIQUE (txid, zone, name)
);
CREATE INDEX change_zone_id_idx ON zonedist.change (zone, id);

-- DNS owner names as zonedist stores them: lower case (ASCII only, as DNS
-- compares names), no surrounding white space, exactly one trailing dot.
-- The root stays '.'.  An empty name is an error, NULL stays NULL.
CREATE FUNCTION zonedist.normalize_name(name text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    n text;
BEGIN
    -- COLLATE "C": lower() folds A-Z only, whatever the database locale.
    n := lower(btrim(name, E' \t\r\n') COLLATE "C");
    IF n = '' THEN
        RAISE EXCEPTION 'zonedist.normalize_name: empty name'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    n := rtrim(n, '.');
    IF n = '' THEN
        RETURN '.';
    END IF;
    RETURN n || '.';
END
$$;

-- Mark the owners `names` of `zone` dirty, once per transaction and owner,
-- and wake the adapter.  The set form of touch(): one statement for a whole
-- batch of owners, which is what statement-level registry triggers call.
-- NOTIFY is delivered at commit only, so the adapter never wakes for a change
-- that is not yet visible; PostgreSQL folds duplicate payloads within a
-- transaction.
CREATE FUNCTION zonedist.touch_many(zone text, names text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    z text := zonedist.normalize_name(zone);
    t bigint := txid_current();
BEGIN
    IF z IS NULL THEN
        RAISE EXCEPTION 'zonedist.touch: zone is NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF names IS NULL OR cardinality(names) = 0 THEN
        RETURN;
    END IF;
    IF array_position(names, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'zonedist.touch: NULL owner name for zone %', z
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO zonedist.change (zone, name, txid)
    SELECT DISTINCT z,
           -- Skip the PL/pgSQL call for names that are plainly normalized.
           CASE WHEN u.n = '' OR u.n ~ '[A-Z[:space:]]|[^.]$|\.\.$'
                THEN zonedist.normalize_name(u.n) ELSE u.n END,
           t
    FROM unnest(names) AS u(n)
    ON CONFLICT ON CONSTRAINT change_txid_zone_name_key DO NOTHING;
    PERFORM pg_notify('zonedist_change', z);
END
$$;

-- Mark one owner of one zone dirty (see touch_many).  Registry triggers must
-- call this (or touch_many) for every owner whose records they change, in the
-- transaction that changes them.  Within one transaction a (zone, name) is
-- recorded once; a rolled back savepoint takes its rows with it, and a later
-- touch records the owner again.
CREATE FUNCTION zonedist.touch(zone text, name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    z text := zonedist.normalize_name(zone);
    n text := zonedist.normalize_name(name);
    t bigint := txid_current();
BEGIN
    IF z IS NULL OR n IS NULL THEN
        RAISE EXCEPTION 'zonedist.touch: zone and name must not be NULL (zone %, name %)',
            coalesce(z, 'NULL'), coalesce(n, 'NULL')
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Probe first: ON CONFLICT alone would burn a sequence value per repeat.
    IF NOT EXISTS (SELECT 1 FROM zonedist.change c
                   WHERE c.txid = t AND c.zone = z AND c.name = n) THEN
        INSERT INTO zonedist.change (zone, name, txid) VALUES (z, n, t)
        ON CONFLICT ON CONSTRAINT change_txid_zone_name_key DO NOTHING;
    END IF;
    PERFORM pg_notify('zonedist_change', z);
END
$$;

-- One row per published version: the signed delta that turns version - 1
-- into version.  Written in the same transaction that deletes the consumed
-- change rows; change_ids and txids say which outbox rows and registry
-- transactions the delta covers (the GIN index answers "which serial carried
-- registry transaction X?").
CREATE TABLE zonedist.journal (
    zone       text        NOT NULL,
    version    bigint      NOT NULL,
    serial     bigint      NOT NULL CHECK (serial BETWEEN 0 AND 4294967295),
    created    timestamptz NOT NULL DEFAULT now(),
    delta      bytea       NOT NULL,
    change_ids bigint[]    NOT NULL DEFAULT '{}',
    txids      bigint[]    NOT NULL DEFAULT '{}',
    PRIMARY KEY (zone, version)
);
CREATE INDEX journal_txids_idx ON zonedist.journal USING gin (txids);

-- A full copy of a zone version, written in chunks so that no single value
-- approaches PostgreSQL's 1 GB limit.  Usable only once complete is true:
-- chunks counts the chunk rows written.
CREATE TABLE zonedist.checkpoint (
    zone     text        NOT NULL,
    version  bigint      NOT NULL,
    serial   bigint      NOT NULL,
    created  timestamptz NOT NULL DEFAULT now(),
    chunks   int         NOT NULL DEFAULT 0,
    complete boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (zone, version)
);

CREATE TABLE zonedist.checkpoint_chunk (
    zone    text   NOT NULL,
    version bigint NOT NULL,
    seq     int    NOT NULL,
    data    bytea  NOT NULL,
    PRIMARY KEY (zone, version, seq),
    FOREIGN KEY (zone, version) REFERENCES zonedist.checkpoint ON DELETE CASCADE
);

-- Registry rows that could not become valid records (bad rdata, an apex
-- record, a forbidden type, ...).  The batch that met them goes on without
-- them; an operator reads this table.
CREATE TABLE zonedist.rejected (
    id       bigserial   PRIMARY KEY,
    zone     text        NOT NULL,
    name     text        NOT NULL,
    reason   text        NOT NULL,
    row_data text,
    txid     bigint,
    created  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rejected_zone_created_idx ON zonedist.rejected (zone, created);
