"""zonedistd under test: a generated YAML config, --init-db, start, wait
until it answers, stop (or kill -9), sanitizer check of its log."""

import os
import subprocess
import tempfile

from .dnsutil import soa_serial
from .proc import Daemon, free_port, wait_until, sanitizer_findings, log_tail

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def binary(name="zonedistd", build=None):
    build = build or os.environ.get("ZD_BUILD") or os.path.join(ROOT, "build")
    sub = {"zonedistd": "server", "zonedist-check": "integrity-check", "zonedistctl": "ctl"}[name]
    path = os.path.join(build, sub, name)
    if not os.path.exists(path):
        raise RuntimeError(f"{path} is not built (run ./test or ninja -C {build})")
    return path


APEX = ["tld. 86400 IN NS a.nic.tld.", "tld. 86400 IN NS b.nic.tld.",
        "a.nic.tld. 86400 IN A 192.0.2.53", "b.nic.tld. 86400 IN AAAA 2001:db8::53"]


class Zonedistd:
    def __init__(self, pg, zones=("tld.",), notify=(), acl=("127.0.0.0/8",), tsig=None,
                 serial_policy="increment", limits=None, log_level="info", apex=None,
                 ipv6=False, env=None, hsm=None, dnssec=None, soa=None, build=None,
                 api_token="test-token-0123456789", extra_config=(), hsm_backup=None,
                 hsm_ksk_token=None):
        """notify: [(port, keyname-or-None)]; acl: prefixes, or (prefix, key)
        pairs; tsig: [(name, algorithm, secret)]; hsm: a zdtest.softhsm.SoftHsm
        (its token and PIN file); dnssec: "on", "off" or a dict of dnssec:
        settings for every zone; soa: SOA settings overriding the defaults;
        build: the build tree to run (default: $ZD_BUILD, else build/);
        api_token: the API's state-change token (None: no token-file);
        extra_config: top-level YAML lines added to the configuration;
        hsm_backup: a dict of hsm backup: settings (docs/KEYS.md "Backups");
        hsm_ksk_token: a dict of hsm ksk-token: settings (docs/KEYS.md
        "Offline KSK")."""
        self.pg = pg
        self.dir = tempfile.mkdtemp(prefix="zd-zonedistd-")
        self.conf = os.path.join(self.dir, "zonedistd.yaml")
        self.log = os.path.join(self.dir, "zonedistd.log")
        self.zones = list(zones)
        self.notify = list(notify)
        self.acl = list(acl)
        self.tsig = list(tsig or [])
        self.serial_policy = serial_policy
        self.limits = dict(limits or {})
        self.log_level = log_level
        self.apex = apex
        self.ipv6 = ipv6  # also listen on [::1] at the same port
        self.env = env    # extra environment (test hooks)
        self.hsm = hsm
        self.build = build
        self.dnssec = dnssec
        self.soa = {"refresh": 60, "retry": 10, "expire": 1209600, "minimum": 300, "ttl": 300,
                    **(soa or {})}
        self.port = free_port()
        self.api_port = free_port()
        self.api_token = api_token
        self.extra_config = list(extra_config)
        self.hsm_backup = hsm_backup
        self.hsm_ksk_token = hsm_ksk_token
        self.api_socket = os.path.join(self.dir, "api.sock")
        self.daemon = None

    def write_config(self):
        lines = [f'database: "{self.pg.conninfo}"',
                 f'listen: ["127.0.0.1@{self.port}"'
                 + (f', "[::1]:{self.port}"]' if self.ipv6 else "]"),
                 f"log-level: {self.log_level}",
                 f'api: {{listen: ["127.0.0.1@{self.api_port}", "unix:{self.api_socket}"]'
                 + (f", token-file: {self.dir}/api.token" if self.api_token else "") + "}"]
        if self.api_token:
            with open(os.path.join(self.dir, "api.token"), "w") as f:
                f.write(self.api_token + "\n")
        lines += self.extra_config
        limits = {"poll-interval-ms": 500, "notify-timeout-ms": 500, "probe-interval-ms": 1000,
                  **self.limits}
        lines.append("limits: {" + ", ".join(f"{k}: {v}" for k, v in limits.items()) + "}")
        if self.tsig:
            lines.append("tsig-keys:")
            for name, alg, secret in self.tsig:
                lines.append(f'  - {{name: "{name}", algorithm: {alg}, secret: "{secret}"}}')
        if self.hsm is not None:
            backup = ""
            if self.hsm_backup:
                backup = ", backup: {" + ", ".join(f"{k}: {v}" for k, v in
                                                   self.hsm_backup.items()) + "}"
            if self.hsm_ksk_token:
                backup += ", ksk-token: {" + ", ".join(f"{k}: {v}" for k, v in
                                                       self.hsm_ksk_token.items()) + "}"
            lines.append(f"hsm: {{module: {self.hsm.module}, token-label: {self.hsm.label}, "
                         f"pin-file: {self.hsm.pin_file}{backup}}}")
        lines.append("zones:")
        for z in self.zones:
            apex = self.apex or [a.replace("tld.", z) for a in APEX]
            lines += [f"  - name: {z}",
                      f"    serial-policy: {self.serial_policy}",
                      f"    soa: {{mname: a.nic.{z}, rname: hostmaster.nic.{z}, "
                      + ", ".join(f"{k}: {v}" for k, v in self.soa.items()) + "}",
                      "    apex: [" + ", ".join(f'"{a}"' for a in apex) + "]"]
            if isinstance(self.dnssec, dict):
                lines.append("    dnssec: {" + ", ".join(f"{k}: {v}" for k, v in
                                                         self.dnssec.items()) + "}")
            elif self.dnssec is not None:
                lines.append(f"    dnssec: {self.dnssec}")
            if self.notify:
                lines.append("    notify:")
                for port, key in self.notify:
                    k = f", key: {key}" if key else ""
                    lines.append(f'      - {{address: "127.0.0.1@{port}"{k}}}')
            lines.append("    allow-transfer:")
            for a in self.acl:
                prefix, key = (a, None) if isinstance(a, str) else a
                k = f", key: {key}" if key else ""
                lines.append(f'      - {{prefix: "{prefix}"{k}}}')
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def run(self, *args, check=True):
        return subprocess.run([binary(build=self.build), "--config", self.conf, *args], capture_output=True,
                              text=True, check=check, timeout=120)

    def init_db(self):
        self.write_config()
        return self.run("--init-db")

    def start(self, deadline=120):
        self.write_config()
        for attempt in range(3):
            env = dict(os.environ, **(self.env or {}))
            if self.hsm is not None:
                env["SOFTHSM2_CONF"] = self.hsm.conf
            if isinstance(self.dnssec, dict) and \
                    str(self.dnssec.get("algorithm", "")).lower() in ("ed25519", "15"):
                # SoftHSM 2.6.1 leaks in every Ed25519 C_SignInit; zonedistd
                # suppresses leaks allocated in the module (server/zonedistd.c),
                # which LeakSanitizer sees only with full unwinding (libcrypto
                # has no frame pointers).  Slower, so only here.
                env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":fast_unwind_on_malloc=0"
            self.daemon = Daemon("zonedistd", [binary(build=self.build), "--config", self.conf], self.log,
                                 env=env).start()
            try:
                wait_until(lambda: self._answering(), deadline, "zonedistd answering SOA")
                return self
            except (TimeoutError, RuntimeError):
                self.daemon.stop()
                if "Address already in use" in log_tail(self.log, 50) and attempt < 2:
                    self.port = free_port()
                    self.api_port = free_port()
                    self.write_config()
                    continue
                raise RuntimeError("zonedistd did not start\n" + self.tail())
        return self

    def _answering(self):
        if not self.daemon.alive():
            raise RuntimeError("zonedistd exited")
        return all(self.serial(z) is not None for z in self.zones)

    def serial(self, zone="tld."):
        try:
            return soa_serial(self.port, zone, timeout=1.0)
        except Exception:  # noqa: BLE001 - not answering (yet)
            return None

    def wait_serial_change(self, before, zone="tld.", deadline=30):
        return wait_until(lambda: (s := self.serial(zone)) is not None and s != before and s,
                          deadline, f"zonedistd serial of {zone} moving past {before}")

    @property
    def api_url(self):
        return f"http://127.0.0.1:{self.api_port}"

    def api_get(self, path, timeout=30):
        """(status, parsed JSON or text) of GET path on the API."""
        return self.api_request("GET", path, timeout=timeout)

    def api_post(self, path, body=None, token=True, timeout=30):
        """(status, parsed JSON or text) of POST path with a JSON body;
        token: True for the configured token, a string for that one, None
        for no Authorization header."""
        if token is True:
            token = self.api_token
        return self.api_request("POST", path, body if body is not None else {}, token,
                                timeout)

    def api_request(self, method, path, body=None, token=None, timeout=30):
        import json
        import urllib.error
        import urllib.request
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.api_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                body, status, ctype = r.read(), r.status, r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            body, status, ctype = e.read(), e.code, e.headers.get("Content-Type", "")
        text = body.decode("utf-8", "replace")
        return status, (json.loads(text) if "json" in ctype else text)

    def stop(self):
        rc = self.daemon.stop() if self.daemon else None
        return rc

    def kill9(self):
        if self.daemon:
            self.daemon.kill9()

    def tail(self, lines=60):
        return f"--- zonedistd log {self.log} ---\n{log_tail(self.log, lines)}"

    def sanitizer_findings(self):
        return sanitizer_findings(self.log)

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def cleanup(self):
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)
