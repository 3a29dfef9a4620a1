"""The zonedist schema (outbox, touch, journal tables) and the reference
registry (schema/registry/): normalization, change tracking by the triggers,
and the records zonedist.zone_rrs() hands to zonedist, checked against an
oracle computed in Python from the registry tables."""

import base64
import hashlib
import random
import re
import select
import time

import psycopg2
import pytest

import dns.dnssec
import dns.name
import dns.rdata

from zdtest.registry import Registry, SCHEMA_FILES, keytag, ds_from_dnskey, norm

MIGRATION = SCHEMA_FILES[0]
DIGEST = "AB" * 32


@pytest.fixture
def reg(pg):
    r = Registry(pg).install()
    r.add_zone("tld.")
    yield r
    r.close()


def assert_zone_ok(r, zone="tld."):
    """zone_rrs(zone, NULL) equals the oracle and never holds the apex."""
    got = r.zone_rrs(zone)
    assert {o for o, *_ in got} & {zone} == set()
    assert got == r.expected_zone(zone)
    return got


def records(r, zone, names):
    return {(o, t, ttl, rd) for o, t, ttl, rd in r.zone_rrs(zone, names, raw=True)}


def raises_pg(fn, *args, match=None):
    with pytest.raises(psycopg2.Error) as e:
        fn(*args)
    if match:
        assert re.search(match, str(e.value)), str(e.value)
    return e.value


# --------------------------------------------------------------------------
# The migration


def test_migration_applies_inside_the_callers_transaction(pg):
    sql = open(MIGRATION).read()
    code = re.sub(r"--[^\n]*", "", sql).upper()
    statements = [s.strip() for s in code.split(";")]
    assert not any(s in ("BEGIN", "COMMIT", "START TRANSACTION", "ROLLBACK") for s in statements)
    assert "SCHEMA_MIGRATION" not in code

    conn = pg.connect()
    # What zonedistd --init-db does: its own bookkeeping first, then the file,
    # then the version row, all in one transaction.
    bookkeeping = ("CREATE SCHEMA IF NOT EXISTS zonedist; "
                   "CREATE TABLE zonedist.schema_migration (version int PRIMARY KEY, "
                   "applied timestamptz DEFAULT now())")
    with conn.cursor() as cur:
        cur.execute(bookkeeping)
        cur.execute(sql)
    conn.rollback()  # all or nothing: nothing is left behind
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'zonedist'")
        assert cur.fetchone()[0] == 0
    with conn:
        with conn.cursor() as cur:
            cur.execute(bookkeeping)
            cur.execute(sql)
            cur.execute("INSERT INTO zonedist.schema_migration (version) VALUES (1)")

    expected = {
        "change": {"id": "bigint", "zone": "text", "name": "text", "txid": "bigint",
                   "created": "timestamp with time zone"},
        "journal": {"zone": "text", "version": "bigint", "serial": "bigint",
                    "created": "timestamp with time zone", "delta": "bytea",
                    "change_ids": "ARRAY", "txids": "ARRAY"},
        "checkpoint": {"zone": "text", "version": "bigint", "serial": "bigint",
                       "created": "timestamp with time zone", "chunks": "integer",
                       "complete": "boolean"},
        "checkpoint_chunk": {"zone": "text", "version": "bigint", "seq": "integer",
                             "data": "bytea"},
        "rejected": {"id": "bigint", "zone": "text", "name": "text", "reason": "text",
                     "row_data": "text", "txid": "bigint",
                     "created": "timestamp with time zone"},
    }
    with conn.cursor() as cur:
        for table, cols in expected.items():
            cur.execute("SELECT column_name, data_type FROM information_schema.columns "
                        "WHERE table_schema = 'zonedist' AND table_name = %s", [table])
            assert dict(cur.fetchall()) == cols, table
        # Journal constraints the C code relies on.
        cur.execute("INSERT INTO zonedist.journal (zone, version, serial, delta) "
                    "VALUES ('tld.', 1, 4294967295, '\\x00')")
        with pytest.raises(psycopg2.IntegrityError):
            cur.execute("INSERT INTO zonedist.journal (zone, version, serial, delta) "
                        "VALUES ('tld.', 2, 4294967296, '\\x00')")
    conn.rollback()
    with conn.cursor() as cur:
        # Deleting a checkpoint takes its chunks with it.
        cur.execute("INSERT INTO zonedist.checkpoint (zone, version, serial) VALUES ('tld.', 5, 5)")
        cur.execute("INSERT INTO zonedist.checkpoint_chunk VALUES ('tld.', 5, 0, 'a'), "
                    "('tld.', 5, 1, 'b')")
        cur.execute("DELETE FROM zonedist.checkpoint")
        cur.execute("SELECT count(*) FROM zonedist.checkpoint_chunk")
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'zonedist' "
                    "AND tablename = 'journal' AND indexdef LIKE '%gin%'")
        assert "txids" in cur.fetchone()[0]
    conn.close()


def test_normalize_name(reg):
    cases = {
        "Example.TLD": "example.tld.",
        " example.tld. ": "example.tld.",
        "\texample.tld\n": "example.tld.",
        "example.tld..": "example.tld.",
        "EXAMPLE.tld.": "example.tld.",
        ".": ".",
        "..": ".",
        "tld": "tld.",
        "xn--bcher-kva.tld": "xn--bcher-kva.tld.",
    }
    for given, want in cases.items():
        assert reg.query("SELECT zonedist.normalize_name(%s)", [given])[0][0] == want, given
        assert norm(given) == want
    assert reg.query("SELECT zonedist.normalize_name(NULL)")[0][0] is None
    for bad in ("", "   ", "\t\n"):
        raises_pg(reg.query, "SELECT zonedist.normalize_name(%s)", [bad], match="empty name")
    assert reg.query("SELECT provolatile FROM pg_proc WHERE proname = 'normalize_name'")[0][0] == "i"


# --------------------------------------------------------------------------
# touch(): the outbox


def _notifications(conn, wait):
    end = time.monotonic() + wait
    got = []
    while time.monotonic() < end:
        if select.select([conn], [], [], max(0.0, end - time.monotonic()))[0]:
            conn.poll()
            while conn.notifies:
                n = conn.notifies.pop(0)
                got.append((n.channel, n.payload))
    return got


def test_touch_dedupes_within_a_transaction_and_notifies_at_commit(reg, pg):
    listener = pg.connect()
    listener.autocommit = True
    listener.cursor().execute("LISTEN zonedist_change")
    w = pg.connect()
    cur = w.cursor()
    cur.execute("SELECT zonedist.touch('TLD', 'Foo.TLD')")
    cur.execute("SELECT zonedist.touch('tld.', 'foo.tld.')")
    cur.execute("SELECT zonedist.touch(' tld ', ' FOO.tld.. ')")
    cur.execute("SELECT zonedist.touch('tld.', 'bar.tld.')")
    cur.execute("SELECT zonedist.touch_many('tld.', ARRAY['BAR.tld', 'baz.tld.', 'baz.tld.'])")
    # A touch undone by a rolled back savepoint leaves nothing; touching the
    # same name again records it once.
    cur.execute("SAVEPOINT s")
    cur.execute("SELECT zonedist.touch('tld.', 'qux.tld.')")
    cur.execute("ROLLBACK TO SAVEPOINT s")
    cur.execute("SELECT zonedist.touch('tld.', 'qux.tld.')")
    cur.execute("SELECT txid_current()")
    txid = cur.fetchone()[0]
    assert _notifications(listener, 0.3) == []  # nothing before commit
    w.commit()
    assert _notifications(listener, 2) == [("zonedist_change", "tld.")]
    rows = reg.query("SELECT zone, name FROM zonedist.change WHERE txid = %s ORDER BY name", [txid])
    assert rows == [("tld.", "bar.tld."), ("tld.", "baz.tld."), ("tld.", "foo.tld."),
                    ("tld.", "qux.tld.")]

    # Another transaction marks the same owner again: a new row of its own.
    cur.execute("SELECT zonedist.touch('tld.', 'foo.tld.'), txid_current()")
    txid2 = cur.fetchone()[1]
    w.commit()
    assert reg.touched(txid2) == {("tld.", "foo.tld.")}
    assert _notifications(listener, 2) == [("zonedist_change", "tld.")]

    # A rolled back transaction leaves no row and sends no notification.
    before = reg.query("SELECT count(*) FROM zonedist.change")[0][0]
    cur.execute("SELECT zonedist.touch('tld.', 'gone.tld.')")
    w.rollback()
    assert reg.query("SELECT count(*) FROM zonedist.change")[0][0] == before
    assert _notifications(listener, 0.5) == []

    # Two zones in one transaction: one notification per zone.
    cur.execute("SELECT zonedist.touch('a.', 'x.a.'), zonedist.touch('b.', 'x.b.')")
    w.commit()
    assert sorted(_notifications(listener, 2)) == [("zonedist_change", "a."),
                                                   ("zonedist_change", "b.")]

    for bad in ("SELECT zonedist.touch(NULL, 'x.tld.')", "SELECT zonedist.touch('tld.', NULL)",
                "SELECT zonedist.touch('tld.', '')",
                "SELECT zonedist.touch_many('tld.', ARRAY['a.tld.', NULL])"):
        with pytest.raises(psycopg2.Error):
            cur.execute(bad)
        w.rollback()
    w.close()
    listener.close()


# --------------------------------------------------------------------------
# zone_rrs(): what the reference registry publishes


def test_delegation_ns_and_ds_with_zone_ttls(reg):
    reg.add_zone("test.", ns_ttl=172800, ds_ttl=7200, glue_ttl=3600)
    reg.add_domain("Example.TEST", ns=["ns1.ext.net.", "NS2.ext.net"],
                   ds=[(12345, 13, 2, DIGEST.lower()), (4321, 8, 1, "0F" * 20)])
    assert records(reg, "test.", None) == {
        ("example.test.", "NS", 172800, "ns1.ext.net."),
        ("example.test.", "NS", 172800, "ns2.ext.net."),
        ("example.test.", "DS", 7200, f"12345 13 2 {DIGEST}"),
        ("example.test.", "DS", 7200, "4321 8 1 " + "0F" * 20),
    }
    assert records(reg, "TEST", ["EXAMPLE.test"]) == records(reg, "test.", None)
    assert records(reg, "tld.", None) == set()  # other zone
    assert_zone_ok(reg, "test.")
    # Presentation form parses as DNS data.
    for _o, t, _ttl, rd in reg.zone_rrs("test.", None, raw=True):
        dns.rdata.from_text("IN", t, rd)

    # A domain without NS is no delegation: no NS, and no DS either.
    reg.add_domain("nons.test.", ds=[(1, 13, 2, DIGEST)])
    assert records(reg, "test.", ["nons.test."]) == set()
    assert_zone_ok(reg, "test.")


def test_in_domain_glue_and_external_name_server(reg):
    reg.add_host("ns1.example.tld.", ["192.0.2.1", "2001:DB8:0:0::53"])
    reg.add_domain("example.tld.", ns=["ns1.example.tld.", "ns.example.net."])
    assert records(reg, "tld.", None) == {
        ("example.tld.", "NS", 86400, "ns1.example.tld."),
        ("example.tld.", "NS", 86400, "ns.example.net."),
        ("ns1.example.tld.", "A", 86400, "192.0.2.1"),
        ("ns1.example.tld.", "AAAA", 86400, "2001:db8::53"),
    }
    # A host below the delegation that no domain uses is no glue.
    reg.add_host("ns2.example.tld.", ["192.0.2.2"])
    assert records(reg, "tld.", ["ns2.example.tld."]) == set()
    # Nor is one that only a held domain uses.
    reg.set_ns("example.tld.", ["ns1.example.tld.", "ns2.example.tld."])
    assert records(reg, "tld.", ["ns2.example.tld."]) == {
        ("ns2.example.tld.", "A", 86400, "192.0.2.2")}
    assert_zone_ok(reg)
    # External hosts take no addresses at all.
    raises_pg(reg.add_host, "ns.example.net.", ["192.0.2.9"], match="external")


def test_sibling_glue_only_when_the_zone_publishes_it(reg):
    reg.add_host("ns1.a.tld.", ["192.0.2.1"])
    reg.add_domain("a.tld.", ns=["ns.ext.net."])           # a does not use its own host
    reg.add_domain("b.tld.", ns=["ns1.a.tld.", "ns.ext.net."])
    glue = {("ns1.a.tld.", "A", 86400, "192.0.2.1")}
    assert records(reg, "tld.", ["ns1.a.tld."]) == set()   # sibling glue off
    assert_zone_ok(reg)

    txid = reg.set_zone("tld.", sibling_glue=True)
    assert ("tld.", "ns1.a.tld.") in reg.touched(txid)
    assert records(reg, "tld.", ["ns1.a.tld."]) == glue
    assert_zone_ok(reg)

    # The host's own delegation must be live, whoever uses the host.
    reg.hold("a.tld.")
    assert records(reg, "tld.", ["ns1.a.tld."]) == set()
    reg.unhold("a.tld.")
    assert records(reg, "tld.", ["ns1.a.tld."]) == glue
    # ... and some user must be live.
    reg.hold("b.tld.")
    assert records(reg, "tld.", ["ns1.a.tld."]) == set()
    assert_zone_ok(reg)
    reg.unhold("b.tld.")
    # A user in another zone does not make sibling glue here.
    reg.add_zone("test.", sibling_glue=True)
    reg.set_ns("b.tld.", ["ns.ext.net."])
    reg.add_domain("c.test.", ns=["ns1.a.tld."])
    assert records(reg, "tld.", ["ns1.a.tld."]) == set()
    assert records(reg, "test.", None) == {("c.test.", "NS", 86400, "ns1.a.tld.")}
    assert_zone_ok(reg)
    assert_zone_ok(reg, "test.")


@pytest.mark.parametrize("hold", ["clientHold", "serverHold"])
def test_hold_removes_ns_ds_and_glue(reg, hold):
    reg.set_zone("tld.", sibling_glue=True)
    reg.add_host("ns1.example.tld.", ["192.0.2.1"])
    reg.add_domain("example.tld.", ns=["ns1.example.tld.", "ns.ext.net."], ds=[(1, 13, 2, DIGEST)],
                   keys=[(257, 3, 13, base64.b64encode(bytes(range(64))).decode())])
    reg.add_domain("other.tld.", ns=["ns1.example.tld."])
    full = records(reg, "tld.", None)
    assert {t for _o, t, *_ in full} == {"NS", "DS", "A"}

    txid = reg.hold("example.tld.", hold)
    assert reg.touched(txid) == {("tld.", "example.tld."), ("tld.", "ns1.example.tld.")}
    assert records(reg, "tld.", None) == {("other.tld.", "NS", 86400, "ns1.example.tld.")}
    assert_zone_ok(reg)

    txid = reg.unhold("example.tld.")
    assert reg.touched(txid) == {("tld.", "example.tld."), ("tld.", "ns1.example.tld.")}
    assert records(reg, "tld.", None) == full

    # Held from birth: nothing, and a status change that is no hold touches
    # nothing at all.
    reg.add_domain("held.tld.", ns=["ns.ext.net."], status=[hold])
    assert records(reg, "tld.", ["held.tld."]) == set()
    txid = reg.set_status("held.tld.", [hold, "clientTransferProhibited"])
    assert reg.touched(txid) == set()
    assert_zone_ok(reg)


def _random_key(rng, length):
    return base64.b64encode(bytes(rng.getrandbits(8) for _ in range(length))).decode()


def test_key_data_becomes_a_sha256_ds(reg):
    rng = random.Random(5910)
    keys = [
        (257, 3, 13, _random_key(rng, 64)),   # ECDSA P-256, even length
        (256, 3, 8, _random_key(rng, 259)),    # odd RDATA length
        (257, 3, 15, _random_key(rng, 32)),   # Ed25519
        (257, 3, 1, _random_key(rng, 131)),    # RSA/MD5: RFC 4034 B.1 key tag
    ]
    reg.add_domain("Signed.TLD", ns=["ns.ext.net."], keys=keys)
    got = {rd for _o, t, _ttl, rd in reg.zone_rrs("tld.", ["signed.tld."], raw=True) if t == "DS"}

    want_py = set()
    want_dnspython = set()
    owner = dns.name.from_text("signed.tld.")
    for flags, proto, alg, pub in keys:
        rd = (flags.to_bytes(2, "big") + bytes([proto, alg]) + base64.b64decode(pub))
        digest = hashlib.sha256(b"\x06signed\x03tld\x00" + rd).hexdigest().upper()
        want_py.add(f"{keytag(rd)} {alg} 2 {digest}")
        key = dns.rdata.from_text("IN", "DNSKEY", f"{flags} {proto} {alg} {pub}")
        assert keytag(rd) == dns.dnssec.key_id(key)
        ds = dns.dnssec.make_ds(owner, key, "SHA256")
        want_dnspython.add(f"{ds.key_tag} {ds.algorithm} {ds.digest_type} {ds.digest.hex().upper()}")
        assert ds_from_dnskey("signed.tld.", flags, proto, alg, pub)[0] == ds.key_tag
    assert got == want_py == want_dnspython

    # The key tag function on its own, against dnspython, many keys.
    for i in range(60):
        alg = rng.choice([5, 8, 13, 14, 15, 16])
        pub = _random_key(rng, rng.randrange(16, 300))
        key = dns.rdata.from_text("IN", "DNSKEY", f"257 3 {alg} {pub}")
        tag = reg.query("SELECT registry.dnskey_keytag(registry.dnskey_rdata(257, 3, %s, %s))",
                        [alg, pub])[0][0]
        assert tag == dns.dnssec.key_id(key)

    # The same DS given as dsData too: published once.
    tag, alg, dt, digest = ds_from_dnskey("signed.tld.", *keys[0])
    reg.add_ds("signed.tld.", (tag, alg, dt, digest.lower()))
    ds_rows = [r for r in reg.zone_rrs("tld.", ["signed.tld."], raw=True) if r[1] == "DS"]
    assert len(ds_rows) == len(keys)
    assert_zone_ok(reg)


def test_root_zone(pg):
    """The registry may run the root zone: TLDs are its delegations."""
    r = Registry(pg).install()
    r.add_zone(".", sibling_glue=True)
    r.add_host("a.nic.example.", ["192.0.2.1"])
    r.add_host("ns.example.", ["2001:db8::1"])
    r.add_domain("EXAMPLE", ns=["a.nic.example.", "ns.example."], ds=[(9, 8, 2, DIGEST)])
    r.add_domain("other.", ns=["ns.example."])
    r.add_domain("lame.", ns=["ns.nowhere.invalid."], status=["serverHold"])
    assert records(r, ".", None) == {
        ("example.", "NS", 86400, "a.nic.example."),
        ("example.", "NS", 86400, "ns.example."),
        ("example.", "DS", 3600, f"9 8 2 {DIGEST}"),
        ("other.", "NS", 86400, "ns.example."),
        ("a.nic.example.", "A", 86400, "192.0.2.1"),
        ("ns.example.", "AAAA", 86400, "2001:db8::1"),
    }
    assert records(r, ".", ["."]) == set()
    assert_zone_ok(r, ".")
    txid = r.hold("example.")
    assert r.touched(txid) == {(".", "example."), (".", "a.nic.example."), (".", "ns.example.")}
    assert_zone_ok(r, ".")
    r.bulk_fill(".", 300, seed=5)
    assert_zone_ok(r, ".")
    r.close()


def test_names_are_normalized_and_unknown_or_blank_names_yield_nothing(reg):
    reg.add_domain("example.tld.", ns=["ns.ext.net."])
    want = {("example.tld.", "NS", 86400, "ns.ext.net.")}
    assert records(reg, "tld.", ["  EXAMPLE.Tld "]) == want
    assert records(reg, " TLD", ["example.tld", "example.tld.", "example.tld.."]) == want
    assert records(reg, "tld.", ["", "  ", None, "nowhere.tld.", "a.b.c.", "."]) == set()
    assert records(reg, "tld.", []) == set()
    assert records(reg, "nozone.", None) == set()
    assert records(reg, "nozone.", ["example.tld."]) == set()


def test_apex_is_never_returned(reg):
    reg.add_host("ns1.example.tld.", ["192.0.2.1"])
    reg.add_domain("example.tld.", ns=["ns1.example.tld."])
    assert records(reg, "tld.", ["tld.", "TLD", "."]) == set()
    assert "tld." not in {o for o, *_ in reg.zone_rrs("tld.", None, raw=True)}
    # The registry cannot even hold an apex delegation or apex addresses.
    raises_pg(reg.add_domain, "tld.", "tld.", match="domain_in_zone|domain_name_syntax")
    reg.add_host("tld.")
    raises_pg(reg.set_host_addrs, "tld.", ["192.0.2.7"], match="external")


# --------------------------------------------------------------------------
# Triggers: exactly which owners each change touches


def test_triggers_touch_exactly_the_changed_owners(reg):
    T = "tld."

    def touched(txid):
        return reg.touched(txid)

    reg.add_zone("test.")
    reg.set_zone("tld.", sibling_glue=True)
    # prov.tld. runs name servers used by several domains, one in another zone.
    reg.add_host("ns1.prov.tld.", ["192.0.2.10"])
    reg.add_host("ns2.prov.tld.", ["192.0.2.11"])
    reg.add_domain("prov.tld.", ns=["ns1.prov.tld.", "ns2.prov.tld."])
    reg.add_domain("a.tld.", ns=["ns1.prov.tld.", "ns.ext.net."])
    reg.add_domain("b.tld.", ns=["ns1.prov.tld."])
    reg.add_domain("x.test.", ns=["ns1.prov.tld."])
    reg.add_domain("bystander.tld.", ns=["ns.ext.net."])
    other_txid = reg.add_host("ns1.other.tld.", ["192.0.2.99"])

    # Addresses of a host whose domain does not exist (yet): the host is
    # touched all the same (that domain may be committing concurrently).
    txid = reg.add_host("ns1.new.tld.", ["192.0.2.20"])
    assert touched(txid) == {(T, "ns1.new.tld.")}
    reg.add_host("deep.ns.new.tld.", ["192.0.2.21"])
    # New domain: the domain and the (already existing) hosts below it.
    txid = reg.add_domain("new.tld.", ns=["ns1.new.tld.", "ns.ext.net."])
    assert touched(txid) == {(T, "new.tld."), (T, "ns1.new.tld."), (T, "deep.ns.new.tld.")}
    assert_zone_ok(reg)

    # NS change: the domain, the hosts below it (whether it is a delegation
    # at all may have changed), the in-zone hosts dropped and added.
    reg.add_host("ns2.new.tld.", ["192.0.2.22"])
    txid = reg.set_ns("new.tld.", ["ns2.new.tld.", "ns.ext.net."])
    assert touched(txid) == {(T, "new.tld."), (T, "ns1.new.tld."), (T, "ns2.new.tld."),
                             (T, "deep.ns.new.tld.")}
    txid = reg.set_ns("a.tld.", ["ns1.prov.tld.", "ns.ext.net.", "ns2.prov.tld."])
    assert touched(txid) == {(T, "a.tld."), (T, "ns2.prov.tld.")}
    # Adding an external name server touches only the domain.
    txid = reg.set_ns("bystander.tld.", ["ns.ext.net.", "ns.ext2.net."])
    assert touched(txid) == {(T, "bystander.tld.")}
    assert_zone_ok(reg)

    # Addresses of a shared host: the host and every domain using it, in
    # each domain's zone.
    txid = reg.set_host_addrs("ns1.prov.tld.", ["192.0.2.12", "2001:db8::12"])
    assert touched(txid) == {(T, "ns1.prov.tld."), (T, "prov.tld."), (T, "a.tld."),
                             (T, "b.tld."), ("test.", "x.test.")}
    assert_zone_ok(reg)
    assert_zone_ok(reg, "test.")

    # Host rename: old and new owner, every domain using it.
    txid = reg.rename_host("ns1.prov.tld.", "dns1.prov.tld.")
    assert touched(txid) == {(T, "ns1.prov.tld."), (T, "dns1.prov.tld."), (T, "prov.tld."),
                             (T, "a.tld."), (T, "b.tld."), ("test.", "x.test.")}
    assert ("a.tld.", "NS", 86400, "dns1.prov.tld.") in records(reg, T, ["a.tld."])
    assert_zone_ok(reg)
    # Renaming an external host touches its users only.
    txid = reg.rename_host("ns.ext.net.", "ns.ext3.net.")
    assert touched(txid) == {(T, "a.tld."), (T, "new.tld."), (T, "bystander.tld.")}
    # A host with addresses cannot move out of the registry's zones.
    raises_pg(reg.rename_host, "ns2.prov.tld.", "ns2.prov.example.", match="external")

    # DS and key data: the domain only.
    txid = reg.add_ds("a.tld.", (7, 13, 2, DIGEST))
    assert touched(txid) == {(T, "a.tld.")}
    txid = reg.remove_ds("a.tld.", (7, 13, 2, DIGEST))
    assert touched(txid) == {(T, "a.tld.")}
    key = (257, 3, 13, base64.b64encode(bytes(64)).decode())
    txid = reg.add_key("a.tld.", key)
    assert touched(txid) == {(T, "a.tld.")}
    txid = reg.remove_key("a.tld.", key)
    assert touched(txid) == {(T, "a.tld.")}
    assert_zone_ok(reg)

    # Hold and unhold: the domain, the hosts below it, and the in-zone hosts
    # it uses (sibling glue counts live users).
    txid = reg.hold("b.tld.")
    assert touched(txid) == {(T, "b.tld."), (T, "dns1.prov.tld.")}
    assert_zone_ok(reg)
    txid = reg.unhold("b.tld.")
    assert touched(txid) == {(T, "b.tld."), (T, "dns1.prov.tld.")}
    txid = reg.hold("prov.tld.")
    assert touched(txid) == {(T, "prov.tld."), (T, "dns1.prov.tld."), (T, "ns2.prov.tld.")}
    assert_zone_ok(reg)
    reg.unhold("prov.tld.")

    # Delete: the domain, the hosts below it, and the in-zone hosts it used
    # (through the domain_ns cascade).
    txid = reg.delete_domain("b.tld.")
    assert touched(txid) == {(T, "b.tld."), (T, "dns1.prov.tld.")}
    txid = reg.delete_domain("new.tld.")
    assert touched(txid) == {(T, "new.tld."), (T, "ns1.new.tld."), (T, "ns2.new.tld."),
                             (T, "deep.ns.new.tld.")}
    assert_zone_ok(reg)

    # Host delete: its old owner name.
    reg.add_domain("new.tld.", ns=["ns.ext3.net."])
    txid = reg.delete_host("ns1.new.tld.")
    assert touched(txid) == {(T, "ns1.new.tld.")}
    raises_pg(reg.delete_host, "ns2.prov.tld.")  # in use
    assert_zone_ok(reg)

    # Domain renamed (not an EPP operation, but a registry may do it): old
    # and new owner, the hosts below either, the in-zone hosts it uses.
    reg.add_host("ns1.renamed.tld.", ["192.0.2.30"])
    reg.set_ns("bystander.tld.", ["ns.ext3.net.", "ns2.prov.tld."])
    txid = reg._tx([("UPDATE registry.domain SET name = 'renamed.tld.' "
                     "WHERE name = 'bystander.tld.'", None)])
    assert touched(txid) == {(T, "bystander.tld."), (T, "renamed.tld."),
                             (T, "ns1.renamed.tld."), (T, "ns2.prov.tld.")}
    assert_zone_ok(reg)
    reg._tx([("UPDATE registry.domain SET name = 'bystander.tld.' "
              "WHERE name = 'renamed.tld.'", None)])

    # A domain whose NS set becomes empty stops being a delegation: the hosts
    # below it lose their (sibling) glue; and regain it with the first NS.
    reg.add_host("ns1.sib.tld.", ["192.0.2.40"])
    reg.add_host("spare.sib.tld.", ["192.0.2.41"])
    reg.add_domain("sib.tld.", ns=["ns.ext3.net."])
    reg.add_domain("user.tld.", ns=["ns1.sib.tld."])
    glue = {("ns1.sib.tld.", "A", 86400, "192.0.2.40")}
    assert records(reg, T, ["ns1.sib.tld."]) == glue
    txid = reg.set_ns("sib.tld.", [])
    assert touched(txid) == {(T, "sib.tld."), (T, "ns1.sib.tld."), (T, "spare.sib.tld.")}
    assert records(reg, T, ["ns1.sib.tld."]) == set()
    assert_zone_ok(reg)
    txid = reg.set_ns("sib.tld.", ["ns.ext3.net.", "ns.ext.net."])
    assert touched(txid) == {(T, "sib.tld."), (T, "ns1.sib.tld."), (T, "spare.sib.tld.")}
    assert records(reg, T, ["ns1.sib.tld."]) == glue
    # Any NS change touches the hosts below, emptying or not (two concurrent
    # transactions may each remove one of the last two).
    txid = reg.set_ns("sib.tld.", ["ns.ext3.net."])
    assert touched(txid) == {(T, "sib.tld."), (T, "ns1.sib.tld."), (T, "spare.sib.tld.")}
    assert_zone_ok(reg)

    # A zone's TTL: every owner it publishes.
    txid = reg.set_zone("tld.", ns_ttl=3600)
    want = {(T, o) for o, *_ in reg.zone_rrs(T)} | {(T, "bystander.tld."), (T, "a.tld.")}
    assert touched(txid) >= want
    assert {n for _z, n in touched(txid)} <= (
        {n for (n,) in reg.query("SELECT name FROM registry.domain WHERE zone = 'tld.'")}
        | {n for (n,) in reg.query("SELECT name FROM registry.host")})
    assert_zone_ok(reg)
    assert_zone_ok(reg, "test.")

    # Untouched all along, but by the transaction that gave it addresses.
    assert reg.query("SELECT DISTINCT txid FROM zonedist.change WHERE name = 'ns1.other.tld.'") \
        == [(other_txid,)]
    assert not any(n.endswith(".net.") for _z, n in reg.changes())


def test_statement_touching_many_rows_touches_each_once(reg):
    reg.add_domain("one.tld.", ns=["ns.ext.net."])
    reg.add_domain("two.tld.", ns=["ns.ext.net."])
    # One transaction, several statements on the same owners.
    txid = reg._tx([
        ("UPDATE registry.domain SET status = '{clientHold}'", None),
        ("UPDATE registry.domain SET status = '{}'", None),
        ("INSERT INTO registry.ds_data (domain_id, keytag, alg, digest_type, digest) "
         "SELECT id, 1, 13, 2, %s FROM registry.domain", [DIGEST]),
    ])
    assert reg.touched(txid) == {("tld.", "one.tld."), ("tld.", "two.tld.")}


# --------------------------------------------------------------------------
# The registry's own rules


def test_registry_rejects_what_cannot_be_published(reg):
    r = reg
    # Normalized on the way in, zone inferred.
    r._tx([("INSERT INTO registry.domain (name) VALUES ('  MiXed.TLD ')", None)])
    assert r.query("SELECT name, zone FROM registry.domain") == [("mixed.tld.", "tld.")]
    r._tx([("INSERT INTO registry.host (name) VALUES ('NS1.Mixed.TLD')", None)])
    assert r.query("SELECT name FROM registry.host") == [("ns1.mixed.tld.",)]

    raises_pg(r.add_domain, "a.b.tld.", "tld.", match="domain_in_zone")
    raises_pg(r.add_domain, "a.nozone.", match="foreign key|violates")
    raises_pg(r.add_domain, "-bad.tld.", match="domain_name_syntax")
    raises_pg(r.add_domain, "x" * 64 + ".tld.", match="domain_name_syntax")
    raises_pg(r.add_domain, "under_score.tld.", match="domain_name_syntax")
    raises_pg(r.add_domain, "ok.tld.", None, (), (), ["clientHeld"], match="domain_status_known")
    raises_pg(r.add_host, "bad_host.tld.", match="host_name_syntax")
    raises_pg(r.add_host, "ns." + "y" * 64 + ".tld.", match="host_name_syntax")
    raises_pg(r.add_ds, "mixed.tld.", (1, 13, 2, "XY" * 32), match="ds_digest_hex")
    raises_pg(r.add_ds, "mixed.tld.", (1, 13, 2, "AB" * 20), match="ds_digest_length")
    raises_pg(r.add_ds, "mixed.tld.", (70000, 13, 2, DIGEST), match="keytag")
    raises_pg(r.add_key, "mixed.tld.", (257, 4, 13, "AAAA"), match="protocol")
    raises_pg(r.add_key, "mixed.tld.", (1, 3, 13, "AAAA"), match="flags")
    raises_pg(r.add_key, "mixed.tld.", (257, 3, 13, "not base64!"), match="key_pubkey_base64")
    r.add_host("ns1.mixed.tld.", ["192.0.2.1"])
    raises_pg(r._tx, [("INSERT INTO registry.host_addr SELECT id, '192.0.2.0/24' "
                       "FROM registry.host", None)], match="host_addr_is_host")
    # White space in DS digests and keys is dropped, hex is upper-cased.
    r.add_ds("mixed.tld.", (1, 13, 2, " ".join(["ab" * 16, "cd" * 16])))
    assert r.query("SELECT digest FROM registry.ds_data") == [("AB" * 16 + "CD" * 16,)]
    # TRUNCATE would bypass change tracking.
    raises_pg(r._tx, [("TRUNCATE registry.domain CASCADE", None)], match="DELETE")


# --------------------------------------------------------------------------
# Whole zones


@pytest.mark.parametrize("sibling", [False, True])
def test_whole_zone_matches_oracle_and_names_query(reg, sibling):
    reg.set_zone("tld.", sibling_glue=sibling)
    reg.bulk_fill("tld.", 10000, seed=3, ds_fraction=0.2, glue_fraction=0.1, sibling_fraction=0.1)
    # Some holds, key data, a name server used across zones.
    reg._tx([
        ("UPDATE registry.domain SET status = '{clientHold}' WHERE id % 37 = 0", None),
        ("UPDATE registry.domain SET status = '{serverHold,clientTransferProhibited}' "
         "WHERE id % 101 = 0", None),
        ("INSERT INTO registry.key_data (domain_id, flags, protocol, alg, pubkey) "
         "SELECT id, 257, 3, 13, encode(sha512(convert_to(name, 'UTF8')), 'base64') "
         "FROM registry.domain WHERE id % 53 = 0", None),
    ])
    reg.add_zone("test.")
    reg.add_domain("cross.test.", ns=["ns1.b3-1.tld."])
    whole = assert_zone_ok(reg)
    kinds = {t for _o, t, *_ in whole}
    assert kinds == {"NS", "DS", "A", "AAAA"}
    assert sum(1 for r in whole if r[1] == "NS") > 15000

    owners = sorted({o for o, *_ in whole})
    assert reg.zone_rrs("tld.", owners) == whole
    # Any subset gives exactly that subset's records.
    rng = random.Random(1)
    some = rng.sample(owners, 300) + ["nowhere.tld."]
    assert reg.zone_rrs("tld.", some) == {r for r in whole if r[0] in set(some)}


def test_bulk_fill_change_rows_match_what_the_triggers_write(reg):
    # Same seed, two zones: the same domains and hosts, up to the zone name.
    reg.add_zone("test.")
    t1 = reg.bulk_fill("tld.", 1500, seed=1, triggers=True)
    t2 = reg.bulk_fill("test.", 1500, seed=1)
    by_triggers = {(z, n[: -len("tld.")]) for z, n in reg.touched(t1)}
    by_fast_path = {(z.replace("test.", "tld."), n[: -len("test.")]) for z, n in reg.touched(t2)}
    assert by_triggers == by_fast_path
    assert len(by_triggers) > 1500
    assert reg.bulk_fill("tld.", 100, seed=4, touch=False) not in {
        t for (t,) in reg.query("SELECT DISTINCT txid FROM zonedist.change")}
    assert_zone_ok(reg)
    assert_zone_ok(reg, "test.")


def test_whole_zone_streams_through_a_cursor_and_names_use_indexes(reg, pg):
    reg.bulk_fill("tld.", 20000, seed=9)
    conn = pg.connect()
    conn.set_session(isolation_level="REPEATABLE READ")
    # Inlined into the caller's query: no function scan, so a cursor streams.
    with conn.cursor() as cur:
        cur.execute("EXPLAIN SELECT * FROM zonedist.zone_rrs('tld.', NULL)")
        plan = "\n".join(r[0] for r in cur.fetchall())
    assert "Function Scan on zone_rrs" not in plan
    with conn.cursor(name="whole_zone") as cur:
        cur.itersize = 5000
        cur.execute("SELECT owner, type, ttl, rdata FROM zonedist.zone_rrs(%s, NULL)", ["tld."])
        first = cur.fetchmany(10)
        n = len(first) + sum(1 for _ in cur)
    conn.commit()
    assert len(first) == 10
    assert n == len(reg.zone_rrs("tld."))

    # A names query must not read the whole zone, with a custom plan or with
    # the generic plan a prepared statement ends up with.
    names = ["b9-42.tld.", "ns1.b9-1.tld.", "b9-19999.tld."]
    with conn.cursor() as cur:
        for mode in ("force_custom_plan", "force_generic_plan"):
            cur.execute(f"SET plan_cache_mode = {mode}")
            cur.execute("PREPARE p (text, text[]) AS SELECT * FROM zonedist.zone_rrs($1, $2)")
            cur.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE p('tld.', %s)", [names])
            lines = [r[0] for r in cur.fetchall()]
            big = [ln for ln in lines if re.search(r"Seq Scan on (domain|domain_ns|host|host_addr) ", ln)
                   and "never executed" not in ln]
            assert big == [], (mode, "\n".join(lines))
            cur.execute("DEALLOCATE p")
    conn.close()
