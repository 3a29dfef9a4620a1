"""Sanity limits (issue 5, DESIGN.md decision 8): a version that removes a
large share of the delegations, or touches the apex, is held for an
operator: nothing is published, the changes stay queued, the log raises an
ALARM saying why and how to release; `zonedistd --release` publishes it."""

import re

from zdtest.env import Chain, APEX, axfr_text
from zdtest.proc import wait_until

ZONE = "tld."


def queued(c):
    return int(c.pg.psql(f"SELECT count(*) FROM zonedist.change WHERE zone = '{ZONE}'").strip())


def test_a_mass_removal_is_held_until_an_operator_releases_it(pg, spawn):
    c = Chain(pg, spawn, secondaries=("nsd",),
              zonedistd_kw=dict(limits={"hold-removed-min": 10, "hold-removed-percent": 5}))
    c.registry.bulk_fill(ZONE, 300, seed=1, triggers=False)
    c.start()
    before = c.settle()
    victims = [f"b1-{i}.tld." for i in range(200, 230)]
    c.registry._tx([("DELETE FROM registry.domain WHERE name = %s", [v]) for v in victims])
    wait_until(lambda: "held by the sanity limits" in c.zd.log_text(), 30, "the hold")
    log = c.zd.log_text()
    assert re.search(r"ALARM: version \d+ held by the sanity limits.*removes 30 of \d+ "
                     r"delegations", log), log[-2000:]
    assert "--release tld." in log
    # Held: the last serial is served, the rows stay queued.
    assert c.zd.serial(ZONE) == before
    assert c.secondaries["nsd"].serial(ZONE) == before
    assert queued(c) >= 30
    # A smaller change is not published past the held one either (one queue).
    c.registry.add_host("ns1.extern.example.", ())
    c.registry.add_domain("later.tld.", ns=["ns1.extern.example."])
    wait_until(lambda: queued(c) >= 31, 10, "the later change queued")
    assert c.zd.serial(ZONE) == before

    r = c.zd.run("--release", ZONE, "--by", "test-operator")
    assert "released" in r.stdout
    after = c.settle(deadline=90)
    assert after != before
    assert "released by test-operator" in c.zd.log_text()
    used = c.pg.psql("SELECT released_by, used_version IS NOT NULL FROM zonedist.release").strip()
    assert used == "test-operator|t"
    c.secondaries["nsd"].wait_serial(ZONE, after, deadline=30)
    owners = {o for o, *_ in axfr_text(c.secondaries["nsd"].port, ZONE)}
    assert not owners & set(victims)
    assert "later.tld." in owners


def test_a_small_removal_is_not_held(pg, spawn):
    c = Chain(pg, spawn, secondaries=("nsd",),
              zonedistd_kw=dict(limits={"hold-removed-min": 10, "hold-removed-percent": 5}))
    c.registry.bulk_fill(ZONE, 300, seed=1, triggers=False)
    c.start()
    before = c.settle()
    c.registry._tx([("DELETE FROM registry.domain WHERE name = %s", [f"b1-{i}.tld."])
                    for i in range(200, 209)])
    assert c.settle() != before
    assert "ALARM" not in c.zd.log_text()


def test_an_apex_change_is_held_until_released(pg, spawn):
    c = Chain(pg, spawn, secondaries=("nsd",))
    c.registry.bulk_fill(ZONE, 50, seed=1, triggers=False)
    c.start()
    before = c.settle()
    c.zd.stop()
    c.zd.apex = APEX + ["tld. 3600 IN TXT changed-by-the-operator"]
    c.zd.start()
    wait_until(lambda: "held by the sanity limits" in c.zd.log_text(), 30, "the hold")
    assert "changes 1 RRsets at the apex" in c.zd.log_text()
    assert c.zd.serial(ZONE) == before
    c.zd.run("--release", ZONE, "--by", "ops")
    after = wait_until(lambda: (s := c.zd.serial(ZONE)) != before and s, 60, "published")
    c.secondaries["nsd"].wait_serial(ZONE, after, deadline=30)
    assert "released by ops" in c.zd.log_text()


def test_release_needs_a_known_zone_and_a_name(pg, spawn):
    c = Chain(pg, spawn, secondaries=())
    r = c.zd.run("--release", "other.", "--by", "x", check=False)
    assert r.returncode != 0 and "not in the configuration" in r.stderr
    r = c.zd.run("--release", ZONE, check=False)
    assert r.returncode != 0 and "--by" in r.stderr


def _delegations(c):
    status, zones = c.zd.api_get("/api/v1/zones")
    assert status == 200, zones
    return next(z["delegations"] for z in zones["zones"] if z["zone"] == ZONE)


def _ns_owners(c):
    return {o for o, t, *_ in axfr_text(c.zd.port, ZONE) if t == "NS" and o != ZONE}


def test_the_delegation_count_the_limits_use_is_the_served_one(pg, spawn):
    """A first load counts the delegations as it stores them, a start from
    the checkpoint counts them in the store, batches move the count: each
    time it is the number of NS owners below the apex that zonedistd
    serves (the hold limits judge removals against it)."""
    c = Chain(pg, spawn, secondaries=())
    c.registry.bulk_fill(ZONE, 300, seed=1, triggers=False)
    c.registry.add_host("ns1.extern.example.", ())
    for i in range(3):  # delegations with names sorted before and after the bulk ones
        c.registry.add_domain(f"a{i}.{ZONE}", ns=["ns1.extern.example."])
        c.registry.add_domain(f"z{i}.{ZONE}", ns=["ns1.extern.example."])
    c.start()
    c.settle()
    first = _delegations(c)
    assert first == len(_ns_owners(c)) and first > 300, first
    c.zd.stop()
    c.zd.start()
    c.settle()
    assert _delegations(c) == first
    c.registry._tx([("DELETE FROM registry.domain WHERE name = %s", [f"z{i}.{ZONE}"])
                    for i in range(3)])
    wait_until(lambda: _delegations(c) == first - 3, 30, "three delegations fewer")
    assert len(_ns_owners(c)) == first - 3
