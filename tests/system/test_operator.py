"""The operator's questions (issue 8) through zonedistd's HTTP API, answered
from the history zonedistd keeps, checked against independent facts: AXFRs
saved at each serial, the journal rows, the times the test itself saw each
secondary (a real NSD and a real BIND, each transferring from its own source
address) serve a serial.  Real zonedistd, PostgreSQL, NSD, BIND."""

import random
import socket
import time

import dns.name
import dns.rrset

from zdtest.dnsutil import _canon, axfr, canon_lines
from zdtest.env import Chain, SOURCES, journal_serial_of, zone_rrs_plus_table
from zdtest.proc import wait_until

ZONE = "tld."


def small_chain(pg, spawn, n=300, secondaries=("nsd", "bind"), **kw):
    c = Chain(pg, spawn, secondaries=secondaries, zonedistd_kw=kw or None)
    c.registry.bulk_fill(ZONE, n, seed=8, triggers=False)
    return c.start()




def now_ms():
    return int(time.time() * 1000)


def test_trace_names_the_serial_and_each_secondarys_fetch(pg, spawn):
    c = small_chain(pg, spawn)
    c.settle()
    nsd, bind = c.secondaries["nsd"], c.secondaries["bind"]
    seen = {}  # txid -> ms by which both secondaries served its serial
    rng = random.Random(8)
    txids = []
    for rnd in range(20):
        batch = []
        for k in range(5):
            name = f"tr{rnd}-{k}.{ZONE}"
            batch.append(c.registry.add_domain(name, ns=[f"ns{rng.randint(1, 3)}.ext.example."]))
        serial = c.settle()
        t = now_ms()
        for txid in batch:
            assert journal_serial_of(pg, txid) <= serial
            seen[txid] = t
        txids += batch
    for txid in rng.sample(txids, 100):
        status, tr = c.zd.api_get(f"/api/v1/zones/tld/trace?txid={txid}")
        assert status == 200, tr
        serial = journal_serial_of(pg, txid)
        assert tr["serial"] == serial and tr["txid"] == txid
        # registry write, journal commit, publication: in that order, and
        # all before the test saw the secondaries serve it
        assert tr["registry_ms"] <= tr["committed_ms"] + 5, tr
        assert tr["committed_ms"] <= tr["published_ms"] + 5, tr
        assert tr["published_ms"] <= seen[txid], tr
        by = {t["secondary"]: t for t in tr["transfers"]}
        assert set(by) == {SOURCES["nsd"], SOURCES["bind"]}, tr
        for src, t in by.items():
            assert t["result"] == "ok" and t["kind"] in ("IXFR", "AXFR", "IXFR-AXFR"), t
            assert t["to_serial"] >= serial, t
            assert t["from_serial"] is None or t["from_serial"] < serial, t
            # the fetch happened after publication, before we saw it served
            assert tr["published_ms"] - 5 <= t["time_ms"] <= seen[txid], (tr, t)
    # the transfer log has the secondaries' own view too
    status, tl = c.zd.api_get("/api/v1/zones/tld/transfers?limit=5")
    assert status == 200 and 1 <= len(tl["transfers"]) <= 5
    assert {t["secondary"] for t in tl["transfers"]} <= {SOURCES["nsd"], SOURCES["bind"]}
    rows = int(pg.psql(f"SELECT count(*) FROM zonedist.transfer WHERE zone = '{ZONE}' AND "
                       "result = 'ok'").strip())
    assert rows >= 2 * 20, rows
    # a txid no version carried
    status, tr = c.zd.api_get("/api/v1/zones/tld/trace?txid=1")
    assert status == 404, tr
    for bad in ("", "?txid=abc", "?txid=-1", "?txid=1&x=2"):
        status, tr = c.zd.api_get(f"/api/v1/zones/tld/trace{bad}")
        assert status == 400, (bad, tr)
    # the status shows both secondaries at the published serial
    status, st = c.zd.api_get("/api/v1/status")
    assert status == 200 and st["database"]["up"] is True
    z = st["zones"][0]
    secs = {s["address"]: s for s in z["secondaries"] if s["last_serial"] is not None}
    for src in (SOURCES["nsd"], SOURCES["bind"]):
        assert secs[src]["last_serial"] == z["serial"] and secs[src]["lag"] == 0, secs
    assert z["pending_changes"] == 0 and z["held"] is False
    assert z["last_latency_ms"] is not None and 0 <= z["last_latency_ms"] < 60000




def test_diff_and_history_match_saved_transfers(pg, spawn):
    c = small_chain(pg, spawn, secondaries=("nsd",))
    s1 = c.settle()
    a1 = axfr(c.zd.port, ZONE)
    tx_add = c.registry.add_domain(f"hist.{ZONE}", ns=["ns1.ext.example."])
    s2 = c.settle()
    tx_ns = c.registry.set_ns(f"hist.{ZONE}", ["ns2.ext.example.", "ns3.ext.example."])
    c.registry.delete_domain(f"b8-7.{ZONE}")
    s3 = c.settle()
    a3 = axfr(c.zd.port, ZONE)
    assert s1 < s2 < s3
    status, d = c.zd.api_get(f"/api/v1/zones/tld/diff?from={s1}&to={s3}")
    assert status == 200, d
    assert d["from"] == s1 and d["to"] == s3
    assert canon_lines(d["removed"]) == a1 - a3
    assert canon_lines(d["added"]) == a3 - a1
    # default to: the published serial; the same answer
    status, d2 = c.zd.api_get(f"/api/v1/zones/tld/diff?from={s1}")
    assert status == 200 and d2 == d
    status, d0 = c.zd.api_get(f"/api/v1/zones/tld/diff?from={s3}&to={s3}")
    assert status == 200 and d0["added"] == [] and d0["removed"] == []
    status, e = c.zd.api_get(f"/api/v1/zones/tld/diff?from={s3}&to={s1}")
    assert status == 400, e
    status, e = c.zd.api_get("/api/v1/zones/tld/diff?from=4000000000")
    assert status == 404, e
    # history of the name: the versions that changed it, newest first,
    # with the registry transactions the journal lists for them
    status, h = c.zd.api_get(f"/api/v1/zones/tld/history?name=hist.tld")
    assert status == 200, h
    s_ns = journal_serial_of(pg, tx_ns)
    assert [x["serial"] for x in h["changes"]] == [s_ns, s2], h
    assert tx_ns in h["changes"][0]["txids"] and tx_add in h["changes"][1]["txids"]
    assert all(x["registry_ms"] <= x["published_ms"] + 5 for x in h["changes"]), h
    status, h = c.zd.api_get("/api/v1/zones/tld/history?name=never.tld.")
    assert status == 200 and h["changes"] == []
    for bad in ("", "?name=a.other.", "?name=..", "?name=x.tld.&limit=0"):
        status, e = c.zd.api_get(f"/api/v1/zones/tld/history{bad}")
        assert status == 400, (bad, e)


def test_hold_and_release_need_the_token_and_are_audited(pg, spawn):
    c = small_chain(pg, spawn, secondaries=("nsd",))
    s1 = c.settle()
    zd = c.zd
    for token in (None, "wrong-token-wrong-token"):
        status, e = zd.api_post("/api/v1/zones/tld/hold", {"by": "mallory"}, token=token)
        assert status == 401, e
    status, e = zd.api_get("/api/v1/zones/tld/hold")
    assert status == 405, e
    status, e = zd.api_post("/api/v1/zones/tld/hold", {"reason": "no by"})
    assert status == 400, e
    status, e = zd.api_post("/api/v1/zones/tld/hold", {"by": "alice", "reason": "audit"})
    assert status == 200 and e["held"] is True, e
    c.registry.add_domain(f"held.{ZONE}", ns=["ns1.ext.example."])
    # nothing is published while held; the change waits in the outbox
    wait_until(lambda: zd.api_get("/api/v1/status")[1]["zones"][0]["pending_changes"] == 1,
               20, "the status counting the queued change")
    time.sleep(2)
    assert zd.serial(ZONE) == s1
    st = zd.api_get("/api/v1/status")[1]["zones"][0]
    assert st["held"] == "operator" and st["held_by"] == "alice" and st["held_reason"] == "audit"
    # the hold survives a restart
    zd.stop()
    zd.start()
    time.sleep(2)
    assert zd.serial(ZONE) == s1
    status, e = zd.api_post("/api/v1/zones/tld/release", {"by": "bob"}, token="x" * 21)
    assert status == 401 and zd.serial(ZONE) == s1
    status, e = zd.api_post("/api/v1/zones/tld/release", {"by": "bob"})
    assert status == 200 and e["held"] is False, e
    s2 = c.settle()
    assert s2 != s1
    audit = pg.psql(f"SELECT action, by FROM zonedist.audit WHERE zone = '{ZONE}' ORDER BY id")
    assert audit.split() == ["hold|alice", "release|bob"], audit


def test_state_changes_refused_without_a_token_file(pg, spawn):
    c = small_chain(pg, spawn, n=20, secondaries=(), api_token=None)
    c.settle()
    status, e = c.zd.api_post("/api/v1/zones/tld/hold", {"by": "alice"}, token="t" * 20)
    assert status == 403, e
    assert pg.psql("SELECT count(*) FROM zonedist.hold").strip() == "0"


def test_rejected_rows_are_listed_and_retried(pg, spawn):
    c = Chain(pg, spawn, secondaries=())
    c.registry.bulk_fill(ZONE, 50, seed=9)
    # zone_rrs() also returns rows of a table: a bad address the "registry"
    # later fixes
    zone_rrs_plus_table(pg, "test_extra")
    c.start()
    c.settle()
    pg.psql("BEGIN; INSERT INTO test_extra VALUES ('fix.tld.', 'NS', 3600, 'ns.example.'), "
            "('fix.tld.', 'A', 60, 'not-an-address'); SELECT zonedist.touch('tld.', 'fix.tld.'); "
            "COMMIT")
    c.settle()
    status, r = c.zd.api_get("/api/v1/zones/tld/rejected")
    assert status == 200, r
    rows = [x for x in r["rejected"] if x["name"] == "fix.tld."]
    assert len(rows) == 1 and rows[0]["reason"] and "not-an-address" in rows[0]["row"], r
    wait_until(lambda: c.zd.api_get("/api/v1/status")[1]["zones"][0]["rejected"] >= 1, 20,
               "the status counting the rejected row")
    assert not any(x[0] == "fix.tld." for x in axfr(c.zd.port, ZONE))
    # the registry fixes the row (without touching the name); a retry
    # marks it changed again and it is published
    pg.psql("UPDATE test_extra SET type = 'NS', ttl = 3600, rdata = 'ns2.example.' "
            "WHERE type = 'A'")
    status, e = c.zd.api_post("/api/v1/zones/tld/rejected/retry", {"ids": "x"})
    assert status == 400, e
    status, e = c.zd.api_post("/api/v1/zones/tld/rejected/retry", {"ids": [rows[0]["id"]]},
                              token=None)
    assert status == 401, e
    status, e = c.zd.api_post("/api/v1/zones/tld/rejected/retry", {"ids": [rows[0]["id"]]})
    assert status == 200 and e["retried"] == 1 and e["names"] == 1, e
    c.settle()
    ns = {x[3] for x in axfr(c.zd.port, ZONE) if x[0] == "fix.tld." and x[1] == "NS"}
    assert len(ns) == 2, ns
    status, r = c.zd.api_get("/api/v1/zones/tld/rejected")
    assert not any(x["id"] == rows[0]["id"] for x in r["rejected"])


def raw_http(port, data, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            out += b
        return out
    finally:
        s.close()


def test_malformed_requests_get_4xx_and_the_daemon_lives(pg, spawn):
    c = small_chain(pg, spawn, n=20, secondaries=())
    c.settle()
    zd = c.zd
    tok = zd.api_token.encode()
    cases = [
        b"GARBAGE\r\n\r\n",
        b"GET /api/v1/zones/tld/diff?from=%ZZ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /api/v1/zones/tld/hold HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok +
        b"\r\nContent-Length: 5\r\n\r\n{\"by\"",
        b"POST /api/v1/zones/tld/hold HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok +
        b"\r\nContent-Length: 9\r\n\r\n[1,2,3,4]",
        b"POST /api/v1/zones/tld/hold HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok +
        b"\r\nContent-Length: 20\r\n\r\n{\"by\": \"a\\u0000b\"}  ",
        b"GET /api/v1/zones/tld/history?name=" + b"a." * 200 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /api/v1/zones/" + b"x" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /api/v1/zones/tld/transfers?limit=99999999999 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"DELETE /api/v1/zones/tld HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /api/v1/zones/tld/rejected/retry HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
        tok + b"\r\nContent-Length: 30\r\n\r\n{\"ids\": [1e400, \"x\", null, {}]}",
        b"POST /api/v1/zones/tld/hold HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n{",
    ]
    expect = {0: None, 2: 400, 3: 400, 4: 400, 6: 404, 7: 400, 8: 405, 9: 400}
    for i, code in expect.items():
        out = raw_http(zd.api_port, cases[i])
        if code is not None:
            assert out.startswith(b"HTTP/1.1 %d" % code), (cases[i][:80], out[:300])
    assert pg.psql("SELECT count(*) FROM zonedist.hold").strip() == "0"
    rng = random.Random(81)
    for _ in range(200):
        base = bytearray(rng.choice(cases))
        for _ in range(rng.randint(0, 4)):
            base[rng.randrange(len(base))] = rng.randrange(256)
        cases.append(bytes(base))
    for data in cases:
        out = raw_http(zd.api_port, data)
        if out.startswith(b"HTTP/1."):
            code = int(out.split()[1])
            assert 400 <= code < 600 or code == 200, (data[:80], out[:200])
            if code >= 500:  # busy, or evhttp's own 501 for a method it does not know
                assert code in (501, 503), (data[:80], out[:200])
        assert zd.daemon.alive(), data[:80]
    status, st = zd.api_get("/api/v1/status")
    assert status == 200 and st["zones"][0]["zone"] == ZONE


def metrics(zd):
    from prometheus_client.parser import text_string_to_metric_families
    import urllib.request
    with urllib.request.urlopen(zd.api_url + "/metrics", timeout=30) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample(fams, family, name=None, **labels):
    for s in fams[family].samples:
        if (name is None or s.name == name) and all(s.labels.get(k) == v
                                                    for k, v in labels.items()):
            return s.value
    raise KeyError((family, name, labels))


def test_metrics_parse_and_count_what_happened(pg, spawn):
    c = small_chain(pg, spawn, secondaries=("nsd",))
    c.settle()
    for i in range(12):
        c.registry.add_domain(f"m{i}.{ZONE}", ns=["ns1.ext.example."])
        if i % 3 == 2:
            c.settle()
    c.settle()
    wait_until(lambda: sample(metrics(c.zd), "zonedist_queue_depth", zone=ZONE) == 0, 20,
               "queue depth 0 in the metrics")
    fams = metrics(c.zd)
    journal = int(pg.psql(f"SELECT count(*) FROM zonedist.journal WHERE zone = '{ZONE}'"))
    assert journal >= 4
    count = sample(fams, "zonedist_publish_latency_seconds",
                   "zonedist_publish_latency_seconds_count", zone=ZONE)
    assert count == journal, (count, journal)
    assert sample(fams, "zonedist_versions_published", zone=ZONE) == journal
    inf = sample(fams, "zonedist_publish_latency_seconds",
                 "zonedist_publish_latency_seconds_bucket", zone=ZONE, le="+Inf")
    assert inf == count
    assert sample(fams, "zonedist_serial", zone=ZONE) == c.zd.serial(ZONE)
    assert sample(fams, "zonedist_database_up") == 1
    assert sample(fams, "zonedist_store_bytes", zone=ZONE) > 0
    ok_xfr = sum(sample(fams, "zonedist_transfers", zone=ZONE, kind=k, result="ok")
                 for k in ("AXFR", "IXFR", "IXFR-AXFR"))
    # the log is written off the publishing path: soon, not at once
    wait_until(lambda: int(pg.psql(f"SELECT count(*) FROM zonedist.transfer WHERE zone = "
                                   f"'{ZONE}' AND result = 'ok' AND kind <> 'IXFR-UDP'"))
               == ok_xfr, 20, "the transfer log holding every transfer counted")
    assert ok_xfr >= 4, ok_xfr
    assert sample(fams, "zonedist_secondary_lag_versions", zone=ZONE,
                  secondary=SOURCES["nsd"]) == 0
    assert sample(fams, "zonedist_journal_bytes") > 0
