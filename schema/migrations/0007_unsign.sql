-- zonedist schema, version 7: unsigning through CDS/CDNSKEY delete (RFC
-- 8078 s4, issue 7, docs/KEYS.md).  With `dnssec: {unsign: true}` a signed
-- zone publishes the delete CDS/CDNSKEY, waits until the parent serves no
-- DS and the DS TTL has passed, then drops every DNSSEC record; each step's
-- time is kept here so a restart resumes where it was.
CREATE TABLE zonedist.unsign (
    zone             text        PRIMARY KEY,
    delete_published timestamptz NOT NULL, -- CDS 0 0 0 00 and CDNSKEY 0 3 0 AA== out
    ds_gone          timestamptz,          -- every parent server answers with no DS
    ds_gone_by       text,                 -- who said so: 'parent-servers' or an operator
    unsigned_at      timestamptz           -- the version without DNSSEC records
);
