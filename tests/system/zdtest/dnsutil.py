"""DNS helpers: SOA, AXFR and IXFR from a server, zones as canonical RR sets."""

import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.rrset
import dns.tsigkeyring
import dns.xfr
import dns.zone


def soa_serial(port, zone, host="127.0.0.1", timeout=2.0):
    """The SOA serial the server answers for zone, or None if it has none."""
    q = dns.message.make_query(zone, "SOA")
    r = dns.query.udp(q, host, port=port, timeout=timeout)
    for rr in r.answer:
        if rr.rdtype == dns.rdatatype.SOA:
            return rr[0].serial
    return None


def _canon(owner, rdtype, ttl, rdata, origin):
    name = dns.name.from_text(str(owner), origin) if not isinstance(owner, dns.name.Name) \
        else owner
    if not name.is_absolute():
        name = name.derelativize(origin)
    return (name.canonicalize().to_text(), dns.rdatatype.to_text(rdtype), int(ttl),
            rdata.to_digestable(origin).hex())


def canon_lines(lines):
    """Presentation-form records ("owner ttl class type rdata") as the
    canonical tuples axfr() gives."""
    out = set()
    for line in lines:
        owner, ttl, rdclass, rdtype, rdata = line.split(None, 4)
        rr = dns.rrset.from_text(owner, int(ttl), rdclass, rdtype, rdata)
        for rd in rr:
            out.add(_canon(rr.name, rr.rdtype, rr.ttl, rd, dns.name.root))
    return out


def axfr_messages(port, zone, host="127.0.0.1", keyring=None, keyname=None, timeout=10.0):
    return list(dns.query.xfr(host, zone, port=port, keyring=keyring, keyname=keyname,
                              lifetime=timeout, timeout=timeout))


def axfr(port, zone, host="127.0.0.1", keyring=None, keyname=None, timeout=30.0):
    """The zone as a set of canonical (owner, type, ttl, rdata-hex) tuples,
    with exactly one SOA (the trailing copy is dropped)."""
    origin = dns.name.from_text(zone)
    rrs = []
    for msg in axfr_messages(port, zone, host, keyring, keyname, timeout):
        for rrset in msg.answer:
            for rd in rrset:
                rrs.append(_canon(rrset.name, rrset.rdtype, rrset.ttl, rd, origin))
    if len(rrs) < 2 or rrs[0][1] != "SOA" or rrs[-1] != rrs[0]:
        raise AssertionError(f"AXFR of {zone} is not framed by its SOA")
    body = rrs[:-1]
    s = set(body)
    if len(s) != len(body):
        raise AssertionError("AXFR carried duplicate records")
    return s


def zone_file_set(path, zone):
    """A master file as the same canonical set (for comparing with an AXFR)."""
    origin = dns.name.from_text(zone)
    z = dns.zone.from_file(path, origin=origin, relativize=False, check_origin=False)
    out = set()
    for name, ttl, rd in z.iterate_rdatas():
        out.add(_canon(name, rd.rdtype, ttl, rd, origin))
    return out


def without_soa(rrset_tuples):
    return {t for t in rrset_tuples if t[1] != "SOA"}


def ixfr(port, zone, serial, host="127.0.0.1", keyring=None, keyname=None, timeout=30.0,
         tcp=True):
    """Raw IXFR answer records in order, as (owner, type, ttl, rdata-hex, serial-if-SOA)."""
    origin = dns.name.from_text(zone)
    out = []
    if tcp:
        msgs = dns.query.xfr(host, zone, rdtype=dns.rdatatype.IXFR, serial=serial, port=port,
                             keyring=keyring, keyname=keyname, lifetime=timeout,
                             timeout=timeout, relativize=False)
    else:
        q = dns.message.make_query(zone, dns.rdatatype.IXFR)
        soa = dns.rrset.from_text(zone, 0, "IN", "SOA", f". . {serial} 0 0 0 0")
        q.authority.append(soa)
        msgs = [dns.query.udp(q, host, port=port, timeout=timeout)]
    for msg in msgs:
        for rrset in msg.answer:
            for rd in rrset:
                c = _canon(rrset.name, rrset.rdtype, rrset.ttl, rd, origin)
                out.append(c + ((rd.serial,) if rrset.rdtype == dns.rdatatype.SOA else (None,)))
    return out


def diff(a, b):
    """(removed, added) going from set a to set b."""
    return a - b, b - a
