-- How the reference registry's rows become DNS records, and the function
-- zonedist reads them through: zonedist.zone_rrs(zone, names).
--
-- Requires 0001_init.sql and registry.sql.  Safe to re-apply (CREATE OR
-- REPLACE), e.g. after changing a rule here.
--
-- Everything is plain SQL that the planner inlines: zonedist.zone_rrs(zone,
-- NULL) becomes one streaming query over the tables (hash joins, no
-- per-row procedural code), which the adapter reads in one streamed COPY;
-- zonedist.zone_rrs(zone, names) becomes index probes for just those owners.

-- Delegations: domains that are in the zone (not held) and have an NS set.
-- Only these get DS records, and only names below these can be glue.
CREATE OR REPLACE VIEW registry.delegation AS
SELECT d.id, d.name, d.zone
FROM registry.domain d
WHERE NOT registry.is_held(d.status)
  AND EXISTS (SELECT 1 FROM registry.domain_ns x WHERE x.domain_id = d.id);

-- Every non-apex record of every registry zone, in presentation form.
CREATE OR REPLACE VIEW registry.rr AS
-- NS: the NS set of each domain that is not held.
SELECT d.zone, d.name AS owner, 'NS'::text AS type, z.ns_ttl AS ttl, h.name AS rdata
FROM registry.domain d
JOIN registry.zone z ON z.name = d.zone
JOIN registry.domain_ns x ON x.domain_id = d.id
JOIN registry.host h ON h.id = x.host_id
WHERE NOT registry.is_held(d.status)
UNION ALL
-- DS given as dsData: 'keytag alg digesttype HEX'.
SELECT d.zone, d.name, 'DS', z.ds_ttl,
       s.keytag || ' ' || s.alg || ' ' || s.digest_type || ' ' || s.digest
FROM registry.delegation d
JOIN registry.zone z ON z.name = d.zone
JOIN registry.ds_data s ON s.domain_id = d.id
UNION ALL
-- DS derived from keyData (SHA-256), unless the same DS is also given as
-- dsData (the RRset must not hold a record twice).
SELECT d.zone, d.name, 'DS', z.ds_ttl, k.ds
FROM registry.delegation d
JOIN registry.zone z ON z.name = d.zone
JOIN LATERAL (SELECT registry.ds_from_dnskey(d.name, kd.flags, kd.protocol, kd.alg, kd.pubkey) AS ds
              FROM registry.key_data kd
              WHERE kd.domain_id = d.id) AS k ON true
WHERE NOT EXISTS (SELECT 1 FROM registry.ds_data s
                  WHERE s.domain_id = d.id
                    AND s.keytag || ' ' || s.alg || ' ' || s.digest_type || ' ' || s.digest = k.ds)
UNION ALL
-- Glue (RFC 9471): addresses of a host at or below a delegation D of the
-- zone, when some domain of the zone that is not held uses the host as a
-- name server and that domain is D itself (in-domain glue, always) or any
-- other (sibling glue, if the zone publishes it).
SELECT z.name, h.name,
       CASE family(a.addr) WHEN 4 THEN 'A' ELSE 'AAAA' END,
       z.glue_ttl, host(a.addr)
FROM registry.zone z
JOIN registry.host h ON registry.is_below(h.name, z.name)
JOIN registry.delegation d ON d.zone = z.name AND d.name = registry.child_name(h.name, z.name)
JOIN registry.host_addr a ON a.host_id = h.id
WHERE EXISTS (SELECT 1
              FROM registry.domain_ns u
              JOIN registry.domain e ON e.id = u.domain_id
              WHERE u.host_id = h.id
                AND e.zone = z.name
                AND NOT registry.is_held(e.status)
                AND (e.id = d.id OR z.sibling_glue));

-- The contract function (docs/REGISTRY.md).  zone and names are normalized
-- like zonedist.touch() does; blank and NULL names are ignored; unknown names
-- yield nothing.  The two branches are mutually exclusive on names IS NULL,
-- which the executor decides once per call (a one-time filter), so each keeps
-- its own plan: a full scan for the initial load, index probes otherwise.
-- Never returns apex records.  Order is unspecified.
CREATE OR REPLACE FUNCTION zonedist.zone_rrs(zone text, names text[])
RETURNS TABLE (owner text, type text, ttl integer, rdata text)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT r.owner, r.type, r.ttl, r.rdata
    FROM registry.rr r
    WHERE $2 IS NULL
      AND r.zone = (SELECT zonedist.normalize_name($1))
      AND r.owner <> r.zone
    UNION ALL
    SELECT r.owner, r.type, r.ttl, r.rdata
    FROM registry.rr r
    WHERE $2 IS NOT NULL
      AND r.zone = (SELECT zonedist.normalize_name($1))
      AND r.owner = ANY (ARRAY(SELECT DISTINCT zonedist.normalize_name(u.n)
                               FROM unnest($2) AS u(n)
                               WHERE btrim(u.n, E' \t\r\n') <> ''))
      AND r.owner <> r.zone
$$;
