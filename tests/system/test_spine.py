"""The spine (issue 4): registry commits reach NSD and BIND by IXFR, exactly
once, and every serial stays available."""

import random
import re

import pytest

from zdtest.env import Chain, SOURCES, axfr_text, journal_rows, zone_rrs_plus_table
from zdtest.proc import SANITIZER_MARKS, wait_until

ZONE = "tld."
N_DOMAINS = 10000
# What NSD 4.6's xfrd logs before it asks for an AXFR by itself.
NSD_RESTART = "update failed, restarting transfer"


def bulk_name(i, seed=1):
    return f"b{seed}-{i}.{ZONE}"


class Mutator:
    """Registry transactions of every kind, from a seeded generator; each
    call is one (or, for a new domain with its hosts, two) transactions."""

    def __init__(self, registry, seed, n_domains=N_DOMAINS):
        self.r = registry
        self.n_domains = n_domains
        self.rnd = random.Random(seed)
        self.created = []   # our domains with in-domain hosts
        self.held = set()
        self.n = 0

    def ext_host(self):
        j = self.rnd.randrange(100)
        return [f"ns1.dns{j}.bulk.example.", f"ns2.dns{j}.bulk.example."]

    def plain_domain(self):
        # bulk domains above the providers; those use external or sibling NS
        return bulk_name(self.rnd.randrange(100, self.n_domains))

    def new_domain(self):
        self.n += 1
        name = f"t{self.n}.{ZONE}"
        h = f"ns1.{name}"
        self.r.add_host(h, [f"192.0.2.{self.n % 250 + 1}", f"2001:db8:1::{self.n:x}"])
        self.r.add_domain(name, zone=ZONE, ns=[h] + self.ext_host()[:1])
        self.created.append(name)
        return "new"

    def delete_domain(self):
        self.r.delete_domain(self.plain_domain_unheld())
        return "delete"

    def plain_domain_unheld(self):
        while True:
            d = self.plain_domain()
            if d not in self.held:
                return d

    def ns_change(self):
        self.r.set_ns(self.plain_domain_unheld(), self.ext_host())
        return "ns"

    def shared_glue(self):
        # provider domains host name servers that sibling domains use
        # (bulk_fill makes n // 1000 of them, 1 to 64)
        p = self.rnd.randrange(1, max(1, min(64, self.n_domains // 1000)) + 1)
        self.r.set_host_addrs(f"ns1.{bulk_name(p)}", [f"198.51.100.{self.rnd.randrange(1, 255)}"])
        return "glue"

    def ds_add(self):
        d = self.plain_domain_unheld()
        self.r.add_ds(d, (self.rnd.randrange(65536), 13, 2, "%064X" % self.rnd.getrandbits(256)))
        return "ds+"

    def ds_remove(self):
        rows = self.r.query("SELECT d.name, s.keytag, s.alg, s.digest_type, s.digest FROM "
                            "registry.ds_data s JOIN registry.domain d ON d.id = s.domain_id "
                            "ORDER BY d.name LIMIT 50")
        name, *ds = self.rnd.choice(rows)
        self.r.remove_ds(name, tuple(ds))
        return "ds-"

    def hold(self):
        d = self.plain_domain_unheld()
        self.r.hold(d)
        self.held.add(d)
        return "hold"

    def unhold(self):
        if not self.held:
            return self.hold()
        d = self.rnd.choice(sorted(self.held))
        self.r.unhold(d)
        self.held.discard(d)
        return "unhold"

    def rename_host(self):
        if not self.created:
            return self.new_domain()
        d = self.rnd.choice(self.created)
        old = self.r.query("SELECT h.name FROM registry.host h JOIN registry.domain_ns n "
                           "ON n.host_id = h.id JOIN registry.domain d ON d.id = n.domain_id "
                           "WHERE d.name = %s AND h.name LIKE %s", [d, "%." + d])
        if not old:
            return self.new_domain()
        self.r.rename_host(old[0][0], f"ns{self.rnd.randrange(10, 99)}-r.{d}")
        return "rename"

    KINDS = ("new_domain", "delete_domain", "ns_change", "shared_glue", "ds_add", "ds_remove",
             "hold", "unhold", "rename_host")

    def any(self, i):
        # every kind at least once, in order, then at random
        kind = self.KINDS[i] if i < len(self.KINDS) else self.rnd.choice(self.KINDS)
        return getattr(self, kind)()


@pytest.fixture
def chain(pg, spawn):
    c = Chain(pg, spawn)
    c.registry.bulk_fill(ZONE, N_DOMAINS, seed=1)
    c.start()
    return c


def test_registry_changes_reach_nsd_and_bind_by_ixfr(chain):
    first = chain.settle(deadline=120)
    expected = chain.expected()
    assert len(expected) > 2 * N_DOMAINS
    for name, sec in chain.secondaries.items():
        assert axfr_text(sec.port, ZONE) == expected, f"{name} differs after the first load"
    nsd_before = len(chain.secondaries["nsd"].transfers())

    m = Mutator(chain.registry, seed=7)
    kinds = [m.any(i) for i in range(100)]
    assert set(kinds) >= {"new", "delete", "ns", "glue", "ds+", "ds-", "hold", "unhold",
                          "rename"}
    last = chain.settle(deadline=120)
    assert last != first
    expected = chain.expected()
    for name, sec in chain.secondaries.items():
        assert axfr_text(sec.port, ZONE) == expected, f"{name} differs after the changes"

    # Each secondary fetched the zone once by AXFR, then only by IXFR: in
    # zonedistd's transfer log (zonedist.transfer: every transfer, where the
    # daemon's log lines are rate-limited; secondaries transfer from their
    # own addresses) and, for BIND, in its own log.
    # NSD 4.6's xfrd sometimes logs "soa serial N update failed, restarting
    # transfer" under a fast stream and then asks for AXFR by itself (as in
    # the kill -9 test below): each such line in NSD's log allows one more
    # AXFR request from NSD, never from BIND.
    nsd_restarts = open(chain.secondaries["nsd"].log).read().count(NSD_RESTART)

    def transfers(addr):
        out = chain.pg.psql(f"SELECT kind, coalesce(from_serial, -1), to_serial FROM "
                            f"zonedist.transfer WHERE zone = '{ZONE}' AND secondary = '{addr}' "
                            "AND result = 'ok' AND kind <> 'IXFR-UDP' ORDER BY id")
        return [(k, int(f), int(t)) for k, f, t in
                (line.split("|") for line in out.split())]

    for kind, addr in SOURCES.items():
        # written off the publishing path: wait for the newest row
        wait_until(lambda: (t := transfers(addr)) and t[-1][2] == last, 30,
                   f"{kind}'s transfer of serial {last} in the transfer log")
        rows = transfers(addr)
        axfrs = [r for r in rows if r[0] == "AXFR"]
        ixfrs = [r for r in rows if r[0] == "IXFR" and r[1] != r[2]]
        allowed = 1 + (nsd_restarts if kind == "nsd" else 0)
        assert 1 <= len(axfrs) <= allowed, \
            f"{kind}: one AXFR (the first load) and one per NSD restart line, saw {axfrs}"
        assert ixfrs, f"{kind} never fetched by IXFR"
        # Its newest transfer brought the last serial: by IXFR, or (NSD
        # after a restart line) by AXFR.
        if kind == "bind" or nsd_restarts == 0:
            assert ixfrs[-1][2] == last, (kind, rows[-3:], last)
        assert not [r for r in rows if r[0] == "IXFR-AXFR"], (kind, rows)
    bind_log = open(chain.secondaries["bind"].log).read()
    assert re.search(r"requesting IXFR", bind_log), chain.secondaries["bind"].tail()
    assert len(chain.secondaries["nsd"].transfers()) > nsd_before

    # every version is journalled once, serials continuous
    rows = journal_rows(chain.pg, ZONE)
    versions = [v for v, _, _ in rows]
    assert versions == list(range(2, 2 + len(versions)))
    serials = [s for _, s, _ in rows]
    assert serials == list(range(first + 1, first + 1 + len(serials)))


# --- every serial stays available ------------------------------------------


def ixfr_diff(port, serial, keyring=None, keyname=None):
    """(old serial, new serial, deleted set, added set) of a condensed IXFR
    answer, in the axfr_text form; asserts the RFC 1995 framing."""
    import dns.name
    import dns.query
    import dns.rdatatype
    from zdtest.registry import canonical_rdata, norm

    origin = dns.name.from_text(ZONE)
    recs = []
    for msg in dns.query.xfr("127.0.0.1", ZONE, rdtype=dns.rdatatype.IXFR, serial=serial,
                             port=port, relativize=False, lifetime=30, keyring=keyring,
                             keyname=keyname):
        for rrset in msg.answer:
            for rd in rrset:
                t = dns.rdatatype.to_text(rrset.rdtype)
                recs.append((norm(rrset.name.to_text()), t, int(rrset.ttl),
                             rd.serial if t == "SOA" else
                             canonical_rdata(t, rd.to_text(origin=origin, relativize=False))))
    assert recs[0][1] == "SOA" and recs[-1][1] == "SOA" and recs[1][1] == "SOA", recs[:3]
    new, old = recs[0][3], recs[1][3]
    assert old == serial
    soas = [i for i, r in enumerate(recs) if r[1] == "SOA"]
    assert len(soas) == 4, "a condensed difference: new, old, new, new"
    dels, adds = set(recs[2:soas[2]]), set(recs[soas[2] + 1:-1])
    return old, new, dels, adds


def dump(chain, serial=None):
    """zonedistd --dump: the zone at a serial, rebuilt from PostgreSQL."""
    import dns.zone
    from zdtest.registry import canonical_rdata, norm
    args = ["--dump", ZONE] + (["--serial", str(serial)] if serial is not None else [])
    text = chain.zd.run(*args).stdout
    z = dns.zone.from_text(text, origin=ZONE, relativize=False, check_origin=False)
    out = set()
    for name, ttl, rd in z.iterate_rdatas():
        t = __import__("dns.rdatatype").rdatatype.to_text(rd.rdtype)
        if t != "SOA":
            out.add((norm(name.to_text()), t, int(ttl),
                     canonical_rdata(t, rd.to_text(origin=None, relativize=False))))
    return out


def test_ixfr_and_axfr_of_old_serials_match_what_was_served(pg, spawn):
    chain = Chain(pg, spawn, secondaries=())
    chain.registry.bulk_fill(ZONE, 2000, seed=1)
    chain.start()
    saved = {chain.zd.serial(ZONE): axfr_text(chain.zd.port, ZONE)}
    m = Mutator(chain.registry, seed=11, n_domains=2000)
    for i in range(20):
        m.any(i)
        after = chain.settle()  # a kind may take two transactions, or change nothing
        saved[after] = axfr_text(chain.zd.port, ZONE)
    assert len(saved) >= 10
    current = chain.zd.serial(ZONE)
    olds = random.Random(5).sample(sorted(s for s in saved if s != current), 5)
    for s in olds:
        old, new, dels, adds = ixfr_diff(chain.zd.port, s)
        assert (old, new) == (s, current)
        assert dels == saved[s] - saved[current], f"IXFR from {s}: wrong deletions"
        assert adds == saved[current] - saved[s], f"IXFR from {s}: wrong additions"
        # and the whole zone at that old serial, rebuilt from the journal
        assert dump(chain, s) == saved[s], f"zone at serial {s} differs from its AXFR"
    assert dump(chain) == saved[current]
    # an older serial that never existed gets the whole zone (RFC 1995 s4);
    # one ahead of ours (RFC 1982) gets our SOA alone
    import dns.query
    import dns.rdatatype

    def ixfr_records(serial):
        msgs = dns.query.xfr("127.0.0.1", ZONE, rdtype=dns.rdatatype.IXFR, serial=serial,
                             port=chain.zd.port, relativize=False, lifetime=30)
        return sum(len(rr) for m_ in msgs for rr in m_.answer)

    assert ixfr_records((current - 1000000) % 2**32) == len(saved[current]) + 2
    assert ixfr_records(current + 1000) == 1


# --- exactly once across kill -9 -------------------------------------------


def test_kill9_during_a_stream_of_changes_loses_and_duplicates_nothing(pg, spawn):
    import threading

    chain = Chain(pg, spawn)
    chain.registry.bulk_fill(ZONE, 2000, seed=1)
    chain.start()
    chain.settle()
    restart_serial = None
    txids = []
    errors = []

    def commit_stream():
        # its own connection: the registry helper's is not shared across threads
        from zdtest.registry import Registry
        r = Registry(pg)
        try:
            for i in range(1000):
                txids.append(r.add_domain(f"k{i}.{ZONE}", zone=ZONE,
                                          ns=[f"ns1.dns{i % 100}.bulk.example."]))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            r.close()

    t = threading.Thread(target=commit_stream)
    t.start()
    wait_until(lambda: len(txids) >= 300, 60, "300 commits")
    chain.zd.kill9()
    restart_serial = chain.journal_serial()
    wait_until(lambda: len(txids) >= 500, 60, "500 commits while zonedistd is down")
    chain.zd.start()
    t.join(120)
    assert not t.is_alive() and not errors, errors
    last = chain.settle(deadline=120)

    # every committed change is in the zone, once (a set compare would hide
    # a duplicate: axfr_text asserts no record comes twice)
    expected = chain.expected()
    for name, sec in chain.secondaries.items():
        got = axfr_text(sec.port, ZONE)
        assert got == expected, f"{name}: {len(got ^ expected)} records differ"
    assert sum(1 for r in expected if r[0].startswith("k") and r[1] == "NS") == 1000
    # each registry transaction was consumed by exactly one journal row
    rows = journal_rows(pg, ZONE)
    seen = [tx for _, _, txs in rows for tx in txs]
    assert sorted(set(txids) - set(seen)) == [], "transactions never journalled"
    assert len([tx for tx in seen if tx in set(txids)]) == len(txids), "a txid journalled twice"
    versions = [v for v, _, _ in rows]
    assert versions == list(range(2, 2 + len(versions))), "versions not continuous"
    serials = [s for _, s, _ in rows]
    assert all(b == a + 1 for a, b in zip(serials, serials[1:])), "serials not continuous"
    assert serials[-1] == last
    # After the restart zonedistd answered every IXFR incrementally: it had
    # the history back from the journal.  BIND caught up by IXFR.  Two
    # secondaries ask for AXFR by themselves, and only then is one accepted:
    # BIND 9.18 retries with AXFR after any failed IXFR (xfrin_fail), which
    # happens when the kill cuts one of its transfers; NSD 4.6's xfrd, under
    # a fast stream, sometimes logs "soa serial N update failed, restarting
    # transfer".  Each must have that failure in its own log.
    log = chain.zd.log_text()
    after_restart = log[log.rindex("zonedistd starting"):]
    assert "loaded from the checkpoint of version" in after_restart
    assert "IXFR-as-AXFR" not in after_restart
    to_bind = re.findall(r"xfr: (AXFR|IXFR) (?:\d+->)?(\d+) to 127\.0\.0\.3#", after_restart)
    assert to_bind and to_bind[-1][1] == str(last), \
        f"BIND did not catch up by IXFR: {to_bind[-5:]}"
    bind_axfrs = [t for t in to_bind if t[0] == "AXFR"]
    if bind_axfrs:
        bind_log = open(chain.secondaries["bind"].log).read()
        assert len(bind_axfrs) == 1 and to_bind[0][0] == "AXFR", to_bind[:5]
        assert re.search(r"transfer of '[^']+' from \S+: failed", bind_log), \
            "BIND asked for AXFR with no failed IXFR in its log"
    nsd_axfrs = re.findall(r"xfr: AXFR \d+ to 127\.0\.0\.2#", after_restart)
    nsd_log = open(chain.secondaries["nsd"].log).read()
    assert not nsd_axfrs or NSD_RESTART in nsd_log
    assert re.search(r"xfr: IXFR \d+->\d+ to 127\.0\.0\.2#", after_restart)
    # and IXFR from the serial zonedistd was killed at is a real difference
    old, new, dels, adds = ixfr_diff(chain.zd.port, restart_serial)
    assert new == last and len(adds) < 2000


# --- bad registry rows ------------------------------------------------------


BAD_ROWS = [
    ("bad1.tld.", "A", 3600, "300.1.1.1", "rdata"),
    ("bad2.tld.", "NS", 3600, "x" * 70 + ".example.", "label"),
    ("evil.example.", "NS", 3600, "ns.example.", "outside"),
    ("tld.", "NS", 3600, "ns.hijack.example.", "apex"),
    ("bad3.tld.", "SOA", 3600, "a. b. 1 2 3 4 5", "SOA"),
    ("bad4.tld.", "NS", -5, "ns.example.", "ttl"),
]


def test_bad_registry_rows_are_rejected_and_the_rest_goes_on(pg, spawn):
    chain = Chain(pg, spawn, secondaries=("nsd",))
    chain.registry.bulk_fill(ZONE, 500, seed=1)
    # A registry whose zone_rrs() returns bad rows for some names: the
    # reference function, plus rows from a table.
    zone_rrs_plus_table(pg, "test_bad")
    chain.start()
    chain.settle()
    before = chain.zd.serial(ZONE)
    live = bulk_name(300)
    live_ns = {r for r in axfr_text(chain.secondaries["nsd"].port, ZONE)
               if r[0] == live and r[1] == "NS"}
    assert len(live_ns) == 2
    # one transaction: bad rows for several names (one of them a live
    # delegation whose other rows are fine), and a good new domain
    values = ", ".join(f"('{o}', '{t}', {ttl}, '{r}')" for o, t, ttl, r, _ in BAD_ROWS)
    touches = "; ".join(f"SELECT zonedist.touch('tld.', '{o}')" for o, *_ in BAD_ROWS)
    pg.psql(f"BEGIN; INSERT INTO test_bad VALUES {values}; "
            "INSERT INTO test_bad VALUES ('dup.tld.', 'NS', 3600, 'ns.example.'), "
            "('dup.tld.', 'NS', 3600, 'ns.example.'); "
            f"INSERT INTO test_bad VALUES ('{live}', 'A', 60, 'not-an-address'); "
            f"{touches}; SELECT zonedist.touch('tld.', 'dup.tld.'); "
            f"SELECT zonedist.touch('tld.', '{live}'); COMMIT")
    chain.registry.add_domain("good.tld.", zone=ZONE, ns=["ns1.dns1.bulk.example."])
    after = chain.settle()
    assert after != before
    rejected = pg.psql("SELECT name, reason FROM zonedist.rejected ORDER BY id")
    names = [l.split("|")[0] for l in rejected.splitlines()]
    for owner, *_ in BAD_ROWS:
        if owner in ("evil.example.", "tld."):
            continue  # such change rows cannot even name an owner of the zone
        assert owner in names, f"{owner} not in zonedist.rejected:\n{rejected}"
    assert names.count("dup.tld.") == 1, rejected
    assert all(l.split("|")[1] for l in rejected.splitlines()), "every rejection has a reason"
    got = axfr_text(chain.secondaries["nsd"].port, ZONE)
    owners = {r[0] for r in got}
    assert "good.tld." in owners
    assert not owners & {"bad1.tld.", "bad2.tld.", "evil.example.", "bad3.tld.", "bad4.tld."}
    assert ("dup.tld.", "NS", 3600, "ns.example.") in got  # the valid row of a duplicate pair
    assert ("tld.", "NS", 3600, "ns.hijack.example.") not in got
    # the live delegation with one bad row keeps its published records
    assert {r for r in got if r[0] == live and r[1] == "NS"} == live_ns
    assert live in names
    assert f"{live} keeps its published records" in chain.zd.log_text()
    assert "rejected" in chain.zd.log_text() or "reject" in chain.zd.log_text().lower()


# --- TSIG and ACLs ------------------------------------------------------------


TSIG = ("xfr-key.", "hmac-sha256", "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0xMjM0NTY=")


def test_bind_transfers_with_tsig_and_others_are_refused(pg, spawn):
    import dns.query
    import dns.rcode
    import dns.tsigkeyring
    import dns.xfr

    chain = Chain(pg, spawn, secondaries=("bind",), tsig=TSIG,
                  zonedistd_kw={"acl": [("127.0.0.3/32", "xfr-key.")]})
    chain.registry.bulk_fill(ZONE, 300, seed=1)
    chain.start()
    serial = chain.settle()
    bind = chain.secondaries["bind"]
    assert axfr_text(bind.port, ZONE) == chain.expected()
    chain.registry.add_domain("signed.tld.", zone=ZONE, ns=["ns1.dns1.bulk.example."])
    chain.settle()
    assert ("signed.tld.", "NS", 86400, "ns1.dns1.bulk.example.") in axfr_text(bind.port, ZONE)
    assert re.search(r"IXFR \d+->\d+ to 127\.0\.0\.3#\d+ \(key xfr-key\.\)|"
                     r"IXFR \d+->\d+ to 127\.0\.0\.3#", chain.zd.log_text())

    good = dns.tsigkeyring.from_text({TSIG[0]: TSIG[2]})
    wrong = dns.tsigkeyring.from_text({TSIG[0]: "d3JvbmctZG9lcy1ub3QtbWF0Y2gtdGhlLWtleQ=="})

    def attempt(**kw):
        try:
            list(dns.query.xfr("127.0.0.1", ZONE, port=chain.zd.port, lifetime=10, **kw))
            return "ok"
        except dns.xfr.TransferError as e:
            return dns.rcode.to_text(e.rcode)
        except Exception as e:  # noqa: BLE001 - a bad-signature answer
            return type(e).__name__

    # from the ACL's address: without a key refused, a wrong key NOTAUTH, the key ok
    assert attempt(source="127.0.0.3") == "REFUSED"
    assert attempt(source="127.0.0.3", keyring=wrong, keyname=TSIG[0]) in (
        "NOTAUTH", "PeerBadSignature", "BadSignature", "PeerBadKey")
    assert attempt(source="127.0.0.3", keyring=good, keyname=TSIG[0]) == "ok"
    # from an address outside the ACL, even with the key: refused
    assert attempt(source="127.0.0.9", keyring=good, keyname=TSIG[0]) == "REFUSED"
    assert attempt() == "REFUSED"
    assert chain.zd.serial(ZONE) >= serial  # SOA queries need no key


# --- checkpoints ----------------------------------------------------------------


def test_checkpoints_are_written_in_the_background_and_serve_old_serials(pg, spawn):
    chain = Chain(pg, spawn, secondaries=(),
                  zonedistd_kw={"limits": {"checkpoint-every": 5}})
    chain.registry.bulk_fill(ZONE, 1000, seed=1)
    chain.start()
    saved = {}
    for i in range(13):
        if i:
            chain.registry.add_domain(f"c{i}.{ZONE}", zone=ZONE, ns=["ns1.dns1.bulk.example."])
        serial = chain.settle()  # before the AXFR (the right side of = runs first)
        saved[serial] = axfr_text(chain.zd.port, ZONE)
    assert len(saved) == 13

    def complete():
        rows = pg.psql(f"SELECT version FROM zonedist.checkpoint WHERE zone = '{ZONE}' "
                       "AND complete ORDER BY version")
        return [int(v) for v in rows.split()]

    wait_until(lambda: complete() == [1, 5, 10], 30, "checkpoints of versions 1, 5 and 10")
    assert "checkpoint of version 10" in chain.zd.log_text()
    # Chunks are compressed with LZ4 where the server has it (schema version 10).
    lz4 = pg.psql("SELECT 'lz4' = ANY (enumvals) FROM pg_settings "
                  "WHERE name = 'default_toast_compression'").strip() == "t"
    methods = set(pg.psql("SELECT DISTINCT pg_column_compression(data) FROM "
                          f"zonedist.checkpoint_chunk WHERE zone = '{ZONE}'").split())
    assert methods == ({"lz4"} if lz4 else {"pglz"}), methods
    serial_of = {int(v): int(s) for v, s in (l.split("|") for l in pg.psql(
        f"SELECT version, serial FROM zonedist.journal WHERE zone = '{ZONE}'").split())}
    # With the journal before version 10 gone, serials from version 10 on are
    # still rebuilt: from the checkpoint of version 10 plus the journal.
    pg.psql(f"DELETE FROM zonedist.journal WHERE zone = '{ZONE}' AND version <= 10")
    for v in (10, 11, 13):
        s = serial_of[v]
        assert dump(chain, s) == saved[s], f"zone at serial {s} (version {v})"
    r = chain.zd.run("--dump", ZONE, "--serial", str(serial_of[7]), check=False)
    assert r.returncode != 0 and "never had serial" in r.stderr


def test_history_horizon_prunes_memory_and_restarts_from_a_recent_checkpoint(pg, spawn):
    chain = Chain(pg, spawn, secondaries=(),
                  zonedistd_kw={"limits": {"history-versions": 5, "checkpoint-every": 5}})
    chain.registry.bulk_fill(ZONE, 300, seed=1)
    chain.start()
    serials = []
    saved = {}
    for i in range(16):
        if i:
            chain.registry.add_domain(f"h{i}.{ZONE}", zone=ZONE, ns=["ns1.dns1.bulk.example."])
        serial = chain.settle()  # before the AXFR (the right side of = runs first)
        saved[serial] = axfr_text(chain.zd.port, ZONE)
        serials.append(serial)
    assert len(saved) == 16
    current = serials[-1]
    # within the last 5 versions: a real difference
    recent = serials[-4]
    old, new, dels, adds = ixfr_diff(chain.zd.port, recent)
    assert (old, new) == (recent, current)
    assert dels == saved[recent] - saved[current]
    assert adds == saved[current] - saved[recent]
    # pruned from memory: the whole zone, AXFR-style (RFC 1995 s4) ...
    import dns.query
    import dns.rdatatype
    msgs = dns.query.xfr("127.0.0.1", ZONE, rdtype=dns.rdatatype.IXFR, serial=serials[2],
                         port=chain.zd.port, relativize=False, lifetime=30)
    assert sum(len(rr) for m_ in msgs for rr in m_.answer) == len(saved[current]) + 2
    # ... while PostgreSQL still has every serial
    assert dump(chain, serials[2]) == saved[serials[2]]
    log = chain.zd.log_text()
    assert re.search(r"batch: pruned \d+ versions \(now \d+\.\.\d+\), freed \d+ bytes", log), \
        chain.zd.tail()

    def complete():
        rows = pg.psql(f"SELECT version FROM zonedist.checkpoint WHERE zone = '{ZONE}' "
                       "AND complete ORDER BY version")
        return [int(v) for v in rows.split()]

    wait_until(lambda: 10 in complete(), 30, "checkpoint of version 10")
    newest = journal_rows(pg, ZONE)[-1][0]
    want = max(v for v in complete() if v <= newest - 5)
    assert want > 1
    chain.zd.stop()
    chain.zd.start()
    log = chain.zd.log_text()
    after_restart = log[log.rindex("zonedistd starting"):]
    m = re.search(r"loaded from the checkpoint of version (\d+)", after_restart)
    assert m and int(m.group(1)) == want, after_restart[-2000:]
    assert chain.zd.serial(ZONE) == current
    assert axfr_text(chain.zd.port, ZONE) == saved[current] == chain.expected()


# --- the database goes away ------------------------------------------------------


def test_database_outage_keeps_the_last_serial_served_and_resumes(pg, spawn):
    chain = Chain(pg, spawn, secondaries=("nsd",))
    chain.registry.bulk_fill(ZONE, 500, seed=1)
    chain.start()
    serial = chain.settle()
    chain.registry.close()
    pg.server_stop()
    wait_until(lambda: "database unreachable" in chain.zd.log_text(), 30,
               "zonedistd saying the database is unreachable")
    # still serving the last published serial, to secondaries too
    assert chain.zd.serial(ZONE) == serial
    assert chain.secondaries["nsd"].serial(ZONE) == serial
    assert axfr_text(chain.zd.port, ZONE)  # transfers keep working
    pg.server_start()
    wait_until(lambda: "database reachable again" in chain.zd.log_text(), 60,
               "zonedistd reconnecting")
    from zdtest.registry import Registry
    chain.registry = Registry(pg)
    chain.registry.add_domain("after.tld.", zone=ZONE, ns=["ns1.dns1.bulk.example."])
    after = chain.settle()
    assert after == serial + 1
    assert ("after.tld.", "NS", 86400, "ns1.dns1.bulk.example.") in \
        axfr_text(chain.secondaries["nsd"].port, ZONE)
    assert chain.zd.daemon.alive()


def test_serves_ipv4_and_ipv6_over_udp_and_tcp(pg, spawn):
    import dns.message
    import dns.query

    chain = Chain(pg, spawn, secondaries=(),
                  zonedistd_kw={"ipv6": True, "acl": ["127.0.0.0/8", "::1/128"]})
    chain.registry.bulk_fill(ZONE, 100, seed=1)
    chain.start()
    serial = chain.settle()
    q = dns.message.make_query(ZONE, "SOA")
    for host in ("127.0.0.1", "::1"):
        for send in (dns.query.udp, dns.query.tcp):
            r = send(q, host, port=chain.zd.port, timeout=5)
            assert r.answer and r.answer[0][0].serial == serial, (host, send.__name__)
    n4 = sum(len(rr) for m in dns.query.xfr("127.0.0.1", ZONE, port=chain.zd.port)
             for rr in m.answer)
    n6 = sum(len(rr) for m in dns.query.xfr("::1", ZONE, port=chain.zd.port) for rr in m.answer)
    assert n4 == n6 > 200


def test_a_commit_with_an_unknown_outcome_is_settled_by_the_journal(pg, spawn):
    # The hook makes zonedistd believe its first batch commit failed after
    # it went through (as when the connection breaks after COMMIT was sent).
    chain = Chain(pg, spawn, secondaries=("nsd",),
                  zonedistd_kw={"env": {"ZD_TEST_LOSE_COMMIT_OUTCOME": "1"}})
    chain.registry.bulk_fill(ZONE, 300, seed=1)
    chain.start()
    first = chain.settle()
    chain.registry.add_domain("lost.tld.", zone=ZONE, ns=["ns1.dns1.bulk.example."])
    wait_until(lambda: "found committed in the journal" in chain.zd.log_text(), 30,
               "zonedistd replaying the version it was not told about")
    chain.registry.add_domain("next.tld.", zone=ZONE, ns=["ns1.dns1.bulk.example."])
    last = chain.settle()
    assert last == first + 2, "one version each, none built twice"
    rows = journal_rows(pg, ZONE)
    assert [v for v, _, _ in rows] == [2, 3]
    got = axfr_text(chain.secondaries["nsd"].port, ZONE)
    assert ("lost.tld.", "NS", 86400, "ns1.dns1.bulk.example.") in got
    assert ("next.tld.", "NS", 86400, "ns1.dns1.bulk.example.") in got
    assert got == chain.expected()
    assert "not journalled" not in chain.zd.log_text()


def test_a_first_load_failing_midway_stores_nothing_and_the_next_start_loads(pg, spawn):
    """The first load reads and checks rows on a thread of its own
    (server/loadpipe.c) while the batch thread fills the store.  A failure
    of that reader after it has handed over several chunks fails the start
    with the reader's reason, consumes no change row and writes no
    checkpoint; with the rows put right the next start loads the zone."""
    chain = Chain(pg, spawn, secondaries=())
    chain.registry.bulk_fill(ZONE, 30000, seed=3)
    zone_rrs_plus_table(pg, "test_big")
    # one more record at one name than a name may have (RA_NAME_RRS_MAX),
    # at a name that sorts after the 30,000 delegations (> 60,000 rows,
    # more than two chunks of 25,000)
    pg.psql("INSERT INTO test_big SELECT 'zzzz.tld.', 'TXT', 60, '\"' || g || '\"' "
            "FROM generate_series(1, 65537) g")
    changes = pg.psql("SELECT count(*) FROM zonedist.change").strip()
    assert int(changes) > 0
    chain.zd.write_config()
    r = chain.zd.run(check=False)
    assert r.returncode != 0, r
    assert "more than 65536 records for one name" in r.stderr, r.stderr
    assert not any(m in r.stderr for m in SANITIZER_MARKS), r.stderr
    assert pg.psql("SELECT count(*) FROM zonedist.change").strip() == changes
    assert pg.psql("SELECT count(*) FROM zonedist.checkpoint").strip() == "0"
    pg.psql("DELETE FROM test_big WHERE rdata <> '\"1\"'")
    chain.start()
    chain.settle()
    rrs = axfr_text(chain.zd.port, ZONE)
    assert len([x for x in rrs if x[1] == "NS" and x[0] != ZONE]) == 60000
    assert len([x for x in rrs if x[0] == "zzzz.tld." and x[1] == "TXT"]) == 1
    assert pg.psql("SELECT count(*) FROM zonedist.change").strip() == "0"
