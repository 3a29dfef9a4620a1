-- zonedist schema, version 8: the algorithm rollover (RFC 6781 s4.1.4,
-- issue 7, docs/KEYS.md).  When the policy's algorithm differs from the
-- active keys', a KSK and a ZSK of the new algorithm sign every RRset
-- beside the old ones, are published, the CDS/CDNSKEY describe the new
-- KSK, the parent's DS follows, the old keys leave the DNSKEY RRset and
-- then stop signing.  Each step's time is kept here, in the transaction of
-- the version that makes it, so a restart resumes where it was.
CREATE TABLE zonedist.algroll (
    id         bigserial   PRIMARY KEY,
    zone       text        NOT NULL,
    from_alg   integer     NOT NULL,
    to_alg     integer     NOT NULL,
    ksk        integer     NOT NULL, -- the new KSK's and ZSK's tags
    zsk        integer     NOT NULL,
    signed     timestamptz NOT NULL, -- every RRset signed by both algorithms
    published  timestamptz,          -- the new keys in the DNSKEY RRset
    cds        timestamptz,          -- the CDS/CDNSKEY describe the new KSK
    ds_seen    timestamptz,          -- the parent serves its DS
    ds_seen_by text,                 -- 'parent-servers' or an operator
    removed    timestamptz,          -- the old keys out of the DNSKEY RRset
    done       timestamptz           -- the old algorithm's signatures gone
);
CREATE UNIQUE INDEX algroll_one_open ON zonedist.algroll (zone) WHERE done IS NULL;
