"""NSD, BIND 9 and Knot started from generated configs on 127.0.0.1 high
ports, each in its own directory, as secondaries (NSD, BIND, Knot) or as a
primary (Knot); Unbound as a validating resolver of test zones."""

import os
import shutil
import tempfile

import dns.flags
import dns.message
import dns.query

from .dnsutil import soa_serial
from .proc import Daemon, free_port, wait_until, sanitizer_findings, log_tail


FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


class _Server:
    kind = "server"

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix=f"zd-{self.kind}-")
        self.port = None
        self.daemon = None
        self.log = os.path.join(self.dir, f"{self.kind}.log")

    def serial(self, zone):
        try:
            return soa_serial(self.port, zone, timeout=1.0)
        except Exception:  # noqa: BLE001 - not answering yet
            return None

    def wait_serial(self, zone, serial, deadline=30):
        return wait_until(lambda: self.serial(zone) == serial, deadline,
                          f"{self.kind} serving {zone} at serial {serial} "
                          f"(now {self.serial(zone)})")

    def wait_serial_at_least(self, zone, serial, deadline=30):
        def ok():
            s = self.serial(zone)
            return s is not None and ((s - serial) % 2**32) < 2**31
        return wait_until(ok, deadline, f"{self.kind} serving {zone} at serial >= {serial}")

    def start(self, deadline=20):
        last = None
        for attempt in range(5):
            if self.port is None or attempt > 0:
                self.port = free_port()
            self.write_config()
            self.daemon = Daemon(self.kind, self.argv(), getattr(self, "out", self.log),
                                 env=getattr(self, "env", None), cwd=self.dir).start()
            try:
                wait_until(self.ready, deadline, f"{self.kind} ready on port {self.port}")
                return self
            except TimeoutError as e:
                last = e
                self.daemon.stop()
                if "in use" not in open(self.log, errors="replace").read():
                    break
        raise RuntimeError(f"{self.kind} did not start: {last}\n{self.daemon.tail()}")

    def ready(self):
        if not self.daemon.alive():
            raise RuntimeError(f"{self.kind} exited")
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", self.port)) == 0
        finally:
            s.close()

    def stop(self):
        if self.daemon:
            self.daemon.stop()

    def tail(self):
        return self.daemon.tail() if self.daemon else ""

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def nsd_server_conf(d, port, log):
    """The server: and remote-control: sections of an NSD config in d."""
    return f"""server:
  ip-address: 127.0.0.1@{port}
  port: {port}
  username: ""
  chroot: ""
  zonesdir: "{d}"
  database: ""
  zonelistfile: "{d}/zone.list"
  xfrdfile: "{d}/xfrd.state"
  xfrdir: "{d}"
  pidfile: "{d}/nsd.pid"
  logfile: "{log}"
  verbosity: 2
  server-count: 1
  tcp-count: 20
  do-ip6: no
  refuse-any: no
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
  xfrd-reload-timeout: 0
remote-control:
  control-enable: no
"""


class Nsd(_Server):
    """NSD 4 as a secondary of (primary_port, zones)."""
    kind = "nsd"

    def __init__(self, primary_port, zones, tsig=None, port=None, source=None,
                 axfr_fallback=True):
        super().__init__()
        self.primary_port = primary_port
        self.zones = zones
        self.tsig = tsig  # (name, algorithm, secret)
        self.port = port
        self.source = source  # loopback address it transfers from
        # False: after a failed IXFR, retry IXFR instead of falling back to
        # AXFR (the first load of an empty zone is an AXFR all the same)
        self.axfr_fallback = axfr_fallback

    def write_config(self):
        d = self.dir
        key = "NOKEY"
        keycfg = ""
        if self.tsig:
            name, alg, secret = self.tsig
            key = name
            keycfg = f'key:\n  name: "{name}"\n  algorithm: {alg}\n  secret: "{secret}"\n'
        zones = "".join(
            f'zone:\n  name: "{z}"\n  zonefile: "{d}/{z}zone"\n'
            f"  request-xfr: 127.0.0.1@{self.primary_port} {key}\n"
            f"  allow-notify: 127.0.0.1 {key}\n"
            f"  allow-axfr-fallback: {'yes' if self.axfr_fallback else 'no'}\n"
            f"  provide-xfr: 127.0.0.0/8 NOKEY\n"
            + (f"  outgoing-interface: {self.source}\n" if self.source else "")
            for z in self.zones)
        with open(os.path.join(d, "nsd.conf"), "w") as f:
            f.write(nsd_server_conf(d, self.port, self.log) + keycfg + zones)

    def argv(self):
        return ["nsd", "-d", "-c", os.path.join(self.dir, "nsd.conf")]

    def transfers(self):
        """Lines of NSD's log that report a transfer (IXFR or AXFR)."""
        text = open(self.log, errors="replace").read()
        return [l for l in text.splitlines() if "xfr" in l.lower() and "serial" in l.lower()]


class Bind(_Server):
    """BIND 9 (named) as a secondary."""
    kind = "named"

    def __init__(self, primary_port, zones, tsig=None, port=None, source=None):
        super().__init__()
        self.primary_port = primary_port
        self.zones = zones
        self.tsig = tsig
        self.port = port
        self.source = source

    def write_config(self):
        d = self.dir
        keycfg = ""
        keyref = ""
        if self.tsig:
            name, alg, secret = self.tsig
            keycfg = f'key "{name}" {{ algorithm {alg}; secret "{secret}"; }};\n'
            keyref = f' key "{name}"'
        zones = "".join(
            f'zone "{z}" {{ type secondary; file "{d}/{z}db"; '
            f"primaries port {self.primary_port} {{ 127.0.0.1{keyref}; }}; "
            f"allow-notify {{ 127.0.0.1; }}; request-ixfr yes; }};\n"
            for z in self.zones)
        with open(os.path.join(d, "named.conf"), "w") as f:
            f.write(f"""{keycfg}options {{
  directory "{d}";
  pid-file "{d}/named.pid";
  listen-on port {self.port} {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }};
  recursion no;
  dnssec-validation no;
  notify no;
  allow-transfer {{ any; }};
  max-refresh-time 5;
  min-refresh-time 1;
  max-retry-time 5;
  min-retry-time 1;
  {"transfer-source " + self.source + ";" if self.source else ""}
}};
controls {{ }};
logging {{
  channel all {{ file "{self.log}"; print-time yes; severity info; }};
  category default {{ all; }};
  channel xferin {{ file "{self.log}"; print-time yes; severity debug 3; }};
  category xfer-in {{ xferin; }};
  category notify {{ all; }};
}};
{zones}""")

    def argv(self):
        # -f, not -g: -g would force all logging to stderr and ignore the
        # channels; -d 3 lets the xfer-in channel log "requesting IXFR".
        return ["named", "-f", "-d", "3", "-n", "1", "-c", os.path.join(self.dir, "named.conf")]

    def start(self, deadline=20):
        self.log = os.path.join(self.dir, "named.log")  # the config's channels
        self.out = os.path.join(self.dir, "named.out")  # named's own stderr
        return super().start(deadline)

    def tail(self):
        return f"{super().tail()}\n--- named log {self.log} ---\n{log_tail(self.log)}"

    def transfers(self):
        text = open(self.log, errors="replace").read()
        return [l for l in text.splitlines() if "transfer of" in l]


KNOT_POLICY = """policy:
  - id: parent
    algorithm: ecdsap256sha256
    ksk-lifetime: 0
    zsk-lifetime: 0
    rrsig-lifetime: 400d
    rrsig-refresh: 7d
    nsec3: off
"""


class Knot(_Server):
    """Knot DNS as a primary serving zone files (until zonedistd exists it is
    the tiny test primary) or as a secondary of primary_port."""
    kind = "knot"

    def __init__(self, zones, primary_port=None, notify_ports=(), ddns=False, signing=False):
        super().__init__()
        self.zones = zones  # {zone: zonefile path or None for a secondary}
        self.primary_port = primary_port
        self.notify_ports = list(notify_ports)
        # ddns: accept RFC 2136 updates from 127.0.0.0/8 and keep a journal
        # of changes, so secondaries get IXFR (the benchmark's peer mode)
        self.ddns = ddns
        # signing: Knot signs the zones it serves (ECDSAP256SHA256, NSEC,
        # keys of its own that never roll, signatures valid 400 days, so a
        # resolver on a clock a simulated year ahead still takes them): a
        # signed parent zone for a resolver's trust anchor
        self.signing = signing

    def write_config(self):
        d = self.dir
        remotes = ""
        for i, p in enumerate(self.notify_ports):
            remotes += f"  - id: sec{i}\n    address: 127.0.0.1@{p}\n"
        if self.primary_port:
            remotes += f"  - id: primary\n    address: 127.0.0.1@{self.primary_port}\n"
        zones = ""
        for z, path in self.zones.items():
            zones += f"  - domain: {z}\n    file: {path or d + '/' + z + 'zone'}\n"
            if self.primary_port:
                zones += "    master: primary\n    acl: [notify_from_primary]\n"
            else:
                zones += "    acl: [xfr, upd]\n" if self.ddns else "    acl: [xfr]\n"
                if self.signing:
                    zones += "    dnssec-signing: on\n    dnssec-policy: parent\n"
                if self.notify_ports:
                    ids = ", ".join(f"sec{i}" for i in range(len(self.notify_ports)))
                    zones += f"    notify: [{ids}]\n"
        os.makedirs(os.path.join(d, "db"), exist_ok=True)  # journal and timers live there
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
{"remote:" + chr(10) + remotes if remotes else ""}{KNOT_POLICY if self.signing else ""}acl:
  - id: xfr
    address: 127.0.0.0/8
    action: transfer
  - id: notify_from_primary
    address: 127.0.0.0/8
    action: notify
  - id: upd
    address: 127.0.0.0/8
    action: update
template:
  - id: default
    storage: {d}
    zonefile-sync: -1
    journal-content: {"changes" if self.ddns else "none"}
zone:
{zones}""")

    def argv(self):
        return ["knotd", "-c", os.path.join(self.dir, "knot.conf")]


class Unbound(_Server):
    """Unbound as a validating resolver for test zones: each zone is a stub
    zone served by 127.0.0.1@port (a secondary under test) and validated from
    the trust anchors given (DS or DNSKEY RR text, e.g. dnssec.ds_records()).

    The test zones are not delegated from the real root, so nothing above
    them is ever asked; they are not domain-insecure: an answer that does not
    validate from the anchor is SERVFAIL.  Unbound checks signature times
    with its own clock (plus its default skew allowance); val_override_date
    ("YYYYMMDDHHMMSS", Unbound's debugging option) replaces that clock.
    With faketime_file, Unbound runs under libfaketime and its whole clock
    (signature times and its caches' TTLs) is the real one moved by the
    offset written in that file ("+Ns", re-read at every call); its event
    loop keeps the real monotonic clock."""
    kind = "unbound"

    def __init__(self, stubs, trust_anchors, port=None, val_override_date=None,
                 faketime_file=None):
        super().__init__()
        if faketime_file:
            self.env = dict(os.environ, LD_PRELOAD=FAKETIME_LIB,
                            FAKETIME_TIMESTAMP_FILE=faketime_file, FAKETIME_NO_CACHE="1",
                            FAKETIME_DONT_FAKE_MONOTONIC="1")
        self.stubs = dict(stubs)  # {zone: port of the server answering for it}
        self.trust_anchors = [trust_anchors] if isinstance(trust_anchors, str) \
            else list(trust_anchors)
        self.port = port
        self.val_override_date = val_override_date

    def write_config(self):
        d = self.dir
        anchors = "".join(f'  trust-anchor: "{a}"\n' for a in self.trust_anchors)
        stubs = "".join(f'stub-zone:\n  name: "{z}"\n  stub-addr: 127.0.0.1@{p}\n'
                        for z, p in self.stubs.items())
        override = (f"  val-override-date: \"{self.val_override_date}\"\n"
                    if self.val_override_date else "")
        with open(os.path.join(d, "unbound.conf"), "w") as f:
            f.write(f"""server:
  directory: "{d}"
  chroot: ""
  username: ""
  pidfile: "{d}/unbound.pid"
  do-daemonize: no
  interface: 127.0.0.1
  port: {self.port}
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  num-threads: 1
  so-reuseport: no
  do-not-query-localhost: no
  use-syslog: no
  logfile: "{self.log}"
  log-time-ascii: yes
  verbosity: 1
  log-servfail: yes
  val-log-level: 2
  module-config: "validator iterator"
  trust-anchor-signaling: no
  root-key-sentinel: no
{anchors}{override}remote-control:
  control-enable: no
{stubs}""")

    def argv(self):
        return ["unbound", "-d", "-c", os.path.join(self.dir, "unbound.conf")]

    def query(self, name, rdtype, timeout=5.0):
        """The resolver's answer to an RD query with the DO bit (dnspython
        message); over TCP when the UDP answer is truncated."""
        q = dns.message.make_query(name, rdtype, want_dnssec=True)  # RD is set
        r = dns.query.udp(q, "127.0.0.1", port=self.port, timeout=timeout)
        if r.flags & dns.flags.TC:
            r = dns.query.tcp(q, "127.0.0.1", port=self.port, timeout=timeout)
        return r

    def validation_failures(self):
        """Lines of the log where the validator explains a failure."""
        text = open(self.log, errors="replace").read()
        return [l for l in text.splitlines() if "validation failure" in l or "SERVFAIL" in l]


def sanitizer_report(*servers):
    out = []
    for s in servers:
        if s and s.daemon:
            out += sanitizer_findings(s.log)
    return out
