"""Automatic ZSK rollover (issue 7): RFC 7583 pre-publication on a
simulated clock.  zonedistd's DNSSEC clock (ZD_TEST_CLOCK_FILE), Unbound's
(libfaketime) and ldns-verify-zone's (-t) move together, one simulated hour
per tick, with no sleeping for real hours.  Registry changes keep flowing;
at every tick an Unbound resolver whose trust anchor is the zone's DS,
forwarding to an NSD secondary of zonedistd, must validate a secure
delegation's DS, an NXDOMAIN and the apex DNSKEY, and every published serial
must pass ldns-verify-zone at the simulated time.  Each step's time, as
zonedist.key records it, is checked against the earliest time computed here
from the TTLs in force; zonedistd is killed with SIGKILL in the middle of a
roll twice and must resume it without repeating or skipping a step.  Real
zonedistd, PostgreSQL, SoftHSMv2, NSD, Unbound."""

import os
import re
import time

import dns.dnssec
import dns.flags
import dns.rcode
import dns.rdatatype

from zdtest import dnssec
from zdtest.env import Chain
from zdtest.proc import wait_until

ZONE = "tld."
HOUR = 3600
TICK = HOUR
# The policy in force, and the test's own reading of RFC 7583 s3.2.1 with
# it: Dprp = SOA refresh (60 s, the fixture's), TTLkey = dnskey-ttl,
# TTLsig = max-ttl (every TTL of the zone is at most 2 h here).
DPRP, TTLKEY, TTLSIG, SAFETY = 60, 2 * HOUR, 2 * HOUR, HOUR
LIFETIME = 8 * HOUR
IPUB = DPRP + TTLKEY + SAFETY
IRET = DPRP + TTLSIG + SAFETY
POLICY = {"dnskey-ttl": "2h", "max-ttl": "2h", "nsec3-opt-out": "false",
          "keys": "{zsk-lifetime: 8h, ksk-lifetime: 365d}"}
TICKS = 22  # two complete rolls: the second old ZSK goes at +21 h 1 min


class SimClock:
    """The simulated time, written where zonedistd and Unbound read it."""

    def __init__(self, d, start):
        self.zd_file = os.path.join(d, "zd-clock")
        self.ft_file = os.path.join(d, "faketime")
        self.set(start)

    @staticmethod
    def _write(path, text):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)  # never read half-written

    def set(self, t):
        self.now = t
        self._write(self.zd_file, f"{t}\n")
        self._write(self.ft_file, f"+{t - int(time.time())}s\n")


def roll_view(zd):
    status, d = zd.api_get("/api/v1/zones/tld/keys?days=1")
    assert status == 200, d
    return d["zsk_roll"]


def zsk_rows(pg):
    out = pg.psql("SELECT tag, state, floor(extract(epoch FROM published))::bigint, "
                  "floor(extract(epoch FROM active))::bigint, "
                  "floor(extract(epoch FROM retired))::bigint, "
                  "floor(extract(epoch FROM removed))::bigint FROM zonedist.key "
                  "WHERE zone = 'tld.' AND role = 'ZSK' ORDER BY active NULLS LAST, tag")
    rows = []
    for line in out.split():
        f = line.split("|")
        rows.append({"tag": int(f[0]), "state": f[1],
                     **{k: int(v) if v else None
                        for k, v in zip(("published", "active", "retired", "removed"), f[2:])}})
    return rows


def apex_tags(text):
    """(DNSKEY tags by flags, tags of the RRSIGs not over the DNSKEY RRset)."""
    keys = {}
    for rd in dnssec.apex_dnskeys(text, ZONE):
        keys.setdefault(rd.flags, set()).add(dns.dnssec.key_id(rd))
    sig_tags = set()
    for line in text.splitlines():
        f = line.split()
        if len(f) > 10 and f[3] == "RRSIG" and f[4] not in ("DNSKEY", "CDS", "CDNSKEY"):
            sig_tags.add(int(f[10]))
    return keys, sig_tags


def generated_zsks(zd):
    with open(zd.log, errors="replace") as f:
        return len(re.findall(r"generated ZSK key '", f.read()))


def within_tick(actual, earliest, what):
    assert earliest <= actual < earliest + TICK, \
        f"{what} at {actual}, earliest {earliest} (+{actual - earliest} s; a tick is {TICK})"


def test_zsk_rolls_on_a_simulated_clock_with_no_bogus_answer(pg, spawn, softhsm, unbound_factory,
                                                             tmp_path):
    start = int(time.time()) // HOUR * HOUR + HOUR
    clock = SimClock(str(tmp_path), start)
    c = Chain(pg, spawn, secondaries=("nsd",),
              zonedistd_kw=dict(hsm=softhsm, dnssec=POLICY,
                                env={"ZD_TEST_CLOCK_FILE": clock.zd_file}))
    reg = c.registry
    reg.set_zone(ZONE, ns_ttl=HOUR, ds_ttl=HOUR, glue_ttl=HOUR)
    reg.bulk_fill(ZONE, 40, seed=7, triggers=False)
    reg.add_host("ns1.extern.example.", ())
    reg.add_domain("secure.tld.", ns=["ns1.extern.example."], ds=[(9, 13, 2, "12" * 32)])
    c.start()
    c.settle()
    assert "DNSSEC clock is simulated" in c.zd.log_text()
    anchors = dnssec.ds_records(dnssec.axfr_text(c.zd.port, ZONE), ZONE)
    ub = unbound_factory({ZONE: c.secondaries["nsd"].port}, anchors,
                         faketime_file=clock.ft_file)

    def ask(name, rdtype, rcode):
        r = ub.query(name, rdtype)
        assert dns.rcode.to_text(r.rcode()) == rcode and r.flags & dns.flags.AD, \
            (f"tick {tick} (+{clock.now - start} s) {name} {rdtype}: "
             f"{dns.rcode.to_text(r.rcode())} AD={bool(r.flags & dns.flags.AD)}\n{r}\n"
             + "\n".join(ub.validation_failures()[-5:]))
        return r

    verified, states, killed = set(), [], []
    added = []
    for tick in range(TICKS + 1):
        if tick:
            clock.set(start + tick * TICK)
            name = f"roll{tick}.tld."
            reg.add_domain(name, ns=["ns1.extern.example."],
                           ds=[(1000 + tick, 13, 2, f"{tick:02x}" * 32)])
            added.append(name)
            if tick % 3 == 0:
                reg.delete_domain(added.pop(0))
        wait_until(lambda: roll_view(c.zd)["checked_at"] >= clock.now, 60,
                   f"zonedistd looking at the clock at {clock.now}")
        serial = c.settle()
        view = roll_view(c.zd)
        if serial not in verified:
            text = dnssec.axfr_text(c.zd.port, ZONE)
            ok, out = dnssec.ldns_verify_zone(text, ZONE, now=clock.now)
            assert ok, f"serial {serial} at tick {tick}: {out}"
            keys, sig_tags = apex_tags(text)
            want = {view["active"]} | ({view["other"]["tag"]} if view["other"] else set())
            assert keys.get(256) == want, (tick, keys, view)
            assert sig_tags == {view["active"]}, (tick, sig_tags, view)  # Dsgn = 0
            verified.add(serial)
        ask("secure.tld.", "DS", "NOERROR")
        ask("no-such-name.tld.", "A", "NXDOMAIN")
        r = ask(ZONE, "DNSKEY", "NOERROR")
        assert any(rr.rdtype == dns.rdatatype.DNSKEY for rr in r.answer)
        if added:
            ask(added[-1], "DS", "NOERROR")
        state = (view["active"], view["other"] and view["other"]["state"])
        states.append(state)
        # SIGKILL in the middle of the second roll: once published, once retired
        actives = len({s[0] for s in states})
        if (state[1], actives) in (("published", 2), ("retired", 3)) and state[1] not in killed:
            killed.append(state[1])
            before = (zsk_rows(pg), generated_zsks(c.zd))
            c.zd.kill9()
            c.zd.start()
            wait_until(lambda: roll_view(c.zd)["checked_at"] >= clock.now, 60,
                       "zonedistd back")
            after = roll_view(c.zd)
            assert (after["active"], after["other"] and after["other"]["state"]) == state
            assert zsk_rows(pg) == before[0], "a restart changed the key state"
    assert killed == ["published", "retired"], (killed, states)
    assert not ub.validation_failures(), ub.validation_failures()

    # Each step at the first tick on or after its earliest time.
    rows = zsk_rows(pg)
    assert len(rows) == 3, rows
    assert [r["state"] for r in rows] == ["removed", "removed", "active"], rows
    assert generated_zsks(c.zd) == 3, "a ZSK was generated twice"
    for old, new in zip(rows, rows[1:]):
        within_tick(new["published"], old["active"] + LIFETIME - IPUB, f"ZSK {new['tag']} publish")
        within_tick(new["active"], max(new["published"] + IPUB, old["active"] + LIFETIME),
                    f"ZSK {new['tag']} activate")
        assert old["retired"] == new["active"], (old, new)
        within_tick(old["removed"], old["retired"] + IRET, f"ZSK {old['tag']} remove")
    assert rows[-1]["active"] - rows[0]["active"] >= 2 * LIFETIME
    assert len(verified) >= TICKS
