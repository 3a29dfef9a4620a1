#!/usr/bin/python3
"""bench/check.py -- time and memory of zonedist-check on one secondary of a
signed zone, beside ldns-verify-zone on the same zone.

Builds a synthetic registry of N domains, starts zonedistd (the optimised
build) signing with a throwaway SoftHSM token (ECDSAP256SHA256, NSEC3
opt-out) and an NSD secondary, waits until NSD serves the signed zone, saves
NSD's AXFR to a file, then runs, A B C A B C for --rounds rounds, each under
/usr/bin/time -v:

  A  zonedist-check, digest only: SOA + AXFR from NSD, ZONEMD digest,
     zonedistd's digest of the same serial (cached after the first round),
     DNSSEC checks of every signature and the NSEC3 chain;
  B  zonedist-check --full: the same plus zonedistd's whole version over
     HTTP and a record-by-record comparison;
  C  ldns-verify-zone on the saved AXFR (signatures and NSEC3 chain, one
     thread, from a file: it does no transfer and no comparison).

Reports the median wall time and peak RSS of each, and zonedistd's own cost
of the first digest of the version (from the checker's digest_ms in round 1,
where it is not yet cached).

  /usr/bin/python3 bench/check.py --domains 1000000 --rounds 3
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "system"))

from zdtest.env import Chain  # noqa: E402
from zdtest.pg import Postgres  # noqa: E402
from zdtest.proc import Started  # noqa: E402
from zdtest.softhsm import SoftHsm  # noqa: E402

ZONE = "tld."


def timed(argv):
    """(wall seconds, peak RSS MiB, exit code, stdout) of argv under time -v."""
    t0 = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True)
    wall = time.monotonic() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    return wall, (int(m.group(1)) / 1024 if m else None), p.returncode, p.stdout, p.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--domains", type=int, default=1000000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--threads", type=int, default=2, help="zonedist-check --threads")
    ap.add_argument("--json", help="write the results here too")
    a = ap.parse_args()

    pg = Postgres().start()
    spawn = Started()
    token = SoftHsm().init_token()
    res = {"domains": a.domains, "rounds": a.rounds, "machine": os.uname().nodename,
           "cpus": os.cpu_count()}
    try:
        chain = Chain(pg, spawn, secondaries=("nsd",),
                      zonedistd_kw={"hsm": token, "dnssec": "on", "log_level": "notice",
                                    "build": a.build})
        chain.registry.bulk_fill(ZONE, a.domains, seed=1)
        chain.start()
        serial = chain.settle(deadline=3600)
        nsd = chain.secondaries["nsd"]
        zf = os.path.join(chain.zd.dir, "nsd-axfr.zone")
        with open(zf, "w") as f:
            subprocess.run(["dig", "@127.0.0.1", "-p", str(nsd.port), ZONE, "AXFR", "+onesoa",
                            "+nocmd", "+nostats", "+nocomments", "+time=60"], stdout=f,
                           check=True, timeout=3600)
        res["zone_file_bytes"] = os.path.getsize(zf)
        res["serial"] = serial
        check = [os.path.join(a.build, "integrity-check", "zonedist-check"), "--zone", ZONE,
                 "--api", chain.zd.api_url, "--secondary", f"127.0.0.1@{nsd.port}", "--json",
                 "--threads", str(a.threads)]
        runs = {"digest": [], "full": [], "ldns-verify-zone": []}
        first_digest_ms = None
        for r in range(a.rounds):
            for kind, argv in (("digest", check), ("full", check + ["--full"]),
                               ("ldns-verify-zone", ["ldns-verify-zone", zf])):
                wall, mib, rc, out, err = timed(argv)
                entry = {"wall_s": round(wall, 2), "rss_mib": round(mib, 1), "rc": rc}
                if kind != "ldns-verify-zone":
                    rep = json.loads(out.splitlines()[-1])["secondaries"][0]
                    entry.update(state=rep["state"], records=rep.get("records"),
                                 rrsigs=rep.get("dnssec", {}).get("rrsigs"),
                                 dnssec=rep.get("dnssec", {}).get("severity"),
                                 axfr_ms=rep.get("axfr_ms"), digest_ms=rep.get("digest_ms"))
                    if r == 0 and kind == "digest":
                        first_digest_ms = rep.get("digest_ms")
                else:
                    entry["last_line"] = (out.strip().splitlines() or [""])[-1]
                runs[kind].append(entry)
                print(kind, entry, flush=True)
        res["runs"] = runs
        res["zonedistd_first_digest_ms"] = first_digest_ms
        res["median"] = {k: {"wall_s": round(statistics.median(e["wall_s"] for e in v), 2),
                             "rss_mib": round(statistics.median(e["rss_mib"] for e in v), 1)}
                         for k, v in runs.items()}
    finally:
        spawn.stop()
        pg.stop()
        pg.cleanup()
        token.cleanup()
    print(json.dumps(res["median"], indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
