"""A real PostgreSQL server for the tests of the `postgres://` state backend (audit, fleet, the backend itself).

The distribution's packages (`make postgres`, toolchain/install-postgres.sh)
run from a temporary data folder on 127.0.0.1 only, with password
authentication; `running_postgres()` starts one and always stops and deletes it.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

INSTALL_HINT = "run `toolchain/install-postgres.sh` (apt-get update && apt-get install -y postgresql)"
PROGRAMS = ("initdb", "pg_ctl", "postgres", "psql")
# Seconds pg_ctl may take to start, restart or stop the server (it waits for readiness).
PG_CTL_WAIT_S = 60
DATABASE = "astrago_state"
USER = "astrago"
TABLE = "pulumi_state"
def postgres_bindir() -> Path:
    """The folder holding initdb, pg_ctl, postgres and psql; fails with the install command when there is none."""
    candidates: list[Path] = []
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    # Debian and Ubuntu keep the server programs out of PATH, one folder per major version.
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    candidates.extend(versions)
    for folder in candidates:
        if all(os.access(folder / program, os.X_OK) for program in PROGRAMS):
            return folder
    raise AssertionError(f"PostgreSQL's programs {', '.join(PROGRAMS)} are missing (looked on PATH and in /usr/lib/postgresql/*/bin): {INSTALL_HINT}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresServer:
    """One PostgreSQL server in a temporary folder, listening on 127.0.0.1 only.

    PostgreSQL refuses to run as root: as root, every server program runs as the
    `postgres` user the package creates; as anyone else, as that user.
    """

    bindir: Path
    root: Path
    port: int = 0
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    run_as: tuple[str, ...] = ()

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def url(self) -> str:
        """The state backend URL: Pulumi opens it with lib/pq and creates its table in this database."""
        return f"postgres://{USER}:{self.password}@127.0.0.1:{self.port}/{DATABASE}?sslmode=disable"

    def server_cmd(self, program: str, *args: str, timeout: float = PG_CTL_WAIT_S + 30) -> subprocess.CompletedProcess[str]:
        """Run a server program (initdb, pg_ctl) as the server's user; a failure shows the server log."""
        result = subprocess.run([*self.run_as, str(self.bindir / program), *args], capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else "(no server log)"
            raise AssertionError(f"{program} {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\nserver log:\n{log}")
        return result

    def init(self) -> None:
        """A new cluster whose only role is USER, with a password (scram-sha-256 for every connection)."""
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise AssertionError(f"running as root needs the `postgres` user that Debian's postgresql package creates: {INSTALL_HINT}") from None
            for path in (self.root, pwfile):
                os.chown(path, account.pw_uid, account.pw_gid)
            self.run_as = ("runuser", "-u", "postgres", "--")
        try:
            self.server_cmd("initdb", "--pgdata", str(self.data), "--username", USER, "--pwfile", str(pwfile),
                            "--auth", "scram-sha-256", "--encoding", "UTF8", "--no-instructions")
        finally:
            pwfile.unlink()

    def start(self) -> None:
        """Start on a free port of 127.0.0.1 (sockets in the temporary folder only) and wait until it accepts connections."""
        last = ""
        for _ in range(3):  # a port found free may be taken before the server binds it
            self.port = free_port()
            options = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root}"
            result = subprocess.run([*self.run_as, str(self.bindir / "pg_ctl"), "start", "--pgdata", str(self.data), "--wait",
                                     "--timeout", str(PG_CTL_WAIT_S), "--log", str(self.log), "-o", options],
                                    capture_output=True, text=True, timeout=PG_CTL_WAIT_S + 30, cwd=self.root)
            if result.returncode == 0:
                return
            last = result.stdout + result.stderr + (self.log.read_text(errors="replace")[-2000:] if self.log.exists() else "")
        raise AssertionError(f"pg_ctl start failed three times:\n{last}")

    def restart(self) -> None:
        """Stop the server (fast: open connections are closed) and start it again with the same options."""
        self.server_cmd("pg_ctl", "restart", "--pgdata", str(self.data), "--wait", "--timeout", str(PG_CTL_WAIT_S), "--mode", "fast", "--log", str(self.log))

    def stop(self) -> None:
        """Stop the server if it runs; an immediate stop when a fast one does not finish."""
        if not (self.data / "postmaster.pid").exists():
            return
        for mode in ("fast", "immediate"):
            result = subprocess.run([*self.run_as, str(self.bindir / "pg_ctl"), "stop", "--pgdata", str(self.data), "--wait",
                                     "--timeout", str(PG_CTL_WAIT_S), "--mode", mode],
                                    capture_output=True, text=True, timeout=PG_CTL_WAIT_S + 30, cwd=self.root)
            if result.returncode == 0:
                return

    def psql(self, sql: str, database: str = DATABASE) -> str:
        """Run one statement over TCP as USER; the password goes in the environment, never on a command line."""
        result = subprocess.run([str(self.bindir / "psql"), "--no-psqlrc", "--tuples-only", "--no-align", "--set", "ON_ERROR_STOP=1",
                                 "--host", "127.0.0.1", "--port", str(self.port), "--username", USER, "--dbname", database, "--command", sql],
                                capture_output=True, text=True, timeout=60, env={**os.environ, "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "10"})
        assert result.returncode == 0, f"psql {sql!r} failed: {result.stderr}"
        return result.stdout.strip()

    def rows(self, like: str) -> dict[str, bytes]:
        """Pulumi's blobs whose key matches a LIKE pattern, decoded: what the database holds.

        Keys are the file backend's paths under the URL's path (the database
        name): `astrago_state/.pulumi/stacks/astrago-deploy/<stack>.json`.
        """
        out = self.psql(f"SELECT json_build_object('key', key, 'data', data->>'data') FROM {TABLE} WHERE key LIKE '{like}' ORDER BY key")
        return {row["key"]: base64.b64decode(row["data"]) for row in map(json.loads, out.splitlines()) if row}



@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server with an empty database for the state, stopped and deleted afterwards."""
    bindir = postgres_bindir()
    # Not pytest's tmp_path: its parents are private to the current user, and the server runs as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="astrago-pg-"))
    server = PostgresServer(bindir=bindir, root=root)
    try:
        server.init()
        server.start()
        server.psql(f"CREATE DATABASE {DATABASE}", database="postgres")
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
