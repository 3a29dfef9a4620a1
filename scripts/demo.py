#!/usr/bin/python3
"""The ./demo driver: a throwaway PostgreSQL with the reference registry
(10,000 domains), a throwaway SoftHSM token holding the zone's keys,
zonedistd on a high port of 127.0.0.1 signing every serial (NSEC3 opt-out,
ECDSA P-256; --unsigned to publish unsigned), an NSD secondary
following it, and a small stream of registry changes, until Ctrl-C (or
--seconds).  Everything runs in temporary directories and is stopped at the
end."""

import argparse
import os
import random
import signal
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "system"))

from zdtest.env import Chain  # noqa: E402
from zdtest.pg import Postgres  # noqa: E402
from zdtest.proc import Started  # noqa: E402
from zdtest.softhsm import SoftHsm  # noqa: E402

ZONE = "tld."


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--domains", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=0, help="stop after this long (0: Ctrl-C)")
    ap.add_argument("--interval", type=float, default=2.0, help="seconds between changes")
    ap.add_argument("--unsigned", action="store_true", help="publish the zone unsigned")
    a = ap.parse_args()
    os.environ.setdefault("ZD_BUILD", os.path.join(ROOT, "build"))

    stop = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))

    pg = Postgres().start()
    spawn = Started()
    hsm = None if a.unsigned else SoftHsm().init_token()
    try:
        kw = {} if a.unsigned else {"hsm": hsm, "dnssec": "on"}
        chain = Chain(pg, spawn, secondaries=("nsd",), zonedistd_kw=kw)
        chain.registry.bulk_fill(ZONE, a.domains, seed=1)
        print(f"registry: {a.domains} domains in PostgreSQL ({pg.conninfo})")
        chain.start()
        serial = chain.settle(deadline=120)
        zd, nsd = chain.zd, chain.secondaries["nsd"]
        print(f"""
zonedistd serves {ZONE} at serial {serial} on 127.0.0.1 port {zd.port}; NSD follows it on port {nsd.port}.

Try, in another shell:
  dig @127.0.0.1 -p {zd.port} {ZONE} SOA                # zonedistd's serial
  dig @127.0.0.1 -p {nsd.port} {ZONE} SOA                # the secondary's serial
  dig @127.0.0.1 -p {zd.port} {ZONE} AXFR | tail         # the whole zone
  dig @127.0.0.1 -p {zd.port} {ZONE} IXFR={serial}       # what changed since serial {serial}
  dig @127.0.0.1 -p {nsd.port} demo-1.{ZONE} NS          # a delegation the stream adds
  dig @127.0.0.1 -p {zd.port} {ZONE} SOA +dnssec        # the SOA and its RRSIG
  dig @127.0.0.1 -p {nsd.port} {ZONE} AXFR > /tmp/tld.zone && ldns-verify-zone /tmp/tld.zone
                                                        # check the signed zone
  {zd.daemon.argv[0]} --config {zd.conf} --dump {ZONE} --serial {serial} | head
                                                        # any old serial, rebuilt from PostgreSQL
  curl -s {zd.api_url}/api/v1/zones/tld/digest       # the ZONEMD digest of the published serial
  curl -s "{zd.api_url}/api/v1/zones/tld/zone?serial={serial}" | head   # any kept serial, from memory
  {os.path.join(os.path.dirname(os.path.dirname(zd.daemon.argv[0])), "integrity-check", "zonedist-check")} --config {zd.conf} --zone {ZONE}
                                                        # prove NSD serves exactly a published serial
  tail -f {zd.log}                                      # what zonedistd does
  psql "{pg.conninfo}" -c "SELECT version, serial, txids FROM zonedist.journal ORDER BY version DESC LIMIT 5"

A registry change every {a.interval:g} s follows (new delegation, DS, NS change, hold); Ctrl-C stops everything.
""", flush=True)
        rnd = random.Random(1)
        t_end = time.monotonic() + a.seconds if a.seconds else None
        i = 0
        while not stop and (t_end is None or time.monotonic() < t_end):
            i += 1
            kind = rnd.choice(["new", "ds", "ns", "hold"])
            target = f"b1-{rnd.randrange(100, a.domains)}.{ZONE}"
            t0 = time.monotonic()
            if kind == "new" or i == 1:
                kind, target = "new", f"demo-{i}.{ZONE}"
                chain.registry.add_domain(target, zone=ZONE,
                                          ns=[f"ns1.dns{i % 100}.bulk.example."])
            elif kind == "ds":
                chain.registry.add_ds(target, (i, 13, 2, "%064X" % rnd.getrandbits(256)))
            elif kind == "ns":
                chain.registry.set_ns(target, [f"ns2.dns{rnd.randrange(100)}.bulk.example."])
            else:
                chain.registry.hold(target)
            before = serial
            serial = chain.settle(deadline=30)
            print(f"  {kind:4} {target:24} committed; NSD serves serial {serial} "
                  f"(was {before}) {1000 * (time.monotonic() - t0):.0f} ms after the commit",
                  flush=True)
            deadline = time.monotonic() + a.interval
            while not stop and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        print("stopping zonedistd, NSD and PostgreSQL")
        spawn.stop()
        pg.stop()
        pg.cleanup()
        if hsm is not None:
            hsm.cleanup()


if __name__ == "__main__":
    main()
