"""A throwaway PostgreSQL 15 cluster on a unix socket in its own directory."""

import os
import pwd
import shutil
import subprocess
import tempfile

from .proc import free_port, wait_until, log_tail

PGBIN = "/usr/lib/postgresql/15/bin"


def _as_postgres():
    """initdb refuses to run as root: drop to the postgres user when we are root."""
    if os.geteuid() != 0:
        return None, None
    pw = pwd.getpwnam("postgres")

    def demote():
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)

    return demote, pw


class Postgres:
    def __init__(self, base=None):
        demote, pw = _as_postgres()
        self._demote = demote
        # Not under pytest's tmp_path: that is 0700 root and the postgres user
        # could not reach it.
        self.dir = tempfile.mkdtemp(prefix="zd-pg-", dir=base)
        if pw:
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self.sock = self.dir
        self.log = os.path.join(self.dir, "postgres.log")
        self.port = None
        self.dbname = "registry"
        self.user = "postgres"

    def _run(self, argv, **kw):
        return subprocess.run(argv, preexec_fn=self._demote, check=True, capture_output=True,
                              text=True, **kw)

    def start(self, deadline=30):
        self._run([f"{PGBIN}/initdb", "-D", self.data, "-A", "trust", "-U", self.user,
                   "--no-sync", "-E", "UTF8", "--locale=C"])
        for attempt in range(5):
            self.port = free_port()
            opts = (f"-k {self.sock} -c listen_addresses='' -p {self.port} -c fsync=off "
                    "-c track_commit_timestamp=on -c max_connections=50")
            r = subprocess.run([f"{PGBIN}/pg_ctl", "-D", self.data, "-l", self.log, "-o", opts,
                                "-w", "-t", str(deadline), "start"],
                               preexec_fn=self._demote, capture_output=True, text=True)
            if r.returncode == 0:
                break
            if "already in use" not in log_tail(self.log, 20) or attempt == 4:
                raise RuntimeError(f"pg_ctl start failed: {r.stderr}\n{log_tail(self.log)}")
        wait_until(lambda: subprocess.run([f"{PGBIN}/pg_isready", "-h", self.sock, "-p",
                                           str(self.port)]).returncode == 0,
                   deadline, "pg_isready")
        self.psql("CREATE DATABASE registry", db="postgres")
        return self

    def server_stop(self):
        """Stop the server, keep the cluster (a database outage)."""
        subprocess.run([f"{PGBIN}/pg_ctl", "-D", self.data, "-m", "fast", "-t", "20", "stop"],
                       preexec_fn=self._demote, check=True, capture_output=True)

    def server_start(self, deadline=30):
        """Start the same cluster again, on the same port."""
        opts = (f"-k {self.sock} -c listen_addresses='' -p {self.port} -c fsync=off "
                "-c track_commit_timestamp=on -c max_connections=50")
        subprocess.run([f"{PGBIN}/pg_ctl", "-D", self.data, "-l", self.log, "-o", opts, "-w",
                        "-t", str(deadline), "start"], preexec_fn=self._demote, check=True,
                       capture_output=True)

    @property
    def conninfo(self):
        return f"host={self.sock} port={self.port} dbname={self.dbname} user={self.user}"

    def psql(self, sql, db=None, check=True):
        """Run SQL through psql; returns stdout (unaligned, tuples only, '|' separated)."""
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-h", self.sock, "-p", str(self.port), "-U", self.user,
                            "-d", db or self.dbname, "-c", sql],
                           capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"psql failed ({r.returncode}): {r.stderr}\nSQL: {sql[:500]}")
        return r.stdout

    def psql_file(self, path, db=None):
        r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.sock,
                            "-p", str(self.port), "-U", self.user, "-d", db or self.dbname,
                            "-f", str(path)], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"psql -f {path} failed: {r.stderr}")
        return r.stdout

    def connect(self):
        import psycopg2
        return psycopg2.connect(self.conninfo)

    def stop(self):
        if self.port is not None and os.path.exists(os.path.join(self.data, "postmaster.pid")):
            r = subprocess.run([f"{PGBIN}/pg_ctl", "-D", self.data, "-m", "fast", "-t", "20",
                                "stop"], preexec_fn=self._demote, capture_output=True)
            if r.returncode != 0:
                try:
                    with open(os.path.join(self.data, "postmaster.pid")) as f:
                        os.kill(int(f.readline()), 9)
                except (OSError, ValueError):
                    pass

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def tail(self):
        return f"--- postgres log {self.log} ---\n{log_tail(self.log)}"
