"""Key state and the rollover schedule (issue 7, first step): zonedistd
records the keys it signs with in zonedist.key, and `zonedistctl keys plan`
gives every coming step at the earliest time RFC 7583 allows.  The times
are recomputed here from the configured policy and the activation times in
PostgreSQL, and survive a restart.  Real zonedistd, PostgreSQL, SoftHSMv2."""

from datetime import datetime, timezone

from test_ctl import ctl, ctl_json
from zdtest.env import Chain

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
