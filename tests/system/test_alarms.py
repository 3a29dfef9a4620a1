"""Alarms (issue 8): a state change is told once by e-mail (SMTP) and once by
webhook (HTTP POST), and once more when it resolves; each says what happened
and what to do.  Real zonedistd, PostgreSQL and NSD; the SMTP and HTTP
sinks are small servers of this test on 127.0.0.1."""

import email
import http.server
import json
import socketserver
import threading
import time

from zdtest.env import Chain
from zdtest.proc import free_port, wait_until

ZONE = "tld."


class SmtpSink:
    """An SMTP server that keeps every message it is given."""

    def __init__(self):
        self.messages = []
        self.port = free_port()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                w = self.wfile.write
                w(b"220 sink ESMTP\r\n")
                rcpt = []
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    cmd = line.strip().upper()
                    if cmd.startswith((b"EHLO", b"HELO")):
                        w(b"250 sink\r\n")
                    elif cmd.startswith(b"MAIL FROM"):
                        w(b"250 ok\r\n")
                    elif cmd.startswith(b"RCPT TO"):
                        rcpt.append(line.strip()[8:].decode())
                        w(b"250 ok\r\n")
                    elif cmd == b"DATA":
                        w(b"354 go\r\n")
                        data = b""
                        while not data.endswith(b"\r\n.\r\n"):
                            chunk = self.rfile.readline()
                            if not chunk:
                                return
                            data += chunk
                        sink.messages.append((rcpt, email.message_from_bytes(data[:-5])))
                        w(b"250 queued\r\n")
                    elif cmd == b"QUIT":
                        w(b"221 bye\r\n")
                        return
                    else:
                        w(b"250 ok\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class HttpSink:
    """An HTTP server that keeps every POSTed JSON body and its headers."""

    def __init__(self):
        self.posts = []
        self.port = free_port()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                sink.posts.append((dict(self.headers), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_one_notification_when_nsd_stops_and_one_when_it_is_back(pg, spawn, tmp_path):
    smtp, hook = SmtpSink(), HttpSink()
    token = tmp_path / "hook.token"
    token.write_text("hook-secret-42\n")
    try:
        alarms = (f'alarms: {{interval-ms: 500, smtp: {{url: "smtp://127.0.0.1:{smtp.port}", '
                  f'from: "zonedist@nic.tld", to: ["noc@nic.tld", "oncall@nic.tld"]}}, '
                  f'webhook: {{url: "http://127.0.0.1:{hook.port}/hook", '
                  f'token-file: "{token}"}}}}')
        c = Chain(pg, spawn, secondaries=("nsd",),
                  zonedistd_kw={"extra_config": [alarms]})
        c.registry.bulk_fill(ZONE, 100, seed=3, triggers=False)
        c.start()
        c.settle()
        nsd = c.secondaries["nsd"]
        time.sleep(3)  # healthy: several evaluations, nothing to tell
        assert smtp.messages == [] and hook.posts == [], (smtp.messages, hook.posts)

        nsd.stop()
        wait_until(lambda: len(smtp.messages) >= 1 and len(hook.posts) >= 1, 30,
                   "the notifications of NSD being down")
        time.sleep(3)  # and no more while it stays down
        assert len(smtp.messages) == 1 and len(hook.posts) == 1, (smtp.messages, hook.posts)
        rcpt, msg = smtp.messages[0]
        assert sorted(rcpt) == ["<noc@nic.tld>", "<oncall@nic.tld>"]
        target = f"127.0.0.1@{nsd.port}"
        assert "CRITICAL" in msg["Subject"] and target in msg["Subject"], msg["Subject"]
        body = msg.get_payload()
        assert "What happened:" in body and "What to do:" in body and target in body, body
        headers, post = hook.posts[0]
        assert headers.get("Authorization") == "Bearer hook-secret-42"
        assert post["event"] == "firing" and post["severity"] == "critical"
        assert post["zone"] == ZONE and post["secondary"] == target
        assert post["summary"] and post["action"], post

        nsd.start()
        wait_until(lambda: len(smtp.messages) >= 2 and len(hook.posts) >= 2, 30,
                   "the notifications of NSD being back")
        time.sleep(3)
        assert len(smtp.messages) == 2 and len(hook.posts) == 2, (smtp.messages, hook.posts)
        assert "RESOLVED" in smtp.messages[1][1]["Subject"]
        assert hook.posts[1][1]["event"] == "resolved"
        assert hook.posts[1][1]["key"] == post["key"]
        assert hook.posts[1][1]["since_ms"] == post["since_ms"]
    finally:
        smtp.close()
        hook.close()


def test_alarm_config_is_checked(pg, spawn):
    from zdtest.zonedistd import Zonedistd
    zd = Zonedistd(pg, extra_config=['alarms: {smtp: {url: "smtp://127.0.0.1:25"}}'])
    zd.write_config()
    r = zd.run("--check", check=False)
    assert r.returncode != 0 and "alarms smtp needs from and at least one to" in r.stderr, r
    zd = Zonedistd(pg, extra_config=['alarms: {webhook: {url: "ftp://x"}}'])
    zd.write_config()
    r = zd.run("--check", check=False)
    assert r.returncode != 0 and "http:// or https://" in r.stderr, r
    zd.cleanup()
