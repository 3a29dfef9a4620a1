-- zonedist schema, version 5: key state (issue 7, docs/KEYS.md).
--
-- One row per key a zone signs or signed with, kept beside the journal so
-- that the rollover schedule survives a restart: zonedistd records a key
-- the first time it signs with it, and computes every later step from the
-- times here (RFC 7583).  Times are NULL until the step happened.
CREATE TABLE zonedist.key (
    zone        text        NOT NULL,
    role        text        NOT NULL CHECK (role IN ('KSK', 'ZSK')),
    algorithm   smallint    NOT NULL,
    tag         integer     NOT NULL CHECK (tag BETWEEN 0 AND 65535),
    state       text        NOT NULL DEFAULT 'active'
                CHECK (state IN ('generated', 'published', 'ready', 'active', 'retired', 'removed')),
    generated   timestamptz,
    published   timestamptz,
    ready       timestamptz,
    active      timestamptz,
    retired     timestamptz,
    removed     timestamptz,
    ds_submitted timestamptz, -- KSK: CDS published
    ds_seen      timestamptz, -- KSK: the parent serves its DS
    ds_withdrawn timestamptz, -- KSK: its DS left the parent
    PRIMARY KEY (zone, role, algorithm, tag)
);
