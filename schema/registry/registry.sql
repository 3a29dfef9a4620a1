-- The reference registry: an EPP-style data model (RFC 5730-5732, RFC 5910)
-- in schema `registry`, and the triggers that tell zonedist which owner names
-- changed.  How its rows become DNS records is in zone_rrs.sql.
--
-- Requires schema/migrations/0001_init.sql (zonedist.touch_many,
-- zonedist.normalize_name).  Apply once, then zone_rrs.sql.
--
-- Model, in DNS terms:
--   zone       a zone this registry runs ('tld.'); TTLs of the records it
--              hands to zonedist, and its glue policy.
--   domain     a delegation: exactly one label below its zone.  clientHold or
--              serverHold in status takes it out of the zone (no NS, no DS,
--              no glue below it).
--   host       a name server object (RFC 5732).  Hosts inside one of the
--              registry's zones may carry addresses (glue candidates);
--              external hosts may not.
--   domain_ns  the NS set of a domain.
--   ds_data / key_data
--              RFC 5910 DS or DNSKEY data; key_data becomes a SHA-256 DS.
--
-- Names are stored normalized (zonedist.normalize_name: lower case, one
-- trailing dot) in the "C" collation: DNS compares names bytewise, and the
-- reverse-name index used to find the hosts below a domain needs byte order.
--
-- Change tracking: AFTER ... FOR EACH STATEMENT triggers with transition
-- tables touch every (zone, owner) whose records a statement may have
-- changed, in the statement's own transaction, with one set-based
-- zonedist.touch_many() call per zone.  Touching an owner whose records did
-- not actually change is harmless (the adapter re-reads and finds no
-- difference); missing one is a bug.  Work is proportional to the rows the
-- statement changed, plus the hosts below / users of those rows.

CREATE SCHEMA registry;

------------------------------------------------------------------------------
-- Name helpers.  Arguments are normalized names.

-- The name one label up: 'a.b.' -> 'b.', 'b.' -> '.', '.' -> NULL.
CREATE FUNCTION registry.parent_name(n text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN n = '.' THEN NULL
                WHEN strpos(n, '.') = length(n) THEN '.'
                ELSE substr(n, strpos(n, '.') + 1) END
$$;

-- true if child lies strictly below parent.
CREATE FUNCTION registry.is_below(child text, parent text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN parent = '.' THEN child <> '.'
                ELSE length(child) > length(parent)
                     AND right(child, length(parent) + 1) = '.' || parent END
$$;

-- For n strictly below zone: the name exactly one label below zone on the way
-- to n ('ns1.example.tld.', 'tld.' -> 'example.tld.').  Garbage, but no
-- error, when n is not below zone; callers test is_below() as well.
CREATE FUNCTION registry.child_name(n text, zone text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT reverse(split_part(reverse(CASE WHEN zone = '.' THEN n
                                           ELSE left(n, length(n) - length(zone)) END),
                              '.', 2))
           || '.' || CASE WHEN zone = '.' THEN '' ELSE zone END
$$;

-- n itself and all its ancestors, root included, longest first.
-- ('ns1.example.tld.' -> {ns1.example.tld., example.tld., tld., .})
CREATE FUNCTION registry.name_and_ancestors(n text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    r text[] := ARRAY[n];
    s text := n;
BEGIN
    IF n = '.' THEN
        RETURN r;
    END IF;
    LOOP
        s := substr(s, strpos(s, '.') + 1);
        EXIT WHEN s = '' OR strpos(s, '.') = 0;
        r := r || s;
    END LOOP;
    RETURN r || '.'::text;
END
$$;

-- true unless n is certainly already what zonedist.normalize_name() makes
-- of it.  Cheap: lets BEFORE INSERT triggers skip PL/pgSQL for clean input.
CREATE FUNCTION registry.needs_normalizing(n text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT n IS NULL OR n = '' OR n ~ '[A-Z[:space:]]|[^.]$|\.\.$'
$$;

-- An EPP status set that keeps a domain out of the zone (RFC 5731 s2.3).
CREATE FUNCTION registry.is_held(status text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT status && '{clientHold,serverHold}'::text[]
$$;

------------------------------------------------------------------------------
-- DNSSEC helpers (RFC 4034).

-- Owner name in canonical wire form (RFC 4034 s6.2; names are already lower
-- case).  Labels are LDH, so no escapes need handling.
CREATE FUNCTION registry.name_wire(n text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce((SELECT string_agg(set_byte('\x00'::bytea, 0, octet_length(l))
                                       || convert_to(l, 'UTF8'), ''::bytea ORDER BY i)
                     FROM unnest(string_to_array(rtrim(n, '.'), '.')) WITH ORDINALITY AS t(l, i)
                     WHERE n <> '.'),
                    ''::bytea)
           || '\x00'::bytea
$$;

-- DNSKEY RDATA in wire form (RFC 4034 s2.1).
CREATE FUNCTION registry.dnskey_rdata(flags int, protocol int, alg int, pubkey text)
RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT decode(lpad(to_hex(flags), 4, '0') || lpad(to_hex(protocol), 2, '0')
                  || lpad(to_hex(alg), 2, '0'), 'hex')
           || decode(pubkey, 'base64')
$$;

-- Key tag of a DNSKEY RDATA (RFC 4034 Appendix B; B.1 for algorithm 1).
CREATE FUNCTION registry.dnskey_keytag(rdata bytea) RETURNS int
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN get_byte(rdata, 3) = 1 THEN
            -- RSA/MD5: bits 16..31 of the modulus' low 24 bits.
            (get_byte(rdata, length(rdata) - 3) << 8) | get_byte(rdata, length(rdata) - 2)
        ELSE
            (SELECT ((ac + ((ac >> 16) & 65535)) & 65535)::int
             FROM (SELECT sum(CASE WHEN i % 2 = 0 THEN get_byte(rdata, i) << 8
                                   ELSE get_byte(rdata, i) END)::bigint AS ac
                   FROM generate_series(0, length(rdata) - 1) AS i) AS s)
        END
$$;

-- DS RDATA, presentation form, for a DNSKEY at owner, digest type 2
-- (SHA-256, RFC 4509): 'keytag alg 2 HEX'.
CREATE FUNCTION registry.ds_from_dnskey(owner text, flags int, protocol int, alg int,
                                        pubkey text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT registry.dnskey_keytag(r) || ' ' || alg || ' 2 '
           || upper(encode(sha256(registry.name_wire(owner) || r), 'hex'))
    FROM (SELECT registry.dnskey_rdata(flags, protocol, alg, pubkey) AS r) AS k
$$;

------------------------------------------------------------------------------
-- Tables.

CREATE TABLE registry.registrar (
    id      text        PRIMARY KEY,          -- EPP client identifier
    name    text        NOT NULL,
    iana_id int         UNIQUE,
    created timestamptz NOT NULL DEFAULT now(),
    updated timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE registry.zone (
    name         text COLLATE "C" PRIMARY KEY,
    ns_ttl       int         NOT NULL DEFAULT 86400 CHECK (ns_ttl >= 0),
    ds_ttl       int         NOT NULL DEFAULT 3600 CHECK (ds_ttl >= 0),
    glue_ttl     int         NOT NULL DEFAULT 86400 CHECK (glue_ttl >= 0),
    -- RFC 9471: in-domain glue is always published; sibling glue (a name
    -- server below another delegation of this zone) only when this is true.
    sibling_glue boolean     NOT NULL DEFAULT false,
    created      timestamptz NOT NULL DEFAULT now(),
    updated      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT zone_name_syntax CHECK (
        name = '.'
        OR (name ~ '^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+$' AND name !~ '[^.]{64}'
            AND length(name) <= 254))
);

CREATE TABLE registry.domain (
    id        bigserial   PRIMARY KEY,
    name      text COLLATE "C" NOT NULL UNIQUE,
    zone      text COLLATE "C" NOT NULL REFERENCES registry.zone,
    registrar text        REFERENCES registry.registrar,  -- sponsoring client
    status    text[]      NOT NULL DEFAULT '{}',
    created   timestamptz NOT NULL DEFAULT now(),
    updated   timestamptz NOT NULL DEFAULT now(),
    expires   timestamptz,
    -- One LDH label (IDNs as A-labels) of at most 63 octets directly below
    -- its zone (whose own syntax registry.zone checks).  The regular
    -- expressions here avoid bounded repetition: it is several times slower.
    CONSTRAINT domain_name_syntax CHECK (
        name ~ '^[a-z0-9]([-a-z0-9]*[a-z0-9])?\.' AND strpos(name, '.') <= 64
        AND length(name) <= 254),
    CONSTRAINT domain_in_zone CHECK (zone = registry.parent_name(name)),
    CONSTRAINT domain_status_known CHECK (status <@ ARRAY[
        'ok', 'inactive', 'clientHold', 'serverHold',
        'clientDeleteProhibited', 'clientRenewProhibited',
        'clientTransferProhibited', 'clientUpdateProhibited',
        'serverDeleteProhibited', 'serverRenewProhibited',
        'serverTransferProhibited', 'serverUpdateProhibited',
        'pendingCreate', 'pendingDelete', 'pendingRenew', 'pendingTransfer',
        'pendingUpdate']::text[])
);
-- No index on zone: a registry has a handful of zones, and every query by
-- zone reads most of the table anyway.
CREATE INDEX domain_registrar_idx ON registry.domain (registrar) WHERE registrar IS NOT NULL;

CREATE TABLE registry.host (
    id        bigserial   PRIMARY KEY,
    name      text COLLATE "C" NOT NULL UNIQUE,
    registrar text        REFERENCES registry.registrar,
    created   timestamptz NOT NULL DEFAULT now(),
    updated   timestamptz NOT NULL DEFAULT now(),
    -- LDH labels of at most 63 octets, lower case, one trailing dot.
    CONSTRAINT host_name_syntax CHECK (
        name ~ '^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+$' AND name !~ '[^.]{64}'
        AND length(name) <= 254)
);
-- "Which hosts lie below domain D?" is a prefix range on the reversed name.
CREATE INDEX host_rname_idx ON registry.host (reverse(name));
CREATE INDEX host_registrar_idx ON registry.host (registrar) WHERE registrar IS NOT NULL;

CREATE TABLE registry.host_addr (
    host_id bigint NOT NULL REFERENCES registry.host ON DELETE CASCADE,
    addr    inet   NOT NULL,
    PRIMARY KEY (host_id, addr),
    CONSTRAINT host_addr_is_host CHECK (
        masklen(addr) = CASE family(addr) WHEN 4 THEN 32 ELSE 128 END)
);

CREATE TABLE registry.domain_ns (
    domain_id bigint NOT NULL REFERENCES registry.domain ON DELETE CASCADE,
    host_id   bigint NOT NULL REFERENCES registry.host,  -- a host in use cannot go
    PRIMARY KEY (domain_id, host_id)
);
CREATE INDEX domain_ns_host_idx ON registry.domain_ns (host_id);

-- RFC 5910 dsData.  digest is upper-case hex (the BEFORE trigger folds it).
CREATE TABLE registry.ds_data (
    domain_id   bigint      NOT NULL REFERENCES registry.domain ON DELETE CASCADE,
    keytag      int         NOT NULL CHECK (keytag BETWEEN 0 AND 65535),
    alg         int         NOT NULL CHECK (alg BETWEEN 1 AND 255),
    digest_type int         NOT NULL CHECK (digest_type BETWEEN 1 AND 255),
    digest      text        NOT NULL,
    created     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (domain_id, keytag, alg, digest_type, digest),
    CONSTRAINT ds_digest_hex CHECK (digest ~ '^([0-9A-F]{2})+$'),
    -- RFC 3658 (SHA-1), RFC 4509 (SHA-256), RFC 6605 (SHA-384).
    CONSTRAINT ds_digest_length CHECK (CASE digest_type
        WHEN 1 THEN length(digest) = 40
        WHEN 2 THEN length(digest) = 64
        WHEN 4 THEN length(digest) = 96
        ELSE true END)
);

-- RFC 5910 keyData.  pubkey is base64 without white space.  Only zone keys
-- (flags bit 7, RFC 4034 s2.1.1) with protocol 3 can be referred to by a DS.
CREATE TABLE registry.key_data (
    domain_id bigint      NOT NULL REFERENCES registry.domain ON DELETE CASCADE,
    flags     int         NOT NULL CHECK (flags BETWEEN 0 AND 65535 AND flags & 256 <> 0),
    protocol  int         NOT NULL DEFAULT 3 CHECK (protocol = 3),
    alg       int         NOT NULL CHECK (alg BETWEEN 1 AND 255),
    pubkey    text        NOT NULL,
    created   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (domain_id, flags, protocol, alg, pubkey),
    CONSTRAINT key_pubkey_base64 CHECK (
        pubkey ~ '^[A-Za-z0-9+/]+={0,2}$' AND length(pubkey) % 4 = 0)
);

------------------------------------------------------------------------------
-- Lookups used by the triggers (inlined by the planner).

-- Hosts named n or lying below n: an equality probe plus a range scan of
-- host_rname_idx ('.dlt.elpmaxe.' <= reverse(name) < '.dlt.elpmaxe/').
CREATE FUNCTION registry.hosts_at_or_below(n text) RETURNS SETOF registry.host
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT h.* FROM registry.host h WHERE h.name = n
    UNION ALL
    SELECT h.* FROM registry.host h
    WHERE reverse(h.name) >= reverse(n) || '.' AND reverse(h.name) < reverse(n) || '/'
$$;

-- The registry zones strictly above n (none: n is external).
CREATE FUNCTION registry.zones_containing(n text) RETURNS SETOF text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT z.name FROM registry.zone z
    WHERE z.name = ANY (registry.name_and_ancestors(n)) AND z.name <> n
$$;

-- The longest registry zone strictly above n, or NULL (n is external).
CREATE FUNCTION registry.zone_containing(n text) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (SELECT z FROM registry.zones_containing(n) AS z ORDER BY length(z) DESC LIMIT 1);
END
$$;

------------------------------------------------------------------------------
-- Set-based touch helpers for the triggers.

-- A note on concurrency.  Triggers see their own statement's snapshot, not
-- other transactions' uncommitted rows, so an owner is touched on the
-- strength of the changing transaction's own rows and of data that does not
-- change concurrently in practice (registry.zone), never on the absence of
-- another row.  Hence a host is touched in every registry zone containing it
-- (not only if some domain above it exists: that domain may be committing
-- right now), and an NS set change touches the hosts below the domain
-- whether or not the set became empty (two transactions may each remove one
-- of its last two name servers).

-- Each existing domain among ids: its own owner name; with below, also every
-- host at or below it.
CREATE FUNCTION registry.touch_domain_ids(ids bigint[], below boolean) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM zonedist.touch_many(t.zone, array_agg(t.name))
    FROM (WITH d AS (SELECT d.id, d.zone, d.name
                     FROM (SELECT DISTINCT u.id FROM unnest(ids) AS u(id)) AS u
                     JOIN registry.domain d ON d.id = u.id)
          SELECT d.zone, d.name FROM d
          UNION
          SELECT d.zone, h.name
          FROM d, LATERAL registry.hosts_at_or_below(d.name) AS h
          WHERE below) AS t
    GROUP BY t.zone;
END
$$;

-- Each existing host among ids: its name in every registry zone containing
-- it; with users, also every domain that has the host in its NS set.
CREATE FUNCTION registry.touch_host_ids(ids bigint[], users boolean) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM zonedist.touch_many(t.zone, array_agg(t.name))
    FROM (WITH h AS (SELECT h.id, h.name
                     FROM (SELECT DISTINCT u.id FROM unnest(ids) AS u(id)) AS u
                     JOIN registry.host h ON h.id = u.id)
          SELECT z.zone, h.name FROM h, LATERAL registry.zones_containing(h.name) AS z(zone)
          UNION
          SELECT e.zone, e.name
          FROM h JOIN registry.domain_ns x ON x.host_id = h.id
          JOIN registry.domain e ON e.id = x.domain_id
          WHERE users) AS t
    GROUP BY t.zone;
END
$$;

------------------------------------------------------------------------------
-- BEFORE ROW triggers: normalization and the rules CHECKs cannot express.

CREATE FUNCTION registry.domain_before() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.name := zonedist.normalize_name(NEW.name);
    -- The zone is implied by the name; accept it given or infer it.
    NEW.zone := coalesce(zonedist.normalize_name(NEW.zone), registry.parent_name(NEW.name));
    IF TG_OP = 'UPDATE' THEN
        IF NEW.id IS DISTINCT FROM OLD.id THEN
            RAISE EXCEPTION 'registry.domain: id is immutable (%)', OLD.id;
        END IF;
        NEW.updated := now();
    END IF;
    RETURN NEW;
END
$$;
-- Clean input (the common case, and all of a bulk load) skips the function.
CREATE TRIGGER domain_before_insert BEFORE INSERT ON registry.domain
    FOR EACH ROW
    WHEN (NEW.zone IS NULL OR registry.needs_normalizing(NEW.name)
          OR registry.needs_normalizing(NEW.zone))
    EXECUTE FUNCTION registry.domain_before();
CREATE TRIGGER domain_before_update BEFORE UPDATE ON registry.domain
    FOR EACH ROW EXECUTE FUNCTION registry.domain_before();

CREATE FUNCTION registry.host_before() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.name := zonedist.normalize_name(NEW.name);
    IF TG_OP = 'UPDATE' THEN
        IF NEW.id IS DISTINCT FROM OLD.id THEN
            RAISE EXCEPTION 'registry.host: id is immutable (%)', OLD.id;
        END IF;
        NEW.updated := now();
        -- RFC 5732 s3.2.5: a host keeps its addresses across a rename only
        -- if it stays inside one of our zones.
        IF NEW.name <> OLD.name
           AND registry.zone_containing(NEW.name) IS NULL
           AND EXISTS (SELECT 1 FROM registry.host_addr a WHERE a.host_id = NEW.id) THEN
            RAISE EXCEPTION 'registry.host: cannot rename % to external name % while it has addresses',
                OLD.name, NEW.name USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER host_before_insert BEFORE INSERT ON registry.host
    FOR EACH ROW WHEN (registry.needs_normalizing(NEW.name))
    EXECUTE FUNCTION registry.host_before();
CREATE TRIGGER host_before_update BEFORE UPDATE ON registry.host
    FOR EACH ROW EXECUTE FUNCTION registry.host_before();

-- RFC 5732 s3.2.1: addresses only for hosts inside one of our zones; an
-- external host's addresses are not ours to publish.
CREATE FUNCTION registry.host_addr_before() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    hn text;
BEGIN
    SELECT h.name INTO hn FROM registry.host h WHERE h.id = NEW.host_id;
    IF hn IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM registry.zone z
                       WHERE z.name = ANY (registry.name_and_ancestors(hn)) AND z.name <> hn) THEN
        RAISE EXCEPTION 'registry.host_addr: host % is external (not inside any registry zone) and takes no addresses',
            hn USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER host_addr_before BEFORE INSERT OR UPDATE ON registry.host_addr
    FOR EACH ROW EXECUTE FUNCTION registry.host_addr_before();

CREATE FUNCTION registry.ds_data_before() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.digest := upper(regexp_replace(NEW.digest, '\s', '', 'g'));
    RETURN NEW;
END
$$;
CREATE TRIGGER ds_data_before BEFORE INSERT OR UPDATE ON registry.ds_data
    FOR EACH ROW EXECUTE FUNCTION registry.ds_data_before();

CREATE FUNCTION registry.key_data_before() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.pubkey := regexp_replace(NEW.pubkey, '\s', '', 'g');
    RETURN NEW;
END
$$;
CREATE TRIGGER key_data_before BEFORE INSERT OR UPDATE ON registry.key_data
    FOR EACH ROW EXECUTE FUNCTION registry.key_data_before();

CREATE FUNCTION registry.zone_before() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.name := zonedist.normalize_name(NEW.name);
    IF TG_OP = 'UPDATE' THEN
        NEW.updated := now();
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER zone_before BEFORE INSERT OR UPDATE ON registry.zone
    FOR EACH ROW EXECUTE FUNCTION registry.zone_before();

CREATE FUNCTION registry.registrar_before() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER registrar_before BEFORE UPDATE ON registry.registrar
    FOR EACH ROW EXECUTE FUNCTION registry.registrar_before();

------------------------------------------------------------------------------
-- AFTER STATEMENT triggers: touch the owners whose records may have changed.
-- Transition tables are new_rows / old_rows.  Rows of a parent deleted in the
-- same statement (FK cascades) are not found by the id lookups; the parent's
-- own trigger covers them.

-- Domain created, deleted, renamed, moved, held or unheld: the domain's own
-- owner (NS, DS), every host at or below it (its glue may appear or vanish),
-- and on update every in-zone host in its NS set (sibling glue counts live
-- users; on delete the domain_ns cascade touches those).
CREATE FUNCTION registry.domain_after() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM zonedist.touch_many(t.zone, array_agg(t.name))
        FROM (SELECT n.zone, n.name FROM new_rows n
              UNION
              SELECT n.zone, h.name
              FROM new_rows n, LATERAL registry.hosts_at_or_below(n.name) AS h) AS t
        GROUP BY t.zone;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM zonedist.touch_many(t.zone, array_agg(t.name))
        FROM (SELECT o.zone, o.name FROM old_rows o
              UNION
              SELECT o.zone, h.name
              FROM old_rows o, LATERAL registry.hosts_at_or_below(o.name) AS h) AS t
        GROUP BY t.zone;
    ELSE
        PERFORM zonedist.touch_many(t.zone, array_agg(t.name))
        FROM (WITH changed AS (
                  SELECT o.id AS old_id, n.id AS new_id
                  FROM old_rows o FULL JOIN new_rows n ON n.id = o.id
                  WHERE o.id IS NULL OR n.id IS NULL
                     OR o.name <> n.name OR o.zone <> n.zone
                     OR registry.is_held(o.status) <> registry.is_held(n.status)),
              d AS (
                  SELECT o.id, o.zone, o.name FROM old_rows o JOIN changed c ON c.old_id = o.id
                  UNION
                  SELECT n.id, n.zone, n.name FROM new_rows n JOIN changed c ON c.new_id = n.id)
              SELECT d.zone, d.name FROM d
              UNION
              SELECT d.zone, h.name FROM d, LATERAL registry.hosts_at_or_below(d.name) AS h
              UNION
              SELECT z.zone, h.name
              FROM d JOIN registry.domain_ns x ON x.domain_id = d.id
              JOIN registry.host h ON h.id = x.host_id,
              LATERAL registry.zones_containing(h.name) AS z(zone)) AS t
        GROUP BY t.zone;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER domain_after_insert AFTER INSERT ON registry.domain
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION registry.domain_after();
CREATE TRIGGER domain_after_update AFTER UPDATE ON registry.domain
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION registry.domain_after();
CREATE TRIGGER domain_after_delete AFTER DELETE ON registry.domain
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION registry.domain_after();

-- NS set changed: the domain (its NS RRset, and whether it is a delegation at
-- all, on which the glue below it depends: so the hosts below it too) and
-- each host added or removed (whether it is glue depends on who uses it).
CREATE FUNCTION registry.domain_ns_after() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    dom bigint[] := '{}';
    hst bigint[] := '{}';
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT dom || array_agg(domain_id), hst || array_agg(host_id) INTO dom, hst
        FROM new_rows;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        SELECT dom || array_agg(domain_id), hst || array_agg(host_id) INTO dom, hst
        FROM old_rows;
    END IF;
    PERFORM registry.touch_domain_ids(dom, true);
    PERFORM registry.touch_host_ids(hst, false);
    RETURN NULL;
END
$$;
CREATE TRIGGER domain_ns_after_insert AFTER INSERT ON registry.domain_ns
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION registry.domain_ns_after();
CREATE TRIGGER domain_ns_after_update AFTER UPDATE ON registry.domain_ns
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION registry.domain_ns_after();
CREATE TRIGGER domain_ns_after_delete AFTER DELETE ON registry.domain_ns
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION registry.domain_ns_after();

-- Addresses changed: the host's own A/AAAA owner (in every registry zone
-- containing it), and every domain that has the host in its NS set (the
-- delegation's glue changed).
CREATE FUNCTION registry.host_addr_after() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    hst bigint[] := '{}';
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT hst || array_agg(host_id) INTO hst FROM new_rows;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        SELECT hst || array_agg(host_id) INTO hst FROM old_rows;
    END IF;
    PERFORM registry.touch_host_ids(hst, true);
    RETURN NULL;
END
$$;
CREATE TRIGGER host_addr_after_insert AFTER INSERT ON registry.host_addr
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION registry.host_addr_after();
CREATE TRIGGER host_addr_after_update AFTER UPDATE ON registry.host_addr
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION registry.host_addr_after();
CREATE TRIGGER host_addr_after_delete AFTER DELETE ON registry.host_addr
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION registry.host_addr_after();

-- Host renamed: the old and the new owner name in every registry zone
-- containing them (glue moves), and every domain using it (the NS RDATA
-- changed).  Host deleted: its old owner name (its address rows cascade away;
-- nothing can use a deleted host).  A new host has no addresses and no users
-- yet: nothing to touch.
CREATE FUNCTION registry.host_after() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM zonedist.touch_many(t.zone, array_agg(t.name))
        FROM (SELECT DISTINCT z.zone, o.name
              FROM old_rows o, LATERAL registry.zones_containing(o.name) AS z(zone)) AS t
        GROUP BY t.zone;
    ELSE
        PERFORM zonedist.touch_many(t.zone, array_agg(t.name))
        FROM (WITH renamed AS (
                  SELECT o.id, o.name AS old_name, n.name AS new_name
                  FROM old_rows o JOIN new_rows n ON n.id = o.id
                  WHERE o.name <> n.name)
              SELECT z.zone, r.old_name AS name
              FROM renamed r, LATERAL registry.zones_containing(r.old_name) AS z(zone)
              UNION
              SELECT z.zone, r.new_name
              FROM renamed r, LATERAL registry.zones_containing(r.new_name) AS z(zone)
              UNION
              SELECT e.zone, e.name
              FROM renamed r JOIN registry.domain_ns x ON x.host_id = r.id
              JOIN registry.domain e ON e.id = x.domain_id) AS t
        GROUP BY t.zone;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER host_after_update AFTER UPDATE ON registry.host
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION registry.host_after();
CREATE TRIGGER host_after_delete AFTER DELETE ON registry.host
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION registry.host_after();

-- DS or key data changed: the domain's DS RRset.
CREATE FUNCTION registry.secdns_after() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    dom bigint[] := '{}';
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT dom || array_agg(domain_id) INTO dom FROM new_rows;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        SELECT dom || array_agg(domain_id) INTO dom FROM old_rows;
    END IF;
    PERFORM registry.touch_domain_ids(dom, false);
    RETURN NULL;
END
$$;
CREATE TRIGGER ds_data_after_insert AFTER INSERT ON registry.ds_data
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION registry.secdns_after();
CREATE TRIGGER ds_data_after_update AFTER UPDATE ON registry.ds_data
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION registry.secdns_after();
CREATE TRIGGER ds_data_after_delete AFTER DELETE ON registry.ds_data
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION registry.secdns_after();
CREATE TRIGGER key_data_after_insert AFTER INSERT ON registry.key_data
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION registry.secdns_after();
CREATE TRIGGER key_data_after_update AFTER UPDATE ON registry.key_data
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION registry.secdns_after();
CREATE TRIGGER key_data_after_delete AFTER DELETE ON registry.key_data
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION registry.secdns_after();

-- TTLs or glue policy of a zone changed: every owner the zone hands to
-- zonedist (all delegations, all glue candidates).  Rare and zone-wide by
-- nature.  Inserting a zone changes nothing (it has no domains yet);
-- deleting one is refused while domains reference it.
CREATE FUNCTION registry.zone_after() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM zonedist.touch_many(t.zone, array_agg(t.name))
    FROM (WITH changed AS (
              SELECT n.name
              FROM old_rows o JOIN new_rows n ON n.name = o.name
              WHERE (o.ns_ttl, o.ds_ttl, o.glue_ttl, o.sibling_glue)
                    IS DISTINCT FROM (n.ns_ttl, n.ds_ttl, n.glue_ttl, n.sibling_glue))
          SELECT d.zone, d.name FROM changed c JOIN registry.domain d ON d.zone = c.name
          UNION
          SELECT c.name, h.name
          FROM changed c JOIN registry.host h ON registry.is_below(h.name, c.name)
          JOIN registry.domain d ON d.zone = c.name
                                AND d.name = registry.child_name(h.name, c.name)
          WHERE EXISTS (SELECT 1 FROM registry.host_addr a WHERE a.host_id = h.id)) AS t
    GROUP BY t.zone;
    RETURN NULL;
END
$$;
CREATE TRIGGER zone_after_update AFTER UPDATE ON registry.zone
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION registry.zone_after();

-- TRUNCATE fires no row or transition-table triggers, so zonedist would never
-- hear of the removed records.  Refuse it; DELETE is tracked.
CREATE FUNCTION registry.refuse_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'TRUNCATE %.% bypasses zonedist change tracking; use DELETE',
        TG_TABLE_SCHEMA, TG_TABLE_NAME USING ERRCODE = 'feature_not_supported';
END
$$;
CREATE TRIGGER zone_no_truncate BEFORE TRUNCATE ON registry.zone
    FOR EACH STATEMENT EXECUTE FUNCTION registry.refuse_truncate();
CREATE TRIGGER domain_no_truncate BEFORE TRUNCATE ON registry.domain
    FOR EACH STATEMENT EXECUTE FUNCTION registry.refuse_truncate();
CREATE TRIGGER host_no_truncate BEFORE TRUNCATE ON registry.host
    FOR EACH STATEMENT EXECUTE FUNCTION registry.refuse_truncate();
CREATE TRIGGER host_addr_no_truncate BEFORE TRUNCATE ON registry.host_addr
    FOR EACH STATEMENT EXECUTE FUNCTION registry.refuse_truncate();
CREATE TRIGGER domain_ns_no_truncate BEFORE TRUNCATE ON registry.domain_ns
    FOR EACH STATEMENT EXECUTE FUNCTION registry.refuse_truncate();
CREATE TRIGGER ds_data_no_truncate BEFORE TRUNCATE ON registry.ds_data
    FOR EACH STATEMENT EXECUTE FUNCTION registry.refuse_truncate();
CREATE TRIGGER key_data_no_truncate BEFORE TRUNCATE ON registry.key_data
    FOR EACH STATEMENT EXECUTE FUNCTION registry.refuse_truncate();
