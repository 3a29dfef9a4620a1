"""Offline KSK (issue 7, docs/KEYS.md "Offline KSK"): the KSK lives in a
SoftHSM token of its own that is connected only for a ceremony.  The
ceremony pre-signs the DNSKEY, CDS and CDNSKEY RRsets of every DNSKEY RRset
the coming quarter's ZSK schedule makes; the KSK token is then removed, and
on a simulated clock (two simulated days per tick) the quarter's ZSK rolls
and signature refreshes run from the bundles, while registry changes keep
flowing.  At every tick an Unbound resolver anchored at the zone's DS,
forwarding to an NSD secondary, validates a secure delegation's DS, an
NXDOMAIN, the apex DNSKEY and the newest delegation's DS, and every serial
passes ldns-verify-zone at the simulated time.  The run-out warning appears
at the first tick on or after the bundles' end minus bundle-warn, not
before.  Real zonedistd, PostgreSQL, SoftHSMv2, NSD, Unbound."""

import json
import os
import shutil
import time
import urllib.request
from datetime import datetime, timezone

from test_backup import init_token
from test_ctl import ctl, token_file
from test_keyroll import HOUR, ZONE, Sim, generated_zsks, zsk_rows
from zdtest import dnssec

DAY = 86400
KSK_TOKEN = "zd-ksk"
PERIOD, WARN, LIFE = 90 * DAY, 14 * DAY, 30 * DAY
POLICY = {"dnskey-ttl": "2h", "max-ttl": "2h", "nsec3-opt-out": "false", "cds": "true",
          "keys": "{zsk-lifetime: 30d, ksk-lifetime: unlimited, offline-ksk: true, "
                  "bundle-period: 90d, bundle-warn: 14d}"}


def offline_view(zd):
    status, v = zd.api_get("/api/v1/zones/tld/keys?days=90")
    assert status == 200, v
    return v


def ceremony_row(pg):
    rows = pg.psql("SELECT extract(epoch FROM made_at)::bigint, "
                   "extract(epoch FROM until_at)::bigint, slots, keysets "
                   "FROM zonedist.ksk_ceremony WHERE zone = 'tld.'").split()
    assert len(rows) == 1, rows
    return [int(x) for x in rows[0].split("|")]


def bundle_sigs(pg):
    """Every RRSIG the bundles hold, as (type covered, inception, expiration, tag)."""
    out = set()
    for line in pg.psql("SELECT records FROM zonedist.ksk_bundle WHERE zone = 'tld.'")\
            .splitlines():
        f = line.split()
        if len(f) > 12 and f[3] == "RRSIG":
            out.add((f[4], f[8], f[9], int(f[10])))
    return out


def served_sigs(text, rdtype):
    out = set()
    for line in text.splitlines():
        f = line.split()
        if len(f) > 12 and f[0] == ZONE and f[3] == "RRSIG" and f[4] == rdtype:
            out.add((f[4], f[8], f[9], int(f[10])))
    return out


def test_offline_ksk_presigned_quarter_runs_with_the_ksk_token_removed(
        pg, spawn, softhsm, unbound_factory, tmp_path):
    main_token = set(os.listdir(softhsm.tokens))
    init_token(softhsm, KSK_TOKEN)
    ksk_dir = set(os.listdir(softhsm.tokens)) - main_token
    assert len(ksk_dir) == 1
    ksk_pin = tmp_path / "ksk.pin"
    shutil.copy(softhsm.pin_file, ksk_pin)
    sim = Sim(pg, spawn, softhsm, unbound_factory, tmp_path, policy=POLICY, tick=2 * DAY,
              zd_kw=dict(hsm_ksk_token={"token-label": KSK_TOKEN, "pin-file": ksk_pin}))
    zd = sim.c.zd
    log = zd.log_text()
    # the first start, with the KSK token there, made the KSK there and a ceremony
    assert f"generated KSK 'tld. KSK' in the KSK token '{KSK_TOKEN}'" in log, log
    assert "KSK ceremony with KSK" in log, log
    # the main token holds no KSK: the KSK is only in the KSK token
    assert generated_zsks(zd, "KSK") == 0

    first = bundle_sigs(pg)  # the first start's ceremony; its signatures are served
    # The operator's ceremony: the coming quarter from now.
    sim.clock.set(sim.start + HOUR)
    sim.wait_checked()
    p = ctl("--token-file", token_file(zd), "ksk-ceremony", ZONE, zd=zd)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "KSK ceremony made" in p.stdout and "the KSK token may be disconnected" in p.stdout
    made, until, slots, keysets = ceremony_row(pg)
    assert (made, until) == (sim.start + HOUR, sim.start + HOUR + PERIOD)
    v = offline_view(zd)["offline_ksk"]
    assert (v["made_at"], v["until"], v["warn_at"], v["slots"], v["keysets"]) == \
        (made, until, until - WARN, slots, keysets), v
    assert v["running_out"] is False and v["last_error"] is None, v
    # one DNSKEY RRset now and one more for every ZSK publish or removal the
    # plan has in the quarter; their ZSKs are in the main token already
    plan = [s for s in offline_view(zd)["steps"]
            if s["role"] == "ZSK" and s["event"] in ("publish", "remove")
            and s["at"] < until]
    assert keysets == 1 + len(plan), (keysets, plan)
    publishes = sum(s["event"] == "publish" for s in plan)
    assert publishes >= 3 and generated_zsks(zd) == 1 + publishes, plan
    assert not [s for s in offline_view(zd)["steps"] if s["role"] == "KSK"]
    p = ctl("keys", "plan", ZONE, "--days", "90", zd=zd)
    assert p.returncode == 0 and f"offline KSK: {keysets} DNSKEY RRsets pre-signed at" in p.stdout \
        and "run the ceremony" not in p.stdout and "KSK #" not in p.stdout, p.stdout
    step = (30 * DAY - 24 * DAY) // 2  # (signature-validity - refresh) / 2
    assert slots >= keysets and slots <= keysets * (PERIOD // step + 2), slots
    presigned = bundle_sigs(pg)
    assert presigned and not presigned & first  # the new ceremony's slots replaced them
    ksk_tag = offline_view(zd)["ksk_roll"]["active"]
    assert {t for (_, _, _, t) in presigned} == {ksk_tag}
    assert {c for (c, _, _, _) in presigned} == {"DNSKEY", "CDS", "CDNSKEY"}

    # The KSK token goes away; zonedistd starts without it (from the bundles).
    ksk_dir = ksk_dir.pop()
    shutil.move(os.path.join(softhsm.tokens, ksk_dir), tmp_path / "ksk-token-away")
    assert set(os.listdir(softhsm.tokens)) == main_token
    sim.restart_killed()

    # The quarter, two simulated days per tick.
    served, warned_at = set(), None
    view = sim.tick(advance=False)
    while sim.clock.now < until + 2 * DAY:
        view = sim.tick()
        v = offline_view(zd)["offline_ksk"]
        due = sim.clock.now >= until - WARN
        assert v["running_out"] is due, (sim.clock.now - made, v)
        log = zd.log_text()
        if due and warned_at is None:
            warned_at = sim.clock.now
            assert "ALARM: offline KSK: the pre-signed DNSKEY, CDS and CDNSKEY signatures " \
                   "run out at" in log, log[-3000:]
        elif not due:
            assert "ALARM: offline KSK" not in log
        text = dnssec.axfr_text(zd.port, ZONE)
        for t in ("DNSKEY", "CDS", "CDNSKEY"):
            sigs = served_sigs(text, t)
            # made by the ceremony, not now: the KSK token is away
            assert sigs and sigs <= presigned | first, (sim.tick_n, t, sigs)
            served |= sigs
        if sim.clock.now >= until:
            break
    assert warned_at is not None and until - WARN <= warned_at < until - WARN + 2 * DAY
    sim.done()
    # The quarter's rolls were made with the pre-generated ZSKs, and the
    # DNSKEY signatures were refreshed from fresher slots as they aged.
    rows = zsk_rows(pg)
    assert [r["state"] for r in rows] == ["removed", "removed", "active"], rows
    assert generated_zsks(zd) == 1 + publishes, "a ZSK was generated after the ceremonies"
    # a fresher slot at least every (validity - refresh) = 6 days
    dnskey_sigs = {s for s in served if s[0] == "DNSKEY"}
    assert len({s[2] for s in dnskey_sigs}) >= PERIOD // (6 * DAY), sorted(dnskey_sigs)

    # Past the bundles' end plus (validity - refresh): no slot is fresher than
    # the DNSKEY RRSIG served, so the refresh leaves it (no serial churn).
    # (The ZSK's signatures are renewed first, a few names per poll.)
    sim.clock.set(until + 8 * DAY)
    sim.wait_checked()
    before = sim.c.settle()
    for _ in range(30):
        time.sleep(2)
        now_serial = sim.c.settle()
        if now_serial == before:
            break
        before = now_serial
    text = dnssec.axfr_text(zd.port, ZONE)
    (sig,) = served_sigs(text, "DNSKEY")
    exp = int(datetime.strptime(sig[1], "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc).timestamp())
    assert exp - sim.clock.now < 24 * DAY, sig  # due for renewal, but nothing fresher
    time.sleep(12)  # more than one refresh walk of the zone (about 8 s here)
    assert sim.c.settle() == before, "serials made with nothing to change"

    # What the operator sees once the warning is on: the status, its page,
    # the alarm's input, the metric.
    status, st = zd.api_get("/api/v1/status")
    ok = st["zones"][0]["keys"]["offline_ksk"]
    assert (ok["until"], ok["running_out"], ok["ran_out"]) == (until, True, True), ok
    page = urllib.request.urlopen(zd.api_url + "/", timeout=10).read().decode()
    assert "(offline KSK)" in page and "ran out" in page, page
    metrics = urllib.request.urlopen(zd.api_url + "/metrics", timeout=10).read().decode()
    assert f'zonedist_offline_ksk_bundles_until_timestamp_seconds{{zone="tld."}} {until}' \
        in metrics

    # A ceremony without the KSK token fails and says why; with it back,
    # the next quarter is pre-signed and the warning goes.
    generated = generated_zsks(zd)
    p = ctl("--token-file", token_file(zd), "ksk-ceremony", ZONE, zd=zd)
    assert p.returncode == 1 and f"the KSK token '{KSK_TOKEN}'" in p.stderr, (p.stdout, p.stderr)
    assert ceremony_row(pg)[0] == made and generated_zsks(zd) == generated  # nothing changed
    shutil.move(tmp_path / "ksk-token-away", os.path.join(softhsm.tokens, ksk_dir))
    p = ctl("--json", "--token-file", token_file(zd), "ksk-ceremony", ZONE, zd=zd)
    assert p.returncode == 0, (p.stdout, p.stderr)
    made2, until2, slots2, _ = ceremony_row(pg)
    assert (made2, until2) == (sim.clock.now, sim.clock.now + PERIOD)
    out = json.loads(p.stdout)
    assert (out["made_at"], out["until"], out["slots"]) == (made2, until2, slots2), out
    v = offline_view(zd)["offline_ksk"]
    assert v["running_out"] is False and v["last_error"] is None and v["until"] == until2, v
    sim.tick_n = (sim.clock.now - sim.start) // (2 * DAY)  # the next tick is after now
    sim.tick()
    text = dnssec.axfr_text(zd.port, ZONE)
    assert served_sigs(text, "DNSKEY") <= bundle_sigs(pg)  # refreshed from the new bundles
