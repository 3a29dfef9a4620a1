"""zonedistctl (docs/ZONEDISTCTL.md), the operator's client of zonedistd's
HTTP API, over TCP and the unix socket.  Each answer is checked against a
fact found without it: AXFRs saved at each serial (and a ZONEMD digest that
dnspython computes over one), the journal rows and the registry's own
txid_current(), the serial a real NSD serves, the outbox and the audit and
hold tables.  Exit codes and the handling of odd answers are checked
against fake servers."""

import json
import os
import random
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dns.name
import dns.query
import dns.rrset
import dns.zone
import pytest

from zdtest.dnsutil import _canon, axfr, canon_lines
from zdtest.env import Chain, SOURCES, journal_rows, journal_serial_of, zone_rrs_plus_table
from zdtest.proc import free_port, wait_until
from zdtest.zonedistd import binary

ZONE = "tld."
SANITIZER_MARKS = ("AddressSanitizer", "runtime error:", "LeakSanitizer")


def ctl_path(build=None):
    return binary("zonedistctl", build=build)


def ctl(*args, api=None, zd=None, unix=False, env=None, timeout=120, build=None):
    """Run zonedistctl; the API is api, or zd's TCP address (unix: its
    socket).  Returns the CompletedProcess; a sanitizer report fails."""
    argv = [ctl_path(build or (zd.build if zd else None))]
    if api is None and zd is not None:
        api = "unix:" + zd.api_socket if unix else zd.api_url
    if api is not None:
        argv += ["--api", api]
    e = dict(os.environ)
    e.pop("ZONEDIST_TOKEN_FILE", None)
    e.pop("ZONEDIST_API", None)
    e.update(env or {})
    p = subprocess.run(argv + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout, env=e)
    found = [l for l in p.stderr.splitlines() if any(m in l for m in SANITIZER_MARKS)]
    assert not found, f"zonedistctl {args}: sanitizer report:\n{p.stderr}"
    return p


def ctl_json(*args, **kw):
    p = ctl("--json", *args, **kw)
    assert p.returncode == 0, (args, p.stderr)
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    assert len(lines) == 1, f"--json printed {len(lines)} lines"
    return json.loads(lines[0])


def token_file(zd):
    return os.path.join(zd.dir, "api.token")


def master_file_set(text, zone=ZONE):
    """zonedistctl zone's output as the canonical set axfr() gives."""
    origin = dns.name.from_text(zone)
    z = dns.zone.from_text(text, origin=origin, relativize=False, check_origin=False)
    return {_canon(n, rd.rdtype, ttl, rd, origin) for n, ttl, rd in z.iterate_rdatas()}






def small_chain(pg, spawn, n=300, secondaries=("nsd",), **kw):
    c = Chain(pg, spawn, secondaries=secondaries, zonedistd_kw=kw or None)
    c.registry.bulk_fill(ZONE, n, seed=12, triggers=False)
    return c.start()


def table(stdout):
    """A table's rows (heading left out) as lists of cells."""
    lines = [l for l in stdout.splitlines() if l.strip()]
    return [l.split() for l in lines[1:]]


def kv_lines(stdout):
    """'label   value  extra' lines as {label: "value  extra"}; labels have
    single spaces."""
    out = {}
    for line in stdout.splitlines():
        parts = [p.strip() for p in line.strip().split("  ") if p.strip()]
        if len(parts) >= 2:
            out[parts[0]] = "  ".join(parts[1:])
    return out


# --- no server needed -------------------------------------------------------


def test_usage_errors_exit_3_with_a_usage_text(tmp_path):
    nowhere = "unix:" + str(tmp_path / "none.sock")
    cases = [
        (),                                   # no command
        ("bogus",),                           # unknown command
        ("zone",),                            # ZONE missing
        ("zone", "tld.", "extra"),            # too many
        ("zone", "tld.", "--serial", "x"),    # not a serial
        ("zone", "tld.", "--serial", "-1"),
        ("digest", "tld.", "--serial", "4294967296"),
        ("diff", "tld."),                     # S1 missing
        ("diff", "tld.", "1", "two"),
        ("history", "tld."),
        ("history", "tld.", "a.tld.", "--limit", "0"),
        ("trace", "tld.", "abc"),
        ("trace", "tld."),
        ("transfers", "tld.", "--limit", "x"),
        ("status", "--serial", "3"),          # an option the command does not take
        ("zones", "--by", "me"),
        ("hold", "tld."),                     # --by missing
        ("hold", "tld.", "--by", ""),
        ("release", "tld.", "--reason", "x", "--by", "me"),
        ("retry", "tld.", "1", "x"),
        ("retry",),
        ("--timeout", "0", "status"),
        ("--bogus-option", "status"),
        ("hold", "tld.", "--by", "me", "--token-file", str(tmp_path / "missing")),
    ]
    for args in cases:
        p = ctl(*args, api=nowhere)
        assert p.returncode == 3, (args, p.returncode, p.stderr)
        assert "usage" in p.stderr or "token file" in p.stderr, (args, p.stderr)
        assert p.stdout == "", (args, p.stdout)
    for bad in ("foo", "http://127.0.0.1", "http://127.0.0.1:99999", "unix:"):
        p = ctl("status", api=bad)
        assert p.returncode == 3 and "--api" in p.stderr, (bad, p.stderr)
    empty = tmp_path / "empty.token"
    empty.write_text(" \n")
    p = ctl("hold", "tld.", "--by", "me", "--token-file", empty, api=nowhere)
    assert p.returncode == 3 and "empty" in p.stderr, p.stderr
    p = ctl("--help")
    assert p.returncode == 0
    for cmd in ("status", "zones", "zone", "digest", "diff", "history", "trace", "transfers",
                "rejected", "retry", "hold", "release"):
        assert f"\n  {cmd} " in p.stdout, cmd


def silent_listener():
    """A TCP socket that completes handshakes but never answers."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    return s


def test_an_unreachable_server_exits_2(tmp_path):
    # nothing listening: TCP, a missing socket file, a socket file nobody
    # listens on, and a server that never answers
    dead = tmp_path / "dead.sock"
    d = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    d.bind(str(dead))
    silent = silent_listener()
    try:
        apis = [f"http://127.0.0.1:{free_port()}", f"unix:{tmp_path / 'missing.sock'}",
                f"unix:{dead}", f"http://127.0.0.1:{silent.getsockname()[1]}"]
        for api in apis:
            for args in (("status",), ("zone", ZONE), ("hold", ZONE, "--by", "me")):
                t0 = time.monotonic()
                p = ctl("--timeout", "700", *args, api=api)
                assert p.returncode == 2, (api, args, p.returncode, p.stderr)
                assert "zonedistd" in p.stderr and p.stdout == "", (api, p.stderr)
                assert time.monotonic() - t0 < 20
    finally:
        d.close()
        silent.close()
    # the default address is the packaged unix socket
    p = ctl("status")
    assert p.returncode == 2 and "unix:/run/zonedist/api.sock" in p.stderr, p.stderr
    p = ctl("status", env={"ZONEDIST_API": f"unix:{tmp_path / 'env.sock'}"})
    assert p.returncode == 2 and "env.sock" in p.stderr, p.stderr


# --- odd answers from a fake server -----------------------------------------


ODD = [
    {},
    [],
    None,
    42,
    "text",
    {"zone": 5, "serial": "x", "time_ms": "then", "database": [1, 2], "zones": {"a": 1},
     "changes": 7, "transfers": [1, "x", None, {"time_ms": "no", "bytes": {}}],
     "rejected": [[], {"id": [], "row": {"a": [1, 2]}, "created_ms": 1e300}],
     "removed": [1, {}, None, [2]], "added": "x", "digest": None, "superseded_ms": -1,
     "txid": 1.5, "registry_ms": 9223372036854775807, "committed_ms": -9223372036854775807,
     "retried": None, "names": "many", "released_by": {"x": 1}},
    {"time_ms": 1, "database": {"up": "maybe"},
     "zones": [5, None, "tld.", {"zone": "tld.", "held": "operator", "held_by": 3,
                                 "hsm": "x", "signature_headroom": {"seconds": "x"},
                                 "secondaries": [{"check": {"state": 1, "checked_ms": "x"}},
                                                 5, None, {"check": "odd", "lag": []}]},
               {"zone": "tld.", "held": "sanity", "hsm": {"state": None, "down_for_ms": "x"},
                "secondaries": "none", "signature_headroom": 7}]},
    {"changes": [{"serial": 1, "txids": [1, [2], {"a": 1}, "x" * 500]}], "truncated": "yes",
     "transfers": [{"time_ms": 1, "secondary": "\u001b[31mred\u0007", "reason": "a\tb\nc"}],
     "removed": ["a.tld.\t300\tIN\tA\t192.0.2.1", "\u001b]0;title\u0007"],
     "added": ["x" * 100000],
     "rejected": [{"id": 1, "name": "\u0000\u0001", "reason": "r" * 70000, "row": None}]},
]


class OddHandler(BaseHTTPRequestHandler):
    """Answers every request with the next of the server's bodies."""

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body, status, ctype = self.server.next_answer()
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, *args):
        pass


class OddServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), OddHandler)
        self.answer = ("{}", 200, "application/json")
        self.seen = []

    def next_answer(self):
        return self.answer

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def odd_server():
    s = OddServer()
    t = threading.Thread(target=s.serve_forever, daemon=True)
    t.start()
    yield s
    s.shutdown()
    s.server_close()


COMMANDS = [("status",), ("zones",), ("zone", ZONE), ("digest", ZONE), ("diff", ZONE, "1", "2"),
            ("history", ZONE, "a.tld."), ("trace", ZONE, "5"), ("transfers", ZONE),
            ("rejected", ZONE), ("retry", ZONE, "1"), ("hold", ZONE, "--by", "x"),
            ("release", ZONE, "--by", "x")]


def test_odd_answers_print_what_is_there_and_never_crash(odd_server):
    for doc in ODD:
        odd_server.answer = (json.dumps(doc), 200, "application/json")
        for args in COMMANDS:
            p = ctl(*args, api=odd_server.url)
            assert p.returncode == 0, (doc if len(str(doc)) < 300 else "...", args,
                                       p.returncode, p.stderr)
            # the server's control characters never reach the terminal raw
            assert "\x1b" not in p.stdout and "\x07" not in p.stdout, args
    # --json prints the answer as sent
    odd_server.answer = ('{"b": 1,  "a": [1, 2]}', 200, "application/json")
    p = ctl("--json", "status", api=odd_server.url)
    assert p.returncode == 0 and p.stdout == '{"b": 1,  "a": [1, 2]}\n'
    # errors: the server's message and the HTTP status, exit 1
    for body, status, want in [('{"error": "no such zone"}', 404, "HTTP 404: no such zone"),
                               ('{"error": "\\u001b[2Jboom"}', 400, "HTTP 400: \\x1b[2Jboom"),
                               ("<html>oops</html>", 500, "HTTP 500: <html>oops</html>"),
                               ('{"nothing": 1}', 503, "HTTP 503"),
                               ("", 502, "HTTP 502")]:
        odd_server.answer = (body, status, "application/json")
        for args in COMMANDS:
            p = ctl(*args, api=odd_server.url)
            assert p.returncode == 1 and want in p.stderr, (body, args, p.stderr)
            assert p.stdout == "", (args, p.stdout)
    # a 200 that is not JSON
    odd_server.answer = ("<html>", 200, "text/html")
    for args in COMMANDS:
        if args[0] == "zone":
            continue
        p = ctl(*args, api=odd_server.url)
        assert p.returncode == 1 and "not JSON" in p.stderr, (args, p.stderr)


def test_a_zone_stream_that_breaks_off_exits_2():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(4)

    def serve():
        c, _ = s.accept()
        c.recv(65536)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/dns\r\nTransfer-Encoding: chunked"
                  b"\r\n\r\n1a\r\ntld. 300 IN NS a.nic.tld.\n\r\n10\r\nb.tld. 300 IN")
        c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        p = ctl("zone", ZONE, api=f"http://127.0.0.1:{s.getsockname()[1]}")
    finally:
        t.join(10)
        s.close()
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert p.stdout == "tld. 300 IN NS a.nic.tld.\n"
    assert "broke off after 1 lines" in p.stderr, p.stderr


# --- against zonedistd ------------------------------------------------------


def test_status_and_zones_over_tcp_and_the_unix_socket(pg, spawn):
    c = small_chain(pg, spawn, n=100)
    serial = c.settle()
    zd = c.zd
    for unix in (False, True):
        st = ctl_json("status", zd=zd, unix=unix)
        assert [z["zone"] for z in st["zones"]] == [ZONE]
        z = st["zones"][0]
        assert z["serial"] == serial == zd.serial(ZONE)
        assert abs(st["time_ms"] - time.time() * 1000) < 60000
        # NSD (its own source address) transferred exactly that serial
        by = {s["address"]: s for s in z["secondaries"]}
        assert by[SOURCES["nsd"]]["last_serial"] == serial, by
        p = ctl("status", zd=zd, unix=unix)
        assert p.returncode == 0, p.stderr
        assert f"zone {ZONE}" in p.stdout
        kv = kv_lines(p.stdout)
        assert kv["serial"] == str(serial) and kv["held"] == "no", kv
        assert kv["pending changes"] == "0" and kv["database up"] == "yes", kv
        # published: an ISO 8601 UTC time
        assert time.strptime(kv["published"], "%Y-%m-%dT%H:%M:%S.%fZ")
        rows = [l.split() for l in p.stdout.splitlines() if l.startswith("    " + SOURCES["nsd"])]
        assert len(rows) == 1 and str(serial) in rows[0], p.stdout
        # zones: the same serial and the delegation count the registry has
        p = ctl("zones", zd=zd, unix=unix)
        assert p.returncode == 0, p.stderr
        rows = table(p.stdout)
        n_deleg = len({x[0] for x in axfr(zd.port, ZONE) if x[1] == "NS" and x[0] != ZONE})
        assert rows[0][:2] == [ZONE, str(serial)] and rows[0][3] == str(n_deleg), rows
        assert ctl_json("zones", zd=zd, unix=unix) == zd.api_get("/api/v1/zones")[1]
    # ZONEDIST_API chooses the API when --api is not given
    p = ctl("status", env={"ZONEDIST_API": "unix:" + zd.api_socket})
    assert p.returncode == 0 and f"zone {ZONE}" in p.stdout, p.stderr
    # a zone it does not have, and a serial it does not keep: exit 1, the
    # server's reason
    for args in (("digest", "nope."), ("zone", "."), ("digest", ZONE, "--serial", 4000000000),
                 ("zone", ZONE, "--serial", 4000000000)):
        p = ctl(*args, zd=zd)
        assert p.returncode == 1 and "HTTP 404" in p.stderr, (args, p.stderr)


def zonemd_hex(port, zone=ZONE):
    """The ZONEMD SHA-384 digest (RFC 8976) dnspython computes over an AXFR."""
    z = dns.zone.from_xfr(dns.query.xfr("127.0.0.1", zone, port=port, lifetime=60,
                                        relativize=False),
                          relativize=False, check_origin=False)
    return z.compute_digest(dns.zone.DigestHashAlgorithm.SHA384).digest.hex()


def test_zone_and_digest_at_a_serial_equal_saved_transfers(pg, spawn):
    c = small_chain(pg, spawn, n=3000)
    zd = c.zd
    s1 = c.settle()
    a1, d1 = axfr(zd.port, ZONE), zonemd_hex(zd.port)
    c.registry.add_domain(f"ctl-new.{ZONE}", ns=["ns1.ext.example."])
    c.registry.delete_domain(f"b12-7.{ZONE}")
    s2 = c.settle()
    a2 = axfr(zd.port, ZONE)
    assert s1 != s2 and a1 != a2
    for unix in (False, True):
        p = ctl("zone", ZONE, "--serial", s1, zd=zd, unix=unix)
        assert p.returncode == 0, p.stderr
        assert master_file_set(p.stdout) == a1
        p = ctl("zone", ZONE, zd=zd, unix=unix)   # the published serial
        assert p.returncode == 0 and master_file_set(p.stdout) == a2
        assert p.stdout.split(None, 4)[3] == "SOA"
        d = ctl_json("digest", ZONE, "--serial", s1, zd=zd, unix=unix)
        assert d["serial"] == s1 and d["digest"].lower() == d1, (d, d1)
        p = ctl("digest", "tld", "--serial", s1, zd=zd, unix=unix)
        kv = kv_lines(p.stdout)
        assert p.returncode == 0 and kv["digest"].lower() == d1 and kv["serial"] == str(s1)
        after = len([r for r in journal_rows(pg, ZONE) if s1 < r[1] <= s2])  # increment policy
        assert kv["latest serial"] == str(s2) and kv["versions after"] == str(after), kv
        assert kv["records"] == str(len(a1)), kv
    # a reader that goes away (| head) ends the stream, as for any filter
    proc = subprocess.Popen([ctl_path(zd.build), "--api", "unix:" + zd.api_socket, "zone",
                             ZONE], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = [proc.stdout.readline() for _ in range(3)]
    proc.stdout.close()
    rc = proc.wait(60)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert b"SOA" in first[0] and rc == -signal.SIGPIPE, (rc, err)
    assert not any(m in err for m in SANITIZER_MARKS), err


def diff_sets(stdout):
    removed = [l[2:] for l in stdout.splitlines() if l.startswith("- ")]
    added = [l[2:] for l in stdout.splitlines() if l.startswith("+ ")]
    assert len(removed) + len(added) == len(stdout.splitlines()), stdout
    return canon_lines(removed), canon_lines(added)


def test_diff_and_history_equal_the_saved_transfers_and_journal(pg, spawn):
    c = small_chain(pg, spawn)
    zd = c.zd
    s1 = c.settle()
    a1 = axfr(zd.port, ZONE)
    tx_add = c.registry.add_domain(f"hist.{ZONE}", ns=["ns1.ext.example."])
    s2 = c.settle()
    a2 = axfr(zd.port, ZONE)
    tx_ns = c.registry.set_ns(f"hist.{ZONE}", ["ns2.ext.example.", "ns3.ext.example."])
    c.registry.delete_domain(f"b12-9.{ZONE}")
    s3 = c.settle()
    a3 = axfr(zd.port, ZONE)
    for unix in (False, True):
        for (x, y, ax, ay) in ((s1, s3, a1, a3), (s1, s2, a1, a2), (s2, s3, a2, a3)):
            p = ctl("diff", ZONE, x, y, zd=zd, unix=unix)
            assert p.returncode == 0, p.stderr
            assert diff_sets(p.stdout) == (ax - ay, ay - ax), (x, y)
        # S2 defaults to the published serial
        p = ctl("diff", ZONE, s1, zd=zd, unix=unix)
        assert p.returncode == 0 and diff_sets(p.stdout) == (a1 - a3, a3 - a1)
        p = ctl("diff", ZONE, s3, s3, zd=zd, unix=unix)
        assert p.returncode == 0 and p.stdout == ""
    p = ctl("diff", ZONE, s3, s1, zd=zd)
    assert p.returncode == 1 and "HTTP 400" in p.stderr, p.stderr
    assert ctl_json("diff", ZONE, s1, s3, zd=zd) == \
        zd.api_get(f"/api/v1/zones/tld/diff?from={s1}&to={s3}")[1]
    # history: the serials the journal names for the transactions that
    # touched the name, newest first
    p = ctl("history", ZONE, f"hist.{ZONE}", zd=zd, unix=True)
    assert p.returncode == 0, p.stderr
    rows = table(p.stdout)
    s_ns, s_add = journal_serial_of(pg, tx_ns), journal_serial_of(pg, tx_add)
    assert [int(r[0]) for r in rows] == [s_ns, s_add], p.stdout
    assert str(tx_ns) in rows[0][3].split(",") and str(tx_add) in rows[1][3].split(","), rows
    p = ctl("history", ZONE, f"hist.{ZONE}", "--limit", 1, zd=zd)
    assert p.returncode == 0 and [int(r[0]) for r in table(p.stdout) if r[0].isdigit()] == [s_ns]
    p = ctl("history", ZONE, f"never.{ZONE}", zd=zd)
    assert p.returncode == 0 and "no change" in p.stdout, p.stdout


def psql_txid(pg, sql):
    """Run sql in one transaction and return its txid_current()."""
    out = pg.psql(f"BEGIN; {sql}; SELECT txid_current(); COMMIT;")
    return int([l for l in out.split() if l.strip().isdigit()][-1])


def test_trace_of_random_transactions_names_the_journal_serial_and_nsd(pg, spawn):
    c = small_chain(pg, spawn)
    zd = c.zd
    c.settle()
    rng = random.Random(12)
    txids, seen = [], {}
    c.registry.add_domain(f"anchor.{ZONE}", ns=["ns1.ext.example."])
    for rnd in range(10):
        batch = [c.registry.add_domain(f"tc{rnd}-a.{ZONE}",
                                       ns=[f"ns{rng.randint(1, 3)}.ext.example."])]
        # one change per round straight through psql
        name = f"tc{rnd}-p.{ZONE}"
        batch.append(psql_txid(pg, f"INSERT INTO registry.domain (name, zone) VALUES "
                                   f"('{name}', '{ZONE}'); INSERT INTO registry.domain_ns "
                                   "(domain_id, host_id) SELECT d.id, h.id FROM "
                                   "registry.domain d, registry.host h WHERE d.name = "
                                   f"'{name}' AND h.name = 'ns1.ext.example.'"))
        batch.append(c.registry.set_ns(f"b12-{rnd + 20}.{ZONE}", ["ns9.ext.example."]))
        serial = c.settle()  # NSD serves it now
        for t in batch:
            seen[t] = (serial, time.time() * 1000)
        txids += batch
    for txid in rng.sample(txids, 20):
        unix = rng.random() < 0.5
        tr = ctl_json("trace", ZONE, txid, zd=zd, unix=unix)
        serial = journal_serial_of(pg, txid)
        assert tr["txid"] == txid and tr["serial"] == serial, (tr, serial)
        assert serial <= seen[txid][0]
        ent = [t for t in tr["transfers"] if t["secondary"] == SOURCES["nsd"]]
        assert len(ent) == 1, tr
        t = ent[0]
        assert t["result"] == "ok" and t["to_serial"] >= serial, t
        assert t["from_serial"] is None or t["from_serial"] < serial, t
        assert tr["published_ms"] - 5 <= t["time_ms"] <= seen[txid][1], (tr, t)
        # the human form says the same
        p = ctl("trace", ZONE, txid, zd=zd, unix=not unix)
        assert p.returncode == 0, p.stderr
        kv = kv_lines(p.stdout)
        assert kv["serial"] == str(serial) and kv["txid"] == str(txid), kv
        rows = [l.split() for l in p.stdout.splitlines() if f" {SOURCES['nsd']} " in l]
        assert len(rows) == 1 and rows[0][5] == str(t["to_serial"]), p.stdout
    # a transaction no version carried: the server's 404, exit 1
    p = ctl("trace", ZONE, 1, zd=zd)
    assert p.returncode == 1 and "HTTP 404" in p.stderr, p.stderr
    # the transfer log, newest first, at most --limit rows
    p = ctl("transfers", ZONE, "--limit", 5, zd=zd)
    rows = table(p.stdout)
    assert p.returncode == 0 and 1 <= len(rows) <= 5, p.stdout
    assert all(r[1] == SOURCES["nsd"] for r in rows), rows
    tl = ctl_json("transfers", ZONE, "--limit", 5, zd=zd, unix=True)["transfers"]
    assert len(tl) == len(rows) and tl[0]["to_serial"] == zd.serial(ZONE)
    times = [t["time_ms"] for t in tl]
    assert times == sorted(times, reverse=True)


def outbox(pg):
    return int(pg.psql(f"SELECT count(*) FROM zonedist.change WHERE zone = '{ZONE}'"))


def test_hold_and_release_need_the_token(pg, spawn, tmp_path):
    c = small_chain(pg, spawn, n=50)
    zd = c.zd
    s1 = c.settle()
    wrong = tmp_path / "wrong.token"
    wrong.write_text("not-the-token-0123456789\n")
    for unix in (False, True):
        for extra, env in (((), {}), (("--token-file", wrong), {}),
                           ((), {"ZONEDIST_TOKEN_FILE": str(wrong)})):
            p = ctl(*extra, "hold", ZONE, "--by", "mallory", zd=zd, unix=unix, env=env)
            assert p.returncode == 1 and "HTTP 401" in p.stderr, (extra, env, p.stderr)
    assert pg.psql("SELECT count(*) FROM zonedist.hold").strip() == "0"
    assert ctl_json("status", zd=zd)["zones"][0]["held"] is False
    # the token from the environment, over the unix socket
    p = ctl("hold", ZONE, "--by", "alice", "--reason", "ctl test", zd=zd, unix=True,
            env={"ZONEDIST_TOKEN_FILE": token_file(zd)})
    assert p.returncode == 0 and "held" in p.stdout, p.stderr
    c.registry.add_domain(f"held.{ZONE}", ns=["ns1.ext.example."])
    wait_until(lambda: outbox(pg) >= 1, 20, "the change in the outbox")
    time.sleep(2)
    assert zd.serial(ZONE) == s1 and outbox(pg) >= 1
    kv = kv_lines(ctl("status", zd=zd).stdout)
    assert kv["held"].startswith("operator") and "alice" in kv["held"], kv
    assert "ctl test" in kv["held"], kv
    # release: refused without the right token, nothing published
    for extra in ((), ("--token-file", wrong)):
        p = ctl(*extra, "release", ZONE, "--by", "mallory", zd=zd)
        assert p.returncode == 1 and "HTTP 401" in p.stderr, p.stderr
    time.sleep(1)
    assert zd.serial(ZONE) == s1
    p = ctl("--token-file", token_file(zd), "release", ZONE, "--by", "bob", zd=zd)
    assert p.returncode == 0 and "released by bob" in p.stdout, p.stderr
    s2 = c.settle()
    assert s2 != s1 and outbox(pg) == 0
    assert any(x[0] == f"held.{ZONE}" for x in axfr(zd.port, ZONE))
    audit = pg.psql(f"SELECT action, by FROM zonedist.audit WHERE zone = '{ZONE}' ORDER BY id")
    assert audit.split() == ["hold|alice", "release|bob"], audit


def test_state_changes_are_refused_without_a_token_file(pg, spawn, tmp_path):
    c = small_chain(pg, spawn, n=20, secondaries=(), api_token=None)
    c.settle()
    tok = tmp_path / "t.token"
    tok.write_text("t" * 24)
    p = ctl("--token-file", tok, "hold", ZONE, "--by", "alice", zd=c.zd, unix=True)
    assert p.returncode == 1 and "HTTP 403" in p.stderr, p.stderr
    assert pg.psql("SELECT count(*) FROM zonedist.hold").strip() == "0"


def test_rejected_rows_are_listed_and_retry_republishes_the_name(pg, spawn):
    c = Chain(pg, spawn, secondaries=())
    c.registry.bulk_fill(ZONE, 50, seed=13)
    # zone_rrs() also returns rows of a table the test edits: the registry
    # writes a bad address, then fixes it without touching the name
    zone_rrs_plus_table(pg, "test_extra")
    c.start()
    zd = c.zd
    c.settle()
    p = ctl("rejected", ZONE, zd=zd)
    assert p.returncode == 0 and "no rejected rows" in p.stdout, p.stdout
    txid = psql_txid(pg, "INSERT INTO test_extra VALUES ('fix.tld.', 'NS', 3600, "
                         "'ns.example.'), ('fix.tld.', 'A', 60, 'not-an-address'); "
                         "SELECT zonedist.touch('tld.', 'fix.tld.')")
    c.settle()
    want = pg.psql("SELECT id, txid FROM zonedist.rejected WHERE name = 'fix.tld.'").split()
    assert len(want) == 1, want
    rid, rtx = (int(x) for x in want[0].split("|"))
    assert rtx == txid
    rows = ctl_json("rejected", ZONE, zd=zd, unix=True)["rejected"]
    mine = [r for r in rows if r["name"] == "fix.tld."]
    assert [r["id"] for r in mine] == [rid] and "not-an-address" in mine[0]["row"], rows
    p = ctl("rejected", ZONE, "--limit", 10, zd=zd)
    line = [l for l in p.stdout.splitlines() if "fix.tld." in l]
    assert p.returncode == 0 and len(line) == 1, p.stdout
    assert line[0].split()[0] == str(rid) and "not-an-address" in line[0], line
    assert str(txid) in line[0].split()
    assert not any(x[0] == "fix.tld." for x in axfr(zd.port, ZONE))
    # the registry fixes the row; a retry without the token changes nothing
    pg.psql("UPDATE test_extra SET type = 'NS', ttl = 3600, rdata = 'ns2.example.' "
            "WHERE type = 'A'")
    p = ctl("retry", ZONE, rid, zd=zd)
    assert p.returncode == 1 and "HTTP 401" in p.stderr, p.stderr
    assert outbox(pg) == 0
    p = ctl("--token-file", token_file(zd), "retry", ZONE, rid, zd=zd, unix=True)
    assert p.returncode == 0 and "1 rejected rows retried, 1 names" in p.stdout, \
        (p.stdout, p.stderr)
    c.settle()
    ns = {x[3] for x in axfr(zd.port, ZONE) if x[0] == "fix.tld." and x[1] == "NS"}
    assert len(ns) == 2, ns
    assert pg.psql("SELECT count(*) FROM zonedist.rejected WHERE name = 'fix.tld.'").strip() == "0"
    p = ctl("rejected", ZONE, zd=zd)
    assert p.returncode == 0 and "fix.tld." not in p.stdout, p.stdout
