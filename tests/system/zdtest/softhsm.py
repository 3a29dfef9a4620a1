"""A SoftHSMv2 token in its own directory, selected through SOFTHSM2_CONF."""

import os
import shutil
import subprocess
import tempfile

MODULE = "/usr/lib/softhsm/libsofthsm2.so"


class SoftHsm:
    def __init__(self, label="zonedist", pin="1234", so_pin="5678"):
        self.dir = tempfile.mkdtemp(prefix="zd-hsm-")
        self.tokens = os.path.join(self.dir, "tokens")
        os.mkdir(self.tokens)
        self.conf = os.path.join(self.dir, "softhsm2.conf")
        with open(self.conf, "w") as f:
            f.write(f"directories.tokendir = {self.tokens}\nobjectstore.backend = file\n"
                    "log.level = ERROR\nslots.removable = false\n")
        self.label, self.pin, self.so_pin = label, pin, so_pin
        self.module = MODULE
        self.pin_file = os.path.join(self.dir, "pin")
        with open(self.pin_file, "w") as f:
            f.write(pin + "\n")
        os.chmod(self.pin_file, 0o600)

    @property
    def env(self):
        e = dict(os.environ)
        e["SOFTHSM2_CONF"] = self.conf
        return e

    def run(self, argv, **kw):
        return subprocess.run(argv, env=self.env, check=True, capture_output=True, **kw)

    def init_token(self):
        self.run(["softhsm2-util", "--init-token", "--free", "--label", self.label,
                  "--pin", self.pin, "--so-pin", self.so_pin])
        return self

    def tool(self, *args, **kw):
        """pkcs11-tool against this token, logged in."""
        return self.run(["pkcs11-tool", "--module", self.module, "--token-label", self.label,
                         "--login", "--pin", self.pin, *args], **kw)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)
