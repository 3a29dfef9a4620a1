"""The foundation: every real component the system tests rely on starts,
does its job, and is torn down.  Knot stands in as the primary until
zonedistd serves zones itself."""

import hashlib
import subprocess

import dns.message
import dns.query
import dns.rdatatype
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from zdtest import dnsutil

ZONE = "example."


def write_zone(path, serial, extra=""):
    with open(path, "w") as f:
        f.write(f"""$ORIGIN example.
$TTL 300
@ IN SOA ns1.example. hostmaster.example. {serial} 3600 600 86400 300
@ IN NS ns1.example.
ns1 IN A 192.0.2.1
www IN A 192.0.2.80
child IN NS ns1.child
ns1.child IN A 192.0.2.53
secure IN NS ns.other.test.
secure IN DS 12345 13 2 {'ab' * 32}
{extra}""")


def test_postgres_answers_a_query(pg):
    assert pg.psql("SELECT 40 + 2").strip() == "42"
    conn = pg.connect()
    with conn, conn.cursor() as cur:
        cur.execute("SELECT current_setting('server_version_num')::int")
        assert cur.fetchone()[0] >= 150000


def test_softhsm_generates_p256_key_and_signs(softhsm, tmp_path):
    softhsm.tool("--keypairgen", "--key-type", "EC:prime256v1", "--id", "01", "--label", "zsk")
    # SoftHSM offers raw CKM_ECDSA over a digest (as zonedist uses it): hash
    # here, sign the SHA-256 digest in the token.
    message = b"zonedist signs this"
    data = tmp_path / "digest"
    data.write_bytes(hashlib.sha256(message).digest())
    sig = tmp_path / "sig"
    softhsm.tool("--sign", "--mechanism", "ECDSA", "--id", "01", "--input-file", str(data),
                 "--output-file", str(sig))
    pub = tmp_path / "pub.der"
    softhsm.tool("--read-object", "--type", "pubkey", "--id", "01", "--output-file", str(pub))
    key = serialization.load_der_public_key(pub.read_bytes())
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    raw = sig.read_bytes()
    assert len(raw) == 64  # r || s, as DNSSEC (RFC 6605) carries it
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key.verify(der, message, ec.ECDSA(hashes.SHA256()))  # raises if wrong
    with pytest.raises(Exception):
        key.verify(der, b"something else", ec.ECDSA(hashes.SHA256()))
    # The private key was made inside the token and cannot leave it.
    listing = softhsm.tool("--list-objects", "--type", "privkey", text=True).stdout
    assert "sensitive" in listing and "never extractable" in listing and "local" in listing


def _secondary_follows_knot(tmp_path, knot_factory, factory):
    zf = tmp_path / "example.zone"
    write_zone(zf, 2026112301)
    primary = knot_factory({ZONE: str(zf)})
    assert primary.serial(ZONE) == 2026112301
    sec = factory(primary.port, [ZONE])
    sec.wait_serial(ZONE, 2026112301, deadline=30)
    # It answers for the zone from what it transferred ...
    q = dns.message.make_query("www.example.", "A")
    r = dns.query.udp(q, "127.0.0.1", port=sec.port, timeout=2)
    assert [rd.address for rr in r.answer for rd in rr] == ["192.0.2.80"]
    assert r.flags & dns.flags.AA
    # ... and its AXFR equals the primary's zone file record for record.
    assert dnsutil.axfr(sec.port, ZONE) == dnsutil.zone_file_set(str(zf), ZONE)
    return sec


def test_nsd_transfers_a_zone_and_answers_for_it(tmp_path, knot_factory, nsd_factory):
    sec = _secondary_follows_knot(tmp_path, knot_factory, nsd_factory)
    assert any("serial 2026112301" in l for l in sec.transfers()), sec.tail()


def test_bind_transfers_a_zone_and_answers_for_it(tmp_path, knot_factory, bind_factory):
    sec = _secondary_follows_knot(tmp_path, knot_factory, bind_factory)
    assert any("Transfer completed" in l or "transfer of" in l for l in sec.transfers())


def test_zone_comparison_names_the_differing_record(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_zone(a, 1)
    write_zone(b, 1, extra="new IN NS ns1.child\n")
    sa, sb = dnsutil.zone_file_set(str(a), ZONE), dnsutil.zone_file_set(str(b), ZONE)
    removed, added = dnsutil.diff(sa, sb)
    assert removed == set()
    assert [(o, t) for (o, t, _, _) in added] == [("new.example.", "NS")]
    write_zone(b, 1)
    assert dnsutil.zone_file_set(str(b), ZONE) == sa
