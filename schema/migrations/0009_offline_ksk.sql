-- zonedist schema, version 9: the offline KSK (issue 7, docs/KEYS.md
-- "Offline KSK").  A ceremony, with the KSK token connected, pre-signs the
-- DNSKEY, CDS and CDNSKEY RRsets of every step of the coming period's ZSK
-- schedule; zonedist signs those RRsets from these bundles while the KSK
-- token is away.  One ceremony's bundles replace the previous ones.
CREATE TABLE zonedist.ksk_ceremony (
    zone     text        PRIMARY KEY,
    made_at  timestamptz NOT NULL, -- on the DNSSEC clock
    until_at timestamptz NOT NULL, -- fresh signatures exist until then
    ksk      text        NOT NULL, -- the KSK's DNSKEY RR (presentation form)
    slots    integer     NOT NULL,
    keysets  integer     NOT NULL  -- distinct DNSKEY RRsets pre-signed
);
CREATE TABLE zonedist.ksk_bundle (
    id         bigserial PRIMARY KEY,
    zone       text      NOT NULL REFERENCES zonedist.ksk_ceremony (zone) ON DELETE CASCADE,
    inception  bigint    NOT NULL, -- of the RRSIGs, Unix seconds
    expiration bigint    NOT NULL,
    records    text      NOT NULL  -- DNSKEY, CDS, CDNSKEY RRs and their RRSIGs, one per line
);
CREATE INDEX ksk_bundle_zone ON zonedist.ksk_bundle (zone, inception);
