#!/usr/bin/python3
"""bench/latency.py -- registry COMMIT to secondary latency, and memory.

Builds a synthetic registry of N domains (schema/registry reference schema,
deterministic seed, DS and glue fractions), starts zonedistd (the optimised
build) and an NSD secondary it NOTIFYs, then commits B batches of K changes
each (one registry transaction per batch: K new delegations, a tenth of them
with DS) and times each from the moment COMMIT returns to the moment NSD
answers the new serial over UDP.  Batches are sequential: the next is
committed once the previous has arrived.

Reports p50/p90/p99/max latency per batch size and zonedistd's RSS (VmRSS,
VmHWM from /proc) per delegation after the load and after the batches.

Side by side in the same run (--peer knot, the default): Knot DNS serving the
same zone takes the same batches as RFC 2136 dynamic updates and NOTIFYs its
own NSD secondary (same configuration); each zonedist batch is followed by
the same batch at Knot (A B A B), timed from Knot's update response to that
NSD answering the new serial.  zonedist's path is longer: it starts at a
registry COMMIT and goes through PostgreSQL (NOTIFY, read, journal commit).

  /usr/bin/python3 bench/latency.py --domains 100000 --batches 100 --sizes 1,100
"""

import argparse
import json
import os
import socket
import statistics
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "system"))

from zdtest.env import Chain  # noqa: E402
from zdtest.pg import Postgres  # noqa: E402
from zdtest.proc import Started  # noqa: E402
from zdtest.proc import free_port, wait_until  # noqa: E402
from zdtest.servers import Knot, Nsd  # noqa: E402


class Poller:
    """SOA serial over UDP, one socket, the query built once."""

    def __init__(self, port, zone):
        import dns.message
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.settimeout(0.2)
        self.addr = ("127.0.0.1", port)
        self.q = dns.message.make_query(zone, "SOA").to_wire()

    def serial(self):
        import dns.message
        self.s.sendto(self.q, self.addr)
        try:
            data, _ = self.s.recvfrom(65535)
        except socket.timeout:
            return None
        m = dns.message.from_wire(data)
        for rr in m.answer:
            if rr.rdtype == 6:
                return rr[0].serial
        return None


def rss(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v, _ = line.split()
                out[k.rstrip(":")] = int(v) * 1024
    return out


def summary(lat):
    return {"n": len(lat), "p50_ms": round(pct(lat, 50), 1), "p90_ms": round(pct(lat, 90), 1),
            "p99_ms": round(pct(lat, 99), 1), "max_ms": round(max(lat), 1),
            "mean_ms": round(statistics.mean(lat), 1)}


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--domains", type=int, default=100000)
    ap.add_argument("--batches", type=int, default=100)
    ap.add_argument("--sizes", default="1,100")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ds-fraction", type=float, default=0.1)
    ap.add_argument("--glue-fraction", type=float, default=0.1)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--peer", choices=("knot", "none"), default="knot",
                    help="measure Knot DNS (RFC 2136 updates) side by side")
    a = ap.parse_args()
    os.environ["ZD_BUILD"] = a.build
    zone = "tld."

    pg = Postgres().start()
    spawn = Started()
    results = {"domains": a.domains, "seed": a.seed}
    try:
        chain = Chain(pg, spawn, secondaries=("nsd",),
                      zonedistd_kw={"log_level": "notice",
                                    "limits": {"poll-interval-ms": 1000,
                                               "notify-timeout-ms": 1000}})
        t0 = time.monotonic()
        chain.registry.bulk_fill(zone, a.domains, seed=a.seed, ds_fraction=a.ds_fraction,
                                 glue_fraction=a.glue_fraction)
        results["registry_fill_s"] = round(time.monotonic() - t0, 1)
        t0 = time.monotonic()
        chain.start()
        chain.settle(deadline=3600)
        results["first_load_to_nsd_s"] = round(time.monotonic() - t0, 1)
        pid = chain.zd.daemon.proc.pid
        results["rss_after_load"] = rss(pid)
        nsd = chain.secondaries["nsd"]
        poll = Poller(nsd.port, zone)
        reg = chain.registry

        # The peer, side by side: Knot serving the same zone (zonedistd's
        # current version, dumped), taking the same batches as RFC 2136
        # updates, NOTIFYing its own NSD secondary.
        knot = knot_poll = None
        if a.peer == "knot":
            zf = os.path.join(chain.zd.dir, "peer.zone")
            with open(zf, "w") as f:
                f.write(chain.zd.run("--dump", zone).stdout)
            nsd2_port = free_port()
            knot = spawn(Knot({zone: zf}, notify_ports=[nsd2_port], ddns=True), deadline=600)
            nsd2 = spawn(Nsd(knot.port, [zone], port=nsd2_port, source="127.0.0.4"))
            wait_until(lambda: nsd2.serial(zone) == knot.serial(zone), 600,
                       "the peer's NSD at Knot's serial")
            knot_poll = Poller(nsd2.port, zone)

        def zonedist_batch(k, b):
            stmts = []
            for i in range(k):
                name = f"lat{k}-{b}-{i}.{zone}"
                stmts.append(("INSERT INTO registry.domain (name, zone) VALUES (%s, %s)",
                              [name, zone]))
                stmts.append(("INSERT INTO registry.domain_ns (domain_id, host_id) "
                              "SELECT d.id, h.id FROM registry.domain d, registry.host h "
                              "WHERE d.name = %s AND h.name = %s",
                              [name, f"ns1.dns{i % 100}.bulk.example."]))
                if i % 10 == 0:
                    stmts.append(("INSERT INTO registry.ds_data (domain_id, keytag, alg, "
                                  "digest_type, digest) SELECT id, 4242, 13, 2, %s FROM "
                                  "registry.domain WHERE name = %s", ["AB" * 32, name]))
            reg._tx(stmts)  # returns once COMMIT has returned

        def knot_batch(k, b):
            import dns.query
            import dns.rcode
            import dns.update
            u = dns.update.Update(zone)
            for i in range(k):
                name = f"knot{k}-{b}-{i}.{zone}"
                u.add(name, 86400, "NS", f"ns1.dns{i % 100}.bulk.example.")
                if i % 10 == 0:
                    u.add(name, 3600, "DS", "4242 13 2 " + "AB" * 32)
            r = dns.query.tcp(u, "127.0.0.1", port=knot.port, timeout=30)
            if r.rcode() != dns.rcode.NOERROR:
                raise RuntimeError(f"Knot refused the update: {dns.rcode.to_text(r.rcode())}")

        def timed(commit, p, last, what):
            """Milliseconds from commit() returning to p serving a newer serial."""
            commit()
            t_commit = time.monotonic()
            while True:
                s = p.serial()
                # While NSD reloads, its old and new server processes both
                # answer for a moment: only a serial newer than the last one
                # seen (RFC 1982) counts as arrival.
                if s is not None and 0 < (s - last) % 2**32 < 2**31:
                    return (time.monotonic() - t_commit) * 1000.0, s
                if time.monotonic() - t_commit > 30:
                    raise RuntimeError(f"{what} did not reach its secondary in 30 s")

        last = wait_until(poll.serial, 10, "NSD answering SOA")
        klast = wait_until(knot_poll.serial, 10, "the peer's NSD") if knot_poll else None
        for k in [int(x) for x in a.sizes.split(",")]:
            lat, klat = [], []
            for b in range(a.batches):
                # A B A B: zonedist's batch, then the same batch at the peer
                ms, last = timed(lambda: zonedist_batch(k, b), poll, last, "zonedist batch")
                lat.append(ms)
                if knot_poll:
                    ms, klast = timed(lambda: knot_batch(k, b), knot_poll, klast, "Knot batch")
                    klat.append(ms)
            results[f"batch_{k}"] = summary(lat)
            if klat:
                results[f"peer_knot_batch_{k}"] = summary(klat)
        results["rss_after_batches"] = rss(pid)
        results["rss_bytes_per_delegation"] = round(results["rss_after_batches"]["VmRSS"]
                                                    / a.domains, 1)
        for line in open(chain.zd.log, errors="replace"):
            if "first version loaded" in line:
                results["zonedistd_load_line"] = line.strip()
    finally:
        spawn.stop()
        pg.stop()
        pg.cleanup()
    print(json.dumps(results, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
