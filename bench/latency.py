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

With --dnssec both sides sign: zonedistd with a throwaway SoftHSM token and
the default policy (ECDSAP256SHA256, NSEC3 opt-out, 0 iterations, no salt),
and Knot with automatic signing under the same parameters (its keys in its
own PEM keystore, or with --knot-keystore token in the same SoftHSM token).
Knot loads zonedistd's zone without its DNSSEC records and signs it at load
(not timed); it then signs each update incrementally.  The signatures each
zonedist batch cost come from zonedistd's "serial S published" log lines.  At
the end both NSDs' copies are checked with ldns-verify-zone (zones under 200k
domains only).

  /usr/bin/python3 bench/latency.py --domains 100000 --batches 100 --sizes 1,100
  /usr/bin/python3 bench/latency.py --domains 100000 --batches 100 --sizes 1,100 --dnssec
"""

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "system"))

from zdtest.env import Chain  # noqa: E402
from zdtest.pg import Postgres  # noqa: E402
from zdtest.proc import Started  # noqa: E402
from zdtest.proc import free_port, wait_until  # noqa: E402
from zdtest.servers import Knot, Nsd  # noqa: E402
from zdtest.softhsm import SoftHsm  # noqa: E402
from zdtest import dnssec  # noqa: E402

# Types a signer adds: left out of the zone Knot loads, so that it signs it.
DNSSEC_TYPES = {"RRSIG", "NSEC", "NSEC3", "NSEC3PARAM", "DNSKEY", "CDS", "CDNSKEY"}
VERIFY_MAX_DOMAINS = 200000  # ldns-verify-zone on both NSDs' copies below this
PUBLISHED = re.compile(r"serial (\d+) published \(version (\d+)\): .*? (\d+) signatures"
                       r"( \(full signing\))?")


class KnotSigned(Knot):
    """Knot as the DDNS primary (as Knot(ddns=True)), signing its zones
    automatically: ECDSAP256SHA256, NSEC3 opt-out, 0 iterations, no salt,
    no key rollovers.  keystore: None for Knot's PEM keystore, or a SoftHsm
    whose token holds the keys (PKCS#11)."""

    def __init__(self, zones, notify_ports=(), keystore=None):
        super().__init__(zones, notify_ports=notify_ports, ddns=True)
        self.hsm = keystore

    def write_config(self):
        d = self.dir
        remotes = "".join(f"  - id: sec{i}\n    address: 127.0.0.1@{p}\n"
                          for i, p in enumerate(self.notify_ports))
        ids = ", ".join(f"sec{i}" for i in range(len(self.notify_ports)))
        zones = "".join(f"  - domain: {z}\n    file: {path}\n    acl: [xfr, upd]\n"
                        + (f"    notify: [{ids}]\n" if ids else "")
                        + "    dnssec-signing: on\n    dnssec-policy: bench\n"
                        for z, path in self.zones.items())
        keystore = ""
        if self.hsm is not None:
            keystore = (f"keystore:\n  - id: token\n    backend: pkcs11\n"
                        f'    config: "pkcs11:token={self.hsm.label};pin-value={self.hsm.pin} '
                        f'{self.hsm.module}"\n')
        os.makedirs(os.path.join(d, "db"), exist_ok=True)
        with open(os.path.join(d, "knot.conf"), "w") as f:
            f.write(f"""server:
  rundir: {d}
  listen: 127.0.0.1@{self.port}
  background-workers: 1
  udp-workers: 1
  tcp-workers: 1
log:
  - target: {self.log}
    any: info
database:
  storage: {d}/db
{"remote:" + chr(10) + remotes if remotes else ""}acl:
  - id: xfr
    address: 127.0.0.0/8
    action: transfer
  - id: upd
    address: 127.0.0.0/8
    action: update
{keystore}policy:
  - id: bench
{"    keystore: token" + chr(10) if self.hsm is not None else ""}    algorithm: ecdsap256sha256
    manual: off
    single-type-signing: off
    ksk-shared: off
    ksk-lifetime: 0
    zsk-lifetime: 0
    nsec3: on
    nsec3-opt-out: on
    nsec3-iterations: 0
    nsec3-salt-length: 0
    nsec3-salt-lifetime: 0
    rrsig-lifetime: 30d
template:
  - id: default
    storage: {d}
    zonefile-sync: -1
    journal-content: changes
zone:
{zones}""")
        # Knot must accept every key of the policy, not ignore it.
        r = subprocess.run(["knotc", "-c", os.path.join(d, "knot.conf"), "conf-check"],
                           capture_output=True, text=True, env=self.env())
        if r.returncode != 0:
            raise RuntimeError(f"knotc conf-check refuses {d}/knot.conf: {r.stdout}{r.stderr}")

    def env(self):
        e = dict(os.environ)
        if self.hsm is not None:
            e["SOFTHSM2_CONF"] = self.hsm.conf
        return e

    def argv(self):
        # The base class starts argv with the inherited environment; env(1)
        # adds the token's SoftHSM configuration and execs knotd (same pid).
        conf = [f"SOFTHSM2_CONF={self.hsm.conf}"] if self.hsm is not None else []
        return ["env", *conf, "knotd", "-c", os.path.join(self.dir, "knot.conf")]

    def signed(self, zone):
        """True when Knot answers zone's SOA with its RRSIG (DO set)."""
        import dns.message
        import dns.query
        q = dns.message.make_query(zone, "SOA", want_dnssec=True)
        r = dns.query.udp(q, "127.0.0.1", port=self.port, timeout=1.0)
        return any(rr.rdtype == 46 for rr in r.answer)


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
    ap.add_argument("--dnssec", action="store_true",
                    help="both sides sign (zonedistd with a SoftHSM token, Knot automatically)")
    ap.add_argument("--knot-keystore", choices=("soft", "token"), default="soft",
                    help="with --dnssec: Knot's keys in its PEM keystore or in the SoftHSM token")
    a = ap.parse_args()
    os.environ["ZD_BUILD"] = a.build
    zone = "tld."

    pg = Postgres().start()
    spawn = Started()
    token = None
    results = {"domains": a.domains, "seed": a.seed, "signed": a.dnssec}
    zd_kw = {"log_level": "notice",
             "limits": {"poll-interval-ms": 1000, "notify-timeout-ms": 1000}}
    if a.dnssec:
        token = SoftHsm().init_token()
        # info: the "serial S published ... N signatures" line per version
        zd_kw.update(hsm=token, dnssec="on", log_level="info")
        results["policy"] = ("ECDSAP256SHA256, NSEC3 opt-out, 0 iterations, no salt; "
                             f"Knot keystore {a.knot_keystore}")
    batch_serials = {}  # k -> [(serial before, serial NSD answered)] per batch
    failed = False
    try:
        chain = Chain(pg, spawn, secondaries=("nsd",), zonedistd_kw=zd_kw)
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
        knot = knot_poll = nsd2 = None
        if a.peer == "knot":
            zf = os.path.join(chain.zd.dir, "peer.zone")
            with open(zf, "w") as f:
                if a.dnssec:
                    # zonedistd's version without what its signer added:
                    # Knot signs it itself
                    text = dnssec.axfr_text_dig(chain.zd.port, zone, timeout=600)
                    f.writelines(line + "\n" for line in text.splitlines()
                                 if line.split()[3].upper() not in DNSSEC_TYPES)
                else:
                    f.write(chain.zd.run("--dump", zone).stdout)
            nsd2_port = free_port()
            if a.dnssec:
                ks = token if a.knot_keystore == "token" else None
                t0 = time.monotonic()
                knot = spawn(KnotSigned({zone: zf}, notify_ports=[nsd2_port], keystore=ks),
                             deadline=600)
                # its signing at load is not timed as a batch
                wait_until(lambda: knot.signed(zone), 3600, "Knot answering a signed SOA")
                results["peer_knot_initial_signing_s"] = round(time.monotonic() - t0, 1)
                if ks is not None:
                    # zonedistd's KSK and ZSK and Knot's, all in the token
                    objs = token.tool("--list-objects", "--type", "privkey", text=True).stdout
                    results["token_private_keys"] = objs.count("Private Key Object")
            else:
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
            lat, klat, ksigs = [], [], []
            batch_serials[k] = []
            for b in range(a.batches):
                # A B A B: zonedist's batch, then the same batch at the peer
                before = last
                ms, last = timed(lambda: zonedist_batch(k, b), poll, last, "zonedist batch")
                lat.append(ms)
                batch_serials[k].append((before, last))
                if knot_poll:
                    kbefore = klast
                    ms, klast = timed(lambda: knot_batch(k, b), knot_poll, klast, "Knot batch")
                    klat.append(ms)
                    if a.dnssec:  # after the clock stopped: what Knot signed
                        ksigs.append(ixfr_signatures(knot.port, zone, kbefore))
            results[f"batch_{k}"] = summary(lat)
            if klat:
                results[f"peer_knot_batch_{k}"] = summary(klat)
                if ksigs:
                    results[f"peer_knot_batch_{k}"].update(
                        {"signatures_median": statistics.median(ksigs),
                         "signatures_min": min(ksigs), "signatures_max": max(ksigs)})
        results["rss_after_batches"] = rss(pid)
        results["rss_bytes_per_delegation"] = round(results["rss_after_batches"]["VmRSS"]
                                                    / a.domains, 1)
        published = {}  # serial -> (signatures, full signing)
        for line in open(chain.zd.log, errors="replace"):
            if "first version loaded" in line:
                results["zonedistd_load_line"] = line.strip()
            m = PUBLISHED.search(line)
            if m:
                published[int(m.group(1))] = (int(m.group(3)), m.group(4) is not None)
        if a.dnssec:
            for k, spans in batch_serials.items():
                results[f"batch_{k}"].update(signature_summary(published, spans))
            if knot:
                results["peer_knot_signing"] = sg = knot_incremental(knot.log)
                if sg["full_signings"] != 1 or sg["incremental_signings"] != sg[
                        "ddns_updates_finished"]:
                    print(f"warning: Knot did not sign every update incrementally: {sg}",
                          file=sys.stderr)
            results["verify"] = verify(a, zone, nsd, nsd2)
            failed = any(not v.startswith(("ok", "skipped")) for v in results["verify"].values())
    finally:
        spawn.stop()
        pg.stop()
        pg.cleanup()
        if token is not None:
            token.cleanup()
    print_table(results, a, knot_version() if a.peer == "knot" else None)
    print(json.dumps(results, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    if failed:
        sys.exit("a secondary's copy did not validate (see \"verify\")")


def signature_summary(published, spans):
    """Signatures per measured batch: a batch is every version zonedistd
    published after the serial NSD had before it, up to the one NSD answered
    (normally exactly one)."""
    per, versions, full = [], 0, 0
    for before, after in spans:
        n = 0
        for serial, (sigs, f) in published.items():
            if 0 < (serial - before) % 2**32 <= (after - before) % 2**32:
                n += sigs
                versions += 1
                full += f
        per.append(n)
    if versions < len(spans):
        raise RuntimeError(f"zonedistd's log has {versions} published lines for "
                           f"{len(spans)} batches (log level too low?)")
    return {"signatures_median": statistics.median(per), "signatures_min": min(per),
            "signatures_max": max(per), "versions": versions, "full_signings": full}


def ixfr_signatures(port, zone, serial):
    """RRSIGs added from serial to the server's current serial, by IXFR
    (the new signatures a batch cost, SOA's included)."""
    import dns.query
    import dns.rdatatype
    new = adding = None
    n = 0
    for msg in dns.query.xfr("127.0.0.1", zone, rdtype=dns.rdatatype.IXFR, serial=serial,
                             port=port, lifetime=60, timeout=60):
        for rrset in msg.answer:
            for rd in rrset:
                if rrset.rdtype == dns.rdatatype.SOA:
                    if new is None:
                        new = rd.serial
                    elif adding is None and rd.serial != serial:
                        raise RuntimeError(f"no IXFR from {serial} (an AXFR?)")
                    else:  # old SOA opens deletions, new SOA additions
                        adding = rd.serial == new
                elif rrset.rdtype == dns.rdatatype.RRSIG and adding:
                    n += 1
    return n


def knot_incremental(log):
    """How Knot signed, from its log: full signings (the one at load, and
    any other would be a re-sign from scratch) and updates signed
    incrementally, next to the updates it finished."""
    out = {"full_signings": 0, "incremental_signings": 0, "ddns_updates_finished": 0}
    for line in open(log, errors="replace"):
        if "DNSSEC, signing started" in line:
            out["full_signings"] += 1
        elif "DNSSEC, incrementally signed" in line:
            out["incremental_signings"] += 1
        elif "DDNS, finished" in line:
            out["ddns_updates_finished"] += 1
    return out


def verify(a, zone, *nsds):
    """ldns-verify-zone on each NSD's AXFR (zonedist's NSD, the peer's)."""
    out = {}
    for name, nsd in zip(("zonedist_nsd", "peer_knot_nsd"), nsds):
        if nsd is None:
            continue
        if a.domains >= VERIFY_MAX_DOMAINS:
            out[name] = f"skipped (over {VERIFY_MAX_DOMAINS} domains)"
            continue
        t0 = time.monotonic()
        text = dnssec.axfr_text_dig(nsd.port, zone, timeout=600)
        ok, msg = dnssec.ldns_verify_zone(text, zone)
        took = time.monotonic() - t0
        out[name] = (f"ok (ldns-verify-zone, {len(text.splitlines())} RRs, {took:.1f} s)" if ok
                     else "FAILED: " + msg.strip()[-2000:])
    return out


def knot_version():
    try:
        r = subprocess.run(["knotd", "--version"], capture_output=True, text=True)
        return r.stdout.split("version")[-1].strip() or "?"
    except OSError:
        return "?"


def print_table(results, a, kver):
    signed = a.dnssec
    mark = " (signed)" if signed else ""
    print(f"\n{results['domains']} domains, {a.batches} batches per size"
          + (f"; signed: {results['policy']}" if signed else "") + "\n")
    head = "| batch | system | p50 | p90 | p99 | max |"
    sep = "|---|---|---|---|---|---|"
    if signed:
        head += " signatures per batch (median, min-max) |"
        sep += "---|"
    print(head)
    print(sep)
    for k in [int(x) for x in a.sizes.split(",")]:
        what = "1 change" if k == 1 else f"{k} changes"
        rows = [(f"**zonedist**{mark}", results.get(f"batch_{k}"))]
        if kver:
            rows.append((f"Knot {kver} (DDNS{', signed' if signed else ''})",
                         results.get(f"peer_knot_batch_{k}")))
        for system, r in rows:
            if not r:
                continue
            line = (f"| {what} | {system} | {r['p50_ms']} ms | {r['p90_ms']} ms | "
                    f"{r['p99_ms']} ms | {r['max_ms']} ms |")
            if signed:
                line += (f" {r['signatures_median']:g}, {r['signatures_min']}-"
                         f"{r['signatures_max']} |" if "signatures_median" in r else " - |")
            print(line)
    if "peer_knot_signing" in results:
        print(f"Knot signing (from its log): {results['peer_knot_signing']}")
    for name, v in results.get("verify", {}).items():
        print(f"{name}: {v}")
    print()


if __name__ == "__main__":
    main()
