"""Wrapped key backups (issue 7): every key zonedistd generates is copied,
wrapped with a wrapping key the security officer installed in both tokens,
into a second SoftHSM token and into a backup file; with require-backup a
new key is not published while its backup cannot be made.  The first token
is then destroyed, the keys are restored into a new token, from the files
and from the backup token, and zonedistd signs from it with the same key
tags.  Real zonedistd, PostgreSQL, SoftHSMv2, NSD, ldns-verify-zone."""

import os
import re
import shutil
import subprocess

import dns.dnssec
import pytest

from test_ctl import ctl, token_file
from zdtest import dnssec
from zdtest.env import Chain
from zdtest.proc import wait_until
from zdtest.zonedistd import binary

ZONE = "tld."
BACKUP = "zd-backup"


def init_token(hsm, label):
    hsm.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", hsm.pin,
             "--so-pin", hsm.so_pin])


def zonedistd(zd, hsm, *args):
    """zonedistd --config ... ARGS, as an offline command."""
    return subprocess.run([binary(build=zd.build), "--config", zd.conf, *args], env=hsm.env,
                          capture_output=True, text=True, timeout=120)


def check_value(out):
    m = re.search(r"check value ([0-9a-f]{16})", out)
    assert m, out
    return m.group(1)


def zone_keys(zd):
    """(flags, key tag) of every DNSKEY, and the zone text."""
    text = dnssec.axfr_text(zd.port, ZONE)
    return {(k.flags, dns.dnssec.key_id(k)) for k in dnssec.apex_dnskeys(text, ZONE)}, text


def verified(text):
    ok, out = dnssec.ldns_verify_zone(text, ZONE)
    assert ok, out
    return True


def test_keys_are_backed_up_wrapped_then_restored_into_a_new_token(pg, spawn, softhsm, tmp_path):
    first_token = set(os.listdir(softhsm.tokens))
    assert len(first_token) == 1
    init_token(softhsm, BACKUP)
    so_pin = tmp_path / "so.pin"
    so_pin.write_text(softhsm.so_pin + "\n")
    backup_pin = tmp_path / "backup.pin"
    shutil.copy(softhsm.pin_file, backup_pin)
    wrap_file, files = tmp_path / "wrap.key", tmp_path / "backups"
    c = Chain(pg, spawn, secondaries=("nsd",),
              zonedistd_kw=dict(hsm=softhsm, dnssec={"keys": "{require-backup: true}"},
                                hsm_backup={"token-label": BACKUP, "pin-file": backup_pin,
                                            "dir": files}))
    zd = c.zd

    # the ceremony: a new wrapping key into the first token, the same into the backup
    r = zonedistd(zd, softhsm, "--install-wrap-key", softhsm.label, "--so-pin-file", so_pin,
                  "--wrap-key-file", wrap_file)
    assert r.returncode == 0, r.stderr
    assert "the key is new" in r.stdout and oct(wrap_file.stat().st_mode & 0o777) == "0o400"
    kcv = check_value(r.stdout)
    r = zonedistd(zd, softhsm, "--install-wrap-key", BACKUP, "--so-pin-file", so_pin,
                  "--wrap-key-file", wrap_file)
    assert r.returncode == 0 and "the key is new" not in r.stdout, r.stderr
    assert check_value(r.stdout) == kcv
    r = zonedistd(zd, softhsm, "--install-wrap-key", BACKUP, "--so-pin-file", so_pin,
                  "--wrap-key-file", wrap_file)
    assert r.returncode == 1 and "already" in r.stderr, r.stderr
    r = zonedistd(zd, softhsm, "--install-wrap-key", BACKUP, "--so-pin-file",
                  softhsm.pin_file, "--wrap-key-file", wrap_file)  # the user PIN is not the SO's
    assert r.returncode == 1 and "CKR_PIN_INCORRECT" in r.stderr, r.stderr

    c.registry.bulk_fill(ZONE, 40, seed=5, triggers=False)
    c.start()
    c.settle()
    keys, text = zone_keys(zd)
    assert len(keys) == 2 and verified(text)
    log = zd.log_text()
    for flags, tag in keys:
        role = "KSK" if flags == 257 else "ZSK"
        assert re.search(rf"{role} {tag} \(key '[^']+'\) backed up, wrapped with "
                         rf"'zonedist-wrap', to token '{BACKUP}' and file ", log), log
    assert len(list(files.glob("*.wrapped"))) == 2

    # the backup token cannot be reached: the new ZSK of a roll is not published
    zsk = next(t for f, t in keys if f == 256)
    os.rename(backup_pin, str(backup_pin) + ".away")
    p = ctl("--token-file", token_file(zd), "key-compromised", ZONE, zsk, "--by", "test",
            zd=zd)
    assert p.returncode == 0, p.stderr
    wait_until(lambda: "require-backup: new ZSK" in zd.log_text(), 30, "the publish held")
    c.registry.add_domain("held-roll.tld.", ns=["ns1.example.net."])
    c.settle()
    keys_held, text = zone_keys(zd)
    assert keys_held == keys and "held-roll" in text  # changes flow, the keys do not
    assert len(list(files.glob("*.wrapped"))) == 2
    # back: the key is backed up, then published
    os.rename(str(backup_pin) + ".away", backup_pin)
    wait_until(lambda: len(zone_keys(zd)[0]) == 3, 60, "the new ZSK published")
    keys_now, text = zone_keys(zd)
    (new,) = [t for f, t in keys_now - keys]
    assert verified(text)
    assert re.search(rf"ZSK {new} \(key '[^']+'\) backed up", zd.log_text())
    backups = sorted(files.glob("*.wrapped"))
    assert len(backups) == 3 and any(f"ZSK-{new:05d}-" in b.name for b in backups)

    # the first token is destroyed
    zd.stop()
    shutil.rmtree(os.path.join(softhsm.tokens, first_token.pop()))

    # restore from the files into a new token with the same wrapping key
    init_token(softhsm, "zd-restored")
    r = zonedistd(zd, softhsm, "--install-wrap-key", "zd-restored", "--so-pin-file", so_pin,
                  "--wrap-key-file", wrap_file)
    assert r.returncode == 0 and check_value(r.stdout) == kcv, r.stderr
    softhsm.label = "zd-restored"
    zd.write_config()
    r = zonedistd(zd, softhsm, "--restore-keys", *map(str, backups))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("restored key") == 3, r.stdout
    r = zonedistd(zd, softhsm, "--restore-keys", *map(str, backups))
    assert r.returncode == 0 and r.stdout.count("kept key") == 3, r.stdout + r.stderr
    bad = tmp_path / "bad.wrapped"
    bad.write_text("zonedist-wrapped-key 1\nid 00\n")
    r = zonedistd(zd, softhsm, "--restore-keys", str(bad))
    assert r.returncode == 1 and "not a key backup" in r.stderr, r.stderr

    # and from the backup token into another new one
    init_token(softhsm, "zd-restored-2")
    r = zonedistd(zd, softhsm, "--install-wrap-key", "zd-restored-2", "--so-pin-file",
                  so_pin, "--wrap-key-file", wrap_file)
    assert r.returncode == 0, r.stderr
    softhsm.label = "zd-restored-2"
    zd.write_config()
    r = zonedistd(zd, softhsm, "--restore-keys")
    assert r.returncode == 0 and r.stdout.count("restored key") == 3, r.stdout + r.stderr
    assert f"token '{BACKUP}'" in r.stdout

    # with require-backup, no start while the backup cannot be checked
    softhsm.label = "zd-restored"
    os.rename(backup_pin, str(backup_pin) + ".away")
    with pytest.raises(RuntimeError):
        zd.start(deadline=10)
    assert re.search(r"zone tld\.: require-backup: [KZ]SK \d+ has no backup: .*backup\.pin",
                     zd.log_text()), zd.tail()
    os.rename(str(backup_pin) + ".away", backup_pin)

    # zonedistd signs from the restored token: the same keys, a valid zone
    zd.start()
    c.registry.add_domain("after-restore.tld.", ns=["ns1.example.net."])
    c.settle()
    keys_after, text = zone_keys(zd)
    assert keys_after == keys_now and "after-restore" in text
    assert verified(text)
    # the log is appended to: the two first keys and the roll's, none since
    assert len(re.findall(r"generated [KZ]SK key", zd.log_text())) == 3
    assert not zd.sanitizer_findings()
