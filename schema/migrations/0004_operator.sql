-- zonedist schema, version 4: what the operator's questions need (docs/API.md).
--
-- journal: when each registry transaction of a version first marked a name
-- (txid_created, parallel to txids), when the version was signed and when it
-- was committed, so "which serial carried transaction T, and when" is one
-- index lookup.  Rows written before version 4 have NULLs there.
ALTER TABLE zonedist.journal
    ADD COLUMN txid_created timestamptz[],
    ADD COLUMN signed       timestamptz,
    ADD COLUMN committed    timestamptz DEFAULT clock_timestamp();

-- When each version became visible to secondaries.  Written by zonedistd
-- after the journal commit, off the publishing path (a lost row costs the
-- trace answer its published_ms, never a version).
CREATE TABLE zonedist.publication (
    zone       text        NOT NULL,
    version    bigint      NOT NULL,
    serial     bigint      NOT NULL,
    published  timestamptz NOT NULL,
    PRIMARY KEY (zone, version)
);

-- Every AXFR/IXFR zonedistd served or refused.  Kept limits.transfer-log-days
-- days (zonedistd deletes older rows).
CREATE TABLE zonedist.transfer (
    id          bigserial   PRIMARY KEY,
    zone        text        NOT NULL,
    at          timestamptz NOT NULL,
    secondary   text        NOT NULL, -- address, without port
    port        integer,
    tsig_key    text,
    kind        text        NOT NULL CHECK (kind IN ('AXFR', 'IXFR', 'IXFR-AXFR', 'IXFR-UDP')),
    from_serial bigint,
    to_serial   bigint,
    bytes       bigint      NOT NULL,
    records     bigint      NOT NULL,
    duration_ms integer     NOT NULL,
    result      text        NOT NULL CHECK (result IN ('ok', 'refused', 'error')),
    reason      text
);
CREATE INDEX transfer_zone_at_idx ON zonedist.transfer (zone, at);
CREATE INDEX transfer_at_idx ON zonedist.transfer (at);

-- An operator's hold of a zone's publication (zonedistctl hold / release):
-- while a row exists, no new version of the zone is published.
CREATE TABLE zonedist.hold (
    zone      text        PRIMARY KEY,
    held_by   text        NOT NULL,
    reason    text        NOT NULL DEFAULT '',
    held_at   timestamptz NOT NULL DEFAULT now()
);

-- Who did what through the API (holds, releases, retries).
CREATE TABLE zonedist.audit (
    id      bigserial   PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    zone    text        NOT NULL,
    action  text        NOT NULL,
    by      text        NOT NULL,
    detail  text        NOT NULL DEFAULT ''
);
