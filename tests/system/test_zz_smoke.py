import subprocess, os, sys
sys.path.insert(0, "/work/main/tests/system")
from zdtest.env import Chain
from zdtest import dnsutil
import dns.zone

def axfr_zone_text(port, zone):
    lines = []
    seen = set()
    for msg in dnsutil.axfr_messages(port, zone, timeout=60):
        for rrset in msg.answer:
            for l in rrset.to_text().splitlines():
                if l not in seen:
                    seen.add(l); lines.append(l)
    return "$ORIGIN tld.\n" + "\n".join(lines) + "\n"

def test_smoke(pg, spawn, softhsm, tmp_path):
    c = Chain(pg, spawn, secondaries=("nsd",), zonedistd_kw=dict(hsm=softhsm, dnssec="on"))
    c.registry.bulk_fill("tld.", 300, seed=1, triggers=False)
    c.start()
    s = c.settle()
    txt = axfr_zone_text(c.zd.port, "tld.")
    p = tmp_path / "z"
    p.write_text(txt)
    r = subprocess.run(["ldns-verify-zone", "-V", "2", str(p)], capture_output=True, text=True)
    print(r.stdout[-3000:], r.stderr[-3000:])
    print(open(c.zd.log).read()[-3000:])
    assert r.returncode == 0

def verify(path):
    out = []
    for argv in (["ldns-verify-zone", "-V", "2", path], ["dnssec-verify", "-o", "tld.", path],
                 ["kzonecheck", "-o", "tld.", "-d", "on", path]):
        r = subprocess.run(argv, capture_output=True, text=True)
        out.append((argv[0], r.returncode, (r.stdout + r.stderr)[-1500:]))
    return out

def test_incr(pg, spawn, softhsm, tmp_path):
    from test_spine import Mutator
    c = Chain(pg, spawn, secondaries=("nsd",), zonedistd_kw=dict(hsm=softhsm, dnssec=os.environ.get("ZDS_DNSSEC", "on")))
    c.registry.bulk_fill("tld.", 2000, seed=1, triggers=False)
    c.start()
    c.settle()
    m = Mutator(c.registry, 7, n_domains=2000)
    for i in range(int(os.environ.get("ZDS_N", "10"))):
        for k in range(5): m.any(i * 5 + k)
        c.settle()
        p = tmp_path / f"z{i}"
        p.write_text(axfr_zone_text(c.zd.port, "tld."))
        res = verify(str(p))
        bad = [r for r in res if r[1] != 0]
        assert not bad, (i, bad)
    print(open(c.zd.log).read()[-4000:])
