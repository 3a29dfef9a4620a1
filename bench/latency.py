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
from zdtest.proc import wait_until  # noqa: E402


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


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


class _NoSpawn:
    """Chain wants a spawn function; keep what it starts, stop it at the end."""

    def __init__(self):
        self.started = []

    def __call__(self, server, **kw):
        self.started.append(server)
        return server.start(**kw)

    def stop(self):
        for s in reversed(self.started):
            s.stop()


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
    a = ap.parse_args()
    os.environ["ZD_BUILD"] = a.build
    zone = "tld."

    pg = Postgres().start()
    spawn = _NoSpawn()
    results = {"domains": a.domains, "seed": a.seed}
    try:
        chain = Chain(pg, spawn, secondaries=("nsd",),
                      zonedistd_kw={"log_level": "info",
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
                # The newest serial seen so far.  While NSD reloads, its old and new
        # server processes both answer for a moment, so an answer can be
        # older than one already seen: only a serial newer than the last one
        # (RFC 1982) counts as arrival.
        last = wait_until(poll.serial, 10, "NSD answering SOA")
        for k in [int(x) for x in a.sizes.split(",")]:
            lat = []
            for b in range(a.batches):
                before = last
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
                t_commit = time.monotonic()
                while True:
                    s = poll.serial()
                    if s is not None and 0 < (s - before) % 2**32 < 2**31:
                        last = s
                        break
                    if time.monotonic() - t_commit > 30:
                        raise RuntimeError(f"batch {b} of {k} did not reach NSD in 30 s")
                lat.append((time.monotonic() - t_commit) * 1000.0)
            results[f"batch_{k}"] = {
                "n": len(lat), "p50_ms": round(pct(lat, 50), 1), "p90_ms": round(pct(lat, 90), 1),
                "p99_ms": round(pct(lat, 99), 1), "max_ms": round(max(lat), 1),
                "mean_ms": round(statistics.mean(lat), 1)}
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
