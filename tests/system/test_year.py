"""A simulated year of key rollovers (issue 7), one simulated hour per
tick: a ZSK roll every month, a KSK roll with the parent's DS confirmed by
polling a parent zone that a real Knot signs and serves, and one algorithm
rollover (RSASHA256 to ECDSAP256SHA256), while registry changes keep
flowing.  Every simulated hour an Unbound resolver whose only trust anchor
is the parent's KSK, forwarding to an NSD secondary of zonedistd, resolves
a secure delegation's DS, an NXDOMAIN, the apex DNSKEY and the newest
delegation's DS, each with AD;
every serial zonedistd publishes passes ldns-verify-zone at the simulated
time and has every RRset signed by every algorithm of its DNSKEY RRset.
zonedistd's DNSSEC clock (ZD_TEST_CLOCK_FILE), Unbound's (libfaketime) and
ldns-verify-zone's (-t) move together; nothing sleeps for real hours.

ZD_SIM_DAYS sets the span (default 20 days, 480 ticks, for ./test's time
budget) and the schedule is scaled to it: ZD_SIM_DAYS=365 runs the year
as the issue has it (8,760 ticks; its result is in docs/KEYS.md "The
simulated year"), 20 days the same sequence of rolls with lifetimes 365/20
times shorter."""

import os

from test_keyroll import (HOUR, ZONE, Sim, algroll_row, generated_zsks, keys_view, ksk_rows,
                          ksk_view, roll_view, sig_algorithms, zsk_rows, apex_rdatas)
from zdtest import dnssec
from zdtest.proc import wait_until

DAYS = int(os.environ.get("ZD_SIM_DAYS", "20"))
SPAN_H = DAYS * 24
# The year's schedule, scaled to the span run: a ZSK lifetime of a twelfth
# of it (30 days in the year); one KSK roll, its KSK's lifetime 150 days of
# 365; the algorithm rollover asked for on day 240 of 365, so its new KSK's
# roll (another 150 days) falls after the end.
ZSK_LIFE_H = SPAN_H * 30 // 365
KSK_LIFE_H = SPAN_H * 150 // 365
ALG_ROLL_H = SPAN_H * 240 // 365
POLICY = {"algorithm": "rsasha256", "dnskey-ttl": "2h", "max-ttl": "2h",
          "nsec3-opt-out": "false",
          "keys": ("{zsk-lifetime: %dh, ksk-lifetime: %dh, ds-ttl: 1h, "
                   "registration-delay: 2h, parent-propagation-delay: 60, "
                   'parent-servers: ["PARENT"], parent-poll-interval: 1s}'
                   % (ZSK_LIFE_H, KSK_LIFE_H))}


def test_a_simulated_year_of_rollovers_with_no_bogus_answer(pg, spawn, softhsm,
                                                            unbound_factory, tmp_path):
    sim = Sim(pg, spawn, softhsm, unbound_factory, tmp_path, policy=POLICY, parent=True,
              zd_kw={"limits": {"poll-interval-ms": 20}})
    zd, parent = sim.c.zd, sim.parent
    parent_ds = parent.ds()
    verified, ds_changes, zsk_tags, answers, last_version = set(), [], set(), 0, 0
    db = pg.connect()  # one connection: a psql per tick would cost more than the tick
    db.autocommit = True

    def sql(q, *args):
        with db.cursor() as cur:
            cur.execute(q, (ZONE, *args))
            return cur.fetchall()

    def settle():
        """The registry's changes taken, zonedistd done with the hour, NSD
        serving what zonedistd serves; returns the serials journalled since
        the last call (the refresh walk may make several in an hour)."""
        nonlocal last_version
        wait_until(lambda: sql("SELECT count(*) FROM zonedist.change WHERE zone = %s")[0][0]
                   == 0, 60, "outbox drained")
        wait_until(lambda: roll_view(zd)["checked_at"] >= sim.clock.now, 60,
                   f"zonedistd looking at the clock at {sim.clock.now}", interval=0.01)
        serial = wait_until(lambda: zd.serial(ZONE), 60, "zonedistd serial")
        sim.c.secondaries["nsd"].wait_serial_at_least(ZONE, serial, deadline=60)
        rows = sql("SELECT version, serial FROM zonedist.journal WHERE zone = %s AND "
                   "version > %s ORDER BY version", last_version)
        if rows:
            last_version = rows[-1][0]
        return [r[1] for r in rows]

    def verify(serial):
        """ldns-verify-zone at the hour's time, and every RRset signed by
        every algorithm of the DNSKEY RRset (RFC 6781 s4.1.4)."""
        status, text = zd.api_get(f"/api/v1/zones/tld/zone?serial={serial}")
        assert status == 200, (serial, status, text)
        ok, out = dnssec.ldns_verify_zone(text, ZONE, now=sim.clock.now)
        assert ok, f"serial {serial} at hour {sim.tick_n}: {out}"
        sigs, keys = sig_algorithms(text)
        missing = {k: v for k, v in sigs.items() if not keys <= v}
        assert not missing, (serial, sim.tick_n, keys, sorted(missing.items())[:5])
        if not algs_seen or algs_seen[-1] != keys:
            algs_seen.append(keys)
        verified.add(serial)
        return text

    algs_seen, delegations = [], set()

    def ds_taken():
        v = keys_view(zd)
        return (v["ksk_roll"]["other"] or {}).get("state") == "ds-seen" or \
            (v["algorithm_roll"] or {}).get("stage") == "ds-seen"

    def hour(advance=True):
        nonlocal parent_ds, answers
        if advance:
            sim.tick_n += 1
            sim.clock.set(sim.start + sim.tick_n * HOUR)
            if sim.tick_n % 6 == 0:
                # registry changes keep flowing: a secure delegation added
                # every 6 hours, the oldest of them deleted once there are
                # 12 (a zone that grew all year would only cost the test
                # time: its refresh walk makes more versions to check)
                name = f"y{sim.tick_n}.tld."
                sim.reg.add_domain(name, ns=["ns1.extern.example."],
                                   ds=[(sim.tick_n % 65536, 13, 2,
                                        f"{sim.tick_n % 256:02x}" * 32)])
                sim.added.append(name)
                if len(sim.added) > 12:
                    sim.reg.delete_domain(sim.added.pop(0))
        text = None
        for serial in settle():
            text = verify(serial)
        if text is not None:
            # the parent's registry takes the zone's CDS (RFC 7344 s4.1);
            # zonedistd sees the new DS by polling the parent
            cds = apex_rdatas(text, "CDS")
            if cds and cds != parent_ds:
                parent.set_ds(cds)
                parent_ds = cds
                ds_changes.append(sim.clock.now)
                # zonedistd polls every second of real time, many simulated
                # hours at this pace: the hour waits for it, as ksk_roll does
                wait_until(ds_taken, 30, "zonedistd seeing the parent's new DS")
                for serial in settle():
                    verify(serial)
        zsk_tags.add(roll_view(zd)["active"])
        sim.ask("secure.tld.", "DS", "NOERROR")
        sim.ask("no-such-name.tld.", "A", "NXDOMAIN")
        sim.ask(ZONE, "DNSKEY", "NOERROR")
        answers += 3
        if sim.added:  # the registry's newest delegation, through the chain
            sim.ask(sim.added[-1], "DS", "NOERROR")
            delegations.add(sim.added[-1])

    hour(advance=False)
    while sim.tick_n < SPAN_H:
        if sim.tick_n == ALG_ROLL_H:
            # the operator changes the policy's algorithm: the rollover
            # starts once no ZSK or KSK roll is half-way
            zd.stop()
            zd.dnssec = dict(zd.dnssec, algorithm="ecdsap256sha256")
            zd.start()
            sim.wait_checked("zonedistd back with the new algorithm")
        hour()
    sim.done()  # Unbound logged no validation failure
    assert answers == 3 * (SPAN_H + 1) and len(delegations) == SPAN_H // 6, len(delegations)

    zsks = zsk_rows(pg)
    # a ZSK roll every ZSK lifetime (the algorithm rollover's new ZSK starts
    # a lifetime of its own): each ZSK removed was active before
    assert len(zsk_tags) >= SPAN_H // ZSK_LIFE_H, (zsk_tags, zsks)
    assert sum(r["state"] == "removed" for r in zsks) >= SPAN_H // ZSK_LIFE_H - 1, zsks
    for r in zsks:
        if r["removed"] is not None:
            assert r["active"] is not None and r["removed"] > r["active"], r
    # one KSK roll, its DS seen by polling the parent, then the algorithm
    # rollover's new keys; three KSKs in all, each DS change once
    log = zd.log_text()
    assert log.count("KSK rollover done") == 1, log.count("KSK rollover done")
    ksks = ksk_rows(pg)
    assert len(ksks) == 3 and any(r["ds_seen"] in ds_changes for r in ksks), (ksks, ds_changes)
    row = algroll_row(pg)
    assert row and (row["from"], row["to"]) == (8, 13) and row["done"], row
    assert row["by"] != "" and row["ds_seen"] in ds_changes, (row, ds_changes)
    assert algs_seen[0] == {8} and {8, 13} in algs_seen and algs_seen[-1] == {13}, algs_seen
    assert ksk_view(zd)["active"] == row["ksk"]
    assert len(ds_changes) == 2, ds_changes
    assert generated_zsks(zd, "KSK") == 3
    # every serial journalled was checked, and there were many
    journalled = sql("SELECT count(*) FROM zonedist.journal WHERE zone = %s")[0][0]
    assert len(verified) == journalled >= SPAN_H // 6, (len(verified), journalled)
    print(f"simulated {DAYS} days: {sim.tick_n} hours, {answers} validated answers, "
          f"{len(verified)} serials verified, {len(zsk_tags)} ZSKs, KSK roll DS seen at "
          f"{ds_changes}, algorithm rollover {row}")
