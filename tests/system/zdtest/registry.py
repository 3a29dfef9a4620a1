"""Drive the reference registry (schema/registry/) of a throwaway PostgreSQL.

Every mutating method runs and commits its own transaction and returns that
transaction's txid (txid_current()), which is what zonedist.change.txid holds,
so a test can ask which owners exactly that transaction touched.

expected_zone() is the test oracle: it derives the zone's non-apex records in
Python from plain SELECTs of the registry tables, independently of the SQL in
schema/registry/zone_rrs.sql.
"""

import base64
import hashlib
import ipaddress
import os
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SCHEMA_FILES = (
    os.path.join(ROOT, "schema", "migrations", "0001_init.sql"),
    os.path.join(ROOT, "schema", "registry", "registry.sql"),
    os.path.join(ROOT, "schema", "registry", "zone_rrs.sql"),
)

HOLDS = {"clientHold", "serverHold"}


def norm(name):
    """Python twin of zonedist.normalize_name()."""
    n = name.strip(" \t\r\n").lower()
    if n == "":
        raise ValueError("empty name")
    n = n.rstrip(".")
    return "." if n == "" else n + "."


def name_wire(name):
    """Canonical (lower-case) wire form of a normalized name."""
    if name == ".":
        return b"\x00"
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        out += bytes([len(raw)]) + raw
    return out + b"\x00"


def keytag(rdata):
    """RFC 4034 Appendix B, written from the RFC text."""
    if rdata[3] == 1:  # B.1: RSA/MD5
        return (rdata[-3] << 8) | rdata[-2]
    ac = 0
    for i, b in enumerate(rdata):
        ac += b if i & 1 else b << 8
    ac += (ac >> 16) & 0xFFFF
    return ac & 0xFFFF


def dnskey_rdata(flags, protocol, alg, pubkey_b64):
    return (flags.to_bytes(2, "big") + bytes([protocol, alg])
            + base64.b64decode("".join(pubkey_b64.split())))


def ds_from_dnskey(owner, flags, protocol, alg, pubkey_b64):
    """(keytag, alg, 2, HEX) for a DNSKEY at owner, SHA-256 (RFC 4509)."""
    rd = dnskey_rdata(flags, protocol, alg, pubkey_b64)
    digest = hashlib.sha256(name_wire(norm(owner)) + rd).hexdigest().upper()
    return (keytag(rd), alg, 2, digest)


def canonical_rdata(rtype, rdata):
    """One text form per RDATA value, for comparing record sets."""
    rtype = rtype.upper()
    if rtype == "NS":
        return norm(rdata)
    if rtype == "DS":
        tag, alg, dt, digest = rdata.split(None, 3)
        return f"{int(tag)} {int(alg)} {int(dt)} {''.join(digest.split()).upper()}"
    if rtype in ("A", "AAAA"):
        return str(ipaddress.ip_address(rdata.split("/")[0]))
    return rdata


def canonical_rows(rows):
    return {(norm(o), t.upper(), int(ttl), canonical_rdata(t, r)) for o, t, ttl, r in rows}


def _is_below(child, parent):
    if parent == ".":
        return child != "."
    return child.endswith("." + parent)


class Registry:
    def __init__(self, pg):
        self.pg = pg
        self.conn = pg.connect()

    def close(self):
        self.conn.close()

    # -- plumbing -------------------------------------------------------

    def _tx(self, statements):
        """Run (sql, args) pairs in one transaction; return its txid."""
        with self.conn:
            with self.conn.cursor() as cur:
                for sql, args in statements:
                    cur.execute(sql, args)
                cur.execute("SELECT txid_current()")
                return cur.fetchone()[0]

    def query(self, sql, args=None):
        with self.conn:
            with self.conn.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall() if cur.description else None

    def install(self):
        """Apply the three schema files in order, each in one transaction, the
        way zonedistd --init-db applies a migration."""
        for path in SCHEMA_FILES:
            with open(path) as f:
                sql = f.read()
            with self.conn:
                with self.conn.cursor() as cur:
                    cur.execute(sql)
        return self

    # -- registry operations ----------------------------------------------

    def add_zone(self, zone, **ttls):
        """ttls: ns_ttl, ds_ttl, glue_ttl, sibling_glue."""
        cols = ["name"] + list(ttls)
        vals = [zone] + list(ttls.values())
        return self._tx([(f"INSERT INTO registry.zone ({', '.join(cols)}) VALUES "
                          f"({', '.join(['%s'] * len(cols))})", vals)])

    def set_zone(self, zone, **fields):
        sets = ", ".join(f"{k} = %s" for k in fields)
        return self._tx([(f"UPDATE registry.zone SET {sets} WHERE name = zonedist.normalize_name(%s)",
                          list(fields.values()) + [zone])])

    def _add_host_stmts(self, name, addrs):
        stmts = [("INSERT INTO registry.host (name) VALUES (%s) ON CONFLICT (name) DO NOTHING",
                  [norm(name)])]
        if addrs:
            stmts.append(("INSERT INTO registry.host_addr (host_id, addr) "
                          "SELECT h.id, a::inet FROM registry.host h, unnest(%s::text[]) a "
                          "WHERE h.name = %s", [list(addrs), norm(name)]))
        return stmts

    def add_host(self, name, addrs=()):
        return self._tx(self._add_host_stmts(name, addrs))

    def add_domain(self, name, zone=None, ns=(), ds=(), status=(), keys=()):
        """ns: host names (created without addresses when missing);
        ds: (keytag, alg, digest_type, hex); keys: (flags, protocol, alg, b64)."""
        name = norm(name)
        stmts = [("INSERT INTO registry.domain (name, zone, status) VALUES (%s, %s, %s)",
                  [name, zone, list(status)])]
        for h in ns:
            stmts += self._add_host_stmts(h, ())
        if ns:
            stmts.append(("INSERT INTO registry.domain_ns (domain_id, host_id) "
                          "SELECT d.id, h.id FROM registry.domain d, registry.host h "
                          "WHERE d.name = %s AND h.name = ANY (%s)", [name, [norm(h) for h in ns]]))
        for tag, alg, dt, digest in ds:
            stmts.append(self._ds_insert(name, tag, alg, dt, digest))
        for flags, proto, alg, key in keys:
            stmts.append(self._key_insert(name, flags, proto, alg, key))
        return self._tx(stmts)

    def delete_domain(self, name):
        return self._tx([("DELETE FROM registry.domain WHERE name = %s", [norm(name)])])

    def delete_host(self, name):
        return self._tx([("DELETE FROM registry.host WHERE name = %s", [norm(name)])])

    def set_ns(self, domain, hosts):
        domain = norm(domain)
        hosts = [norm(h) for h in hosts]
        stmts = []
        for h in hosts:
            stmts += self._add_host_stmts(h, ())
        stmts += [
            ("DELETE FROM registry.domain_ns x USING registry.domain d, registry.host h "
             "WHERE x.domain_id = d.id AND x.host_id = h.id AND d.name = %s "
             "AND NOT h.name = ANY (%s)", [domain, hosts]),
            ("INSERT INTO registry.domain_ns (domain_id, host_id) "
             "SELECT d.id, h.id FROM registry.domain d, registry.host h "
             "WHERE d.name = %s AND h.name = ANY (%s) ON CONFLICT DO NOTHING", [domain, hosts]),
        ]
        return self._tx(stmts)

    def set_host_addrs(self, host, addrs):
        host = norm(host)
        addrs = [str(ipaddress.ip_address(a)) for a in addrs]
        return self._tx([
            ("DELETE FROM registry.host_addr a USING registry.host h "
             "WHERE a.host_id = h.id AND h.name = %s AND NOT a.addr = ANY (%s::inet[])",
             [host, addrs]),
            ("INSERT INTO registry.host_addr (host_id, addr) "
             "SELECT h.id, a::inet FROM registry.host h, unnest(%s::text[]) a "
             "WHERE h.name = %s ON CONFLICT DO NOTHING", [addrs, host]),
        ])

    def rename_host(self, old, new):
        return self._tx([("UPDATE registry.host SET name = %s WHERE name = %s",
                          [norm(new), norm(old)])])

    def set_status(self, domain, status):
        return self._tx([("UPDATE registry.domain SET status = %s WHERE name = %s",
                          [list(status), norm(domain)])])

    def hold(self, domain, kind="clientHold"):
        return self._tx([("UPDATE registry.domain SET status = array_append(status, %s) "
                          "WHERE name = %s AND NOT %s = ANY (status)",
                          [kind, norm(domain), kind])])

    def unhold(self, domain):
        return self._tx([("UPDATE registry.domain "
                          "SET status = array_remove(array_remove(status, 'clientHold'), 'serverHold') "
                          "WHERE name = %s", [norm(domain)])])

    @staticmethod
    def _ds_insert(domain, tag, alg, dt, digest):
        return ("INSERT INTO registry.ds_data (domain_id, keytag, alg, digest_type, digest) "
                "SELECT id, %s, %s, %s, %s FROM registry.domain WHERE name = %s",
                [tag, alg, dt, digest, norm(domain)])

    @staticmethod
    def _key_insert(domain, flags, proto, alg, key):
        return ("INSERT INTO registry.key_data (domain_id, flags, protocol, alg, pubkey) "
                "SELECT id, %s, %s, %s, %s FROM registry.domain WHERE name = %s",
                [flags, proto, alg, key, norm(domain)])

    def add_ds(self, domain, ds):
        return self._tx([self._ds_insert(domain, *ds)])

    def remove_ds(self, domain, ds):
        tag, alg, dt, digest = ds
        return self._tx([("DELETE FROM registry.ds_data s USING registry.domain d "
                          "WHERE s.domain_id = d.id AND d.name = %s AND s.keytag = %s "
                          "AND s.alg = %s AND s.digest_type = %s AND s.digest = upper(%s)",
                          [norm(domain), tag, alg, dt, digest])])

    def add_key(self, domain, key):
        """key: (flags, protocol, alg, base64 public key)."""
        return self._tx([self._key_insert(domain, *key)])

    def remove_key(self, domain, key):
        flags, proto, alg, pub = key
        return self._tx([("DELETE FROM registry.key_data k USING registry.domain d "
                          "WHERE k.domain_id = d.id AND d.name = %s AND k.flags = %s "
                          "AND k.protocol = %s AND k.alg = %s AND k.pubkey = %s",
                          [norm(domain), flags, proto, alg, "".join(pub.split())])])

    # -- bulk -------------------------------------------------------------

    def bulk_fill(self, zone, n, seed, ds_fraction=0.1, glue_fraction=0.1,
                  sibling_fraction=0.05, touch=True, triggers=False):
        """Add n domains 'b<seed>-<i>.<zone>' (i = 1..n, not zero-padded) in
        one transaction, set-based.  Deterministic in (zone, n, seed,
        fractions):
          - the first `providers` domains (n // 1000, at least 1, at most 64)
            and a glue_fraction of the rest have in-domain name servers
            ns1.<domain> (A) and ns2.<domain> (A, AAAA): in-domain glue;
          - a sibling_fraction uses ns1/ns2 of a provider domain: sibling glue
            when the zone publishes it;
          - the others use two of 200 external hosts ns<k>.dns<j>.bulk.example.;
          - a ds_fraction has one SHA-256 DS.
        Row ids are reserved from the tables' sequences up front, so no step
        joins on names.

        triggers=False (default, the fast path): the rows go in with
        session_replication_role = replica, which skips the registry's
        triggers and foreign-key checks (the generated rows are consistent by
        construction; CHECK constraints still apply); with touch=True the
        change rows the triggers would have written (every new domain, every
        new glue host) are inserted in one statement and zonedist_change is
        notified.  touch=False writes no change rows at all (a benchmark that
        loads the zone with zone_rrs(NULL) anyway).  triggers=True sends
        everything through the real triggers (several times slower: for
        testing them at scale).  Returns the txid; the time taken is in
        self.last_bulk_seconds."""
        zone = norm(zone)
        providers = max(1, min(64, n // 1000))
        # A fraction f becomes a threshold on a 32-bit hash: hash < f * 2^32.
        p = dict(zone=zone, suffix="" if zone == "." else zone, n=n, seed=seed,
                 ds=int(ds_fraction * 2**32), glue=int(glue_fraction * 2**32),
                 sib=int(sibling_fraction * 2**32), prov=providers)

        def hash32(salt):
            # A cheap integer mix of (i, seed, salt) to 32 bits, all in bigint
            # (md5 or numeric division would cost more than the inserts).
            a = (f"((i * 2654435761 + {salt}::bigint * 1640531527 + %(seed)s::bigint * 97) "
                 "%% 4294967296)")
            b = f"((({a} # ({a} >> 16)) * 73244475) %% 4294967296)"
            return f"({b} # ({b} >> 13))"

        # JIT compiles these one-shot statements for longer than they run.
        stmts = [("SET LOCAL jit = off", None)]
        if not triggers:
            stmts.append(("SET LOCAL session_replication_role = replica", None))
        stmts += [
            # Reserve id blocks: domain i gets dbase + i, its in-domain hosts
            # hbase + 2i and hbase + 2i + 1 (unused for other domains).
            ("CREATE TEMP TABLE bulk_base ON COMMIT DROP AS "
             "SELECT nextval('registry.domain_id_seq') AS dbase, "
             "       nextval('registry.host_id_seq') AS hbase", None),
            ("SELECT setval('registry.domain_id_seq', dbase + %(n)s + 1), "
             "       setval('registry.host_id_seq', hbase + 2 * %(n)s + 2) FROM bulk_base", p),
            ("CREATE TEMP TABLE bulk_plan ON COMMIT DROP AS "
             "SELECT i, 'b' || %(seed)s || '-' || i || '.' || %(suffix)s AS name, "
             f"       CASE WHEN i <= %(prov)s OR {hash32(1)} < %(glue)s THEN 'g' "
             f"            WHEN {hash32(2)} < %(sib)s THEN 's' ELSE 'x' END AS kind, "
             f"       {hash32(3)} < %(ds)s AS has_ds, "
             "       dbase + i AS id, hbase + 2 * i AS ns1, hbase + 2 * i + 1 AS ns2 "
             "FROM bulk_base, generate_series(1, %(n)s) AS i", p),
            ("ANALYZE bulk_base", None),
            ("ANALYZE bulk_plan", None),
            # bulk_plan is a fresh temp table: a scan returns i order.
            ("INSERT INTO registry.domain (id, name, zone) "
             "SELECT id, name, %(zone)s FROM bulk_plan", p),
            # External hosts shared by many domains, created once per database.
            ("INSERT INTO registry.host (name) "
             "SELECT format('ns%%s.dns%%s.bulk.example.', k, j) "
             "FROM generate_series(0, 99) j, generate_series(1, 2) k "
             "ON CONFLICT (name) DO NOTHING", p),
            ("CREATE TEMP TABLE bulk_ext ON COMMIT DROP AS "
             "SELECT array_agg(h1.id ORDER BY j) AS h1, array_agg(h2.id ORDER BY j) AS h2 "
             "FROM generate_series(0, 99) j "
             "JOIN registry.host h1 ON h1.name = format('ns1.dns%%s.bulk.example.', j) "
             "JOIN registry.host h2 ON h2.name = format('ns2.dns%%s.bulk.example.', j)", p),
            ("ANALYZE bulk_ext", None),
            ("INSERT INTO registry.host (id, name) "
             "SELECT ns1, 'ns1.' || name FROM bulk_plan WHERE kind = 'g'", p),
            ("INSERT INTO registry.host (id, name) "
             "SELECT ns2, 'ns2.' || name FROM bulk_plan WHERE kind = 'g'", p),
            ("INSERT INTO registry.host_addr (host_id, addr) "
             "SELECT v.h, v.a FROM bulk_plan, LATERAL (VALUES "
             "  (ns1, '10.0.0.0'::inet + ((i * 2) %% 16777216)), "
             "  (ns2, '10.0.0.0'::inet + ((i * 2 + 1) %% 16777216)), "
             "  (ns2, '2001:db8::'::inet + ((%(seed)s::bigint << 32) + i))) AS v(h, a) "
             "WHERE kind = 'g'", p),
            # Providers are the first domains, all of kind 'g', so their host
            # ids follow from their number.
            ("INSERT INTO registry.domain_ns (domain_id, host_id) "
             "SELECT b.id, v.h "
             "FROM bulk_base, bulk_ext e, bulk_plan b, "
             "LATERAL (VALUES (CASE b.kind WHEN 'g' THEN b.ns1 "
             "                  WHEN 's' THEN hbase + 2 * (1 + b.i %% %(prov)s) "
             "                  ELSE e.h1[1 + b.i %% 100] END), "
             "                (CASE b.kind WHEN 'g' THEN b.ns2 "
             "                  WHEN 's' THEN hbase + 2 * (1 + b.i %% %(prov)s) + 1 "
             "                  ELSE e.h2[1 + b.i %% 100] END)) AS v(h)", p),
            ("INSERT INTO registry.ds_data (domain_id, keytag, alg, digest_type, digest) "
             "SELECT id, i %% 65536, 13, 2, upper(encode(sha256(convert_to(name, 'UTF8')), 'hex')) "
             "FROM bulk_plan WHERE has_ds", p),
        ]
        if touch and not triggers:
            stmts += [
                ("INSERT INTO zonedist.change (zone, name) "
                 "SELECT %(zone)s, name FROM bulk_plan "
                 "UNION ALL SELECT %(zone)s, 'ns1.' || name FROM bulk_plan WHERE kind = 'g' "
                 "UNION ALL SELECT %(zone)s, 'ns2.' || name FROM bulk_plan WHERE kind = 'g'", p),
                ("SELECT pg_notify('zonedist_change', %(zone)s)", p),
            ]
        stmts += [(f"ANALYZE registry.{t}", None)
                  for t in ("domain", "host", "host_addr", "domain_ns", "ds_data")]
        stmts.append(("ANALYZE zonedist.change", None))
        t0 = time.monotonic()
        txid = self._tx(stmts)
        self.last_bulk_seconds = time.monotonic() - t0
        return txid

    # -- reading ----------------------------------------------------------

    def changes(self, txid=None):
        """{(zone, name)} of zonedist.change rows (of one transaction)."""
        if txid is None:
            rows = self.query("SELECT zone, name FROM zonedist.change")
        else:
            rows = self.query("SELECT zone, name FROM zonedist.change WHERE txid = %s", [txid])
        return set(rows)

    def touched(self, txid):
        """Owner names one transaction touched, as {(zone, name)}; asserts
        that touch() recorded each at most once."""
        rows = self.query("SELECT zone, name FROM zonedist.change WHERE txid = %s", [txid])
        assert len(rows) == len(set(rows)), f"duplicate change rows in txid {txid}: {rows}"
        return set(rows)

    def zone_rrs(self, zone, names=None, raw=False):
        rows = self.query("SELECT owner, type, ttl, rdata FROM zonedist.zone_rrs(%s, %s)",
                          [zone, names])
        return rows if raw else canonical_rows(rows)

    def expected_zone(self, zone):
        """The zone's non-apex records, derived in Python from the tables."""
        zone = norm(zone)
        with self.conn:
            with self.conn.cursor() as cur:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cur.execute("SELECT ns_ttl, ds_ttl, glue_ttl, sibling_glue "
                            "FROM registry.zone WHERE name = %s", [zone])
                row = cur.fetchone()
                if row is None:
                    return set()
                ns_ttl, ds_ttl, glue_ttl, sibling = row
                cur.execute("SELECT id, name, status FROM registry.domain WHERE zone = %s", [zone])
                domains = {i: (name, set(st)) for i, name, st in cur.fetchall()}
                cur.execute("SELECT id, name FROM registry.host")
                hosts = dict(cur.fetchall())
                cur.execute("SELECT domain_id, host_id FROM registry.domain_ns")
                ns_pairs = cur.fetchall()
                cur.execute("SELECT host_id, host(addr), family(addr) FROM registry.host_addr")
                addrs = cur.fetchall()
                cur.execute("SELECT domain_id, keytag, alg, digest_type, digest FROM registry.ds_data")
                ds_rows = cur.fetchall()
                cur.execute("SELECT domain_id, flags, protocol, alg, pubkey FROM registry.key_data")
                key_rows = cur.fetchall()

        active = {i for i, (_, st) in domains.items() if not (st & HOLDS)}
        ns_of = {}
        users_of = {}
        for d, h in ns_pairs:
            if d in domains:
                ns_of.setdefault(d, set()).add(h)
                if d in active:
                    users_of.setdefault(h, set()).add(d)
        delegations = {d for d in active if ns_of.get(d)}
        by_name = {name: i for i, (name, _) in domains.items()}

        out = set()
        for d in delegations:
            owner = domains[d][0]
            for h in ns_of[d]:
                out.add((owner, "NS", ns_ttl, hosts[h]))
        for d, tag, alg, dt, digest in ds_rows:
            if d in delegations:
                out.add((domains[d][0], "DS", ds_ttl, f"{tag} {alg} {dt} {digest.upper()}"))
        for d, flags, proto, alg, pub in key_rows:
            if d in delegations:
                owner = domains[d][0]
                tag, a, dt, digest = ds_from_dnskey(owner, flags, proto, alg, pub)
                out.add((owner, "DS", ds_ttl, f"{tag} {a} {dt} {digest}"))
        for h, addr, family in addrs:
            hn = hosts[h]
            if not _is_below(hn, zone):
                continue
            # The delegation point on the way from the zone down to the host.
            rel = hn[: len(hn) - len(zone)] if zone != "." else hn
            labels = rel.rstrip(".").split(".")
            parent = labels[-1] + "." + ("" if zone == "." else zone)
            d = by_name.get(parent)
            if d is None or d not in delegations:
                continue
            users = users_of.get(h, set())
            if d in users or (sibling and users):
                out.add((hn, "A" if family == 4 else "AAAA", glue_ttl,
                         str(ipaddress.ip_address(addr))))
        return canonical_rows(out)
