"""The status page (issue 8) rendered by a real headless Chromium: the bars
are read from the DOM Chromium built (classes and data- attributes that
server/status_page.h promises), never from pixels.  Real zonedistd signing
with SoftHSMv2, PostgreSQL, NSD and BIND."""

import html.parser
import os
import shutil
import subprocess

import pytest

from zdtest.env import Chain
from zdtest.proc import wait_until

ZONE = "tld."
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


def chromium(url, tmp_path, *what):
    """Run headless Chromium on url with what (e.g. --dump-dom); its stdout."""
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    r = subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
                        f"--user-data-dir={profile}", "--virtual-time-budget=2000", *what, url],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, HOME=str(tmp_path)))
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


class Dom(html.parser.HTMLParser):
    """The bars of the DOM, and every element name, as Chromium serialised them."""

    def __init__(self, text):
        super().__init__()
        self.bars, self.tags, self.title = [], [], ""
        self._bar, self._in_title = None, False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        self._in_title = tag == "title"
        classes = (a.get("class") or "").split()
        if "bar" in classes:
            colors = [c for c in classes if c in ("green", "yellow", "red", "grey")]
            self._bar = {"bar": a.get("data-bar"), "secondary": a.get("data-secondary"),
                         "colors": colors, "title": a.get("title", ""), "text": ""}
            self.bars.append(self._bar)

    def handle_endtag(self, tag):
        if tag == "span":
            self._bar = None
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._bar is not None:
            self._bar["text"] += data
        if self._in_title:
            self.title += data


def page(zd, tmp_path):
    d = Dom(chromium(zd.api_url + "/", tmp_path, "--dump-dom"))
    for b in d.bars:  # exactly one colour per bar
        assert len(b["colors"]) == 1, b
    return d


def bars(d):
    return {(b["bar"], b["secondary"]): b for b in d.bars}


def test_all_green_with_healthy_secondaries_and_red_after_nsd_stops(pg, spawn, softhsm,
                                                                    tmp_path):
    c = Chain(pg, spawn, secondaries=("nsd", "bind"),
              zonedistd_kw=dict(hsm=softhsm, dnssec="on"))
    c.registry.bulk_fill(ZONE, 300, seed=11, triggers=False)
    c.start()
    c.settle()
    c.registry.add_domain("status-page.tld", ns=["ns1.example.net"])
    serial = c.settle()
    nsd, bind = c.secondaries["nsd"], c.secondaries["bind"]
    targets = {"nsd": f"127.0.0.1@{nsd.port}", "bind": f"127.0.0.1@{bind.port}"}

    def status():
        return c.zd.api_get("/api/v1/status")[1]["zones"][0]

    def ready():
        z = status()
        by = {s["address"]: s for s in z["secondaries"]}
        return (z["last_latency_ms"] is not None and z["signature_headroom"] is not None
                and all(by.get(t, {}).get("probe") and by[t]["probe"]["serial"] == serial
                        for t in targets.values()))
    wait_until(ready, 60, "probes of both secondaries and the signature headroom")

    d = page(c.zd, tmp_path)
    assert d.title == "zonedist status"
    got = bars(d)
    for kind in ("latency", "signatures", "keys", "hsm", "database"):
        assert got[(kind, None)]["colors"] == ["green"], got[(kind, None)]
    for t in targets.values():
        b = got[("secondary", t)]
        assert b["colors"] == ["green"], b
        assert f"serial {serial}" in b["text"], b
    z = status()
    assert str(z["keys"]["ksk_tag"]) in got[("keys", None)]["text"]
    # every bar on the page is green: none hidden in another colour
    assert {b["colors"][0] for b in d.bars} == {"green"}, d.bars

    shot = tmp_path / "green.png"
    chromium(c.zd.api_url + "/", tmp_path, f"--screenshot={shot}", "--window-size=1400,600")
    with open(shot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"

    nsd.stop()
    wait_until(lambda: any(s["address"] == targets["nsd"] and s["probe"]
                           and s["probe"]["reachable"] is False
                           for s in status()["secondaries"]), 60, "NSD seen unreachable")
    got = bars(page(c.zd, tmp_path))
    b = got[("secondary", targets["nsd"])]
    assert b["colors"] == ["red"] and "unreachable" in b["text"], b
    assert got[("secondary", targets["bind"])]["colors"] == ["green"]
    for kind in ("latency", "signatures", "keys", "hsm", "database"):
        assert got[(kind, None)]["colors"] == ["green"], got[(kind, None)]


def test_hold_reason_is_escaped_and_unsigned_bars_are_grey(pg, spawn, tmp_path):
    c = Chain(pg, spawn, secondaries=())
    c.registry.bulk_fill(ZONE, 20, seed=12, triggers=False)
    c.start()
    c.settle()
    reason = '<script>document.title="pwned"</script><img src=x onerror="alert(1)">&'
    status, e = c.zd.api_post(f"/api/v1/zones/{ZONE.rstrip('.')}/hold",
                              {"by": "alice<b>", "reason": reason})
    assert status == 200, e
    d = page(c.zd, tmp_path)
    assert d.title == "zonedist status"  # the script did not run
    assert "script" not in d.tags and "img" not in d.tags, d.tags
    got = bars(d)
    lat = got[("latency", None)]
    assert lat["colors"] == ["yellow"], lat
    assert "alice<b>" in lat["text"] and reason in lat["title"], lat
    for kind in ("signatures", "keys", "hsm"):
        assert got[(kind, None)]["colors"] == ["grey"], got[(kind, None)]
    assert got[("database", None)]["colors"] == ["green"]
