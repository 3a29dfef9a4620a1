"""DNSSEC (issue 5): every serial zonedistd publishes is a correctly signed
zone, checked by three independent validators (ldns-verify-zone,
dnssec-verify, kzonecheck) and a validating resolver (Unbound); a delta
signs only what it touches; the validation gate, the token's loss and the
signature refresh behave as an operator needs."""

import os
import re
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import dns.dnssec
import dns.flags
import dns.rcode
import dns.rdatatype
import pytest

from test_spine import Mutator
from zdtest import dnssec
from zdtest.env import Chain, journal_rows, zone_rrs_plus_table
from zdtest.proc import wait_until

ZONE = "tld."
N_DOMAINS = 10000
N_BATCHES = 100

# Every algorithm with NSEC3 (opt-out, the TLD default) and with NSEC.  The
# default (ECDSA, NSEC3) is validated after every batch; the others after
# every tenth and the last, to keep ./test within its time (one validation of
# the 10k zone costs 1 to 4 CPU-seconds).  With ZD_DNSSEC_EVERY_BATCH=1 in the
# environment every combination is validated after every batch.  These runs
# use the optimised build (build/) when it is there: what they test is the
# signer's output, and the validators' time, not zonedistd's, dominates; the
# sanitizer build runs every other test here.
EVERY_BATCH = {("ecdsap256sha256", "nsec3")}
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FAST_BUILD = os.path.join(ROOT, "build")
COMBOS = [
    ("ecdsap256sha256", "nsec3"),
    ("rsasha256", "nsec3"),
    ("ed25519", "nsec3"),
    ("ecdsap256sha256", "nsec"),
    ("rsasha256", "nsec"),
    ("ed25519", "nsec"),
]


def signed_chain(pg, spawn, softhsm, policy=None, secondaries=("nsd",), n=N_DOMAINS, env=None,
                 soa=None, limits=None, build=None):
    kw = dict(hsm=softhsm, dnssec=policy or "on", env=env, soa=soa, build=build)
    if limits:
        kw["limits"] = limits
    c = Chain(pg, spawn, secondaries=secondaries, zonedistd_kw=kw)
    if n:
        c.registry.bulk_fill(ZONE, n, seed=1, triggers=False)
    return c


def _sql1(c, sql):
    conn = getattr(c, "_conn", None)
    if conn is None:
        conn = c._conn = c.pg.connect()
        conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql)
        row = cur.fetchone()
    return row[0] if row else None


def drained(c):
    """Wait until the outbox is empty and zonedistd serves the journal's
    newest serial; returns it."""
    wait_until(lambda: _sql1(c, f"SELECT count(*) FROM zonedist.change WHERE zone = '{ZONE}'")
               == 0, 60, "outbox drained", interval=0.02)
    serial = _sql1(c, f"SELECT serial FROM zonedist.journal WHERE zone = '{ZONE}' "
                      "ORDER BY version DESC LIMIT 1")
    if serial is None:
        serial = c.journal_serial()
    wait_until(lambda: c.zd.serial(ZONE) == serial, 60, f"zonedistd serving {serial}",
               interval=0.02)
    return serial


def log_text(c):
    with open(c.zd.log, errors="replace") as f:
        return f.read()


PUBLISHED = re.compile(r"serial (\d+) published \(version \d+\): .*?, (\d+) signatures")


def signatures_of(c, serial):
    """The signatures the version of serial cost, from zonedistd's log."""
    for m in PUBLISHED.finditer(log_text(c)):
        if int(m.group(1)) == serial:
            return int(m.group(2))
    raise AssertionError(f"no 'serial {serial} published' line in the log")


FIRST_SIGNED = re.compile(r"first version signed: (\d+) signatures, .*? chain records, (\d+) ms "
                          r"\(signing processes busy (\d+) ms, waited for (\d+) ms\)")


def first_signing_of(c):
    """(signatures, ms, processes busy ms, batch thread waited ms) of the
    first full signing, from zonedistd's log."""
    m = FIRST_SIGNED.search(log_text(c))
    assert m, "no 'first version signed' line in the log"
    return tuple(int(g) for g in m.groups())


@pytest.mark.parametrize("alg,denial", COMBOS, ids=[f"{a}-{d}" for a, d in COMBOS])
def test_every_serial_validates_after_initial_signing_and_100_batches(pg, spawn, softhsm, alg,
                                                                      denial):
    fast = FAST_BUILD if os.path.exists(os.path.join(FAST_BUILD, "server", "zonedistd")) else None
    c = signed_chain(pg, spawn, softhsm, policy={"algorithm": alg, "denial": denial}, build=fast)
    c.start()
    first = drained(c)
    # The full signing ran in the signing processes (the zone is above
    # their minimum), and the times it says are parts of its whole.
    sigs, ms, busy, waited = first_signing_of(c)
    assert sigs > N_DOMAINS // 20, "the first version signed too few RRsets"
    assert 0 < busy <= ms and waited <= ms, (sigs, ms, busy, waited)
    pending = []
    checked = []

    def check(serial, text):
        dnssec.verify_all(text, ZONE)
        checked.append(serial)

    # The validators run beside the next batches, two at a time.
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending.append(pool.submit(check, first, dnssec.axfr_text_dig(c.zd.port, ZONE)))
        m = Mutator(c.registry, seed=5, n_domains=N_DOMAINS)
        last = first
        every = 1 if ((alg, denial) in EVERY_BATCH
                      or os.environ.get("ZD_DNSSEC_EVERY_BATCH")) else 10
        for i in range(N_BATCHES):
            m.any(i)
            serial = drained(c)
            assert serial != last, f"batch {i} ({m.KINDS}) made no new serial"
            last = serial
            if (i + 1) % every == 0 or i == N_BATCHES - 1:
                pending.append(pool.submit(check, serial,
                                           dnssec.axfr_text_dig(c.zd.port, ZONE)))
        for f in pending:
            f.result()
    assert len(checked) == 1 + N_BATCHES // every + (N_BATCHES % every != 0)
    # The gate looked at every version (an ALARM would say it refused one).
    # What the secondary serves is that zone too.
    nsd = c.secondaries["nsd"]
    nsd.wait_serial(ZONE, last, deadline=60)
    assert dnssec.axfr_text(nsd.port, ZONE) is not None
    assert "ALARM" not in log_text(c)


def test_nsec3_with_salt_iterations_and_no_opt_out_validates(pg, spawn, softhsm):
    policy = {"nsec3-salt": "a1b2c3d4", "nsec3-iterations": 5, "nsec3-opt-out": "false"}
    c = signed_chain(pg, spawn, softhsm, policy=policy, n=2000)
    c.start()
    drained(c)
    text = dnssec.axfr_text(c.zd.port, ZONE)
    assert "NSEC3PARAM 1 0 5 A1B2C3D4" in text.upper()
    dnssec.verify_all(text, ZONE)
    m = Mutator(c.registry, seed=9, n_domains=2000)
    for i in range(20):
        m.any(i)
        drained(c)
        dnssec.verify_all(dnssec.axfr_text(c.zd.port, ZONE), ZONE)


# Registrations below the second level: every name between them and the
# apex is an empty non-terminal, one to three deep, some above a secure
# delegation (which needs their NSEC3 under opt-out), some above insecure
# ones only, one in-zone glue under its delegation.
DEEP = [("s.l2.tld.", True), ("s.l3.l2b.tld.", True), ("i.l3.l2b.tld.", False),
        ("i.l4.l3.l2c.tld.", False), ("s.l4.l3.l2d.tld.", True), ("s2.l4.l3.l2d.tld.", True),
        ("z.l2.tld.", False)]
DEEP_ENTS = {"l2.tld.": True, "l2b.tld.": True, "l3.l2b.tld.": True, "l2c.tld.": False,
             "l3.l2c.tld.": False, "l4.l3.l2c.tld.": False, "l2d.tld.": True,
             "l3.l2d.tld.": True, "l4.l3.l2d.tld.": True}


def nsec3_hash(name):
    """The hashed owner label of name under the default policy (RFC 9276:
    0 extra iterations, empty salt)."""
    return dns.dnssec.nsec3_hash(name, None, 0, 1)


def nsec3_owners(text):
    return {rr.split()[0].split(".")[0].upper() for rr in text.splitlines()
            if len(rr.split()) > 3 and rr.split()[3] == "NSEC3"}


def extra_rows(name, secure, i):
    rows = [(name, "NS", 3600, "ns1.extern.example.")]
    if secure:
        rows.append((name, "DS", 3600, f"{2000 + i} 13 2 {i + 1:02X}" + "AB" * 31))
    return rows


@pytest.mark.parametrize("denial", ["nsec3", "nsec"])
def test_deep_empty_non_terminals_are_denied_once_each(pg, spawn, softhsm, denial):
    """The full signing walks the store's names in canonical order and
    adds the empty non-terminals above each name once (signer.c
    full_name()): RFC 5155 s7.1 (an ENT gets an NSEC3 unless opt-out
    leaves out everything below it) and RFC 4035 s2.3 (none under NSEC).
    The registry hands zonedist third- to fifth-level delegations, which
    the reference registry cannot hold."""
    c = signed_chain(pg, spawn, softhsm, policy={"denial": denial}, n=300)
    zone_rrs_plus_table(pg, "test_deep")
    rows = [r for i, (name, secure) in enumerate(DEEP) for r in extra_rows(name, secure, i)]
    rows.append(("s2.l4.l3.l2d.tld.", "NS", 3600, "ns.s2.l4.l3.l2d.tld."))
    rows.append(("ns.s2.l4.l3.l2d.tld.", "A", 3600, "192.0.2.77"))  # glue
    values = ", ".join(f"('{o}', '{t}', {ttl}, '{rd}')" for o, t, ttl, rd in rows)
    pg.psql(f"INSERT INTO test_deep VALUES {values}")
    c.start()
    first = drained(c)
    text = dnssec.axfr_text(c.zd.port, ZONE)
    dnssec.verify_all(text, ZONE)
    owners = {rr.split()[0].lower() for rr in text.splitlines() if rr}
    for name, _ in DEEP:
        assert name in owners, name
    assert "ns.s2.l4.l3.l2d.tld." in owners  # the glue
    if denial == "nsec3":
        hashes = nsec3_owners(text)
        for ent, needs in DEEP_ENTS.items():
            assert (nsec3_hash(ent) in hashes) == needs, ent
        # one NSEC3 per hashed name: no ENT twice
        n3 = [rr for rr in text.splitlines() if len(rr.split()) > 3 and rr.split()[3] == "NSEC3"]
        assert len(n3) == len(hashes)
    else:
        nsec = {rr.split()[0].lower() for rr in text.splitlines()
                if len(rr.split()) > 3 and rr.split()[3] == "NSEC"}
        assert not nsec & set(DEEP_ENTS), nsec & set(DEEP_ENTS)
    # The incremental path agrees: a secure delegation below the ENTs that
    # had only insecure ones under them gives them their NSEC3s.
    pg.psql("INSERT INTO test_deep VALUES ('s.l4.l3.l2c.tld.', 'NS', 3600, 'ns1.extern.example.'),"
            f" ('s.l4.l3.l2c.tld.', 'DS', 3600, '3000 13 2 {'CD' * 32}');"
            " SELECT zonedist.touch('tld.', 's.l4.l3.l2c.tld.')")
    assert drained(c) != first
    text = dnssec.axfr_text(c.zd.port, ZONE)
    dnssec.verify_all(text, ZONE)
    if denial == "nsec3":
        hashes = nsec3_owners(text)
        for ent in ("l2c.tld.", "l3.l2c.tld.", "l4.l3.l2c.tld."):
            assert nsec3_hash(ent) in hashes, ent


def test_a_delta_signs_only_what_it_touches(pg, spawn, softhsm):
    """RFC 5155 opt-out: an insecure delegation costs the SOA's signature
    only; a secure one its DS, its NSEC3, its predecessor's NSEC3 and the
    SOA; the counts are those of a 10k zone, and do not depend on the size
    (bench/latency.py records the same deltas at 1M)."""
    c = signed_chain(pg, spawn, softhsm)
    c.start()
    drained(c)
    r = c.registry
    r.add_host("ns1.extern.example.", ())
    ds = (12345, 13, 2, "AB" * 32)

    r.add_domain("insecure-new.tld.", ns=["ns1.extern.example."])
    assert signatures_of(c, drained(c)) == 1
    r.add_domain("secure-new.tld.", ns=["ns1.extern.example."], ds=[ds])
    assert signatures_of(c, drained(c)) == 4
    r.add_ds("insecure-new.tld.", ds)           # insecure -> secure
    assert signatures_of(c, drained(c)) == 4
    r.remove_ds("insecure-new.tld.", ds)        # secure -> insecure: NSEC3 gone
    assert signatures_of(c, drained(c)) == 2
    r.delete_domain("insecure-new.tld.")
    assert signatures_of(c, drained(c)) == 1
    r.delete_domain("secure-new.tld.")
    assert signatures_of(c, drained(c)) == 2
    dnssec.verify_all(dnssec.axfr_text(c.zd.port, ZONE), ZONE)


def test_a_corrupted_signature_is_caught_by_the_gate_and_never_served(pg, spawn, softhsm):
    victim = "corrupt-me.tld."
    c = signed_chain(pg, spawn, softhsm, secondaries=("nsd", "bind"), n=500,
                     env={"ZD_TEST_CORRUPT_SIGNATURE": victim})
    c.start()
    before = c.settle()
    c.registry.add_host("ns1.extern.example.", ())
    c.registry.add_domain(victim, ns=["ns1.extern.example."], ds=[(1, 13, 2, "CD" * 32)])
    # The first attempt is refused by the gate; the retry (the hook fires
    # once) publishes the good version.
    after = c.settle(deadline=90)
    assert after != before
    log = log_text(c)
    assert re.search(r"ALARM: version \d+ refused by the validation gate.*corrupt-me\.tld\.", log), \
        log[-3000:]
    # No secondary ever saw a serial other than the good ones, and what
    # they serve validates.
    for kind in ("nsd", "bind"):
        text = dnssec.axfr_text(c.secondaries[kind].port, ZONE)
        assert victim.upper() in text.upper()
        dnssec.verify_all(text, ZONE)
    rows = journal_rows(pg, ZONE)
    assert [s for _, s, _ in rows][-1] == after


def test_a_first_version_the_gate_refuses_leaves_no_checkpoint_and_the_next_start_signs(
        pg, spawn, softhsm):
    """A first version the gate refuses fails the start: the load's
    transaction is rolled back, so no checkpoint and no change row consumed.
    The next start signs and serves."""
    from zdtest.zonedistd import binary
    victim = "corrupt-first.tld."
    c = signed_chain(pg, spawn, softhsm, secondaries=(), n=500)
    c.registry.add_host("ns1.extern.example.", ())
    c.registry.add_domain(victim, ns=["ns1.extern.example."], ds=[(1, 13, 2, "CD" * 32)])
    changes = c.pg.psql("SELECT count(*) FROM zonedist.change").strip()
    assert int(changes) > 0
    c.zd.write_config()
    env = dict(os.environ, ZD_TEST_CORRUPT_SIGNATURE=victim, SOFTHSM2_CONF=softhsm.conf)
    r = subprocess.run([binary(build=c.zd.build), "--config", c.zd.conf], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0, r
    assert "the first signing failed" in r.stderr, r.stderr
    assert re.search(r"ALARM: version \d+ refused by the validation gate.*corrupt-first\.tld\.",
                     r.stderr), r.stderr[-3000:]
    assert c.pg.psql("SELECT count(*) FROM zonedist.checkpoint").strip() == "0"
    assert c.pg.psql("SELECT count(*) FROM zonedist.change").strip() == changes
    c.start()
    serial = drained(c)
    text = dnssec.axfr_text(c.zd.port, ZONE)
    assert victim.upper() in text.upper()
    dnssec.verify_all(text, ZONE)
    assert c.pg.psql("SELECT count(*) FROM zonedist.checkpoint WHERE complete").strip() == "1"
    assert serial == c.zd.serial(ZONE)


def test_losing_the_token_stops_publishing_and_it_resumes_when_it_is_back(pg, spawn, softhsm):
    c = signed_chain(pg, spawn, softhsm, n=300)
    c.start()
    before = c.settle()
    away = softhsm.tokens + ".away"
    os.rename(softhsm.tokens, away)
    os.mkdir(softhsm.tokens)
    try:
        c.registry.add_host("ns1.extern.example.", ())
        c.registry.add_domain("during-outage.tld.", ns=["ns1.extern.example."],
                              ds=[(7, 13, 2, "EF" * 32)])
        wait_until(lambda: "token" in log_text(c) and "publishing stopped" in log_text(c), 30,
                   "zonedistd reporting the lost token")
        # Nothing new is published while the token is away: the change stays
        # queued, the last good serial is served.
        assert c.zd.serial(ZONE) == before
        assert c.secondaries["nsd"].serial(ZONE) == before
        assert c.pg.psql(f"SELECT count(*) FROM zonedist.change WHERE zone = '{ZONE}'").strip() \
            != "0"
    finally:
        os.rmdir(softhsm.tokens)
        os.rename(away, softhsm.tokens)
    after = c.settle(deadline=90)
    assert after != before
    assert "signing resumes" in log_text(c)
    text = dnssec.axfr_text(c.secondaries["nsd"].port, ZONE)
    assert "DURING-OUTAGE.TLD." in text.upper()
    dnssec.verify_all(text, ZONE)
    assert c.zd.daemon.alive()


def test_unbound_validates_answers_from_nsd_and_bind(pg, spawn, softhsm, unbound_factory):
    c = signed_chain(pg, spawn, softhsm, secondaries=("nsd", "bind"), n=300)
    c.registry.add_host("ns1.extern.example.", ())
    c.registry.add_domain("secure.tld.", ns=["ns1.extern.example."], ds=[(9, 13, 2, "12" * 32)])
    c.registry.add_domain("insecure.tld.", ns=["ns1.extern.example."])
    c.start()
    c.settle()
    text = dnssec.axfr_text(c.zd.port, ZONE)
    anchors = dnssec.ds_records(text, ZONE)
    assert anchors
    for kind in ("nsd", "bind"):
        u = unbound_factory({ZONE: c.secondaries[kind].port}, anchors)
        r = u.query("secure.tld.", "DS")
        assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AD, (kind, r)
        assert any(rr.rdtype == dns.rdatatype.DS for rr in r.answer)
        # NXDOMAIN: the NSEC3 proof validates; with opt-out the closest
        # encloser proof only shows no secure delegation is there, so the
        # answer is insecure (as for .com), not bogus.
        r = u.query("no-such-name-here.tld.", "A")
        assert r.rcode() == dns.rcode.NXDOMAIN, (kind, r)
        # The opt-out insecure delegation: its DS is proven absent (no AD,
        # no SERVFAIL).
        r = u.query("insecure.tld.", "DS")
        assert r.rcode() == dns.rcode.NOERROR and not r.answer, (kind, r)
        r = u.query("tld.", "SOA")
        assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AD, (kind, r)
        assert not u.validation_failures(), u.validation_failures()


def test_unbound_proves_nxdomain_with_ad_without_opt_out(pg, spawn, softhsm, unbound_factory):
    c = signed_chain(pg, spawn, softhsm, policy={"nsec3-opt-out": "false"}, n=200)
    c.start()
    c.settle()
    anchors = dnssec.ds_records(dnssec.axfr_text(c.zd.port, ZONE), ZONE)
    u = unbound_factory({ZONE: c.secondaries["nsd"].port}, anchors)
    r = u.query("no-such-name-here.tld.", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN and r.flags & dns.flags.AD, r
    # and a wrong anchor turns every answer bogus
    wrong = [a.replace(a.split()[-1], "00" * 32) for a in anchors]
    u2 = unbound_factory({ZONE: c.secondaries["nsd"].port}, wrong)
    assert u2.query("tld.", "SOA").rcode() == dns.rcode.SERVFAIL


def test_signatures_are_refreshed_in_small_journalled_versions(pg, spawn, softhsm):
    # Short-lived signatures: due for refresh 48-56 s after signing; the
    # refresh walk covers the zone every refresh/4 = 16 s.  The guard:
    # 64 - 16 >= expire 15 + max-ttl 30.
    policy = {"signature-validity": 120, "refresh": 64, "jitter": 8, "inception-offset": 5,
              "max-ttl": 30, "dnskey-ttl": 30}
    soa = {"ttl": 30, "minimum": 30, "expire": 15}
    c = signed_chain(pg, spawn, softhsm, policy=policy, soa=soa, n=1000)
    c.start()
    first = c.settle()
    text = dnssec.axfr_text(c.zd.port, ZONE)
    initial = {int(x) for x in re.findall(r"RRSIG \S+ \d+ \d+ \d+ (\d{14})", text)}
    assert initial
    total = len(re.findall(r" RRSIG ", text))

    def all_renewed():
        t = dnssec.axfr_text(c.zd.port, ZONE)
        exps = {int(x) for x in re.findall(r"RRSIG \S+ \d+ \d+ \d+ (\d{14})", t)}
        return t if exps and min(exps) > max(initial) else None

    text = wait_until(all_renewed, 150, "every signature renewed", interval=3)
    dnssec.verify_all(text, ZONE)
    # Many small versions, none re-signing the zone at once; each journalled.
    rows = [s for _, s, _ in journal_rows(pg, ZONE)]
    assert len(rows) >= 3
    per = [signatures_of(c, s) for s in rows]
    assert max(per) < total, (per, total)
    assert sum(per) >= total
    assert first not in rows  # the first version is the checkpoint


def test_keys_survive_a_restart_and_no_full_signing_follows(pg, spawn, softhsm):
    c = signed_chain(pg, spawn, softhsm, n=300)
    c.start()
    c.settle()
    keys = sorted(k.to_text() for k in dnssec.apex_dnskeys(dnssec.axfr_text(c.zd.port, ZONE),
                                                            ZONE))
    c.zd.stop()
    c.zd.start()
    c.registry.add_host("ns1.extern.example.", ())
    c.registry.add_domain("after-restart.tld.", ns=["ns1.extern.example."])
    serial = c.settle()
    assert signatures_of(c, serial) == 1
    text = dnssec.axfr_text(c.zd.port, ZONE)
    assert sorted(k.to_text() for k in dnssec.apex_dnskeys(text, ZONE)) == keys
    dnssec.verify_all(text, ZONE)


def test_an_unsafe_signature_policy_is_refused(pg, softhsm, tmp_path):
    from zdtest.zonedistd import Zonedistd
    zd = Zonedistd(pg, hsm=softhsm, dnssec={"signature-validity": "10d", "refresh": "7d"})
    zd.write_config()
    r = zd.run("--check", check=False)
    assert r.returncode != 0
    assert "refresh" in (r.stderr + r.stdout)


def test_unsigning_needs_force_and_then_takes_one_version(pg, spawn, softhsm):
    c = signed_chain(pg, spawn, softhsm, n=200)
    c.start()
    before = c.settle()
    c.zd.stop()
    c.zd.dnssec = "off"
    with pytest.raises(RuntimeError):
        c.zd.start(deadline=5)
    assert "force-unsign" in log_text(c) and "DS" in log_text(c)
    c.zd.stop()
    c.zd.dnssec = {"enabled": "false", "force-unsign": "true"}
    c.zd.start()
    after = c.settle()
    assert after != before
    text = dnssec.axfr_text(c.secondaries["nsd"].port, ZONE)
    for t in ("RRSIG", "NSEC3", "NSEC3PARAM", "DNSKEY"):
        assert f" {t} " not in text, t
    # one version did it
    rows = [s for _, s, _ in journal_rows(pg, ZONE)]
    assert rows[-1] == after and len(rows) == 1


def test_changing_the_chain_of_a_signed_zone_is_refused(pg, spawn, softhsm):
    c = signed_chain(pg, spawn, softhsm, n=50)
    c.start()
    c.settle()
    c.zd.stop()
    c.zd.dnssec = {"nsec3-salt": "abcd"}
    with pytest.raises(RuntimeError):
        c.zd.start(deadline=5)
    assert "another denial chain" in log_text(c)


def test_ttls_above_max_ttl_are_capped_in_a_signed_zone(pg, spawn, softhsm):
    """The rollover timing (Iret) and the signature lifetime guard assume no
    answer is cached longer than dnssec max-ttl: a registry TTL above it is
    served as max-ttl, and the log says so."""
    c = signed_chain(pg, spawn, softhsm, policy={"max-ttl": "1d"}, n=0)
    c.registry.set_zone(ZONE, ns_ttl=3 * 86400, ds_ttl=3600)
    c.registry.bulk_fill(ZONE, 20, seed=3, ds_fraction=0.5, triggers=False)
    c.start()
    c.settle()
    c.registry.add_host("ns1.extern.example.", ())
    c.registry.add_domain("late.tld.", ns=["ns1.extern.example."], ds=[(9, 13, 2, "34" * 32)])
    c.settle()
    text = dnssec.axfr_text(c.zd.port, ZONE)
    ttls = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) > 4 and f[0] != ZONE:
            ttls.setdefault(f[3], set()).add(int(f[1]))
    assert ttls["NS"] == {86400} and ttls["DS"] == {3600}, ttls
    assert max(max(v) for v in ttls.values()) <= 86400, ttls
    ok, out = dnssec.ldns_verify_zone(text, ZONE)
    assert ok, out
    log = log_text(c)
    assert re.search(r"\d+ records had a TTL above dnssec max-ttl \(86400 s\)", log), log[-2000:]
    assert "late.tld." in text
