#!/usr/bin/python3
"""bench/sign_peers.py -- initial signing of one TLD zone, side by side:
dnssec-signzone (BIND 9.18), ldns-signzone, Knot's kzonesign and (once it
signs) zonedistd, each with software keys and with its keys in one SoftHSM
token, plus that token's raw signing rate measured in the same run.

The zone is the exact one zonedistd serves unsigned: a reference registry
bulk-filled with N domains (zdtest Registry.bulk_fill, as bench/latency.py:
10% with DS, 10% in-domain glue, 5% sibling glue), zonedistd started on it,
its AXFR written to a file (cached in the work dir by N, seed and fractions).
--zone-file F signs F instead (zonedistd then cannot run: it needs the
registry).

Policy, every signer: one KSK + one ZSK of --alg (default ECDSAP256SHA256;
RSA keys 2048 bits), NSEC3 with opt-out, 0 extra iterations, empty salt
(--nsec for NSEC), signatures valid 30 days.  Keys are made before the clock
starts.  Each signer runs under `/usr/bin/time -v`: wall clock (measured
here), user+sys CPU and peak RSS ("Maximum resident set size").  Every run's
output is checked (apex DNSKEYs of the algorithm, NSEC3PARAM and NSEC3
flags as asked, every DS RRset and every NSEC3/NSEC record signed, 30-day
validity; ldns-verify-zone on the whole output up to --verify-max domains),
so a misconfigured signer cannot win by signing less.  The per-type counts
of every output go to the JSON and differing counts are printed.

Peers (flags chosen for the same policy; exact argv in the JSON):
  bind   dnssec-signzone -S -O full -x -3 - -A -H 0 -n CORES -e +30d, keys from
         dnssec-keygen; its post-sign verification stays on (its default;
         zonedist verifies what it publishes too).  Token: dnssec-keyfromlabel
         -E pkcs11 with keys made by pkcs11-tool -- Debian 12's BIND 9.18 is
         built against OpenSSL 3 without engine support, so this is tried and
         reported as unavailable with the tool's error text.
  ldns   ldns-signzone -n -p -t 0 -e <now+30d>, single-threaded, keys from
         ldns-keygen.  Its -p only sets the opt-out flag: it still makes
         (and signs) an NSEC3 for every insecure delegation, about ten times
         the others' NSEC3 records at 10% DS (the count check shows it).  Token: -E pkcs11 -K/-k ALG,pkcs11:URI through
         libengine-pkcs11-openssl (keys made by pkcs11-tool).
  knot   kzonesign with a policy (manual keys made by keymgr, nsec3-opt-out,
         iterations 0, salt length 0, rrsig-lifetime 30d), signing-threads and
         background-workers = CORES; keystore pem (software) or pkcs11 in the
         same token.
  zonedist  run_zonedist(): see its docstring; NotImplementedError (reported,
         not fatal) until zonedistd accepts the hsm: and dnssec: sections.
The token's raw rate: build/bench/hsm_rate --token ... --seconds 5 with 1 and
all threads, before the first round and after the last; with
--rate-each-round also with all threads and with one process per core
(session copy, 3 s) right before and after each zonedistd run, which
prints its signing rate against both (from its own log: reading, signing,
gate and checkpoint times).

Rounds: every (peer, keys) pair once per round, the order rotated by one each
round (A B C, B C A, ...); the table gives the median and the spread
(min..max) over --rounds.

  /usr/bin/python3 bench/sign_peers.py --domains 20000 --rounds 1
  /usr/bin/python3 bench/sign_peers.py --domains 1000000 --rounds 3 --json out.json

Needs: bind9-utils, ldnsutils, knot-dnssecutils, knot (keymgr), softhsm2,
opensc (pkcs11-tool), time, libengine-pkcs11-openssl (ldns' and BIND's token
runs), the build's zonedistd and bench/hsm_rate (ninja -C BUILD).  Run as
root or as a user that may start PostgreSQL (zdtest.pg).
"""

import argparse
import calendar
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "system"))

from zdtest.proc import Daemon, Started, log_tail, wait_until  # noqa: E402
from zdtest.softhsm import SoftHsm  # noqa: E402

ZONE = "tld."
VALIDITY_S = 30 * 86400
CORES = os.cpu_count() or 1

# Per algorithm: DNSSEC number, each tool's name, pkcs11-tool key type,
# hsm_rate's --alg, RSA modulus bits (None: fixed-size keys).
ALGS = {
    "ecdsap256sha256": dict(num=13, bind="ECDSAP256SHA256", ldns="ECDSAP256SHA256",
                            knot="ecdsap256sha256", p11="EC:prime256v1", rate="ecdsa", bits=None),
    "rsasha256": dict(num=8, bind="RSASHA256", ldns="RSASHA256", knot="rsasha256",
                      p11="rsa:2048", rate="rsa2048", bits=2048),
    "ed25519": dict(num=15, bind="ED25519", ldns="ED25519", knot="ed25519",
                    p11="EC:edwards25519", rate="ed25519", bits=None),
}


class Unavailable(Exception):
    """This peer/keystore pair cannot run here; the message says why."""


class PeerFailed(Exception):
    """A run started and failed, or its output did not pass the checks."""


def run(argv, env=None, cwd=None, timeout=600):
    """Untimed helper command (key generation); PeerFailed with its output."""
    r = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise PeerFailed(f"{' '.join(argv)}: exit {r.returncode}: "
                         f"{(r.stderr or r.stdout).strip()[-2000:]}")
    return r


# -- /usr/bin/time -v ---------------------------------------------------------

def parse_time_v(path):
    """The fields of a `/usr/bin/time -v` report that the table uses."""
    want = {"User time (seconds)": ("user_s", float),
            "System time (seconds)": ("sys_s", float),
            "Maximum resident set size (kbytes)": ("max_rss_kb", int),
            "Exit status": ("exit_status", int)}
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.strip().rpartition(": ")
            if k in want:
                name, conv = want[k]
                out[name] = conv(v)
    if "max_rss_kb" not in out:
        raise PeerFailed(f"no /usr/bin/time report in {path}: {log_tail(path, 5)}")
    return out


def timed(argv, log, env=None, cwd=None, timeout=24 * 3600):
    """argv under /usr/bin/time -v, output to log; {wall_s, cpu_s, max_rss_kb, ...}."""
    tf = log + ".time"
    with open(log, "wb") as lf:
        t0 = time.monotonic()
        r = subprocess.run(["/usr/bin/time", "-v", "-o", tf, *argv], env=env, cwd=cwd,
                           stdout=lf, stderr=subprocess.STDOUT, timeout=timeout)
        wall = time.monotonic() - t0
    if r.returncode != 0:
        raise PeerFailed(f"{os.path.basename(argv[0])} exited {r.returncode}:\n"
                         f"{log_tail(log, 15)}")
    m = parse_time_v(tf)
    m["wall_s"] = round(wall, 3)
    m["cpu_s"] = round(m.get("user_s", 0) + m.get("sys_s", 0), 2)
    return m


PHASES = [("signatures", r"first version signed: (\d+) signatures"),
          ("signing_ms", r"first version signed: .*? chain records, (\d+) ms"),
          ("gate_ms", r"first version signed: .*; gate: .*?(\d+) ms$"),
          ("pool_busy_ms", r"first version signed: .*signing processes busy (\d+) ms"),
          ("pool_wait_ms", r"first version signed: .*waited for (\d+) ms"),
          ("reading_ms", r"first version loaded .*\(reading (\d+) ms"),
          ("checkpoint_ms", r"first version loaded .*; checkpoint (\d+) ms")]


def zonedist_phases(log):
    """The first load's phases from zonedistd's own log lines (what it
    says it spent where; {} for a line it did not write)."""
    out = {}
    with open(log, errors="replace") as f:
        text = f.read()
    for key, rx in PHASES:
        m = re.search(rx, text, re.M)
        if m:
            out[key] = int(m.group(1))
    return out


# -- output check ---------------------------------------------------------------

def _tokens_type(tok):
    """Index of the type field in owner [ttl] [class] type rdata..."""
    i = 1
    while i < len(tok) and (tok[i].isdigit() or tok[i].upper() in ("IN", "CH", "HS")):
        i += 1
    return i


def zone_stats(path):
    """Counts of a zone file written one record per line with absolute
    owners (dnssec-signzone -O full, ldns, Knot and dig all do):
    per type, RRSIGs per covered type, owners of DS, and the fields the
    policy check reads."""
    st = {"types": {}, "rrsig_covers": {}, "ds_owners": 0, "nsec3param": [],
          "nsec3_flags": {}, "dnskey_apex": [], "rrsig_algs": {}, "validity_s": set(),
          "expire_from_now_s": None}
    last_ds_owner = None
    now = time.time()
    with open(path, errors="replace") as f:
        for line in f:
            if not line or line[0] in ";$\n":
                continue
            tok = line.split()
            if len(tok) < 2:
                continue
            i = _tokens_type(tok)
            if i >= len(tok):
                continue
            t = tok[i].upper()
            st["types"][t] = st["types"].get(t, 0) + 1
            owner = tok[0].lower()
            if t == "RRSIG":
                cov = tok[i + 1].upper()
                st["rrsig_covers"][cov] = st["rrsig_covers"].get(cov, 0) + 1
                st["rrsig_algs"][tok[i + 2]] = st["rrsig_algs"].get(tok[i + 2], 0) + 1
                if cov == "SOA":
                    exp = calendar.timegm(time.strptime(tok[i + 5], "%Y%m%d%H%M%S"))
                    inc = calendar.timegm(time.strptime(tok[i + 6], "%Y%m%d%H%M%S"))
                    st["validity_s"].add(int(exp - inc))
                    st["expire_from_now_s"] = int(exp - now)
            elif t == "DS":
                if owner != last_ds_owner:
                    st["ds_owners"] += 1
                last_ds_owner = owner
            elif t == "NSEC3":
                st["nsec3_flags"][tok[i + 2]] = st["nsec3_flags"].get(tok[i + 2], 0) + 1
            elif t == "NSEC3PARAM":
                st["nsec3param"].append(" ".join(tok[i + 1:i + 5]))
            elif t == "DNSKEY" and owner == ZONE:
                st["dnskey_apex"].append((tok[i + 1], tok[i + 3]))
    st["validity_s"] = sorted(st["validity_s"])
    return st


def check_signed(path, a, verify):
    """PeerFailed unless path is the zone signed by our policy.  Returns the
    stats (and the ldns-verify-zone result when verify)."""
    st = zone_stats(path)
    alg = ALGS[a.alg]
    bad = []
    n_rrsig = st["types"].get("RRSIG", 0)
    if n_rrsig == 0:
        bad.append("no RRSIG at all")
    keys = sorted(st["dnskey_apex"])
    if [f for f, al in keys if al == str(alg["num"])] != ["256", "257"]:
        bad.append(f"apex DNSKEYs {keys}, want one ZSK and one KSK of algorithm {alg['num']}")
    if set(st["rrsig_algs"]) != {str(alg["num"])}:
        bad.append(f"RRSIG algorithms {st['rrsig_algs']}")
    if st["rrsig_covers"].get("DS", 0) != st["ds_owners"]:
        bad.append(f"{st['ds_owners']} DS RRsets, {st['rrsig_covers'].get('DS', 0)} signed")
    denial = "NSEC" if a.nsec else "NSEC3"
    n_denial = st["types"].get(denial, 0)
    if n_denial == 0 or st["rrsig_covers"].get(denial, 0) != n_denial:
        bad.append(f"{n_denial} {denial}, {st['rrsig_covers'].get(denial, 0)} signed")
    if not a.nsec:
        if st["nsec3param"] != ["1 0 0 -"]:
            bad.append(f"NSEC3PARAM {st['nsec3param']}, want '1 0 0 -'")
        if set(st["nsec3_flags"]) != {"1"}:
            bad.append(f"NSEC3 flags {st['nsec3_flags']}, want opt-out (1) on all")
    elif st["types"].get("NSEC3", 0):
        bad.append("NSEC3 records in an NSEC run")
    # 30 days, give or take the inception offset a signer backdates by
    # (BIND 1 h, Knot 90 min) and jitter.
    if not st["validity_s"] or any(abs(v - VALIDITY_S) > 3 * 3600 for v in st["validity_s"]):
        bad.append(f"SOA RRSIG validity {st['validity_s']} s, want ~{VALIDITY_S}")
    if verify:
        r = subprocess.run(["ldns-verify-zone", "-V", "1", path], capture_output=True,
                           text=True)
        st["ldns_verify_zone"] = "ok" if r.returncode == 0 else (r.stdout + r.stderr)[-500:]
        if r.returncode != 0:
            bad.append("ldns-verify-zone: " + (r.stdout + r.stderr).strip()[-500:])
    if bad:
        raise PeerFailed(f"{path}: " + "; ".join(bad))
    return st


# -- the unsigned zone ----------------------------------------------------------

def zone_key(a):
    return f"tld-n{a.domains}-s{a.seed}-ds{a.ds_fraction}-g{a.glue_fraction}"


class Registry:
    """PostgreSQL with the bulk-filled reference registry and the zonedist
    schema; zonedistd (unsigned) serves it for the AXFR."""

    def __init__(self, a):
        from zdtest.env import Chain
        from zdtest.pg import Postgres
        self.pg = Postgres().start()
        self.spawn = Started()
        self.chain = Chain(self.pg, self.spawn, zone=ZONE, secondaries=(),
                           zonedistd_kw={"log_level": "notice"})
        t0 = time.monotonic()
        # touch=False: zonedistd's first load reads zone_rrs(zone, NULL) anyway.
        self.chain.registry.bulk_fill(ZONE, a.domains, seed=a.seed,
                                      ds_fraction=a.ds_fraction,
                                      glue_fraction=a.glue_fraction, touch=False)
        self.fill_s = round(time.monotonic() - t0, 1)

    def axfr_to(self, path, domains):
        """Start zonedistd unsigned, AXFR its zone into path, stop it."""
        zd = self.chain.zd
        self.spawn(zd, deadline=3600)
        try:
            self.chain.settle(deadline=3600)
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                r = subprocess.run(["dig", "@127.0.0.1", "-p", str(zd.port), ZONE, "AXFR",
                                    "+onesoa", "+nocmd", "+nocomments", "+nostats",
                                    "+noidnout", "+tries=1", "+time=600"],
                                   stdout=f, stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"dig AXFR failed: {r.stderr}")
            st = zone_stats(tmp)
            # The apex NS plus one NS RRset (2 NS) per delegation.
            ns = st["types"].get("NS", 0)
            if st["types"].get("SOA") != 1 or ns != 2 + 2 * domains:
                raise RuntimeError(f"AXFR of {ZONE} is not the bulk zone: {st['types']}")
            os.replace(tmp, path)
        finally:
            zd.stop()

    def stop(self):
        self.spawn.stop()
        self.chain.zd.cleanup()
        self.pg.stop()
        self.pg.cleanup()


# -- peers -----------------------------------------------------------------------

class Peer:
    """One signer with one kind of key store.  prepare() makes the keys (not
    timed; Unavailable when this pair cannot work here); sign(out) signs the
    zone into out and returns the /usr/bin/time figures."""
    name = keys = None

    def __init__(self, ctx):
        self.ctx = ctx
        self.dir = os.path.join(ctx.run_dir, f"{self.name}-{self.keys}")
        os.makedirs(self.dir)
        self.argv = None

    @property
    def label(self):
        return f"{self.name}/{self.keys}"

    def env(self):
        return self.ctx.hsm.env  # SOFTHSM2_CONF for every peer, also with software keys

    def p11_keypair(self, label, key_id):
        """A key pair generated inside the token by pkcs11-tool."""
        self.ctx.hsm.tool("--keypairgen", "--key-type", self.ctx.alg["p11"],
                          "--label", label, "--id", key_id, "--usage-sign")


class Bind(Peer):
    name = "dnssec-signzone"

    def __init__(self, ctx, keys):
        self.keys = keys
        super().__init__(ctx)

    def prepare(self):
        """K*.key/K*.private in self.dir; dnssec-signzone -S finds them there."""
        alg, kd = self.ctx.alg, self.dir
        if self.keys == "token":
            self.p11_keypair("bind-ksk", "b1")
            self.p11_keypair("bind-zsk", "b2")
            for lab, ksk in (("bind-ksk", True), ("bind-zsk", False)):
                uri = (f"pkcs11:token={self.ctx.hsm.label};object={lab};"
                       f"pin-value={self.ctx.hsm.pin}")
                r = subprocess.run(["dnssec-keyfromlabel", "-E", "pkcs11", "-a", alg["bind"],
                                    "-K", kd, "-l", uri] + (["-f", "KSK"] if ksk else [])
                                   + [ZONE], env=self.env(), capture_output=True, text=True)
                if r.returncode != 0:
                    why = r.stderr.strip()
                    if not engine_linked("dnssec-keyfromlabel"):
                        why += (" (libdns of this BIND imports no OpenSSL ENGINE_* function:"
                                " built without engine support, so -E pkcs11 cannot work)")
                    raise Unavailable(why)
        else:
            for ksk in (True, False):
                argv = ["dnssec-keygen", "-q", "-a", alg["bind"], "-K", kd]
                if alg["bits"]:
                    argv += ["-b", str(alg["bits"])]
                if ksk:
                    argv += ["-f", "KSK"]
                run(argv + [ZONE], env=self.env())

    def sign(self, out, log):
        a = self.ctx.args
        # -S: the keys (and their DNSKEYs) come from the key directory.
        # -d: its dsset-tld. file goes next to the keys, not into the cwd.
        self.argv = ["dnssec-signzone", "-S", "-K", self.dir, "-d", self.dir, "-o", ZONE,
                     "-f", out, "-O", "full", "-x", "-n", str(CORES), "-e", f"+{VALIDITY_S}"]
        if not a.nsec:
            self.argv += ["-3", "-", "-A", "-H", "0"]
        self.argv.append(self.ctx.zone_file)
        return timed(self.argv, log, env=self.env(), cwd=self.dir)


class Ldns(Peer):
    name = "ldns-signzone"

    def __init__(self, ctx, keys):
        self.keys = keys
        super().__init__(ctx)

    def prepare(self):
        alg = self.ctx.alg
        if self.keys == "token":
            r = subprocess.run(["openssl", "engine", "pkcs11"], capture_output=True, text=True)
            if r.returncode != 0:
                raise Unavailable("no OpenSSL engine pkcs11 (libengine-pkcs11-openssl): "
                                  + r.stderr.strip()[-300:])
            self.p11_keypair("ldns-ksk", "c1")
            self.p11_keypair("ldns-zsk", "c2")
            h = self.ctx.hsm
            uri = f"pkcs11:token={h.label};type=private;pin-value={h.pin};object="
            self.key_args = ["-E", "pkcs11", "-K", f"{alg['num']},{uri}ldns-ksk",
                             "-k", f"{alg['num']},{uri}ldns-zsk"]
            # A tiny zone through the same path, so a token that the engine
            # cannot use shows up as Unavailable with its error, not as a
            # failed round.
            probe = os.path.join(self.dir, "probe.zone")
            with open(probe, "w") as f:
                f.write(f"{ZONE} 300 IN SOA a.nic.{ZONE} h.nic.{ZONE} 1 60 10 1209600 300\n"
                        f"{ZONE} 300 IN NS a.nic.{ZONE}\na.nic.{ZONE} 300 IN A 192.0.2.1\n")
            r = subprocess.run(["ldns-signzone", *self.key_args, "-f", probe + ".signed",
                                probe], env=self.env(), capture_output=True, text=True)
            signed = ""
            if r.returncode == 0 and os.path.exists(probe + ".signed"):
                with open(probe + ".signed") as f:
                    signed = f.read()
            if "RRSIG" not in signed:
                # The error, without the usage text ldns-signzone prints after it.
                why = (r.stderr + r.stdout).split("ldns-signzone [OPTIONS]")[0]
                raise Unavailable("ldns-signzone -E pkcs11: " + why.strip())
        else:
            names = []
            for ksk in (True, False):
                argv = ["ldns-keygen", "-a", alg["ldns"]]
                if alg["bits"]:
                    argv += ["-b", str(alg["bits"])]
                if ksk:
                    argv += ["-k"]
                names.append(run(argv + [ZONE], cwd=self.dir).stdout.strip())
            self.key_args = []
            self.key_files = [os.path.join(self.dir, n) for n in names]

    def sign(self, out, log):
        a = self.ctx.args
        now = int(time.time())
        self.argv = ["ldns-signzone", "-o", ZONE, "-f", out, "-i", str(now),
                     "-e", str(now + VALIDITY_S)]
        if not a.nsec:
            self.argv += ["-n", "-p", "-t", "0"]  # no -s: empty salt
        self.argv += self.key_args + [self.ctx.zone_file]
        if self.keys == "soft":
            self.argv += self.key_files
        return timed(self.argv, log, env=self.env(), cwd=self.dir)


class Knot(Peer):
    name = "kzonesign"

    def __init__(self, ctx, keys):
        self.keys = keys
        super().__init__(ctx)

    def prepare(self):
        a, alg, d, h = self.ctx.args, self.ctx.alg, self.dir, self.ctx.hsm
        os.makedirs(os.path.join(d, "kasp"))
        shutil.copy(self.ctx.zone_file, os.path.join(d, "tld.zone"))
        keystore = ""
        if self.keys == "token":
            keystore = ("keystore:\n  - id: hsm\n    backend: pkcs11\n"
                        f'    config: "pkcs11:token={h.label};pin-value={h.pin} {h.module}"\n')
        sizes = (f"    ksk-size: {alg['bits']}\n    zsk-size: {alg['bits']}\n"
                 if alg["bits"] else "")
        denial = ("    nsec3: off\n" if a.nsec else
                  "    nsec3: on\n    nsec3-opt-out: on\n    nsec3-iterations: 0\n"
                  "    nsec3-salt-length: 0\n")
        self.conf = os.path.join(d, "knot.conf")
        with open(self.conf, "w") as f:
            f.write(f"""server:
    background-workers: {CORES}
database:
    storage: "{d}"
    kasp-db: "{d}/kasp"
{keystore}policy:
  - id: bench
{"    keystore: hsm" + chr(10) if self.keys == "token" else ""}    manual: on
    algorithm: {alg['knot']}
{sizes}{denial}    rrsig-lifetime: 30d
    rrsig-refresh: 7d
    signing-threads: {CORES}
zone:
  - domain: {ZONE}
    storage: "{d}"
    file: "tld.zone"
    dnssec-signing: on
    dnssec-policy: bench
""")
        for ksk in ("yes", "no"):
            zsk = "no" if ksk == "yes" else "yes"
            argv = ["keymgr", "-c", self.conf, ZONE, "generate", f"algorithm={alg['knot']}",
                    f"ksk={ksk}", f"zsk={zsk}"]
            if alg["bits"]:
                argv.append(f"size={alg['bits']}")
            r = subprocess.run(argv, env=self.env(), capture_output=True, text=True)
            if r.returncode != 0:
                raise Unavailable("keymgr generate: " + (r.stderr + r.stdout).strip())
        # Software keys are PEM files in the KASP db; token keys must not be.
        kd = os.path.join(d, "kasp", "keys")
        pems = [f for f in os.listdir(kd) if f.endswith(".pem")] if os.path.isdir(kd) else []
        if len(pems) != (2 if self.keys == "soft" else 0):
            raise PeerFailed(f"keymgr left {len(pems)} PEM keys in {kd} for {self.keys} keys")

    def sign(self, out, log):
        od = out + ".d"
        os.makedirs(od)
        self.argv = ["kzonesign", "-c", self.conf, "-o", od, ZONE]
        m = timed(self.argv, log, env=self.env(), cwd=self.dir)
        os.replace(os.path.join(od, "tld.zone"), out)
        os.rmdir(od)
        return m


def engine_linked(tool):
    """Whether the BIND library behind tool imports any OpenSSL ENGINE_ call."""
    try:
        libs = subprocess.run(["ldd", shutil.which(tool)], capture_output=True,
                              text=True).stdout
        lib = re.search(r"(/\S*libdns-9\S*\.so)", libs).group(1)
        syms = subprocess.run(["nm", "-D", lib], capture_output=True, text=True).stdout
    except (AttributeError, TypeError, OSError):
        return True  # cannot tell: do not claim it
    return "ENGINE_" in syms


# -- zonedist (hook) --------------------------------------------------------------

class Zonedist(Peer):
    """zonedistd's initial signing.  HOOK: another person adds zonedist's
    signer; until zonedistd accepts the hsm: and dnssec: configuration
    sections, prepare() raises Unavailable and run_zonedist() raises
    NotImplementedError.

    What it measures once that exists (see run_zonedist): zonedistd started
    under /usr/bin/time -v on the bulk-filled registry, from exec until the
    first signed serial is answerable (SOA with its RRSIG over UDP); then
    SIGTERM to zonedistd, and time's peak RSS (which covers its signing
    processes: wait4 reports the largest of the waited-for tree).  Its
    output, AXFRed, goes through the same checks as the peers'."""
    name = "zonedistd"
    keys = "token"

    def __init__(self, ctx, build=None, procs=0):
        # another build beside --build (--also-build), or another
        # hsm.sign-processes (--sign-processes): each its own row
        self.build, self.procs = build, procs
        if build:
            self.name = "zonedistd@" + os.path.basename(os.path.normpath(build))
        elif procs:
            self.name = f"zonedistd@procs{procs}"
        super().__init__(ctx)

    def prepare(self):
        if self.build:
            from zdtest.zonedistd import binary
            try:
                binary(build=self.build)
            except RuntimeError as e:
                raise Unavailable(str(e))
        ok, text = self.ctx.zonedist_probe
        if not ok:
            raise Unavailable("zonedistd does not accept the hsm:/dnssec: sections yet: "
                              + text)
        if self.ctx.registry is None:
            raise Unavailable("needs the registry (--domains), not --zone-file")

    def sign(self, out, log):
        return run_zonedist(self.ctx, out, log, self.build, self.procs)


def zonedist_sections(ctx, procs=0):
    """(zone-level dnssec: line, top-level hsm: text) for zonedistd's config
    (docs/CONFIG.md, the cfg branch's syntax)."""
    a, h = ctx.args, ctx.hsm
    dnssec = (f"    dnssec: {{algorithm: {a.alg}, denial: {'nsec' if a.nsec else 'nsec3'}, "
              "nsec3-opt-out: true, nsec3-iterations: 0, nsec3-salt: \"-\", "
              "signature-validity: 30d, jitter: 1h, inception-offset: 1h}")
    hsm = (f"hsm:\n  module: {h.module}\n  token-label: {h.label}\n  pin-file: {h.pin_file}\n"
           f"  sign-processes: {procs}\n")
    return dnssec, hsm


def zonedist_write_config(zd, ctx, procs=0):
    """zdtest's generated config plus the signing sections (zdtest's
    Zonedistd does not know them; this adds them after it writes)."""
    zd.write_config()
    dnssec, hsm = zonedist_sections(ctx, procs)
    out = []
    for line in open(zd.conf).read().splitlines():
        out.append(line)
        if line.startswith("    serial-policy:"):
            out.append(dnssec)
    with open(zd.conf, "w") as f:
        f.write("\n".join(out) + "\n" + hsm)


class _NoDb:
    conninfo = "dbname=unused"  # --check parses the config, it does not connect


def zonedist_config_probe(ctx):
    """(True, '') when `zonedistd --check` accepts a config with the
    signing sections, else (False, its error)."""
    from zdtest.zonedistd import Zonedistd, binary
    zd = Zonedistd(_NoDb(), zones=(ZONE,))
    try:
        zonedist_write_config(zd, ctx)
        r = subprocess.run([binary(), "--config", zd.conf, "--check"], capture_output=True,
                           text=True, timeout=60)
    except RuntimeError as e:  # not built
        return False, str(e)
    finally:
        zd.cleanup()
    return r.returncode == 0, (r.stderr or r.stdout).strip()


def zonedist_reset(pg):
    """Forget every version so the next start is a first load and a full
    signing again.  When the signer keeps key state in PostgreSQL, its
    tables belong here too."""
    tables = pg.psql("SELECT string_agg('zonedist.' || tablename, ', ') FROM pg_tables "
                     "WHERE schemaname = 'zonedist' AND tablename IN ('journal', 'checkpoint', "
                     "'checkpoint_chunk', 'change', 'rejected')").strip()
    if tables:
        pg.psql(f"TRUNCATE {tables}")


def signed_soa(port):
    """True once the server answers the SOA with an RRSIG over it."""
    import dns.message
    import dns.query
    import dns.rdatatype
    q = dns.message.make_query(ZONE, "SOA", want_dnssec=True)
    # A short timeout: a query sent before zonedistd binds waits it out.
    r = dns.query.udp(q, "127.0.0.1", port=port, timeout=0.05)
    return any(rr.rdtype == dns.rdatatype.RRSIG and rr.covers == dns.rdatatype.SOA
               for rr in r.answer)


def run_zonedist(ctx, out, log, build=None, procs=0):
    """HOOK: zonedist's initial signing, timed like the peers.  Raises
    NotImplementedError until zonedistd accepts the hsm: and dnssec:
    sections (checked with `zonedistd --check`).  Measures: wall from exec
    to the first signed serial answerable over UDP, peak RSS from
    /usr/bin/time -v around zonedistd (SIGTERM to zonedistd itself, so time
    writes its report); then the AXFR is checked like every peer's output."""
    from zdtest.zonedistd import binary
    ok, text = zonedist_config_probe(ctx)
    if not ok or ctx.registry is None:
        raise NotImplementedError("zonedistd does not sign yet: " + (text or "no registry"))
    reg = ctx.registry
    zd = reg.chain.zd
    zonedist_reset(reg.pg)
    zonedist_write_config(zd, ctx, procs)
    tf = log + ".time"
    env = dict(ctx.hsm.env)
    argv = ["/usr/bin/time", "-v", "-o", tf, binary(build=build), "--config", zd.conf]
    d = Daemon("zonedistd", argv, log, env=env)
    t0 = time.monotonic()
    d.start()
    try:
        wait_until(lambda: d.alive() and signed_soa(zd.port), 24 * 3600,
                   "zonedistd answering a signed SOA", interval=0.01)
        wall = time.monotonic() - t0
        r = subprocess.run(["dig", "@127.0.0.1", "-p", str(zd.port), ZONE, "AXFR", "+onesoa",
                            "+nocmd", "+nocomments", "+nostats", "+time=600"],
                           stdout=open(out, "w"), stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise PeerFailed(f"AXFR from zonedistd: {r.stderr}")
    finally:
        children = open(f"/proc/{d.proc.pid}/task/{d.proc.pid}/children").read().split() \
            if d.alive() else []
        for c in children:
            os.kill(int(c), signal.SIGTERM)
        try:
            d.proc.wait(60)
        except subprocess.TimeoutExpired:
            d.stop()
        zd.write_config()
    m = parse_time_v(tf)
    m["wall_s"] = round(wall, 3)
    m["cpu_s"] = round(m.get("user_s", 0) + m.get("sys_s", 0), 2)
    m.update(zonedist_phases(log))
    return m


# -- the token's raw rate ------------------------------------------------------------

def hsm_rate(ctx, objects=("token", "copy", "procs"), threads=None, seconds=None):
    """C_Sign per second with 1 and all threads, through the token object
    (as the peers sign) and through an in-token session copy of the key (as
    zonedist's signing processes sign); "procs": CORES processes side by
    side, one thread each on a session copy, their rates summed (SoftHSM
    serialises much of one process's threads: this is what all cores make)."""
    path = os.path.join(ctx.args.build, "bench", "hsm_rate")
    if not os.path.exists(path):
        return {"error": f"{path} is not built (ninja -C {ctx.args.build} bench/hsm_rate)"}
    h = ctx.hsm
    base = [path, "--module", h.module, "--token", h.label, "--pin-file", h.pin_file,
            "--alg", ctx.alg["rate"], "--seconds", str(seconds or ctx.args.rate_seconds)]
    out = {}
    for obj, prefix in (("token", ""), ("copy", "copy_")):
        if obj not in objects:
            continue
        r = subprocess.run(base + ["--threads", threads or f"1,{CORES}", "--object", obj],
                           env=h.env, capture_output=True, text=True)
        if r.returncode != 0:
            return {"error": r.stderr.strip()}
        j = json.loads(r.stdout)
        out.update({f"{prefix}threads_{x['threads']}_per_s": x["per_second"] for x in j["runs"]})
    if "procs" in objects:
        argv = base + ["--threads", "1", "--object", "copy"]
        ps = [subprocess.Popen(argv, env=h.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True) for _ in range(CORES)]
        total = 0.0
        for p in ps:
            so, se = p.communicate()
            if p.returncode != 0:
                return {"error": se.strip()}
            total += json.loads(so)["runs"][0]["per_second"]
        out[f"copy_procs_{CORES}_per_s"] = round(total, 1)
    return out


# -- driver ---------------------------------------------------------------------------

class Ctx:
    pass


def summarize(runs):
    def spread(k):
        v = [r[k] for r in runs]
        return {"median": statistics.median(v), "min": min(v), "max": max(v)}
    return {"n": len(runs), "wall_s": spread("wall_s"), "cpu_s": spread("cpu_s"),
            "max_rss_kb": spread("max_rss_kb")}


def fmt(s, unit, scale=1.0, digits=2):
    med = s["median"] / scale
    if s["min"] == s["max"]:
        return f"{med:.{digits}f} {unit}"
    return f"{med:.{digits}f} {unit} ({s['min'] / scale:.{digits}f}..{s['max'] / scale:.{digits}f})"


def table(res):
    """Markdown: one row per signer and key store, then why the missing
    ones are missing."""
    rows = ["| signer | keys | wall (median, min..max) | CPU user+sys | peak RSS | "
            "RRSIGs | RRSIGs / wall s |", "|---|---|---|---|---|---|---|"]
    notes = []
    for label, p in res["peers"].items():
        name, keys = label.split("/")
        if "summary" not in p:
            why = p.get("unavailable") or p.get("failed") or "no run"
            notes.append(f"{len(notes) + 1}. {label}: {why.strip()}")
            what = "unavailable" if "unavailable" in p else "failed"
            rows.append(f"| {name} | {keys} | {what} ({len(notes)}) | | | | |")
            continue
        s = p["summary"]
        nsig = p["rrsigs"]
        rows.append(f"| {name} | {keys} | {fmt(s['wall_s'], 's')} | {fmt(s['cpu_s'], 's')} | "
                    f"{fmt(s['max_rss_kb'], 'MiB', 1024, 1)} | {nsig} | "
                    f"{nsig / s['wall_s']['median']:.0f} |")
    return "\n".join(rows + ([""] + notes if notes else []))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--domains", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ds-fraction", type=float, default=0.1)
    ap.add_argument("--glue-fraction", type=float, default=0.1)
    ap.add_argument("--zone-file", help="sign this unsigned zone of tld. instead")
    ap.add_argument("--alg", choices=sorted(ALGS), default="ecdsap256sha256")
    ap.add_argument("--nsec", action="store_true", help="NSEC instead of NSEC3 opt-out")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--peers", default="bind,ldns,knot,zonedist",
                    help="comma list of bind, ldns, knot, zonedist")
    ap.add_argument("--keys", default="soft,token", help="soft, token or both")
    ap.add_argument("--rate-seconds", type=int, default=5)
    ap.add_argument("--rate-each-round", action="store_true",
                    help="also the token's all-thread and all-process rates (session copy, "
                         "3 s) right before and after each zonedistd run, against its "
                         "signing rate")
    ap.add_argument("--verify-max", type=int, default=100000,
                    help="ldns-verify-zone every output up to this many domains")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "zd-sign-peers"),
                    help="zone cache and per-run directories")
    ap.add_argument("--also-build", action="append", default=[], metavar="DIR",
                    help="time zonedistd of this build too, in the same rounds (a change "
                         "against the build before it); repeatable")
    ap.add_argument("--sign-processes", action="append", type=int, default=[], metavar="N",
                    help="time zonedistd with hsm.sign-processes N too (default row: 0, one "
                         "per core); repeatable")
    ap.add_argument("--keep", action="store_true", help="keep signed outputs and keys")
    ap.add_argument("--json", help="write the results here too")
    a = ap.parse_args()
    os.environ["ZD_BUILD"] = a.build
    peers = a.peers.split(",")
    keyset = a.keys.split(",")

    ctx = Ctx()
    ctx.args, ctx.alg, ctx.registry = a, ALGS[a.alg], None
    os.makedirs(os.path.join(a.work, "zones"), exist_ok=True)
    ctx.run_dir = tempfile.mkdtemp(prefix="run-", dir=a.work)
    res = {"zone": ZONE, "algorithm": a.alg, "denial": "NSEC" if a.nsec else "NSEC3 opt-out",
           "rounds": a.rounds, "cores": CORES, "run_dir": ctx.run_dir, "peers": {}}
    ctx.hsm = SoftHsm(label="sign-peers").init_token()
    ctx.zonedist_probe = (zonedist_config_probe(ctx) if "zonedist" in peers
                          else (False, "not asked for"))
    try:
        if a.zone_file:
            ctx.zone_file = os.path.abspath(a.zone_file)
            res["zone_file"] = ctx.zone_file
        else:
            ctx.zone_file = os.path.join(a.work, "zones", zone_key(a) + ".zone")
            res.update(domains=a.domains, seed=a.seed, zone_file=ctx.zone_file)
            cached = os.path.exists(ctx.zone_file)
            if not cached or (ctx.zonedist_probe[0] and "zonedist" in peers):
                print(f"building the registry ({a.domains} domains)...", file=sys.stderr)
                ctx.registry = Registry(a)
                res["registry_fill_s"] = ctx.registry.fill_s
            if not cached:
                t0 = time.monotonic()
                ctx.registry.axfr_to(ctx.zone_file, a.domains)
                res["unsigned_axfr_s"] = round(time.monotonic() - t0, 1)
        unsigned = zone_stats(ctx.zone_file)
        res["unsigned_records"] = sum(unsigned["types"].values())
        res["unsigned_types"] = unsigned["types"]
        verify = a.zone_file is None and a.domains <= a.verify_max or \
            a.zone_file is not None and res["unsigned_records"] <= 4 * a.verify_max

        planned = []
        for p in peers:
            for k in keyset:
                if p == "bind":
                    planned.append(Bind(ctx, k))
                elif p == "ldns":
                    planned.append(Ldns(ctx, k))
                elif p == "knot":
                    planned.append(Knot(ctx, k))
                elif p == "zonedist" and k == "token":
                    planned.append(Zonedist(ctx))
                    planned += [Zonedist(ctx, b) for b in a.also_build]
                    planned += [Zonedist(ctx, procs=n) for n in a.sign_processes]
        ready = []
        for peer in planned:
            entry = res["peers"].setdefault(peer.label, {"runs": []})
            try:
                peer.prepare()
                ready.append(peer)
            except Unavailable as e:
                entry["unavailable"] = str(e)
                print(f"{peer.label}: unavailable: {e}", file=sys.stderr)
            except PeerFailed as e:
                entry["failed"] = f"key setup: {e}"
                print(f"{peer.label}: key setup failed: {e}", file=sys.stderr)

        res["hsm_rate_before"] = hsm_rate(ctx)
        print(f"token raw rate: {res['hsm_rate_before']}", file=sys.stderr)
        for rnd in range(a.rounds):
            order = ready[rnd % len(ready):] + ready[:rnd % len(ready)] if ready else []
            for peer in order:
                entry = res["peers"][peer.label]
                if "failed" in entry:
                    continue
                out = os.path.join(peer.dir, f"signed-{rnd}.zone")
                log = os.path.join(peer.dir, f"sign-{rnd}.log")
                adjacent = a.rate_each_round and isinstance(peer, Zonedist)
                rate = {}
                try:
                    if adjacent:  # the token's rate right before and after it
                        rate["before"] = hsm_rate(ctx, ("copy", "procs"), str(CORES), 3)
                    m = peer.sign(out, log)
                    if adjacent:
                        rate["after"] = hsm_rate(ctx, ("copy", "procs"), str(CORES), 3)
                    st = check_signed(out, a, verify)
                except (PeerFailed, NotImplementedError) as e:
                    entry["failed"] = f"round {rnd}: {e}"
                    print(f"{peer.label}: {e}", file=sys.stderr)
                    continue
                m["round"], m["position"] = rnd, order.index(peer)
                entry["runs"].append(m)
                entry["argv"] = peer.argv
                entry["rrsigs"] = st["types"].get("RRSIG", 0)
                entry["counts"] = {"types": st["types"], "rrsig_covers": st["rrsig_covers"]}
                if verify:
                    entry["ldns_verify_zone"] = st["ldns_verify_zone"]
                print(f"round {rnd} {peer.label}: {m['wall_s']} s, "
                      f"{m['max_rss_kb'] / 1024:.1f} MiB", file=sys.stderr)
                if "signing_ms" in m:
                    sps = m["signatures"] * 1000 / max(m["signing_ms"], 1)
                    m["signing_per_s"] = round(sps)
                    line = (f"  {peer.label}: reading {m.get('reading_ms')} ms, signing "
                            f"{m['signing_ms']} ms ({sps:.0f}/s; processes busy "
                            f"{m.get('pool_busy_ms')} ms, waited for {m.get('pool_wait_ms')} ms), "
                            f"gate {m.get('gate_ms')} ms, "
                            f"checkpoint {m.get('checkpoint_ms')} ms")
                    for when, r in rate.items():
                        for key, what in ((f"copy_threads_{CORES}_per_s", "threads"),
                                          (f"copy_procs_{CORES}_per_s", "processes")):
                            m[f"raw_{what}_{when}"] = r.get(key)
                            if r.get(key):
                                line += (f"; {sps / r[key]:.0%} of {CORES} {what}' raw rate "
                                         f"{when} ({r[key]}/s)")
                    print(line, file=sys.stderr)
                if not a.keep:
                    os.unlink(out)
        res["hsm_rate_after"] = hsm_rate(ctx)
    finally:
        if ctx.registry:
            ctx.registry.stop()
        ctx.hsm.cleanup()
        if not a.keep:
            shutil.rmtree(ctx.run_dir, ignore_errors=True)
            res.pop("run_dir")

    for entry in res["peers"].values():
        if entry["runs"]:
            entry["summary"] = summarize(entry["runs"])
    # Outputs that differ in what they sign (e.g. which names get NSEC3)
    # are shown, not hidden: the comparison is only fair if these match.
    counts = {k: (p["counts"]["types"].get("NSEC3", 0) + p["counts"]["types"].get("NSEC", 0),
                  p["rrsigs"]) for k, p in res["peers"].items() if "counts" in p}
    if len(set(counts.values())) > 1:
        res["count_mismatch"] = {k: {"denial_records": v[0], "rrsigs": v[1]}
                                 for k, v in counts.items()}

    md = table(res)
    print(f"\n{res.get('domains', '?')} domains, {a.alg}, {res['denial']}, {a.rounds} round(s), "
          f"{CORES} cores; token raw rate before {res['hsm_rate_before']}, after "
          f"{res['hsm_rate_after']}\n")
    print(md)
    if "count_mismatch" in res:
        print("\nsigned outputs differ in size:", json.dumps(res["count_mismatch"]))
    res["table_md"] = md
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
