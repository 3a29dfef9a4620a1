"""A whole distribution chain for system tests: PostgreSQL with the
reference registry, zonedistd, and NSD / BIND secondaries that it NOTIFYs."""

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from . import dnsutil
from .proc import free_port, wait_until
from .registry import Registry, SCHEMA_FILES, canonical_rdata, norm
from .servers import Nsd, Bind
from .zonedistd import Zonedistd, APEX


# Each secondary transfers from its own loopback address, so zonedistd's
# transfer log says which secondary fetched what.
SOURCES = {"nsd": "127.0.0.2", "bind": "127.0.0.3"}


def install_registry(pg, zone="tld."):
    """The zonedist schema through zonedistd --init-db is the caller's; this
    adds the reference registry (schema/registry/) and the zone."""
    for path in SCHEMA_FILES[1:]:
        pg.psql_file(path)
    r = Registry(pg)
    r.add_zone(zone)
    return r


def apex_set(zone="tld.", apex=None):
    """The configured records as (owner, type, ttl, rdata text) tuples."""
    out = set()
    for line in apex or [a.replace("tld.", zone) for a in APEX]:
        owner, ttl, _cls, rtype, rdata = line.split(None, 4)
        out.add((norm(owner), rtype, int(ttl), canonical_rdata(rtype, rdata)))
    return out


def axfr_text(port, zone, keyring=None, keyname=None):
    """AXFR as (owner, type, ttl, rdata text) in the registry helper's
    canonical text form, SOA left out; every record exactly once."""
    origin = dns.name.from_text(zone)
    out = []
    soas = 0
    for msg in dnsutil.axfr_messages(port, zone, keyring=keyring, keyname=keyname,
                                     timeout=60):
        for rrset in msg.answer:
            for rd in rrset:
                t = dns.rdatatype.to_text(rrset.rdtype)
                if t == "SOA":
                    soas += 1
                    continue
                name = rrset.name if rrset.name.is_absolute() else rrset.name.derelativize(origin)
                out.append((norm(name.to_text()), t, int(rrset.ttl),
                            canonical_rdata(t, rd.to_text(origin=origin, relativize=False))))
    assert soas == 2, f"AXFR of {zone} should be framed by two SOAs, saw {soas}"
    s = set(out)
    assert len(s) == len(out), "AXFR carried a record twice"
    return s


def journal_rows(pg, zone):
    """[(version, serial, txids)] of the journal, in version order."""
    rows = pg.psql(f"SELECT version, serial, array_to_string(txids, ',') FROM zonedist.journal "
                   f"WHERE zone = '{zone}' ORDER BY version")
    out = []
    for line in rows.splitlines():
        v, s, t = line.split("|")
        out.append((int(v), int(s), [int(x) for x in t.split(",") if x]))
    return out


def zone_rrs_plus_table(pg, table):
    """Make zonedist.zone_rrs() return the reference registry's rows plus
    those of a new table (owner, type, ttl, rdata) the test writes: a
    registry that hands zonedist any rows a test wants, good or bad."""
    pg.psql("ALTER FUNCTION zonedist.zone_rrs(text, text[]) RENAME TO zone_rrs_ref;"
            f"CREATE TABLE {table} (owner text, type text, ttl int, rdata text);"
            "CREATE FUNCTION zonedist.zone_rrs(zone text, names text[]) "
            "RETURNS TABLE(owner text, type text, ttl integer, rdata text) LANGUAGE sql AS $$ "
            "SELECT * FROM zonedist.zone_rrs_ref(zone, names) UNION ALL "
            f"SELECT b.owner, b.type, b.ttl, b.rdata FROM {table} b "
            "WHERE names IS NULL OR b.owner = ANY(names) $$")


def journal_serial_of(pg, txid, zone="tld."):
    """The serial of the one journal row that lists registry txid."""
    out = pg.psql(f"SELECT serial FROM zonedist.journal WHERE zone = '{zone}' AND "
                  f"{txid} = ANY(txids)").split()
    assert len(out) == 1, f"txid {txid} in {len(out)} journal rows"
    return int(out[0])


class Chain:
    """zonedistd fed by the registry, NSD and BIND secondaries."""

    def __init__(self, pg, spawn, zone="tld.", secondaries=("nsd", "bind"), tsig=None,
                 zonedistd_kw=None):
        self.pg, self.spawn, self.zone = pg, spawn, zone
        self.sec_ports = {k: free_port() for k in secondaries}
        key = tsig[0] if tsig else None
        kw = dict(zonedistd_kw or {})
        if tsig:
            kw.setdefault("tsig", [tsig])
            kw.setdefault("acl", [("127.0.0.0/8", key)])
        self.zd = Zonedistd(pg, zones=(zone,), notify=[(p, key) for p in self.sec_ports.values()],
                            **kw)
        self.tsig = tsig
        self.zd.init_db()
        self.registry = install_registry(pg, zone)
        self.secondaries = {}

    def start(self):
        self.spawn(self.zd)
        t = (self.tsig[0], self.tsig[1], self.tsig[2]) if self.tsig else None
        for kind, port in self.sec_ports.items():
            kw = {"axfr_fallback": False} if kind == "nsd" else {}
            cls = Nsd if kind == "nsd" else Bind
            self.secondaries[kind] = self.spawn(cls(self.zd.port, [self.zone], tsig=t,
                                                    port=port, source=SOURCES[kind], **kw))
        return self

    def expected(self):
        return self.registry.expected_zone(self.zone) | apex_set(self.zone)

    def journal_serial(self):
        rows = journal_rows(self.pg, self.zone)
        if rows:
            return rows[-1][1]
        r = self.pg.psql(f"SELECT serial FROM zonedist.checkpoint WHERE zone = '{self.zone}' "
                         "ORDER BY version DESC LIMIT 1").strip()
        return int(r) if r else None

    def settle(self, deadline=60):
        """Wait until the outbox is empty and every secondary serves
        zonedistd's serial; returns that serial."""
        wait_until(lambda: self.pg.psql(
            f"SELECT count(*) FROM zonedist.change WHERE zone = '{self.zone}'").strip() == "0",
            deadline, "outbox drained")
        # The journal holds the newest version once the outbox is empty;
        # zonedistd publishes it just after the commit.
        serial = self.journal_serial()
        if serial is not None:
            wait_until(lambda: self.zd.serial(self.zone) == serial, deadline,
                       f"zonedistd publishing serial {serial}")
        else:
            serial = wait_until(lambda: self.zd.serial(self.zone), deadline, "zonedistd serial")
        for s in self.secondaries.values():
            s.wait_serial(self.zone, serial, deadline=deadline)
        return serial
