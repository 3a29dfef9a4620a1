"""The DNSSEC tooling other system tests rely on (zdtest.dnssec, Unbound),
proven on zones signed by ldns-signzone and dnssec-signzone, without
zonedistd: the three validators accept good zones and each rejects broken
ones; Unbound validates a served zone from its DS and SERVFAILs without it."""

import base64
import hashlib
import os
import shutil
import subprocess
import time

import dns.dnssec
import dns.flags
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from zdtest import dnssec
from zdtest.proc import wait_until

# origin -> how it is signed (all ECDSAP256SHA256 keys from ldns-keygen)
SIGNERS = {
    # ldns-signzone -p sets the opt-out flag on every NSEC3 but still gives
    # insecure delegations an NSEC3 of their own.
    "zdv-optout.": ["ldns-signzone", "-n", "-p", "-t", "0", "-s", ""],
    "zdv-nsec3.": ["ldns-signzone", "-n", "-t", "0", "-s", ""],
    "zdv-nsec.": ["ldns-signzone"],
    # dnssec-signzone -A leaves insecure delegations out of the chain, as
    # zonedistd does with opt-out.  -O full: one RR per line, like the rest,
    # so the line edits below cut whole records.
    "zdv-realoptout.": ["dnssec-signzone", "-3", "-", "-H", "0", "-A", "-O", "full"],
}
SECURE = [f"d{i:02d}" for i in range(0, 20, 2)]
INSECURE = [f"d{i:02d}" for i in range(1, 20, 2)]


def unsigned_zone(origin):
    rrs = ["@ 300 IN SOA ns1 hostmaster 2026112301 3600 600 86400 300",
           "@ 300 IN NS ns1", "@ 300 IN NS ns2",
           "ns1 300 IN A 192.0.2.1", "ns2 300 IN A 192.0.2.2", "www 300 IN A 192.0.2.80",
           # ent.<origin> exists only as an empty non-terminal
           "host.ent 300 IN A 192.0.2.99"]
    for i, d in enumerate(SECURE + INSECURE):
        if i % 3 == 0:  # in-bailiwick, with glue
            rrs += [f"{d} 300 IN NS ns.{d}", f"ns.{d} 300 IN A 192.0.2.{100 + i}"]
        else:
            rrs.append(f"{d} 300 IN NS ns.{d}.example.net.")
        if d in SECURE:
            digest = hashlib.sha256((d + origin).encode()).hexdigest()
            rrs.append(f"{d} 300 IN DS {1000 + i} 13 2 {digest}")
    return f"$ORIGIN {origin}\n" + "\n".join(rrs) + "\n"


def keygen(workdir, origin, ksk):
    argv = ["ldns-keygen", "-a", "ECDSAP256SHA256"] + (["-k"] if ksk else []) + [origin]
    return subprocess.run(argv, cwd=workdir, check=True, capture_output=True,
                          text=True).stdout.strip()


def sign(workdir, origin, keys, extra=(), out=None):
    src = os.path.join(workdir, origin + "zone")
    out = out or os.path.join(workdir, origin + "signed")
    argv = list(SIGNERS[origin])
    if argv[0] == "dnssec-signzone":
        argv += ["-o", origin]
    argv += list(extra) + ["-f", out, src] + keys
    subprocess.run(argv, cwd=workdir, check=True, capture_output=True)
    with open(out) as f:
        return f.read()


class Signed:
    def __init__(self, workdir, origin):
        self.dir = workdir
        self.origin = origin
        self.zsk = keygen(workdir, origin, ksk=False)
        self.ksk = keygen(workdir, origin, ksk=True)
        text = unsigned_zone(origin)
        if SIGNERS[origin][0] == "dnssec-signzone":  # wants the DNSKEYs in the zone
            for k in (self.zsk, self.ksk):
                with open(os.path.join(workdir, k + ".key")) as f:
                    text += f.read()
        with open(os.path.join(workdir, origin + "zone"), "w") as f:
            f.write(text)
        self.path = os.path.join(workdir, origin + "signed")
        self.text = sign(workdir, origin, [self.zsk, self.ksk])

    def signed_at(self, inception, expiration):
        """The zone signed again by the same keys for another validity window."""
        out = os.path.join(self.dir, f"{self.origin}{inception}-{expiration}")
        return sign(self.dir, self.origin, [self.zsk, self.ksk],
                    ["-i", str(inception), "-e", str(expiration)], out)

    def name(self, label):
        return f"{label}.{self.origin}"

    def nsec3_owner(self, label):
        n = dns.name.from_text(self.name(label))
        return f"{dns.dnssec.nsec3_hash(n, '', 0, 'SHA1').lower()}.{self.origin}"


@pytest.fixture(scope="module")
def zones(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("signed"))
    return {o: Signed(d, o) for o in SIGNERS}


def fields(line):
    f = line.split()
    return (f[0].lower(), f[3].upper(), f[4].upper() if len(f) > 4 else "") if len(f) > 3 \
        else ("", "", "")


def without(text, keep):
    out = [l for l in text.splitlines() if keep(fields(l))]
    assert len(out) < len(text.splitlines()), "nothing was removed"
    return "\n".join(out) + "\n"


def with_rrsig_from(text, other, owner, covered):
    """text whose RRSIG over (owner, covered) is the one from other."""
    key = (owner.lower(), "RRSIG", covered)
    sig = [l for l in other.splitlines() if fields(l) == key]
    assert len(sig) == 1
    out = [sig[0] if fields(l) == key else l for l in text.splitlines()]
    assert out != text.splitlines()
    return "\n".join(out) + "\n"


CHECKS = {"ldns-verify-zone": dnssec.ldns_verify_zone, "dnssec-verify": dnssec.dnssec_verify,
          "kzonecheck": dnssec.kzonecheck}


def each_rejects(text, origin, mention=None, **kw):
    """Every validator alone says no (and names `mention` when given), and
    verify_all raises naming all three."""
    # the breakage is in DNSSEC, not in the syntax: dnspython reads it
    dns.zone.from_text(text, origin, relativize=False)
    for tool, check in CHECKS.items():
        ok, out = check(text, origin, **kw)
        assert not ok, f"{tool} accepted a broken zone:\n{out}"
        if mention:
            assert mention.rstrip(".") in out.lower(), f"{tool} does not name {mention}:\n{out}"
    msg = verify_all_rejects(text, origin, **kw)
    for tool in CHECKS:
        assert f"{tool} rejects {origin}" in msg, msg
    return msg


def verify_all_rejects(text, origin, **kw):
    """verify_all's message; the zone file it keeps for reading is removed."""
    with pytest.raises(AssertionError) as e:
        dnssec.verify_all(text, origin, **kw)
    msg = str(e.value)
    kept = msg.split("zone kept in ")[1].split(")")[0]
    assert os.path.exists(kept)
    shutil.rmtree(os.path.dirname(kept))
    return msg


@pytest.mark.parametrize("origin", list(SIGNERS))
def test_all_validators_accept_a_well_signed_zone(zones, origin):
    z = zones[origin]
    dnssec.verify_all(z.text, origin)
    for tool, check in CHECKS.items():
        ok, out = check(z.text, origin)
        assert ok, f"{tool}:\n{out}"
    if origin == "zdv-realoptout.":  # really opted out: no NSEC3 for insecure delegations
        owners = {fields(l)[0] for l in z.text.splitlines() if fields(l)[1] == "NSEC3"}
        assert z.nsec3_owner(INSECURE[0]) not in owners
        assert z.nsec3_owner(SECURE[0]) in owners


@pytest.mark.parametrize("label,covered", [("d00", "DS"), ("ns1", "A"), ("@", "SOA"),
                                           ("@", "NS"), ("@", "DNSKEY"), ("nsec3:d02", "NSEC3")])
def test_each_validator_rejects_one_flipped_rrsig_bit(zones, label, covered):
    z = zones["zdv-optout."]
    owner = z.origin if label == "@" else \
        z.nsec3_owner(label[6:]) if label.startswith("nsec3:") else z.name(label)
    bad = dnssec.flip_rrsig_bit(z.text, owner, covered)
    # dnssec-verify reports a bad DNSKEY signature as "no self-signed KSK"
    each_rejects(bad, z.origin, mention=None if covered == "DNSKEY" else owner)


@pytest.mark.parametrize("origin", ["zdv-optout.", "zdv-realoptout."])
@pytest.mark.parametrize("label", ["d00", "ent", "ns1"])  # secure delegation, ENT, data
def test_each_validator_rejects_a_missing_nsec3(zones, origin, label):
    z = zones[origin]
    h = z.nsec3_owner(label)
    bad = without(z.text, lambda f: f[0] != h)  # the NSEC3 and its RRSIG
    each_rejects(bad, origin)


def test_each_validator_rejects_a_missing_nsec3_of_an_insecure_delegation(zones):
    # ldns-signzone put one in the chain: the chain now has a hole
    z = zones["zdv-optout."]
    h = z.nsec3_owner(INSECURE[0])
    each_rejects(without(z.text, lambda f: f[0] != h), z.origin)


def test_each_validator_rejects_an_unsigned_rrset(zones):
    z = zones["zdv-nsec3."]
    key = (z.name("www"), "RRSIG", "A")
    each_rejects(without(z.text, lambda f: f != key), z.origin, mention=z.name("www"))


def test_each_validator_rejects_an_expired_signature(zones):
    z = zones["zdv-optout."]
    day = 86400
    now = int(time.time())
    old = z.signed_at(now - 40 * day, now - 10 * day)
    bad = with_rrsig_from(z.text, old, z.name("d02"), "DS")
    each_rejects(bad, z.origin, mention=z.name("d02"))


def test_each_validator_rejects_a_signature_not_yet_valid(zones):
    z = zones["zdv-optout."]
    day = 86400
    now = int(time.time())
    new = z.signed_at(now + 10 * day, now + 40 * day)
    bad = with_rrsig_from(z.text, new, z.name("ns1"), "A")
    each_rejects(bad, z.origin, mention=z.name("ns1"))


# --- what each validator catches, when the breakage is properly signed ---

def _key(z, base):
    """(private key, DNSKEY rdata) of an ldns-keygen ECDSA P-256 key."""
    with open(os.path.join(z.dir, base + ".private")) as f:
        fields_ = dict(l.split(": ", 1) for l in f.read().splitlines() if ": " in l)
    scalar = int.from_bytes(base64.b64decode(fields_["PrivateKey"]), "big")
    with open(os.path.join(z.dir, base + ".key")) as f:
        rdata = f.read().split("DNSKEY", 1)[1]
    return ec.derive_private_key(scalar, ec.SECP256R1()), dns.rdata.from_text("IN", "DNSKEY",
                                                                              rdata)


def _resign(zone, z, owner, rdtype, base=None, key=None):
    """Replace the RRSIGs over (owner, rdtype) by one fresh signature."""
    priv, dnskey = key or _key(z, base or z.zsk)
    name = dns.name.from_text(owner)
    node = zone.find_node(name)
    rds = node.find_rdataset(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype))
    rrset = dns.rrset.RRset(name, dns.rdataclass.IN, rds.rdtype)
    rrset.update(rds)
    sig = dns.dnssec.sign(rrset, priv, dns.name.from_text(z.origin), dnskey, lifetime=86400)
    node.delete_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, rds.rdtype)
    node.find_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, rds.rdtype,
                       create=True).add(sig, rds.ttl)


def _set_nsec3(zone, z, owner, **changes):
    node = zone.find_node(dns.name.from_text(owner))
    rds = node.find_rdataset(dns.rdataclass.IN, dns.rdatatype.NSEC3)
    new, ttl = rds[0].replace(**changes), rds.ttl
    node.delete_rdataset(dns.rdataclass.IN, dns.rdatatype.NSEC3)
    node.find_rdataset(dns.rdataclass.IN, dns.rdatatype.NSEC3, create=True).add(new, ttl)
    _resign(zone, z, owner, "NSEC3")


def bitmap_without_ds(zone, z):
    h = z.nsec3_owner("d02")
    bitmap = dns.rdata.from_text("IN", "NSEC3", "1 0 0 - " + "0" * 32 + " NS RRSIG")
    _set_nsec3(zone, z, h, windows=bitmap.windows)


def dnskey_signed_by_zsk(zone, z):
    _resign(zone, z, z.origin, "DNSKEY", z.zsk)


def delegation_ns_signed(zone, z):
    _resign(zone, z, z.name(INSECURE[0]), "NS")


def glue_signed(zone, z):
    _resign(zone, z, z.name("ns.d00"), "A")


def optout_span_over_secure_delegation(zone, z):
    # drop d02's NSEC3; its predecessor now covers d02 with its opt-out span
    h = dns.name.from_text(z.nsec3_owner("d02"))
    chain = sorted(n for n in zone.nodes
                   if zone[n].get_rdataset(dns.rdataclass.IN, dns.rdatatype.NSEC3))
    prev = chain[chain.index(h) - 1]
    nxt = zone[h].find_rdataset(dns.rdataclass.IN, dns.rdatatype.NSEC3)[0].next
    del zone.nodes[h]
    _set_nsec3(zone, z, prev.to_text(), next=nxt)


def extra_rrsig_by_unknown_key(zone, z):
    priv = ec.generate_private_key(ec.SECP256R1())
    name = dns.name.from_text(z.name("www"))
    node = zone.find_node(name)
    rds = node.find_rdataset(dns.rdataclass.IN, dns.rdatatype.A)
    rrset = dns.rrset.RRset(name, dns.rdataclass.IN, dns.rdatatype.A)
    rrset.update(rds)
    stranger = dns.dnssec.make_dnskey(priv.public_key(), dns.dnssec.Algorithm.ECDSAP256SHA256)
    node.find_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, dns.rdatatype.A).add(
        dns.dnssec.sign(rrset, priv, dns.name.from_text(z.origin), stranger, lifetime=86400))


ALL = set(CHECKS)


# (origin, breakage, validators that reject it): the table in zdtest.dnssec's
# docstring; a validator upgrade that changes it fails here.
@pytest.mark.parametrize("origin,breakage,rejecting", [
    ("zdv-nsec3.", bitmap_without_ds, {"dnssec-verify", "kzonecheck"}),
    ("zdv-nsec3.", dnskey_signed_by_zsk, {"dnssec-verify", "kzonecheck"}),
    ("zdv-nsec3.", delegation_ns_signed, {"dnssec-verify", "kzonecheck"}),
    ("zdv-nsec3.", glue_signed, {"ldns-verify-zone", "kzonecheck"}),
    ("zdv-realoptout.", optout_span_over_secure_delegation, ALL),
    ("zdv-nsec3.", extra_rrsig_by_unknown_key, set()),
], ids=lambda v: getattr(v, "__name__", None))
def test_which_validators_catch_properly_signed_breakage(zones, origin, breakage, rejecting):
    z = zones[origin]
    zone = dns.zone.from_text(z.text, origin, relativize=False)
    breakage(zone, z)
    text = zone.to_text(relativize=False)
    # re-signing alone breaks nothing
    clean = dns.zone.from_text(z.text, origin, relativize=False)
    _resign(clean, z, z.name("ns1"), "A")
    dnssec.verify_all(clean.to_text(relativize=False), origin)
    rejected = {tool for tool, check in CHECKS.items() if not check(text, origin)[0]}
    assert rejected == rejecting
    if rejecting:
        verify_all_rejects(text, origin)
    else:
        dnssec.verify_all(text, origin)


def test_now_sets_the_clock_of_ldns_and_knot_not_bind(zones):
    z = zones["zdv-nsec3."]
    day = 86400
    now = int(time.time())
    future = z.signed_at(now + 10 * day, now + 40 * day)
    for check in (dnssec.ldns_verify_zone, dnssec.kzonecheck):
        assert check(future, z.origin)[0] is False
        assert check(future, z.origin, now=now + 20 * day)[0] is True
        # ldns-signzone's default validity is 4 weeks from now
        assert check(z.text, z.origin, now=now + 60 * day)[0] is False
    ok, out = dnssec.dnssec_verify(z.text, z.origin, now=now + 60 * day)
    assert ok and "no clock option" in out


def multiline_dnskeys(text):
    """The DNSKEYs in the text written as master files often do, in (...)."""
    out = []
    for line in text.splitlines():
        f = line.split(";")[0].split()
        if len(f) > 7 and f[3] == "DNSKEY":
            line = " ".join(f[:7]) + " (\n\t" + "\n\t".join(f[7:]) + " )"
        out.append(line)
    return "\n".join(out) + "\n"


def test_ds_records_match_the_ds_ldns_keygen_wrote(zones):
    for z in zones.values():
        got = dnssec.ds_records(z.text, z.origin)
        # the whole-zone parse (any master file) agrees with the fast path
        multi = multiline_dnskeys(z.text)
        assert multi != z.text
        assert dnssec.ds_records(multi, z.origin) == got
        assert len(got) == 1  # the KSK only, not the ZSK
        with open(os.path.join(z.dir, z.ksk + ".ds")) as f:
            want = f.read().split()
        assert want[2] == "DS" and want[5] == "2"  # SHA-256
        assert dns.rdata.from_text("IN", "DS", got[0].split(" DS ")[1]) == \
            dns.rdata.from_text("IN", "DS", " ".join(want[3:]))


# --- Unbound, validating the zones as served by NSD (a secondary of Knot) ---

def settled(sec, serials, deadline=20):
    """Wait until the secondary serves every zone at its serial, steadily:
    while NSD reloads after a transfer, the old server process can answer
    (without the new zones) for a few milliseconds next to the new one."""
    for o, serial in serials.items():
        sec.wait_serial(o, serial, deadline=deadline)
    good = []

    def steady():
        good.append(all(sec.serial(o) == s for o, s in serials.items() for _ in range(3)))
        return len(good) >= 4 and all(good[-4:])

    wait_until(steady, deadline, f"{sec.kind} answering steadily for {list(serials)}",
               interval=0.05)


def _ad(r):
    return bool(r.flags & dns.flags.AD)


def _rrtypes(section):
    return {rr.rdtype for rr in section}


def test_unbound_validates_served_zones_from_their_ds(zones, knot_factory, nsd_factory,
                                                      unbound_factory):
    t0 = time.monotonic()
    files = {o: z.path for o, z in zones.items()}
    primary = knot_factory(files)
    sec = nsd_factory(primary.port, list(files))
    serials = {o: primary.serial(o) for o in files}
    assert None not in serials.values(), f"Knot does not serve all zones\n{primary.tail()}"
    settled(sec, serials)
    for o in files:
        # the helpers on what NSD serves: AXFR text, all validators, DS
        served = dnssec.axfr_text(sec.port, o)
        dnssec.verify_all(served, o)
        assert dnssec.ds_records(served, o) == dnssec.ds_records(zones[o].text, o)
    anchors = [a for z in zones.values() for a in dnssec.ds_records(z.text, z.origin)]
    ub = unbound_factory({o: sec.port for o in files}, anchors)

    def ask(name, rdtype, rcode, ad):
        r = ub.query(name, rdtype)
        assert dns.rcode.to_text(r.rcode()) == rcode and _ad(r) == ad, \
            (f"{name} {rdtype}: got {dns.rcode.to_text(r.rcode())} AD={_ad(r)}, "
             f"want {rcode} AD={ad}\n{r}\n" + "\n".join(ub.validation_failures()[-5:]))
        return r

    for o in zones:
        r = ask(f"www.{o}", "A", "NOERROR", True)
        assert dns.rdatatype.A in _rrtypes(r.answer)
        # secure delegation: its signed DS
        r = ask(f"d02.{o}", "DS", "NOERROR", True)
        assert {dns.rdatatype.DS, dns.rdatatype.RRSIG} <= _rrtypes(r.answer)
        # an empty non-terminal: NODATA proven by its NSEC3/NSEC
        r = ask(f"ent.{o}", "A", "NOERROR", True)
        assert not r.answer
    for o in ("zdv-nsec3.", "zdv-nsec."):
        # without opt-out, a name error is proven securely ...
        ask(f"nothere.{o}", "A", "NXDOMAIN", True)
        # ... and so is "no DS" at an insecure delegation
        r = ask(f"{INSECURE[0]}.{o}", "DS", "NOERROR", True)
        assert not r.answer
    # With opt-out (RFC 5155 s6), the NSEC3 covering the next closer name may
    # hide an insecure delegation, so Unbound (nsec3_prove_nameerror) takes
    # the name error as insecure: NXDOMAIN, no AD, and no SERVFAIL either.
    # So zonedist's default (opt-out) gives NXDOMAIN without AD, as .com does.
    for o in ("zdv-optout.", "zdv-realoptout."):
        ask(f"nothere.{o}", "A", "NXDOMAIN", False)
    # The insecure delegation's own NSEC3 (ldns-signzone keeps one) proves
    # "no DS" securely; where opt-out left it out of the chain, the covering
    # opt-out NSEC3 proves it insecurely (RFC 5155 s8.6).
    r = ask(f"{INSECURE[0]}.zdv-optout.", "DS", "NOERROR", True)
    assert not r.answer
    r = ask(f"{INSECURE[0]}.zdv-realoptout.", "DS", "NOERROR", False)
    assert not r.answer
    assert time.monotonic() - t0 < 30


def test_unbound_servfails_a_bad_signature_and_a_wrong_anchor(zones, knot_factory,
                                                             nsd_factory, unbound_factory,
                                                             tmp_path):
    z = zones["zdv-nsec3."]
    # the zone served with one bad RRSIG (over d02's DS)
    bad = tmp_path / "bad.zone"
    bad.write_text(dnssec.flip_rrsig_bit(z.text, z.name("d02"), "DS"))
    primary = knot_factory({z.origin: str(bad)})
    sec = nsd_factory(primary.port, [z.origin])
    settled(sec, {z.origin: primary.serial(z.origin)})
    good_anchor = dnssec.ds_records(z.text, z.origin)
    ub = unbound_factory({z.origin: sec.port}, good_anchor)
    assert _ad(ub.query(z.name("d04"), "DS"))  # the rest validates
    r = ub.query(z.name("d02"), "DS")
    assert r.rcode() == dns.rcode.SERVFAIL, r
    assert any(z.name("d02") in l for l in ub.validation_failures()), ub.tail()

    # a trust anchor that matches no key: nothing in the zone validates
    a = good_anchor[0].split()
    a[-1] = "%064x" % (int(a[-1], 16) ^ 1)
    wrong = unbound_factory({z.origin: sec.port}, " ".join(a))
    for name, rdtype in ((z.name("d04"), "DS"), (z.name("www"), "A"),
                         (f"nothere.{z.origin}", "A")):
        r = wrong.query(name, rdtype)
        assert r.rcode() == dns.rcode.SERVFAIL and not _ad(r), r

    # the right anchor, but a clock after the signatures expired (ldns-signzone
    # signs for 4 weeks): Unbound checks RRSIG times
    late = time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() + 60 * 86400))
    expired = unbound_factory({z.origin: sec.port}, good_anchor, val_override_date=late)
    r = expired.query(z.name("www"), "A")
    assert r.rcode() == dns.rcode.SERVFAIL, r
