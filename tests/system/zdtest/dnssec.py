"""DNSSEC checks of a whole signed zone by three independent validators, and
the DS of its KSK for resolvers' trust anchors.

Tests call verify_all() on the AXFR text of a signed zone after every batch,
so it runs the validators in parallel and, when one of them says the zone is
bad, raises AssertionError naming the validator with its first lines of output
and the path of the zone file, which is then kept for reading.

What each validator catches was measured on zones signed by ldns-signzone and
dnssec-signzone (NSEC3; NSEC zones only shown to pass), then broken by hand
(and re-signed with the right key where the breakage must not show as a bad
signature).  All three catch: a flipped
bit in any RRSIG (SOA, NS, A, DS, NSEC3, DNSKEY), data changed after signing,
an RRset without RRSIG, an expired or not yet valid RRSIG, a missing NSEC3
(authoritative name, secure delegation, empty non-terminal, or opted-out
insecure delegation that the chain claimed), a chain whose opt-out span skips
a secure delegation or a name with data, a signed name without NSEC3.
Only some catch:
  - NSEC3 type bitmap wrong but properly signed: dnssec-verify, kzonecheck
    (not ldns-verify-zone, which checks chain and coverage only).
  - DNSKEY RRset signed by the ZSK only: dnssec-verify, kzonecheck.
  - NS RRset of a delegation signed: dnssec-verify, kzonecheck.
  - glue signed: ldns-verify-zone, kzonecheck (not dnssec-verify).
  - NSEC3PARAM whose parameters differ from the chain's: dnssec-verify,
    kzonecheck.
None catches an extra RRSIG made by a key that is not in the DNSKEY
RRset next to a valid one (resolvers ignore it too).  kzonecheck stops at the
first bad signature, so its output names one record, not all.
tests/system/test_validators.py checks this table (all but the NSEC3PARAM,
changed-data, opt-out-over-data and new-name rows, measured by hand once), so
a validator version that behaves differently fails there.

Time: ldns-verify-zone and kzonecheck check signatures at `now` (unix
seconds) when given; dnssec-verify (BIND 9.18) has no clock option and always
checks at the real time, so with `now` far from it, it judges a different
moment (its output then says so)."""

import base64
import os
import shutil
import subprocess
import tempfile
import time

import dns.dnssec
import dns.name
import dns.query
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.zone

VALIDATOR_TIMEOUT = 300  # seconds, per validator
OUTPUT_LINES = 30  # lines of a failing validator's output shown in the error

VALIDATORS = ("ldns-verify-zone", "dnssec-verify", "kzonecheck")


def _origin(origin):
    origin = str(origin)
    return origin if origin.endswith(".") else origin + "."


def _ldns_time(now):
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(int(now)))


def _argv(tool, path, origin, now):
    if tool == "ldns-verify-zone":
        # -V 3 (the default level): errors and the verdict, not every RR.
        # No -k/-S: the zone's own DNSKEYs verify it, nothing is chased.
        argv = ["ldns-verify-zone", "-V", "3"]
        if now is not None:
            argv += ["-t", _ldns_time(now)]  # absolute; a bare number is an offset
        return argv + [path]
    if tool == "dnssec-verify":
        # Neither -x nor -z: the strict default, which wants for every
        # algorithm in the DNSKEY RRset a self-signed KSK and every other
        # RRset signed by a ZSK of that algorithm (zonedist keeps a KSK/ZSK
        # split).  -q: errors only.
        return ["dnssec-verify", "-q", "-o", origin, path]
    if tool == "kzonecheck":
        # -d on: DNSSEC checks including every signature (Knot 3.2).
        argv = ["kzonecheck", "-d", "on", "-o", origin]
        if now is not None:
            argv += ["-t", str(int(now))]
        return argv + [path]
    raise ValueError(f"unknown validator {tool}")


def _write_zone(zone_text, origin, dirpath):
    path = os.path.join(dirpath, origin + "zone")
    with open(path, "w") as f:
        # Relative names in the text, if any, mean the zone's origin.
        f.write(f"$ORIGIN {origin}\n")
        f.write(zone_text)
        if not zone_text.endswith("\n"):
            f.write("\n")
    return path


class _Run:
    def __init__(self, tool, path, origin, now, timeout):
        self.tool = tool
        self.timeout = timeout
        self.note = ""
        if tool == "dnssec-verify" and now is not None and abs(now - time.time()) > 60:
            self.note = (f"(dnssec-verify has no clock option: checked at the real time, "
                         f"not at {_ldns_time(now)})\n")
        self.start = time.monotonic()
        self.proc = subprocess.Popen(_argv(tool, path, origin, now), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def result(self):
        left = max(0.1, self.timeout - (time.monotonic() - self.start))
        try:
            out, _ = self.proc.communicate(timeout=left)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
            return False, (self.note + out.decode(errors="replace")
                           + f"\n{self.tool}: killed after {self.timeout}s")
        text = self.note + out.decode(errors="replace")
        if self.proc.returncode != 0:
            text += f"\n{self.tool}: exit status {self.proc.returncode}"
        return self.proc.returncode == 0, text


def _run_alone(tool, zone_text, origin, now, timeout):
    origin = _origin(origin)
    d = tempfile.mkdtemp(prefix="zd-verify-")
    try:
        return _Run(tool, _write_zone(zone_text, origin, d), origin, now, timeout).result()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def ldns_verify_zone(zone_text, origin, now=None, timeout=VALIDATOR_TIMEOUT):
    """(ok, output) of ldns-verify-zone: every RRSIG, NSEC3/NSEC chain and
    coverage.  Not the NSEC3 type bitmaps nor which key signs the DNSKEYs."""
    return _run_alone("ldns-verify-zone", zone_text, origin, now, timeout)


def dnssec_verify(zone_text, origin, now=None, timeout=VALIDATOR_TIMEOUT):
    """(ok, output) of BIND's dnssec-verify: every algorithm in the DNSKEY
    RRset signs everything, a self-signed KSK per algorithm, chain and
    bitmaps.  Runs at the real time whatever `now` says."""
    return _run_alone("dnssec-verify", zone_text, origin, now, timeout)


def kzonecheck(zone_text, origin, now=None, timeout=VALIDATOR_TIMEOUT):
    """(ok, output) of Knot's kzonecheck -d on: semantic checks plus every
    signature, chain and bitmaps; reports the first bad signature only."""
    return _run_alone("kzonecheck", zone_text, origin, now, timeout)


def _excerpt(text, lines=OUTPUT_LINES):
    rows = [l for l in text.splitlines() if l.strip()]
    head = rows[:lines]
    if len(rows) > lines:
        head.append(f"... ({len(rows) - lines} more lines)")
    return "\n".join("    " + l for l in head)


def verify_all(zone_text, origin, now=None, timeout=VALIDATOR_TIMEOUT):
    """Check zone_text (a master file, e.g. axfr_text()) with all three
    validators at once; raise AssertionError naming each that rejects it."""
    origin = _origin(origin)
    d = tempfile.mkdtemp(prefix="zd-verify-")
    path = _write_zone(zone_text, origin, d)
    runs = []
    try:
        for t in VALIDATORS:
            runs.append(_Run(t, path, origin, now, timeout))
    except OSError:  # a validator is not installed: say which, leave none running
        for r in runs:
            r.proc.kill()
            r.proc.wait()
        shutil.rmtree(d, ignore_errors=True)
        raise
    failed = []
    for r in runs:
        ok, out = r.result()
        if not ok:
            failed.append(f"  {r.tool} rejects {origin}:\n{_excerpt(out)}")
    if not failed:
        shutil.rmtree(d, ignore_errors=True)
        return
    raise AssertionError(f"DNSSEC validation of {origin} failed in "
                         f"{len(failed)} of {len(runs)} validators (zone kept in {path}):\n"
                         + "\n".join(failed))


def axfr_text(port, zone, host="127.0.0.1", keyring=None, keyname=None, timeout=30.0):
    """The zone by AXFR as master-file text, one RR per line with absolute
    names, in the server's order, without the closing SOA."""
    lines = []
    for msg in dns.query.xfr(host, zone, port=port, keyring=keyring, keyname=keyname,
                             lifetime=timeout, timeout=timeout, relativize=False):
        for rrset in msg.answer:
            lines.append(rrset.to_text())
    if not lines or " SOA " not in lines[0]:
        raise AssertionError(f"AXFR of {zone} from port {port} does not start with its SOA")
    if len(lines) > 1 and lines[-1] == lines[0]:
        lines.pop()
    return "\n".join(lines) + "\n"


def axfr_text_dig(port, zone, host="127.0.0.1", timeout=60):
    """As axfr_text, through dig (a C client: ten times faster on 10k-name
    zones than parsing with dnspython); the closing SOA left out."""
    r = subprocess.run(["dig", f"@{host}", "-p", str(port), zone, "AXFR", "+onesoa", "+nocmd",
                        "+nocomments", "+nostats", f"+time={timeout}", "+tries=1"],
                       capture_output=True, text=True, timeout=timeout + 10)
    lines = [l for l in r.stdout.splitlines() if l and not l.startswith(";")]
    if r.returncode != 0 or not lines or "\tSOA\t" not in lines[0]:
        raise AssertionError(f"AXFR of {zone} from port {port} by dig failed: "
                             f"{(r.stdout + r.stderr)[-500:]}")
    return "\n".join(lines) + "\n"


def _simple_dnskeys(zone_text, origin):
    """DNSKEYs at origin from one-line 'owner ttl class DNSKEY ...' RRs (as
    axfr_text() and ldns-signzone write them), or None when the text mentions
    DNSKEY in a line of another form."""
    keys = []
    for line in zone_text.splitlines():
        if "DNSKEY" not in line.upper():
            continue
        data = line.split(";")[0]  # ldns appends ";{id = 6858 (ksk), ...}"
        f = data.split()
        if "DNSKEY" not in (t.upper() for t in f):
            continue  # only in a comment
        if len(f) > 4 and f[3].upper() in ("RRSIG", "NSEC", "NSEC3"):
            continue  # covered type or bitmap
        if len(f) < 8 or f[3].upper() != "DNSKEY" or "(" in data:
            return None
        if dns.name.from_text(f[0]) == origin:
            keys.append(dns.rdata.from_text("IN", "DNSKEY", " ".join(f[4:])))
    return keys or None


def apex_dnskeys(zone_text, origin):
    """The zone's DNSKEY rdatas (dnspython), from the text.  One-line RRs are
    read directly; any other form parses the whole zone (seconds for 100k
    records)."""
    origin = dns.name.from_text(_origin(origin))
    keys = _simple_dnskeys(zone_text, origin)
    if keys is not None:
        return keys
    z = dns.zone.from_text(zone_text, origin=origin, relativize=False, check_origin=False)
    rds = z.get_rdataset(origin, dns.rdatatype.DNSKEY)
    if rds is None:
        raise AssertionError(f"{origin} has no DNSKEY RRset")
    return list(rds)


def ds_records(zone_text, origin, digest="SHA256"):
    """DS RRs (text: 'owner IN DS ...') of every KSK (SEP flag, not revoked)
    in the zone's DNSKEY RRset, for trust anchors and parent zones."""
    name = dns.name.from_text(_origin(origin))
    out = []
    for key in apex_dnskeys(zone_text, origin):
        if key.flags & 0x0001 and not key.flags & 0x0080:  # SEP, not REVOKE
            ds = dns.dnssec.make_ds(name, key, digest)
            out.append(f"{name.to_text()} IN DS {ds.to_text()}")
    if not out:
        raise AssertionError(f"{name} has no KSK (DNSKEY with the SEP flag)")
    return out


def flip_rrsig_bit(zone_text, owner, covered, byte=10):
    """zone_text with one bit of the signature of the first RRSIG on
    (owner, covered type) flipped; raises if there is none.  RRs must be one
    a line as 'owner ttl class type rdata' (axfr_text(), ldns-signzone,
    dnssec-signzone -O full).  For tests that check a bad signature is seen."""
    owner = dns.name.from_text(owner)
    out = []
    done = False
    for line in zone_text.splitlines():
        f = line.split()
        if (not done and len(f) > 12 and f[3].upper() == "RRSIG"
                and f[4].upper() == covered.upper()
                and dns.name.from_text(f[0]) == owner):
            raw = bytearray(base64.b64decode("".join(f[12:])))
            raw[byte] ^= 0x01
            line = " ".join(f[:12] + [base64.b64encode(bytes(raw)).decode()])
            done = True
        out.append(line)
    if not done:
        raise ValueError(f"no one-line RRSIG {covered} at {owner} in the zone text")
    return "\n".join(out) + "\n"
