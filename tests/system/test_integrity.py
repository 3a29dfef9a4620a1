"""zonedist-check (issue 6): every secondary is proven to serve exactly a
serial zonedistd published, by ZONEMD digest, and only a mismatch costs a
record-level comparison; diverged, lagging, unreachable secondaries and bad
signatures are reported as such.  Real zonedistd, PostgreSQL, NSD, BIND;
the tampered secondaries are real NSDs serving edited zone files."""

import json
import os
import subprocess
import tempfile
import threading
import time

import dns.zone

from zdtest.env import Chain, journal_rows
from zdtest.proc import free_port
from zdtest.servers import _Server, nsd_server_conf
from zdtest.zonedistd import binary

ZONE = "tld."


def check(zd, *args, secondaries=(), timeout=300):
    """Run zonedist-check --json; (exit code, parsed reports)."""
    argv = [binary("zonedist-check", build=zd.build), "--zone", ZONE, "--api", zd.api_url,
            "--json", *args]
    for s in secondaries:
        argv += ["--secondary", s]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    docs = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert docs or p.returncode == 3, p.stderr
    return p.returncode, docs, p.stderr


def dig_axfr(port, zone=ZONE):
    """The AXFR from port as master-file text (dig, one SOA)."""
    p = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), zone, "AXFR", "+onesoa",
                        "+nocmd", "+nostats", "+nocomments", "+time=10"],
                       capture_output=True, text=True, timeout=120, check=True)
    assert "Transfer failed" not in p.stdout, p.stdout
    return p.stdout


def by_secondary(doc):
    return {s["secondary"]: s for s in doc["secondaries"]}


class ZoneFileNsd(_Server):
    """NSD serving a zone file as a primary: a secondary whose zone we edit."""
    kind = "nsd"

    def __init__(self, zone_text, zone=ZONE):
        super().__init__()
        self.zone, self.port = zone, free_port()
        with open(os.path.join(self.dir, "zone"), "w") as f:
            f.write(zone_text)

    def write_config(self):
        d = self.dir
        with open(os.path.join(d, "nsd.conf"), "w") as f:
            f.write(nsd_server_conf(d, self.port, self.log) +
                    f'zone:\n  name: "{self.zone}"\n  zonefile: "{d}/zone"\n'
                    "  provide-xfr: 127.0.0.0/8 NOKEY\n")

    def argv(self):
        return ["/usr/sbin/nsd", "-d", "-c", os.path.join(self.dir, "nsd.conf")]


def small_chain(pg, spawn, n=2000, secondaries=("nsd", "bind"), **kw):
    c = Chain(pg, spawn, secondaries=secondaries, zonedistd_kw=kw or None)
    c.registry.bulk_fill(ZONE, n, seed=6, triggers=False)
    return c.start()


def test_in_sync_secondaries_are_confirmed_by_digest(pg, spawn):
    c = small_chain(pg, spawn)
    serial = c.settle()
    nsd, bind = c.secondaries["nsd"], c.secondaries["bind"]
    rc, docs, err = check(c.zd, secondaries=[f"127.0.0.1@{nsd.port}", f"127.0.0.1@{bind.port}"])
    assert rc == 0, [s["message"] for s in docs[0]["secondaries"]]
    for rep in docs[0]["secondaries"]:
        assert rep["state"] == "in_sync", rep
        assert rep["serial"] == serial and rep["latest_serial"] == serial
        assert rep["compared_by"] == "digest"
        assert rep["digest"] == rep["zonedistd_digest"]
    # The digest is the ZONEMD of the zone: ldns-verify-zone accepts it in
    # a ZONEMD record added to the AXFR it was computed over.
    status, d = c.zd.api_get(f"/api/v1/zones/tld/digest?serial={serial}")
    assert status == 200 and d["serial"] == serial and d["versions_after"] == 0
    text = dig_axfr(nsd.port)
    with tempfile.NamedTemporaryFile("w", suffix=".zone", delete=False) as f:
        f.write(text + f"\n{ZONE} 300 IN ZONEMD {serial} 1 1 {d['digest']}\n")
    try:
        v = subprocess.run(["ldns-verify-zone", "-Z", f.name], capture_output=True, text=True)
        assert v.returncode == 0, v.stdout + v.stderr
        bad = text + f"\n{ZONE} 300 IN ZONEMD {serial} 1 1 {'0' * 96}\n"
        with open(f.name, "w") as g:
            g.write(bad)
        v = subprocess.run(["ldns-verify-zone", "-Z", f.name], capture_output=True, text=True)
        assert v.returncode != 0
    finally:
        os.unlink(f.name)
    # Computed once: the second ask is served from the cache (one log line).
    c.zd.api_get(f"/api/v1/zones/tld/digest?serial={serial}")
    assert c.zd.log_text().count(f"digest of serial {serial}:") == 1


def zone_at(zd, serial):
    status, text = zd.api_get(f"/api/v1/zones/tld/zone?serial={serial}")
    assert status == 200, text
    return text


def rr_lines(text):
    return [l for l in text.splitlines() if l.strip() and not l.startswith(";")]


def test_zone_text_of_a_serial_is_its_axfr(pg, spawn):
    c = small_chain(pg, spawn, n=500, secondaries=("nsd",))
    s1 = c.settle()
    c.registry.set_ns(f"b6-10.{ZONE}", ["ns1.zz.example.", "ns2.zz.example."])
    s2 = c.settle()
    def records(text):
        z = dns.zone.from_text(text, origin=ZONE, relativize=False, check_origin=False)
        return {(str(n), rs.to_text()) for n, node in z.nodes.items() for rs in node.rdatasets}

    # The newest serial from the API equals NSD's AXFR of it; the older
    # serial differs from it by exactly the NS change.
    assert records(zone_at(c.zd, s2)) == records(dig_axfr(c.secondaries["nsd"].port))
    old, new = records(zone_at(c.zd, s1)), records(zone_at(c.zd, s2))
    changed = {n for n, _ in old ^ new}
    assert changed == {ZONE, f"b6-10.{ZONE}"}, changed  # the SOA and the delegation
    status, err = c.zd.api_get("/api/v1/zones/tld/zone?serial=4000000000")
    assert status == 404 and "not kept" in err["error"]
    for bad in ("/api/v1/zones/tld/zone?serial=x", "/api/v1/zones/tld/digest?serial=-1",
                "/api/v1/zones/tld/digest?bogus=1"):
        assert c.zd.api_get(bad)[0] == 400, bad
    assert c.zd.api_get("/api/v1/zones/nope/digest")[0] == 404
    assert c.zd.api_get("/api/v1/nothing")[0] == 404
    status, zones = c.zd.api_get("/api/v1/zones")
    assert status == 200 and zones["zones"][0]["serial"] == s2


def tamper(text):
    """One glue address changed, one DS removed, one delegation added; returns
    (new text, {(owner, type)} of the three)."""
    lines = rr_lines(text)
    out, done = [], {}
    for l in lines:
        f = l.split()
        owner, rtype = f[0], f[3]
        if "glue" not in done and rtype == "A" and owner.startswith("ns1.b6-") and \
                owner.endswith(".tld."):
            f[4] = "203.0.113.77" if f[4] != "203.0.113.77" else "203.0.113.78"
            done["glue"] = (owner, "A")
            out.append(" ".join(f))
            continue
        if "ds" not in done and rtype == "DS":
            done["ds"] = (owner, "DS")
            continue
        out.append(l)
    out.append("tampered-zz.tld. 86400 IN NS ns1.tampered.example.")
    done["deleg"] = ("tampered-zz.tld.", "NS")
    assert len(done) == 3
    return "\n".join(out) + "\n", set(done.values())


def test_a_tampered_secondary_is_diverged_with_exactly_those_records(pg, spawn):
    c = small_chain(pg, spawn, secondaries=("nsd",))
    serial = c.settle()
    text, changed = tamper(zone_at(c.zd, serial))
    bad = spawn(ZoneFileNsd(text))
    good = c.secondaries["nsd"]
    rc, docs, _ = check(c.zd, secondaries=[f"127.0.0.1@{bad.port}", f"127.0.0.1@{good.port}"])
    assert rc == 2
    reps = by_secondary(docs[0])
    assert reps[f"127.0.0.1@{good.port}"]["state"] == "in_sync"
    r = reps[f"127.0.0.1@{bad.port}"]
    assert r["state"] == "diverged" and r["severity"] == 2 and r["serial"] == serial, r
    assert r["compared_by"] == "records"
    d = r["differences"]
    named = {(s["owner"], s["type"]) for s in d["rrsets"]}
    assert named == changed and d["rrsets_total"] == 3, d
    glue = next(s for s in d["rrsets"] if s["type"] == "A")
    assert len(glue["missing"]) == 1 and len(glue["extra"]) == 1
    assert "203.0.113.7" in glue["extra"][0]
    ds = next(s for s in d["rrsets"] if s["type"] == "DS")
    assert ds["extra"] == [] and len(ds["missing"]) == 1
    ns = next(s for s in d["rrsets"] if s["type"] == "NS")
    assert ns["missing"] == [] and ns["extra"] == ["tampered-zz.tld.\t86400\tIN\tNS\t"
                                                  "ns1.tampered.example."]
    # The human report names them too.
    p = subprocess.run([binary("zonedist-check"), "--zone", ZONE, "--api", c.zd.api_url,
                        "--secondary", f"127.0.0.1@{bad.port}"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 2 and "diverged" in p.stdout and "tampered-zz.tld." in p.stdout


def test_stopped_and_stuck_secondaries(pg, spawn):
    c = small_chain(pg, spawn, secondaries=("nsd", "bind"))
    s0 = c.settle()
    stuck = spawn(ZoneFileNsd(zone_at(c.zd, s0)))  # never follows zonedistd
    for i in range(4):  # four more versions, each its own batch
        c.registry.set_ns(f"b6-{100 + i}.{ZONE}", [f"ns{i}.moved.example."])
        c.settle()
    # Independent count: the journal rows of the versions after s0 (s0 is
    # the first version, a checkpoint, or a journal row).
    rows = journal_rows(pg, ZONE)
    v0 = next((v for v, s, _ in rows if s == s0), 0)
    after = [v for v, _, _ in rows if v > v0]
    c.secondaries["nsd"].stop()
    nsd, bind = c.secondaries["nsd"].port, c.secondaries["bind"].port
    rc, docs, _ = check(c.zd, "--timeout", "1000",
                        secondaries=[f"127.0.0.1@{nsd}", f"127.0.0.1@{bind}",
                                     f"127.0.0.1@{stuck.port}"])
    reps = by_secondary(docs[0])
    assert rc == 2
    assert reps[f"127.0.0.1@{nsd}"]["state"] == "unreachable"
    assert "unreachable" in reps[f"127.0.0.1@{nsd}"]["message"]
    assert reps[f"127.0.0.1@{bind}"]["state"] == "in_sync"
    r = reps[f"127.0.0.1@{stuck.port}"]
    assert r["state"] == "lagging" and r["severity"] == 0 and r["serial"] == s0, r
    assert r["versions_behind"] == len(after) == 4, (r, rows)
    # Lagging for longer than --lag-warn is a warning.
    time.sleep(2)
    rc, docs, _ = check(c.zd, "--lag-warn", "1", secondaries=[f"127.0.0.1@{stuck.port}"])
    assert rc == 1 and docs[0]["secondaries"][0]["severity"] == 1


# --- DNSSEC: what the secondary serves must validate -----------------------

def flip_signature(text, rtype_covered="DS"):
    """Flip one bit in the signature of the first RRSIG covering rtype."""
    out, done = [], None
    for l in text.splitlines():
        f = l.split()
        if done is None and len(f) > 12 and f[3] == "RRSIG" and f[4] == rtype_covered:
            sig = f[-1]
            ch = "A" if sig[0] != "A" else "B"
            f[-1] = ch + sig[1:]
            done = f[0]
            l = " ".join(f)
        out.append(l)
    assert done
    return "\n".join(out) + "\n", done


def test_a_bad_signature_served_by_a_secondary_is_critical(pg, spawn, softhsm):
    c = Chain(pg, spawn, secondaries=("nsd",), zonedistd_kw=dict(hsm=softhsm, dnssec="on"))
    c.registry.bulk_fill(ZONE, 1000, seed=6, triggers=False)
    c.start()
    serial = c.settle()
    good = c.secondaries["nsd"]
    rc, docs, _ = check(c.zd, secondaries=[f"127.0.0.1@{good.port}"])
    r = docs[0]["secondaries"][0]
    assert rc == 0 and r["state"] == "in_sync", r
    assert r["dnssec"]["signed"] and r["dnssec"]["bogus"] == 0 and r["dnssec"]["rrsigs"] > 100
    assert r["dnssec"]["rrsigs_valid"] == r["dnssec"]["rrsigs"]

    # The parent's DS, made by ldns-key2ds from the KSK the zone publishes,
    # matches; a DS of another key does not (critical).
    ksk = [l for l in rr_lines(zone_at(c.zd, serial))
           if l.split()[3] == "DNSKEY" and l.split()[4] == "257"]
    assert len(ksk) == 1
    kf = os.path.join(c.zd.dir, "ksk.key")
    with open(kf, "w") as f:
        f.write(ksk[0] + "\n")
    ds = subprocess.run(["ldns-key2ds", "-n", "-2", kf], capture_output=True, text=True,
                        check=True).stdout
    dsf = os.path.join(c.zd.dir, "parent.ds")
    with open(dsf, "w") as f:
        f.write(ds)
    rc, docs, _ = check(c.zd, "--parent-ds", dsf, secondaries=[f"127.0.0.1@{good.port}"])
    assert rc == 0 and docs[0]["secondaries"][0]["dnssec"]["ds_errors"] == 0
    f = ds.split()
    f[4] = str((int(f[4]) + 1) % 65536)  # another key tag: no such key
    with open(dsf, "w") as g:
        g.write(" ".join(f) + "\n")
    rc, docs, _ = check(c.zd, "--parent-ds", dsf, secondaries=[f"127.0.0.1@{good.port}"])
    r = docs[0]["secondaries"][0]
    assert rc == 2 and r["dnssec"]["ds_errors"] == 1 and r["state"] == "in_sync", r

    text, owner = flip_signature(zone_at(c.zd, serial))
    bad = spawn(ZoneFileNsd(text))
    rc, docs, _ = check(c.zd, secondaries=[f"127.0.0.1@{bad.port}"])
    r = docs[0]["secondaries"][0]
    assert rc == 2 and r["severity"] == 2 and r["state"] == "diverged", r
    assert r["dnssec"]["bogus"] == 1 and r["dnssec"]["severity"] == "critical"
    assert any(p["owner"] == owner and p["type"] == "DS" for p in r["dnssec"]["problems"])
    # The same good zone judged at a time past every signature's expiry.
    far = int(time.time()) + 400 * 86400
    rc, docs, _ = check(c.zd, "--now", str(far), secondaries=[f"127.0.0.1@{good.port}"])
    r = docs[0]["secondaries"][0]
    assert rc == 2 and r["state"] == "in_sync" and r["dnssec"]["expired"] == r["dnssec"]["rrsigs"]
    # Close to expiry (within --expiry-warn) is a warning only.
    rc, docs, _ = check(c.zd, "--expiry-warn", str(400 * 86400),
                        secondaries=[f"127.0.0.1@{good.port}"])
    r = docs[0]["secondaries"][0]
    assert rc == 1 and r["dnssec"]["expiring"] > 0 and r["dnssec"]["severity"] == "warning", r


def ldns_signed(text, tmp, inception, expiration):
    """text signed by ldns-signzone (NSEC3, fresh ECDSA keys) with the given
    validity (YYYYMMDD); the signed text."""
    zf = os.path.join(tmp, "tld.zone")
    with open(zf, "w") as f:
        f.write(text)
    keys = []
    for extra in (["-k"], []):
        p = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256", *extra, ZONE], cwd=tmp,
                           capture_output=True, text=True, check=True)
        keys.append(os.path.join(tmp, p.stdout.strip()))
    subprocess.run(["ldns-signzone", "-n", "-t", "0", "-s", "", "-i", inception, "-e",
                    expiration, "-f", zf + ".signed", zf, *keys], cwd=tmp, check=True,
                   capture_output=True, text=True)
    with open(zf + ".signed") as f:
        return f.read()


def test_expired_signatures_served_by_a_secondary_are_critical(pg, spawn, tmp_path):
    c = small_chain(pg, spawn, n=300, secondaries=("nsd",))
    serial = c.settle()
    text = zone_at(c.zd, serial)
    expired = spawn(ZoneFileNsd(ldns_signed(text, str(tmp_path), "20200101000000", "20200201000000")))
    fresh = spawn(ZoneFileNsd(ldns_signed(text, str(tmp_path), "20200101000000", "20600101000000")))
    rc, docs, _ = check(c.zd, secondaries=[f"127.0.0.1@{expired.port}",
                                           f"127.0.0.1@{fresh.port}"])
    reps = by_secondary(docs[0])
    e, f = reps[f"127.0.0.1@{expired.port}"], reps[f"127.0.0.1@{fresh.port}"]
    assert rc == 2
    assert e["dnssec"]["expired"] == e["dnssec"]["rrsigs"] > 0 and e["severity"] == 2, e
    assert any("expired" in p["what"] for p in e["dnssec"]["problems"])
    # Validly signed by someone else: the signatures are fine, the records
    # are not what zonedistd published (its zone is unsigned).
    assert f["dnssec"]["bogus"] == 0 and f["dnssec"]["expired"] == 0, f
    assert f["dnssec"]["severity"] == "ok" and f["state"] == "diverged"


# --- five minutes of checks while changes flow ------------------------------

def test_no_false_alarm_while_changes_flow(pg, spawn):
    seconds = int(os.environ.get("ZD_INTEGRITY_SECONDS", "300"))
    c = small_chain(pg, spawn, n=2000, secondaries=("nsd", "bind"),
                    limits={"poll-interval-ms": 200})
    c.settle()
    stop = threading.Event()
    committed = [0]

    def writer():
        import random
        rnd = random.Random(7)
        t0 = time.monotonic()
        while not stop.is_set():
            # about 50 registry transactions per second, each one change
            d = f"b6-{rnd.randrange(100, 2000)}.{ZONE}"
            c.registry.set_ns(d, [f"ns{rnd.randrange(50)}.flow.example."])
            committed[0] += 1
            ahead = committed[0] / 50.0 - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)

    th = threading.Thread(target=writer, daemon=True)
    th.start()
    nsd, bind = c.secondaries["nsd"].port, c.secondaries["bind"].port
    try:
        argv = [binary("zonedist-check"), "--zone", ZONE, "--api", c.zd.api_url, "--json",
                "--secondary", f"127.0.0.1@{nsd}", "--secondary", f"127.0.0.1@{bind}",
                "--watch", "2", "--store", "--database", pg.conninfo]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(seconds)
        p.terminate()
        out, err = p.communicate(timeout=120)
    finally:
        stop.set()
        th.join(timeout=30)
    rate = committed[0] / seconds
    assert rate > 40, f"only {rate:.1f} changes per second were committed"
    docs = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    # A round checks both secondaries and, since the zone moved, makes
    # zonedistd digest a new serial; under the sanitizer build on 2 shared
    # CPUs a round took about 9 s in a full ./test run (33 in 300 s).
    assert len(docs) >= seconds // 15, (len(docs), err)
    states = {}
    for d in docs:
        for s in d["secondaries"]:
            states[s["state"]] = states.get(s["state"], 0) + 1
            assert s["severity"] == 0 and s["state"] in ("in_sync", "lagging"), (s["secondary"], nsd, bind, s["message"])
    assert p.returncode == 0, err
    # Every result is stored, and all are ok.
    rows = pg.psql("SELECT state, severity, count(*) FROM zonedist.check_result "
                   "GROUP BY 1, 2 ORDER BY 1").strip().splitlines()
    stored = {r.split("|")[0]: int(r.split("|")[2]) for r in rows}
    assert all(r.split("|")[1] == "0" for r in rows), rows
    assert sum(stored.values()) == 2 * len(docs)
    # The serials moved during the run: these were checks of a changing zone.
    serials = {s["serial"] for d in docs for s in d["secondaries"]}
    assert len(serials) > len(docs) // 2, (len(serials), states)


TSIG = ("xfr-key.", "hmac-sha256", "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0xMjM0NTY=")


def test_secondaries_keys_and_api_from_the_configuration_and_tsig(pg, spawn):
    c = Chain(pg, spawn, secondaries=("bind",), tsig=TSIG,
              zonedistd_kw={"acl": [("127.0.0.0/8", TSIG[0])]})
    c.registry.bulk_fill(ZONE, 300, seed=6, triggers=False)
    c.start()
    serial = c.settle()
    bind = c.secondaries["bind"]
    # Everything from zonedistd's configuration: the zone's notify list
    # (BIND, with its TSIG key), the API address, the database (--store).
    p = subprocess.run([binary("zonedist-check"), "--config", c.zd.conf, "--zone", ZONE,
                        "--json", "--store"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    rep = json.loads(p.stdout)["secondaries"]
    assert [r["secondary"] for r in rep] == [f"127.0.0.1@{bind.port}"]
    assert rep[0]["state"] == "in_sync" and rep[0]["serial"] == serial
    row = pg.psql("SELECT secondary, state, severity, serial, report->>'compared_by' "
                  "FROM zonedist.check_result").strip()
    assert row == f"127.0.0.1@{bind.port}|in_sync|0|{serial}|digest", row
    # zonedistd itself only transfers with the key: checked with it, in
    # sync; without it, refused (an error, not "unreachable" or "diverged").
    target = f"127.0.0.1@{c.zd.port}"
    rc, docs, _ = check(c.zd, "--tsig", ":".join(TSIG), secondaries=[target + "/" + TSIG[0]])
    assert rc == 0 and docs[0]["secondaries"][0]["state"] == "in_sync", docs
    rc, docs, _ = check(c.zd, secondaries=[target])
    r = docs[0]["secondaries"][0]
    assert rc == 2 and r["state"] == "error" and r["serial"] is None, r
    # A key the checker does not know is a usage error (exit 3).
    rc, docs, err = check(c.zd, secondaries=[target + "/nokey."])
    assert rc == 3 and "nokey" in err
