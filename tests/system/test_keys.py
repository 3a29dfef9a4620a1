"""Key state and the rollover schedule (issue 7, first step): zonedistd
records the keys it signs with in zonedist.key, and `zonedistctl keys plan`
gives every coming step at the earliest time RFC 7583 allows.  The times
are recomputed here from the configured policy and the activation times in
PostgreSQL, and survive a restart.  Real zonedistd, PostgreSQL, SoftHSMv2."""

import os
import re
import urllib.request
from datetime import datetime, timezone

import pytest

from test_ctl import ctl, ctl_json
from zdtest import dnssec
from zdtest.env import Chain
from zdtest.proc import wait_until
from zdtest.softhsm import SoftHsm

ZONE = "tld."
DAY, HOUR = 86400, 3600
POLICY = ("{zsk-lifetime: 30d, ksk-lifetime: 365d, ds-ttl: 2h, registration-delay: 1d, "
          "parent-propagation-delay: 1h}")


def key_rows(pg):
    out = pg.psql("SELECT role, tag, floor(extract(epoch FROM active))::bigint FROM zonedist.key "
                  "WHERE zone = 'tld.' ORDER BY role").split()
    return {r.split("|")[0]: (int(r.split("|")[1]), int(r.split("|")[2])) for r in out}


def expected_steps(ksk_active, zsk_active, now, until):
    """The RFC 7583 steps from the test's own reading of docs/KEYS.md with
    SOA ttl 300 (= dnskey-ttl), refresh 60 (= Dprp), max-ttl 2d, safeties 1h."""
    dprp, ttlkey, ttlsig, safety = 60, 300, 2 * DAY, HOUR
    ipub = dprp + ttlkey + safety
    iret = 0 + dprp + ttlsig + safety
    ipubp = HOUR + 2 * HOUR + safety  # DprpP + TTLds + safety
    dreg = DAY
    steps = set()
    for n in range(1, 40):
        act = zsk_active + n * 30 * DAY
        steps |= {(act - ipub, "ZSK", n, "publish"), (act, "ZSK", n, "activate"),
                  (act + iret, "ZSK", n - 1, "remove")}
    for n in range(1, 3):
        done = ksk_active + n * 365 * DAY
        pub = done - (ipub + dreg + ipubp)
        steps |= {(pub, "KSK", n, "publish"), (pub + ipub, "KSK", n, "cds"),
                  (pub + ipub + dreg, "KSK", n, "ds-seen"), (done, "KSK", n, "ds-settled")}
    return {s for s in steps if now <= s[0] < until}


def plan(zd, days):
    d = ctl_json("keys", "plan", ZONE, "--days", days, zd=zd)
    got = {(s["at"], s["role"], s["generation"], s["event"]) for s in d["steps"]}
    assert [s["at"] for s in d["steps"]] == sorted(s["at"] for s in d["steps"])
    assert all(s["formula"] and s["why"] for s in d["steps"])
    return d, got


def test_key_state_is_recorded_and_the_plan_follows_rfc7583(pg, spawn, softhsm):
    c = Chain(pg, spawn, secondaries=(),
              zonedistd_kw=dict(hsm=softhsm, dnssec={"keys": POLICY}))
    c.registry.bulk_fill(ZONE, 50, seed=21, triggers=False)
    c.start()
    c.settle()
    rows = key_rows(pg)
    assert set(rows) == {"KSK", "ZSK"}, rows
    d, got = plan(c.zd, 400)
    tags = {k["role"]: k["tag"] for k in d["keys"]}
    assert tags == {"KSK": rows["KSK"][0], "ZSK": rows["ZSK"][0]}
    want = expected_steps(rows["KSK"][1], rows["ZSK"][1], d["now"], d["now"] + 400 * DAY)
    assert got == want, (sorted(got ^ want))
    assert len([s for s in got if s[1] == "KSK"]) == 4  # one KSK roll in 400 days

    # the human form names the steps and their dates
    p = ctl("keys", "plan", ZONE, "--days", "40", zd=c.zd)
    assert p.returncode == 0, p.stderr
    first = min(s for s in want if s[1] == "ZSK")
    when = datetime.fromtimestamp(first[0], timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    line = [l for l in p.stdout.splitlines() if l.startswith(when)]
    assert line and "ZSK #1" in line[0] and "publish" in line[0], p.stdout

    # a restart keeps the state: the same activation times, the same steps
    c.zd.stop()
    c.zd.start()
    assert key_rows(pg) == rows
    d2, got2 = plan(c.zd, 400)
    assert got2 == expected_steps(rows["KSK"][1], rows["ZSK"][1], d2["now"],
                                  d2["now"] + 400 * DAY)
    assert min(got2) == min(got) or min(got) < d2["now"]

    bad = ctl("keys", "plan", ZONE, "--days", "0", zd=c.zd)
    assert bad.returncode == 3 and "--days" in bad.stderr
    bad = ctl("keys", "list", ZONE, zd=c.zd)
    assert bad.returncode == 3 and "keys plan ZONE" in bad.stderr


def test_the_parent_ds_is_checked_against_the_ksk(pg, spawn, softhsm):
    """zonedistd asks the parent's servers (here a Knot serving the root
    zone, changed by dynamic update as a registry would) for the zone's DS
    and says whether it is the KSK's: match, mismatch (bogus: an ALARM),
    no DS (insecure), unreachable."""
    import dns.query
    import dns.update

    from zdtest import dnssec
    from zdtest.proc import free_port, wait_until
    from zdtest.servers import Knot
    port = free_port()
    c = Chain(pg, spawn, secondaries=(),
              zonedistd_kw=dict(hsm=softhsm, dnssec={
                  "keys": f'{{parent-servers: ["127.0.0.1@{port}"], parent-poll-interval: 1s}}'}))
    c.registry.bulk_fill(ZONE, 20, seed=5, triggers=False)
    c.start()
    c.settle()

    def parent():
        status, d = c.zd.api_get("/api/v1/status")
        assert status == 200, d
        return [z for z in d["zones"] if z["zone"] == ZONE][0]["parent_ds"]

    def wait_state(state):
        wait_until(lambda: parent()["state"] == state, 30, f"parent DS {state} ({parent()})")
        return parent()

    p = wait_state("unreachable")  # nothing listens there yet
    assert p["servers"] == 1 and p["answered"] == 0 and f"127.0.0.1@{port}" in p["error"]
    ds = dnssec.ds_records(dnssec.axfr_text(c.zd.port, ZONE), ZONE)
    assert len(ds) == 1
    zonefile = os.path.join(c.zd.dir, "root.zone")
    with open(zonefile, "w") as f:
        f.write(". 3600 IN SOA a.root. h.root. 1 3600 600 86400 3600\n"
                ". 3600 IN NS a.root.\na.root. 3600 IN A 127.0.0.1\n"
                "tld. 3600 IN NS ns1.tld.\nns1.tld. 3600 IN A 127.0.0.1\n"
                f"{ds[0]}\n")
    knot = Knot({".": zonefile}, ddns=True)
    knot.port = port
    spawn(knot)
    p = wait_state("match")
    assert p["ksk_tag"] == int(ds[0].split()[-4]) and p["ds_records"] == 1, p

    def update(*rdatas):
        u = dns.update.UpdateMessage(".")
        u.delete("tld.", "DS")
        for r in rdatas:
            u.add("tld.", 3600, "DS", r)
        r = dns.query.tcp(u, "127.0.0.1", port=port, timeout=5)
        assert r.rcode() == 0, r

    tag = ds[0].split()[-4]
    update(f"{int(tag) ^ 1} 13 2 {'ab' * 32}")  # a DS of no key of the zone: bogus
    p = wait_state("mismatch")
    assert "none of the KSK" in p["error"], p
    assert "ALARM: parent DS: mismatch" in c.zd.log_text()
    metrics = urllib.request.urlopen(c.zd.api_url + "/metrics", timeout=10).read().decode()
    assert 'zonedist_parent_ds{zone="tld.",state="mismatch"} 1' in metrics
    page = urllib.request.urlopen(c.zd.api_url + "/", timeout=10).read().decode()
    assert "parent DS: mismatch" in page
    update()
    wait_state("no-ds")
    update(" ".join(ds[0].split()[-4:]), f"{int(tag) ^ 1} 13 2 {'ab' * 32}")
    p = wait_state("match")  # the KSK's DS among others
    assert p["ds_records"] == 2, p


def private_keys(hsm):
    out = hsm.tool("--list-objects", "--type", "privkey", text=True).stdout
    return sorted(l.split(":", 1)[1].strip() for l in out.splitlines()
                  if l.strip().startswith("label:"))


def test_a_new_token_without_the_zones_keys_is_refused(pg, spawn, softhsm):
    """zonedist.key says which keys sign the zone: a token that does not hold
    them is refused at start, also with another algorithm in the policy (new
    keys would replace the DNSKEY RRset at once, and validators following
    the parent's DS would find the zone bogus; an algorithm rollover needs
    the old keys), and the rows stay as they were; the token of before starts
    again with the same keys."""
    c = Chain(pg, spawn, secondaries=(), zonedistd_kw=dict(hsm=softhsm, dnssec={}))
    c.registry.bulk_fill(ZONE, 20, seed=5, triggers=False)
    c.start()
    c.settle()
    rows, keys = key_rows(pg), private_keys(softhsm)
    assert len(keys) == 2, keys
    c.zd.stop()

    other = SoftHsm(label="other").init_token()
    try:
        c.zd.hsm = other
        for alg in ("ECDSAP256SHA256", "RSASHA256"):
            c.zd.dnssec = {"algorithm": alg}
            with pytest.raises(RuntimeError):
                c.zd.start(deadline=10)
            log = c.zd.log_text()
            assert re.search(rf"zonedist.key says ZSK {rows['ZSK'][0]} is active and no other "
                             r"is published, but the token has no such ECDSAP256SHA256 key",
                             log), log[-3000:]
            assert key_rows(pg) == rows
    finally:
        other.cleanup()

    # the algorithm and the token of before: the same keys sign on
    c.zd.hsm, c.zd.dnssec = softhsm, {}
    c.zd.start()
    before = c.zd.serial(ZONE)
    c.registry.add_host("ns1.extern.example.", ())
    c.registry.add_domain("after.tld.", ns=["ns1.extern.example."])
    c.zd.wait_serial_change(before, ZONE)
    assert private_keys(softhsm) == keys and key_rows(pg) == rows
    text = dnssec.axfr_text(c.zd.port, ZONE)
    assert "after.tld." in text
    ok, out = dnssec.ldns_verify_zone(text, ZONE)
    assert ok, out


def algroll_rows(pg):
    return pg.psql("SELECT from_alg, to_alg, ksk, zsk, signed, published FROM zonedist.algroll "
                   "WHERE zone = 'tld.'").splitlines()


def test_an_algorithm_changed_again_half_way_or_a_stray_algorithm_row_is_refused(
        pg, spawn, softhsm):
    """An algorithm rollover is not called off or redirected half-way: with
    RSASHA256 to ECDSAP256SHA256 begun, a start with ED25519 in the policy is
    refused and changes nothing; a zonedist.key row of a third algorithm that
    is not removed is refused too; with both put right the rollover resumes
    in the stage it was in, with the keys it made (none generated again)."""
    c = Chain(pg, spawn, secondaries=(),
              zonedistd_kw=dict(hsm=softhsm, dnssec={"algorithm": "rsasha256"}))
    c.registry.bulk_fill(ZONE, 20, seed=6, triggers=False)
    c.start()
    c.settle()
    c.zd.stop()
    c.zd.dnssec = {"algorithm": "ecdsap256sha256"}
    c.zd.start()
    wait_until(lambda: len(algroll_rows(pg)) == 1, 30, "the algorithm rollover's alg-sign")
    c.settle()
    began, rows = algroll_rows(pg), key_rows(pg)
    assert began[0].split("|")[:2] == ["8", "13"] and began[0].split("|")[5] == "", began
    c.zd.stop()
    keys = private_keys(softhsm)
    assert len(keys) == 4, keys  # the RSA pair and the ECDSA pair

    c.zd.dnssec = {"algorithm": "ed25519"}
    with pytest.raises(RuntimeError):
        c.zd.start(deadline=10)
    log = c.zd.log_text()
    assert "an algorithm rollover from RSASHA256 to ECDSAP256SHA256 is in progress" in log \
        and "set dnssec algorithm back to ECDSAP256SHA256 (a rollover is not called off " \
            "half-way)" in log, log[-3000:]
    assert (algroll_rows(pg), key_rows(pg), private_keys(softhsm)) == (began, rows, keys)

    c.zd.dnssec = {"algorithm": "ecdsap256sha256"}
    pg.psql("INSERT INTO zonedist.key (zone, role, algorithm, tag, state, active) "
            "VALUES ('tld.', 'ZSK', 15, 4242, 'active', now())")
    with pytest.raises(RuntimeError):
        c.zd.start(deadline=10)
    log = c.zd.log_text()
    assert "zonedist.key says ZSK 4242 of the zone is ED25519 and active, beside active keys " \
           "of RSASHA256" in log, log[-3000:]
    assert (algroll_rows(pg), private_keys(softhsm)) == (began, keys)

    pg.psql("UPDATE zonedist.key SET state = 'removed', removed = now() WHERE tag = 4242")
    c.zd.start()
    before = c.zd.serial(ZONE)
    c.registry.add_host("ns1.extern.example.", ())
    c.registry.add_domain("after.tld.", ns=["ns1.extern.example."])
    c.zd.wait_serial_change(before, ZONE)
    status, v = c.zd.api_get("/api/v1/zones/tld/keys")
    assert status == 200 and v["algorithm_roll"]["stage"] == "signed", v["algorithm_roll"]
    assert algroll_rows(pg) == began and private_keys(softhsm) == keys
    text = dnssec.axfr_text(c.zd.port, ZONE)
    assert "after.tld." in text
    ok, out = dnssec.ldns_verify_zone(text, ZONE)
    assert ok, out
