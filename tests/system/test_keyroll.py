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
import urllib.request
from datetime import datetime, timezone

import dns.dnssec
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.update
import pytest

from test_ctl import ctl, token_file
from zdtest import dnssec
from zdtest.env import Chain
from zdtest.proc import wait_until
from zdtest.servers import Knot

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


def keys_view(zd):
    status, d = zd.api_get("/api/v1/zones/tld/keys?days=1")
    assert status == 200, d
    return d


def roll_view(zd):
    return keys_view(zd)["zsk_roll"]


def ksk_view(zd):
    return keys_view(zd)["ksk_roll"]


KEY_TIMES = ("published", "ready", "ds_seen", "active", "retired", "removed")


def zsk_rows(pg, role="ZSK"):
    cols = ", ".join(f"floor(extract(epoch FROM {c}))::bigint" for c in KEY_TIMES)
    out = pg.psql(f"SELECT tag, state, {cols} FROM zonedist.key WHERE zone = 'tld.' AND "
                  f"role = '{role}' ORDER BY published NULLS FIRST, active NULLS LAST, tag")
    rows = []
    for line in out.split():
        f = line.split("|")
        rows.append({"tag": int(f[0]), "state": f[1],
                     **{k: int(v) if v else None for k, v in zip(KEY_TIMES, f[2:])}})
    return rows


def ksk_rows(pg):
    return zsk_rows(pg, "KSK")


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


def apex_sigs(text, rdtype):
    """The key tags of the RRSIGs over the apex RRset of rdtype."""
    return {int(f[10]) for f in (l.split() for l in text.splitlines())
            if len(f) > 10 and f[0] == ZONE and f[3] == "RRSIG" and f[4] == rdtype}


def apex_rdatas(text, rdtype):
    """The apex RRset of rdtype as a set of normalised rdata texts."""
    import dns.rdata
    import dns.rdataclass
    return {dns.rdata.from_text(dns.rdataclass.IN, rdtype, " ".join(f[4:])).to_text()
            for f in (l.split() for l in text.splitlines())
            if len(f) > 4 and f[0] == ZONE and f[3] == rdtype}


def generated_zsks(zd, role="ZSK"):
    with open(zd.log, errors="replace") as f:
        return len(re.findall(rf"generated {role} key '", f.read()))


def within_tick(actual, earliest, what):
    assert earliest <= actual < earliest + TICK, \
        f"{what} at {actual}, earliest {earliest} (+{actual - earliest} s; a tick is {TICK})"


class Parent:
    """The root zone, signed by a real Knot, holding the zone's delegation and
    DS; the test changes the DS by dynamic update as the parent's registry
    would on the zone's CDS (RFC 7344 s4.1)."""

    def __init__(self, spawn, d):
        path = os.path.join(d, "root.zone")
        with open(path, "w") as f:
            f.write(". 3600 IN SOA a.root. h.root. 1 3600 600 86400 3600\n"
                    ". 3600 IN NS a.root.\na.root. 3600 IN A 127.0.0.1\n"
                    "tld. 3600 IN NS ns1.tld.\nns1.tld. 3600 IN A 127.0.0.1\n")
        self.knot = spawn(Knot({".": path}, ddns=True, signing=True))
        self.address = f"127.0.0.1@{self.knot.port}"
        wait_until(lambda: self._rrset(".", "DNSKEY"), 30, "the root signed by Knot")

    def _rrset(self, name, rdtype):
        q = dns.message.make_query(name, rdtype, want_dnssec=True)
        r = dns.query.tcp(q, "127.0.0.1", port=self.knot.port, timeout=5)
        return [rr for rrset in r.answer for rr in rrset
                if rrset.rdtype == dns.rdatatype.from_text(rdtype)]

    def anchor(self):
        ksk = [rd for rd in self._rrset(".", "DNSKEY") if rd.flags == 257]
        assert len(ksk) == 1, ksk
        return f". 3600 IN DNSKEY {ksk[0].to_text()}"

    def ds(self):
        return {rd.to_text() for rd in self._rrset(ZONE, "DS")}

    def set_ds(self, rdatas):
        u = dns.update.UpdateMessage(".")
        u.delete(ZONE, "DS")
        for r in rdatas:
            u.add(ZONE, HOUR, "DS", r)  # TTL = the policy's ds-ttl
        r = dns.query.tcp(u, "127.0.0.1", port=self.knot.port, timeout=5)
        assert r.rcode() == 0, r
        wait_until(lambda: self.ds() == set(rdatas), 10, "the root serving the new DS")


class Sim:
    """A signed chain (zonedistd, NSD) and an Unbound resolver on one
    simulated clock, stepped one tick at a time."""

    def __init__(self, pg, spawn, softhsm, unbound_factory, tmp_path, policy=POLICY, env=None,
                 parent=False, tick=TICK, zd_kw=None):
        self.pg = pg
        self.tick_s = tick
        self.start = int(time.time()) // HOUR * HOUR + HOUR
        self.clock = SimClock(str(tmp_path), self.start)
        self.parent = None
        if parent:
            # the root, signed, will hold the zone's DS: the resolver's
            # anchor is the root's KSK, so the zone validates only through
            # that DS.  Started first: its port is in zonedistd's policy
            self.parent = Parent(spawn, str(tmp_path))
            policy = dict(policy, keys=policy["keys"].replace("PARENT", self.parent.address))
        self.c = c = Chain(pg, spawn, secondaries=("nsd",),
                           zonedistd_kw=dict(hsm=softhsm, dnssec=policy,
                                             env={"ZD_TEST_CLOCK_FILE": self.clock.zd_file,
                                                  **(env or {})}, **(zd_kw or {})))
        self.reg = c.registry
        self.reg.set_zone(ZONE, ns_ttl=HOUR, ds_ttl=HOUR, glue_ttl=HOUR)
        self.reg.bulk_fill(ZONE, 40, seed=7, triggers=False)
        self.reg.add_host("ns1.extern.example.", ())
        self.reg.add_domain("secure.tld.", ns=["ns1.extern.example."],
                            ds=[(9, 13, 2, "12" * 32)])
        c.start()
        c.settle()
        assert "DNSSEC clock is simulated" in c.zd.log_text()
        anchors = dnssec.ds_records(dnssec.axfr_text(c.zd.port, ZONE), ZONE)
        stubs = {ZONE: c.secondaries["nsd"].port}
        if self.parent:
            self.parent.set_ds([r.split(" DS ", 1)[1] for r in anchors])
            stubs["."] = self.parent.knot.port
            anchors = [self.parent.anchor()]
        self.ub = unbound_factory(stubs, anchors, faketime_file=self.clock.ft_file)
        self.tick_n = 0
        self.verified, self.added = set(), []

    def ask(self, name, rdtype, rcode):
        r = self.ub.query(name, rdtype)
        assert dns.rcode.to_text(r.rcode()) == rcode and r.flags & dns.flags.AD, \
            (f"tick {self.tick_n} (+{self.clock.now - self.start} s) {name} {rdtype}: "
             f"{dns.rcode.to_text(r.rcode())} AD={bool(r.flags & dns.flags.AD)}\n{r}\n"
             + "\n".join(self.ub.validation_failures()[-5:]))
        return r

    def wait_checked(self, what="zonedistd looking at the clock"):
        wait_until(lambda: roll_view(self.c.zd)["checked_at"] >= self.clock.now, 60,
                   f"{what} at {self.clock.now}")

    def tick(self, advance=True):
        """Move the clock one tick (with a registry change), wait until
        zonedistd and NSD are done with it, then check what is served:
        ldns-verify-zone on a new serial, the DNSKEY RRset and the signers
        against the roll's state, Unbound's answers.  Returns the state."""
        c, reg = self.c, self.reg
        if advance:
            self.tick_n += 1
            self.clock.set(self.start + self.tick_n * self.tick_s)
            name = f"roll{self.tick_n}.tld."
            reg.add_domain(name, ns=["ns1.extern.example."],
                           ds=[(1000 + self.tick_n, 13, 2, f"{self.tick_n % 256:02x}" * 32)])
            self.added.append(name)
            if self.tick_n % 3 == 0:
                reg.delete_domain(self.added.pop(0))
        self.wait_checked()
        serial = c.settle()
        view = roll_view(c.zd)
        # the plan's next ZSK step is the one the roll will make
        status, plan = c.zd.api_get("/api/v1/zones/tld/keys?days=40")
        assert status == 200, plan
        zsk = [s for s in plan["steps"] if s["role"] == "ZSK"]
        assert zsk and view["next_at"] > self.clock.now, (view, zsk[:2])
        assert (zsk[0]["at"], zsk[0]["event"]) == (view["next_at"], view["next_step"]), \
            (self.tick_n, view, zsk[:3])
        kv = plan["ksk_roll"]  # and the KSK's, once it is not overdue
        ksk = [s for s in plan["steps"] if s["role"] == "KSK"]
        if kv["next_step"] != "none" and self.clock.now < kv["next_at"] < self.clock.now + 40 * 86400:
            assert ksk and (ksk[0]["at"], ksk[0]["event"]) == \
                (kv["next_at"], kv["next_step"].replace("ksk-", "")), (self.tick_n, kv, ksk[:3])
        if serial not in self.verified:
            text = dnssec.axfr_text(c.zd.port, ZONE)
            ok, out = dnssec.ldns_verify_zone(text, ZONE, now=self.clock.now)
            assert ok, f"serial {serial} at tick {self.tick_n}: {out}"
            keys, sig_tags = apex_tags(text)
            want = {view["active"]} | ({view["other"]["tag"]} if view["other"] else set())
            assert keys.get(256) == want, (self.tick_n, keys, view)
            assert sig_tags == {view["active"]}, (self.tick_n, sig_tags, view)  # Dsgn = 0
            # double signature: every KSK published signs the DNSKEY RRset,
            # and the CDS/CDNSKEY describe the new one once it is ready
            kv = ksk_view(c.zd)
            other = kv["other"]
            want = {kv["active"]} | ({other["tag"]} if other else set())
            assert keys.get(257) == want, (self.tick_n, keys, kv)
            for t in ("DNSKEY", "CDS", "CDNSKEY"):
                assert apex_sigs(text, t) >= (want if apex_rdatas(text, t) else set()), \
                    (self.tick_n, t, apex_sigs(text, t), kv)
            cds = {int(r.split()[0]) for r in apex_rdatas(text, "CDS")}
            if other and other["state"] != "published":
                assert cds == {other["tag"]}, (self.tick_n, cds, kv)
            else:
                assert cds <= {kv["active"]}, (self.tick_n, cds, kv)
            self.verified.add(serial)
        self.ask("secure.tld.", "DS", "NOERROR")
        self.ask("no-such-name.tld.", "A", "NXDOMAIN")
        r = self.ask(ZONE, "DNSKEY", "NOERROR")
        assert any(rr.rdtype == dns.rdatatype.DNSKEY for rr in r.answer)
        if self.parent:
            self.ask(ZONE, "DS", "NOERROR")  # the parent's, from the root
        if self.added:
            self.ask(self.added[-1], "DS", "NOERROR")
        return view

    def restart_killed(self):
        """SIGKILL, start again: the key state and the roll are as before."""
        zd = self.c.zd
        before = (zsk_rows(self.pg), ksk_rows(self.pg), keys_view(zd))
        generated = (generated_zsks(zd), generated_zsks(zd, "KSK"))
        zd.kill9()
        zd.start()
        self.wait_checked("zonedistd back")
        after = keys_view(zd)
        for r in ("zsk_roll", "ksk_roll"):
            assert (after[r]["active"], after[r]["other"]) == \
                (before[2][r]["active"], before[2][r]["other"]), (r, before[2][r], after[r])
        assert (zsk_rows(self.pg), ksk_rows(self.pg)) == before[:2], \
            "a restart changed the key state"
        assert (generated_zsks(zd), generated_zsks(zd, "KSK")) == generated

    def done(self):
        assert not self.ub.validation_failures(), self.ub.validation_failures()


def test_zsk_rolls_on_a_simulated_clock_with_no_bogus_answer(pg, spawn, softhsm, unbound_factory,
                                                             tmp_path):
    sim = Sim(pg, spawn, softhsm, unbound_factory, tmp_path)
    states, killed = [], []
    view = sim.tick(advance=False)
    while sim.tick_n < TICKS:
        view = sim.tick()
        state = (view["active"], view["other"] and view["other"]["state"])
        states.append(state)
        if state[1] == "retired" and len(states) > 1 and states[-2][1] != "retired":
            # the operator's plan names the retired key's removal first
            p = ctl("keys", "plan", ZONE, "--days", "2", zd=sim.c.zd)
            rows = [l for l in p.stdout.splitlines() if l[:4].isdigit()]
            assert p.returncode == 0 and rows and "ZSK retired" in rows[0] \
                and "remove" in rows[0], p.stdout
            assert f"ZSK {view['other']['tag']} retired since" in p.stdout, p.stdout
        # SIGKILL in the middle of the second roll: once published, once retired
        actives = len({s[0] for s in states})
        if (state[1], actives) in (("published", 2), ("retired", 3)) and state[1] not in killed:
            killed.append(state[1])
            sim.restart_killed()
    assert killed == ["published", "retired"], (killed, states)
    sim.done()
    # the metrics say what the API says
    metrics = urllib.request.urlopen(sim.c.zd.api_url + "/metrics", timeout=10).read().decode()
    view = roll_view(sim.c.zd)
    assert (f'zonedist_zsk_roll_next_step_timestamp_seconds{{zone="tld.",step='
            f'"{view["next_step"]}"}} {view["next_at"]}') in metrics, metrics
    assert f'role="zsk",tag="{view["active"]}"' in metrics
    assert re.search(r'zonedist_zsk_roll_steps_total\{zone="tld\."\} [1-9]', metrics), metrics

    # Each step at the first tick on or after its earliest time.
    rows = zsk_rows(pg)
    assert len(rows) == 3, rows
    assert [r["state"] for r in rows] == ["removed", "removed", "active"], rows
    assert generated_zsks(sim.c.zd) == 3, "a ZSK was generated twice"
    for old, new in zip(rows, rows[1:]):
        within_tick(new["published"], old["active"] + LIFETIME - IPUB, f"ZSK {new['tag']} publish")
        within_tick(new["active"], max(new["published"] + IPUB, old["active"] + LIFETIME),
                    f"ZSK {new['tag']} activate")
        assert old["retired"] == new["active"], (old, new)
        within_tick(old["removed"], old["retired"] + IRET, f"ZSK {old['tag']} remove")
    assert rows[-1]["active"] - rows[0]["active"] >= 2 * LIFETIME
    assert len(sim.verified) >= TICKS


def test_a_compromised_zsk_is_replaced_in_the_minimum_time(pg, spawn, softhsm, unbound_factory,
                                                           tmp_path):
    """One call starts the replacement; it completes in Ipub + Iret (rounded
    up to ticks) with no bogus answer.  The test hook makes the first two
    keys generated collide with the compromised key's tag: both are refused
    and a third one is used."""
    policy = dict(POLICY, keys="{zsk-lifetime: 30d, ksk-lifetime: 365d}")
    sim = Sim(pg, spawn, softhsm, unbound_factory, tmp_path, policy=policy,
              env={"ZD_TEST_ZSK_TAG_COLLISIONS": "2"})
    zd = sim.c.zd
    view = sim.tick()
    old = view["active"]
    path = "/api/v1/zones/tld/keys/compromised"
    r = zd.api_post(path, {"tag": old ^ 1, "by": "test"})
    assert r[0] == 409, r  # not the active one
    assert zd.api_post(path, {"tag": old, "by": "test"}, token=None)[0] == 401
    bad = ctl("key-compromised", ZONE, "65536", "--by", "test", zd=zd)
    assert bad.returncode == 3 and "TAG" in bad.stderr, bad.stderr
    p = ctl("--token-file", token_file(zd), "key-compromised", ZONE, old, "--by", "test",
            "--reason", "leaked backup", zd=zd)
    assert p.returncode == 0, p.stderr
    now = sim.clock.now
    when = [datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
            for t in (now, now + IPUB, now + IPUB + IRET)]
    lines = p.stdout.splitlines()
    assert len(lines) == 4 and all(lines[i + 1].strip().startswith(when[i]) for i in range(3)), \
        (p.stdout, when)
    assert zd.api_post(path, {"tag": old, "by": "test"})[0] == 409  # reported already

    # published at once: the clock does not move
    wait_until(lambda: roll_view(zd)["other"] is not None, 30, "the replacement published")
    view = sim.tick(advance=False)
    assert view["other"] and view["other"]["state"] == "published", view
    new = view["other"]["tag"]
    assert view["compromised_at"] == now, view
    sim.restart_killed()  # the report and the roll survive SIGKILL
    assert roll_view(zd)["compromised_at"] == now
    for _ in range(40):
        view = sim.tick()
        if view["other"] is None:
            break
    sim.done()
    rows = {r["tag"]: r for r in zsk_rows(pg)}
    assert set(rows) == {old, new} and new != old, rows
    assert rows[old]["state"] == "removed" and rows[new]["state"] == "active", rows
    assert rows[new]["published"] == now
    within_tick(rows[new]["active"], now + IPUB, "the replacement's activation")
    within_tick(rows[old]["removed"], rows[new]["active"] + IRET, "the compromised ZSK's removal")
    assert rows[old]["removed"] - now < IPUB + IRET + 2 * TICK
    log = zd.log_text()
    assert len(re.findall(r"has key tag %d, which a key of the zone has: destroyed" % old,
                          log)) == 2, log[-3000:]
    assert "reported compromised by test: leaked backup" in log
    assert pg.psql("SELECT count(*) FROM zonedist.audit WHERE action = 'zsk-compromised'"
                   ).strip() == "1"


def test_a_roll_step_whose_commit_outcome_is_lost_is_taken_from_the_journal(
        pg, spawn, softhsm, unbound_factory, tmp_path):
    """The test hook makes zonedistd believe the commit of the first key-roll
    step (the new ZSK's publication) failed after it went through.  The
    next batch finds that version in the journal and the step in
    zonedist.key: the roll goes on from there, with the key it published,
    not with another one, and every serial still validates."""
    sim = Sim(pg, spawn, softhsm, unbound_factory, tmp_path,
              env={"ZD_TEST_LOSE_COMMIT_OUTCOME": "keyroll"})
    zd = sim.c.zd
    view = sim.tick(advance=False)
    first = view["active"]
    while view["other"] is None:
        assert sim.tick_n < 8, "no ZSK published"
        view = sim.tick()
    log = zd.log_text()
    assert "failed or its outcome is unknown" in log and "found committed in the journal" in log
    new = view["other"]["tag"]
    assert view["other"]["state"] == "published" and generated_zsks(zd) == 2
    while view["active"] == first:
        assert sim.tick_n < 12, "the new ZSK never became active"
        view = sim.tick()
    sim.done()
    assert view["active"] == new and generated_zsks(zd) == 2, view
    rows = {r["tag"]: r for r in zsk_rows(pg)}
    assert set(rows) == {first, new} and rows[new]["state"] == "active", rows
    within_tick(rows[new]["published"], rows[first]["active"] + LIFETIME - IPUB,
                f"ZSK {new} publish")


# The KSK rollover's policy and the test's own reading of RFC 7583 s3.3.2
# with it: Ipub as for a ZSK; IpubP = DprpP + TTLds + retire-safety, with
# the root's DS TTL (1 h, as the test sets it); Dreg the registration delay
# the roll expects (the parent here acts within the same tick).
DPRPP, TTLDS, DREG = 60, HOUR, 2 * HOUR
IPUBP = DPRPP + TTLDS + SAFETY
KLIFE = 14 * HOUR


def ksk_policy(poll):
    """poll: zonedistd asks the parent's server (PARENT: Sim puts its
    address there) for the DS."""
    keys = ("{zsk-lifetime: 30d, ksk-lifetime: 14h, ds-ttl: 1h, registration-delay: 2h, "
            "parent-propagation-delay: 60")
    if poll:
        keys += ', parent-servers: ["PARENT"], parent-poll-interval: 1s'
    return dict(POLICY, keys=keys + "}")


def ksk_roll(sim, confirm, kill_in=(), at_ready=lambda kv: None):
    """Tick until the KSK roll is done.  When the zone's CDS is not the
    parent's DS the test replaces the DS as a parent would and calls
    confirm(tag) (nothing to do, or the operator's ds-seen), then waits for
    the roll to take it.  SIGKILL at the first tick of each stage in
    kill_in; at_ready(view) just before the parent changes.  Returns
    (first KSK, second KSK, when the parent changed)."""
    zd = sim.c.zd
    sim.tick(advance=False)
    first = ksk_view(zd)["active"]
    changed, killed, stages = None, [], []
    while True:
        assert sim.tick_n < 20, ("the KSK roll did not finish", ksk_view(zd))
        sim.tick()
        kv = ksk_view(zd)
        cds = apex_rdatas(dnssec.axfr_text(zd.port, ZONE), "CDS")
        if cds and cds != sim.parent.ds():
            assert kv["other"] and kv["other"]["state"] == "ready", kv
            assert changed is None, "the CDS changed twice"
            at_ready(kv)
            sim.parent.set_ds(cds)
            changed = sim.clock.now
            confirm(kv["other"]["tag"])
            wait_until(lambda: (ksk_view(zd)["other"] or {}).get("state") == "ds-seen", 30,
                       "the roll taking the parent's new DS")
            sim.tick(advance=False)  # the ds-seen version, checked
            kv = ksk_view(zd)
        stage = kv["other"] and kv["other"]["state"]
        if stage in kill_in and stage not in killed:
            killed.append(stage)
            sim.restart_killed()
        stages.append(stage)
        if kv["active"] != first:
            break
    assert killed == list(kill_in), (killed, stages)
    assert stages[-1] is None and "ds-seen" in stages, stages
    return first, kv["active"], changed


def ksk_times_check(pg, first, second, changed):
    """Each step at the first tick on or after its earliest time."""
    rows = {r["tag"]: r for r in ksk_rows(pg)}
    assert set(rows) == {first, second}, rows
    old, new = rows[first], rows[second]
    assert (old["state"], new["state"]) == ("removed", "active"), rows
    within_tick(new["published"], old["active"] + KLIFE - (IPUB + DREG + IPUBP),
                f"KSK {second} publish")
    within_tick(new["ready"], new["published"] + IPUB, f"KSK {second} CDS")
    assert new["ds_seen"] == changed, (new, changed)  # seen as soon as it is there
    within_tick(new["active"], new["ds_seen"] + IPUBP, f"KSK {first} removal")
    assert old["removed"] == new["active"], rows


def test_ksk_double_signature_roll_with_the_ds_confirmed_by_polling_the_parent(
        pg, spawn, softhsm, unbound_factory, tmp_path):
    """The KSK rollover on the simulated clock, the parent's DS polled from a
    real signed root (Knot) that the resolver validates down from: the new
    KSK is published and signs the DNSKEY RRset beside the old one, its
    CDS/CDNSKEY follow Ipub later, the parent's DS change is seen by
    polling, and the old KSK goes IpubP after that.  SIGKILL once while the
    new KSK is only published and once after its DS is seen."""
    sim = Sim(pg, spawn, softhsm, unbound_factory, tmp_path, policy=ksk_policy(True),
              parent=True)
    zd = sim.c.zd

    def at_ready(kv):
        # what an operator sees while the parent has not taken the new DS
        tag = kv["other"]["tag"]
        metrics = urllib.request.urlopen(zd.api_url + "/metrics", timeout=10).read().decode()
        assert (f'zonedist_ksk_roll_next_step_timestamp_seconds{{zone="tld.",step="ds-seen"}} '
                f'{kv["next_at"]}') in metrics, metrics
        page = urllib.request.urlopen(zd.api_url + "/", timeout=10).read().decode()
        assert f"(KSK {tag} ready)" in page and "waits for the parent&#39;s DS" in page, page

    first, second, changed = ksk_roll(sim, lambda tag: None, kill_in=("published", "ds-seen"),
                                      at_ready=at_ready)
    for _ in range(2):  # a little more life with the new KSK alone
        sim.tick()
    sim.done()
    ksk_times_check(pg, first, second, changed)
    assert generated_zsks(zd, "KSK") == 2 and generated_zsks(zd) == 1
    log = zd.log_text()
    assert f"KSK rollover done: KSK {second} signs alone, KSK {first} removed" in log
    status, d = zd.api_get("/api/v1/status")
    p = [z for z in d["zones"] if z["zone"] == ZONE][0]["parent_ds"]
    assert p["state"] == "match" and p["ksk_tag"] == second, p


def test_ksk_roll_with_the_ds_confirmed_by_the_operator(pg, spawn, softhsm, unbound_factory,
                                                        tmp_path):
    """No parent servers to poll: the roll waits at its CDS until the
    operator says the parent serves the new DS (zonedistctl ds-seen), which
    is refused for any other key and before the CDS is out."""
    sim = Sim(pg, spawn, softhsm, unbound_factory, tmp_path, policy=ksk_policy(False),
              parent=True)
    zd = sim.c.zd
    path = "/api/v1/zones/tld/keys/ds-seen"
    early = zd.api_post(path, {"tag": ksk_view(zd)["active"], "by": "test"})
    assert early[0] == 409, early  # no roll yet
    seen = []

    def confirm(tag):
        assert zd.api_post(path, {"tag": tag ^ 1, "by": "test"})[0] == 409
        assert zd.api_post(path, {"tag": tag, "by": "test"}, token=None)[0] == 401
        # the parent serves it now; without the operator nothing moves
        sim.tick(advance=False)
        assert ksk_view(zd)["other"]["state"] == "ready"
        p = ctl("--token-file", token_file(zd), "ds-seen", ZONE, tag, "--by", "test",
                "--reason", "seen at the root", zd=zd)
        assert p.returncode == 0, p.stderr
        when = datetime.fromtimestamp(sim.clock.now + IPUBP, timezone.utc)
        assert when.strftime("%Y-%m-%d %H:%M:%SZ") in p.stdout, p.stdout
        assert zd.api_post(path, {"tag": tag, "by": "test"})[0] == 409  # seen already
        seen.append(tag)

    first, second, changed = ksk_roll(sim, confirm, kill_in=("ds-seen",))
    sim.done()
    assert seen == [second]
    ksk_times_check(pg, first, second, changed)
    assert pg.psql("SELECT count(*) FROM zonedist.audit WHERE action = 'ds-seen'").strip() == "1"
    assert "confirm it with zonedistctl ds-seen" in zd.log_text()


def test_a_compromised_ksk_is_replaced_in_the_minimum_time(pg, spawn, softhsm, unbound_factory,
                                                           tmp_path):
    """One call starts the emergency KSK roll long before the lifetime ends:
    the new KSK is published at once, its CDS Ipub later, and the
    compromised KSK leaves the zone IpubP after the parent (polled) serves
    the new DS; zero bogus answers, the report survives SIGKILL.  The test
    hook makes the first two KSKs generated collide with the ZSK's tag:
    both are refused and a third one is used."""
    policy = ksk_policy(True)
    policy["keys"] = policy["keys"].replace("ksk-lifetime: 14h", "ksk-lifetime: 365d")
    sim = Sim(pg, spawn, softhsm, unbound_factory, tmp_path, policy=policy, parent=True,
              env={"ZD_TEST_ZSK_TAG_COLLISIONS": "2"})
    zd = sim.c.zd
    sim.tick()
    old = ksk_view(zd)["active"]
    zsk = roll_view(zd)["active"]
    assert ksk_view(zd)["next_step"] == "ksk-publish" and \
        ksk_view(zd)["next_at"] > sim.clock.now + 300 * 86400
    p = ctl("--token-file", token_file(zd), "key-compromised", ZONE, old, "--by", "test",
            "--reason", "token stolen", zd=zd)
    assert p.returncode == 0, p.stderr
    now = sim.clock.now
    when = [datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
            for t in (now, now + IPUB, now + IPUB + DREG, now + IPUB + DREG + IPUBP)]
    lines = p.stdout.splitlines()
    assert lines[0] == f"KSK {old} reported compromised; its replacement:", p.stdout
    assert len(lines) == 5 and all(lines[i + 1].strip().startswith(when[i]) for i in range(4)), \
        (p.stdout, when)
    assert zd.api_post("/api/v1/zones/tld/keys/compromised", {"tag": old, "by": "test"})[0] == 409
    wait_until(lambda: ksk_view(zd)["other"] is not None, 30, "the new KSK published")
    sim.tick(advance=False)
    kv = ksk_view(zd)
    assert kv["other"]["state"] == "published" and kv["compromised_at"] == now, kv
    sim.restart_killed()
    assert ksk_view(zd)["compromised_at"] == now
    first, second, changed = ksk_roll(sim, lambda tag: None)
    sim.done()
    assert first == old and second != old
    rows = {r["tag"]: r for r in ksk_rows(pg)}
    assert rows[second]["published"] == now, rows
    within_tick(rows[second]["ready"], now + IPUB, "the new KSK's CDS")
    assert rows[second]["ds_seen"] == changed
    within_tick(rows[second]["active"], changed + IPUBP, "the compromised KSK's removal")
    assert rows[old]["state"] == "removed" and rows[old]["removed"] == rows[second]["active"]
    assert ksk_view(zd)["compromised_at"] == 0
    log = zd.log_text()
    assert "KSK %d reported compromised: a new KSK is published at once" % old in log
    assert len(re.findall(r"has key tag %d, which a key of the zone has: destroyed" % zsk,
                          log)) == 2, log[-3000:]
    assert second != zsk and generated_zsks(zd, "KSK") == 2
    assert pg.psql("SELECT count(*) FROM zonedist.audit WHERE action = 'ksk-compromised'"
                   ).strip() == "1"


def unsign_view(zd):
    return keys_view(zd)["unsign"]


def dnssec_types(text):
    """The DNSSEC record types left in the zone text."""
    kinds = ("RRSIG", "DNSKEY", "NSEC", "NSEC3", "NSEC3PARAM", "CDS", "CDNSKEY")
    return {f[3] for f in (l.split() for l in text.splitlines()) if len(f) > 3 and f[3] in kinds}


def unsign_rows(pg):
    out = pg.psql("SELECT floor(extract(epoch FROM delete_published))::bigint, "
                  "floor(extract(epoch FROM ds_gone))::bigint, coalesce(ds_gone_by, ''), "
                  "floor(extract(epoch FROM unsigned_at))::bigint FROM zonedist.unsign "
                  "WHERE zone = 'tld.'").strip()
    if not out:
        return None
    f = out.split("|")
    return {"delete_published": int(f[0]) if f[0] else None,
            "ds_gone": int(f[1]) if f[1] else None, "by": f[2],
            "unsigned_at": int(f[3]) if f[3] else None}


@pytest.mark.parametrize("confirm", ["parent-servers", "operator"])
def test_unsigning_goes_through_cds_delete_and_waits_for_the_parents_ds_to_go(
        pg, spawn, softhsm, unbound_factory, tmp_path, confirm):
    """RFC 8078 s4 on the simulated clock: with `dnssec: {unsign: true}` the
    zone publishes the delete CDS/CDNSKEY and stays signed while the parent
    (a real Knot signing the root) holds its DS; once every parent server
    answers without DS (polled), or the operator says so (zonedistctl
    ds-gone), the DNSSEC records go IpubP later (the DS out of every
    cache).  At every tick the resolver, anchored at the root, answers without
    SERVFAIL: secure while the DS is there, insecure after, never bogus.
    SIGKILL while the unsigning waits; after it, `dnssec: off` starts."""
    poll = confirm == "parent-servers"
    policy = dict(ksk_policy(poll), keys=ksk_policy(poll)["keys"].replace(
        "ksk-lifetime: 14h", "ksk-lifetime: 365d"))
    sim = Sim(pg, spawn, softhsm, unbound_factory, tmp_path, policy=policy, parent=True)
    zd = sim.c.zd
    sim.tick()
    assert unsign_view(zd)["stage"] == "none" and unsign_rows(pg) is None
    assert zd.api_get("/api/v1/zones/tld")[1]["signed"] is True
    path = "/api/v1/zones/tld/keys/ds-gone"
    early = zd.api_post(path, {"by": "test"})
    assert early[0] == 409, early  # not unsigning
    ds_before = sim.parent.ds()
    assert ds_before

    def step(expect_secure):
        """One tick with a registry change; the resolver's answers (AD as
        expected while the DS is at the parent, never SERVFAIL)."""
        sim.tick_n += 1
        sim.clock.set(sim.start + sim.tick_n * TICK)
        name = f"un{sim.tick_n}.tld."
        sim.reg.add_domain(name, ns=["ns1.extern.example."])
        sim.wait_checked()
        serial = sim.c.settle()
        text = dnssec.axfr_text(zd.port, ZONE)
        assert name in text
        for qname, rdtype, rcode in ((ZONE, "DNSKEY", "NOERROR"), ("secure.tld.", "DS", "NOERROR"),
                                     ("no-such-name.tld.", "A", "NXDOMAIN"),
                                     (ZONE, "SOA", "NOERROR")):
            r = sim.ub.query(qname, rdtype)
            assert dns.rcode.to_text(r.rcode()) == rcode, (sim.tick_n, qname, rdtype, r)
            if expect_secure is not None:
                assert bool(r.flags & dns.flags.AD) == expect_secure, (sim.tick_n, qname, r)
        return serial, text

    # unsign: the delete CDS/CDNSKEY, signed, and nothing else changes yet
    zd.stop()
    zd.dnssec = dict(zd.dnssec, unsign="true")
    zd.start()
    sim.wait_checked("zonedistd back with unsign")
    wait_until(lambda: unsign_view(zd)["stage"] == "cds-delete", 30, "the delete CDS out")
    serial, text = step(True)
    assert apex_rdatas(text, "CDS") == {"0 0 0 00"}, apex_rdatas(text, "CDS")
    assert apex_rdatas(text, "CDNSKEY") == {"0 3 0 AA=="}, apex_rdatas(text, "CDNSKEY")
    ksk = ksk_view(zd)["active"]
    assert apex_sigs(text, "CDS") == {ksk} and apex_sigs(text, "CDNSKEY") == {ksk}
    ok, out = dnssec.ldns_verify_zone(text, ZONE, now=sim.clock.now)
    assert ok, out
    row = unsign_rows(pg)
    assert row and row["ds_gone"] is None, row
    delete_at = row["delete_published"]
    # what the operator sees: the status page and /api/v1/status
    page = urllib.request.urlopen(zd.api_url + "/", timeout=10).read().decode()
    assert "(unsigning: cds-delete)" in page and "stays signed until the parent" in page, page
    st = [z for z in zd.api_get("/api/v1/status")[1]["zones"] if z["zone"] == ZONE][0]
    assert st["keys"]["unsign"] == {"stage": "cds-delete", "next_step": "ds-gone", "at": 0}, st
    # no rollover step is due while the zone goes unsigned
    assert "zsk_next" not in st["keys"] and "ksk_next" not in st["keys"], st
    kv = keys_view(zd)
    assert kv["zsk_roll"]["next_step"] == "none" and kv["steps"] == [], kv
    # the parent keeps the DS: the zone stays signed and secure, and waits
    for _ in range(2):
        serial, text = step(True)
        assert "DNSKEY" in dnssec_types(text) and unsign_view(zd)["stage"] == "cds-delete"
        ok, out = dnssec.ldns_verify_zone(text, ZONE, now=sim.clock.now)
        assert ok, out
    sim.restart_killed()  # SIGKILL while it waits: the same stage after
    assert unsign_view(zd)["stage"] == "cds-delete"
    assert unsign_rows(pg)["delete_published"] == delete_at

    # the parent takes the delete CDS: its DS goes
    sim.parent.set_ds([])
    gone_at = sim.clock.now
    if not poll:
        # nobody polls: nothing moves until the operator says so
        assert zd.api_post(path, {"by": "test"}, token=None)[0] == 401
        sim.wait_checked()
        assert unsign_view(zd)["stage"] == "cds-delete"
        p = ctl("--token-file", token_file(zd), "ds-gone", ZONE, "--by", "test", "--reason",
                "gone from the root", zd=zd)
        assert p.returncode == 0, p.stderr
        when = datetime.fromtimestamp(gone_at + IPUBP, timezone.utc)
        assert when.strftime("%Y-%m-%d %H:%M:%SZ") in p.stdout, p.stdout
        assert zd.api_post(path, {"by": "test"})[0] == 409  # confirmed already
        assert pg.psql("SELECT count(*) FROM zonedist.audit WHERE action = 'ds-gone'"
                       ).strip() == "1"
    wait_until(lambda: unsign_view(zd)["stage"] == "ds-gone", 30, "the DS seen gone")
    row = unsign_rows(pg)
    assert row["ds_gone"] == gone_at and row["by"] == ("parent-servers" if poll else "test"), \
        row
    view = unsign_view(zd)
    assert view["next_step"] == "unsigned" and view["next_at"] == gone_at + IPUBP, view
    page = urllib.request.urlopen(zd.api_url + "/", timeout=10).read().decode()
    assert "(unsigning: ds-gone)" in page and "the DNSSEC records go in" in page, page
    metrics = urllib.request.urlopen(zd.api_url + "/metrics", timeout=10).read().decode()
    assert 'zonedist_unsign_stage{zone="tld.",stage="ds-gone"} 1' in metrics, metrics
    # signed until IpubP has passed, whatever the caches hold
    while sim.clock.now + TICK < gone_at + IPUBP:
        serial, text = step(None)
        assert "DNSKEY" in dnssec_types(text), (sim.tick_n, unsign_view(zd))
        ok, out = dnssec.ldns_verify_zone(text, ZONE, now=sim.clock.now)
        assert ok, out
    serial, text = step(None)  # crosses ds_gone + IpubP
    wait_until(lambda: unsign_view(zd)["stage"] == "unsigned", 30, "the zone unsigned")
    sim.c.settle()
    text = dnssec.axfr_text(zd.port, ZONE)
    assert dnssec_types(text) == set(), dnssec_types(text)
    row = unsign_rows(pg)
    within_tick(row["unsigned_at"], gone_at + IPUBP, "unsigning")
    status, z = zd.api_get("/api/v1/zones/tld")
    assert status == 200 and z["signed"] is False, z
    # served unsigned and insecure: registry changes flow, nothing is signed
    for _ in range(2):
        serial, text = step(False)
        assert dnssec_types(text) == set(), (sim.tick_n, dnssec_types(text))
    assert not sim.ub.validation_failures(), sim.ub.validation_failures()
    log = zd.log_text()
    assert "unsigning: the delete CDS/CDNSKEY are published" in log
    assert "unsigning done: the zone is served without DNSSEC records" in log

    # now `dnssec: off` starts (no force-unsign: the published zone is unsigned)
    zd.stop()
    zd.dnssec = "off"
    zd.start()
    sim.reg.add_domain("after-off.tld.", ns=["ns1.extern.example."])
    # signed, the apex NS TTL was capped at max-ttl (2h); unsigned it is the
    # configured one again: an apex change, held for the operator
    wait_until(lambda: "held by the sanity limits" in zd.log_text(), 30, "the apex change held")
    r = zd.run("--release", ZONE, "--by", "test")
    assert r.returncode == 0, r.stderr
    sim.c.settle()
    text = dnssec.axfr_text(zd.port, ZONE)
    assert "after-off" in text and dnssec_types(text) == set()
    assert "is published signed and its policy says dnssec: off" not in zd.log_text()


def alg_view(zd):
    return keys_view(zd)["algorithm_roll"]


ALGROLL_TIMES = ("signed", "published", "cds", "ds_seen", "removed", "done")


def algroll_row(pg):
    cols = ", ".join(f"floor(extract(epoch FROM {c}))::bigint" for c in ALGROLL_TIMES)
    out = pg.psql(f"SELECT from_alg, to_alg, ksk, zsk, coalesce(ds_seen_by, ''), {cols} FROM "
                  "zonedist.algroll WHERE zone = 'tld.'").split()
    if not out:
        return None
    assert len(out) == 1, out
    f = out[0].split("|")
    return {"from": int(f[0]), "to": int(f[1]), "ksk": int(f[2]), "zsk": int(f[3]),
            "by": f[4], **{k: int(v) if v else None for k, v in zip(ALGROLL_TIMES, f[5:])}}


def sig_algorithms(text):
    """{(owner, covered type): algorithms of its RRSIGs}, and the DNSKEY
    RRset's algorithms."""
    sigs, keys = {}, set()
    for f in (l.split() for l in text.splitlines()):
        if len(f) > 6 and f[3] == "RRSIG":
            sigs.setdefault((f[0], f[4]), set()).add(int(f[5]))
        elif len(f) > 6 and f[0] == ZONE and f[3] == "DNSKEY":
            keys.add(int(f[6]))
    return sigs, keys


@pytest.mark.parametrize("confirm", ["parent-servers", "operator"])
def test_algorithm_rollover_signs_with_both_algorithms_before_the_new_keys_appear(
        pg, spawn, softhsm, unbound_factory, tmp_path, confirm):
    """RFC 6781 s4.1.4 on the simulated clock, RSASHA256 to ECDSAP256SHA256:
    changing dnssec algorithm starts the rollover; every RRset is signed by
    both algorithms before the new DNSKEYs appear, and at no serial is any
    RRset missing a signature of an algorithm of the DNSKEY RRset; the CDS
    describes the new KSK once its DNSKEY is in every cache, the parent (a
    real Knot signing the root) replaces the DS, polled by zonedistd or
    confirmed by the operator (zonedistctl ds-seen); the old
    keys leave the DNSKEY RRset IpubP after it, and their signatures Ipub
    after that.  Each step at the first tick on or after its earliest time;
    SIGKILL in the middle; Unbound, anchored at the root, validates every
    tick; ldns-verify-zone accepts every serial."""
    poll = confirm == "parent-servers"
    policy = dict(ksk_policy(poll), algorithm="rsasha256")
    policy["keys"] = policy["keys"].replace("ksk-lifetime: 14h", "ksk-lifetime: 365d")
    sim = Sim(pg, spawn, softhsm, unbound_factory, tmp_path, policy=policy, parent=True)
    zd = sim.c.zd
    sim.tick()
    old_ksk, old_zsk = ksk_view(zd)["active"], roll_view(zd)["active"]
    assert alg_view(zd) is None and algroll_row(pg) is None
    verified = set()

    def step(advance=True):
        if advance:
            sim.tick_n += 1
            sim.clock.set(sim.start + sim.tick_n * TICK)
            name = f"alg{sim.tick_n}.tld."
            sim.reg.add_domain(name, ns=["ns1.extern.example."],
                               ds=[(2000 + sim.tick_n, 13, 2, f"{sim.tick_n % 256:02x}" * 32)])
            sim.added.append(name)
        sim.wait_checked()
        serial = sim.c.settle()
        text = dnssec.axfr_text(zd.port, ZONE)
        sigs, keys = sig_algorithms(text)
        missing = {k: v for k, v in sigs.items() if not keys <= v}
        assert not missing, (sim.tick_n, keys, sorted(missing.items())[:5])
        if serial not in verified:
            ok, out = dnssec.ldns_verify_zone(text, ZONE, now=sim.clock.now)
            assert ok, f"serial {serial} at tick {sim.tick_n}: {out}"
            verified.add(serial)
        sim.ask("secure.tld.", "DS", "NOERROR")
        sim.ask("no-such-name.tld.", "A", "NXDOMAIN")
        sim.ask(ZONE, "DNSKEY", "NOERROR")
        sim.ask(ZONE, "DS", "NOERROR")
        sim.ask(sim.added[-1], "DS", "NOERROR")
        return text, sigs, keys

    # the policy's algorithm changes: the rollover starts at once
    zd.stop()
    zd.dnssec = dict(zd.dnssec, algorithm="ecdsap256sha256")
    zd.start()
    sim.wait_checked("zonedistd back with the new algorithm")
    wait_until(lambda: (alg_view(zd) or {}).get("stage") == "signed", 30, "the new keys signing")
    text, sigs, keys = step(advance=False)
    av = alg_view(zd)
    assert (av["from"], av["to"], av["next_step"]) == (8, 13, "alg-publish"), av
    assert keys == {8}, keys  # not published yet
    assert all(v == {8, 13} for v in sigs.values()), sorted(sigs.items())[:5]
    row = algroll_row(pg)
    assert (row["from"], row["to"], row["ksk"], row["zsk"]) == (8, 13, av["ksk"], av["zsk"])
    assert av["next_at"] == row["signed"] + IRET, (av, row)
    st = [z for z in zd.api_get("/api/v1/status")[1]["zones"] if z["zone"] == ZONE][0]
    assert st["keys"]["algorithm_roll"]["stage"] == "signed", st["keys"]
    assert "zsk_next" not in st["keys"] and keys_view(zd)["steps"] == [], st["keys"]
    page = urllib.request.urlopen(zd.api_url + "/", timeout=10).read().decode()
    assert "(algorithm rollover to ECDSAP256SHA256: signed)" in page, page
    assert "algorithm rollover: next step alg-publish in" in page, page
    metrics = urllib.request.urlopen(zd.api_url + "/metrics", timeout=10).read().decode()
    assert 'zonedist_algorithm_roll_stage{zone="tld.",stage="signed",to="13"} 1' in metrics
    p = ctl("keys", "plan", ZONE, zd=zd)
    when = datetime.fromtimestamp(av["next_at"], timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    assert p.returncode == 0 and ("algorithm rollover 8 to 13: stage signed; next step "
                                  f"alg-publish, due at {when}") in p.stdout, p.stdout

    stages, killed, changed = [], [], None
    while algroll_row(pg)["done"] is None:
        assert sim.tick_n < 40, ("the algorithm rollover did not finish", alg_view(zd))
        text, sigs, keys = step()
        av = alg_view(zd)
        stage = av["stage"] if av else "none"
        stages.append(stage)
        if stage in ("signed",):
            assert keys == {8}, (sim.tick_n, keys)
        elif stage in ("published", "cds", "ds-seen"):
            assert keys == {8, 13}, (sim.tick_n, keys)
        elif stage == "removed":
            assert keys == {13} and all(v == {8, 13} for v in sigs.values()), (sim.tick_n, keys)
        cds = apex_rdatas(text, "CDS")
        if stage == "cds" and cds != sim.parent.ds():
            assert changed is None, "the CDS changed twice"
            assert {int(r.split()[1]) for r in cds} == {13}, cds
            sim.parent.set_ds(cds)  # the parent takes the new CDS
            changed = sim.clock.now
            if not poll:
                path = "/api/v1/zones/tld/keys/ds-seen"
                assert zd.api_post(path, {"tag": old_ksk, "by": "test"})[0] == 409
                sim.wait_checked()
                assert alg_view(zd)["stage"] == "cds"  # nothing moves without the operator
                p = ctl("--token-file", token_file(zd), "ds-seen", ZONE, av["ksk"], "--by",
                        "test", "--reason", "seen at the root", zd=zd)
                assert p.returncode == 0, p.stderr
                when = datetime.fromtimestamp(changed + IPUBP, timezone.utc)
                assert when.strftime("%Y-%m-%d %H:%M:%SZ") in p.stdout, p.stdout
                assert zd.api_post(path, {"tag": av["ksk"], "by": "test"})[0] == 409
            wait_until(lambda: alg_view(zd)["stage"] == "ds-seen", 30,
                       "the rollover taking the parent's new DS")
            step(advance=False)
        if stage in ("published", "removed") and stage not in killed:
            killed.append(stage)
            sim.restart_killed()
            assert alg_view(zd)["stage"] == stage, alg_view(zd)
    assert killed == ["published", "removed"], (killed, stages)
    assert changed is not None, stages
    # the end: the new keys sign alone, the old ones left the zone and the token
    wait_until(lambda: alg_view(zd) is None, 30, "the rollover over")
    text, sigs, keys = step(advance=False)
    assert keys == {13} and all(v == {13} for v in sigs.values()), sorted(sigs.items())[:5]
    for _ in range(2):
        text, sigs, keys = step()
        assert keys == {13} and all(v == {13} for v in sigs.values())
    new_ksk, new_zsk = ksk_view(zd)["active"], roll_view(zd)["active"]
    row = algroll_row(pg)
    assert (new_ksk, new_zsk) == (row["ksk"], row["zsk"]), (row, new_ksk, new_zsk)
    assert apex_tags(text)[0] == {257: {new_ksk}, 256: {new_zsk}}, apex_tags(text)
    rows = {(r["tag"], r["state"]) for r in zsk_rows(pg) + ksk_rows(pg)}
    assert rows == {(old_ksk, "removed"), (old_zsk, "removed"), (new_ksk, "active"),
                    (new_zsk, "active")}, rows
    assert private_keys_n(softhsm) == 2
    # each step at the first tick on or after its earliest time
    within_tick(row["published"], row["signed"] + IRET, "the new keys' publication")
    within_tick(row["cds"], row["published"] + IPUB, "the new CDS")
    assert row["ds_seen"] == changed and row["by"] == confirm.replace("operator", "test"), \
        (row, changed)
    within_tick(row["removed"], row["ds_seen"] + IPUBP, "the old keys' removal")
    within_tick(row["done"], row["removed"] + IPUB, "the old signatures' removal")
    sim.done()
    log = zd.log_text()
    assert "algorithm rollover RSASHA256 to ECDSAP256SHA256" in log
    assert "algorithm rollover done" in log
    # the next start signs on with the new keys, no rollover
    zd.stop()
    zd.start()
    sim.wait_checked("zonedistd back")
    assert alg_view(zd) is None and ksk_view(zd)["active"] == new_ksk
    text, sigs, keys = step()
    assert keys == {13} and all(v == {13} for v in sigs.values())


def private_keys_n(hsm):
    out = hsm.tool("--list-objects", "--type", "privkey", text=True).stdout
    return sum(1 for l in out.splitlines() if l.strip().startswith("label:"))
