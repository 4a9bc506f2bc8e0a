"""Shared state on PostgreSQL: Pulumi's DIY backend with a `postgres://` URL.

A real PostgreSQL server (the distribution's packages, installed by
`toolchain/install-postgres.sh`) runs from a temporary data folder on
127.0.0.1 only, with password authentication. The engine keeps a throwaway
stack of the `local` settings in it (Pulumi creates its table, `pulumi_state`,
on first use) and deploys onto the e2e cluster. The tests of this module run
in order on that one stack: an update, two updates at once from two processes
(the backend's lock row refuses the second), then a server restart after which
the history is still there and the next update works. The stack is destroyed
and removed, and the server stopped, whatever happens.
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
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pulumi import automation as auto

from model.identity import RELEASE_TYPE
from tests.e2e.conftest import SECRETS, E2EStack, copy_project, dispose, new_stack

INSTALL_HINT = "run `toolchain/install-postgres.sh` (apt-get update && apt-get install -y postgresql)"
PROGRAMS = ("initdb", "pg_ctl", "postgres", "psql")
# Seconds pg_ctl may take to start, restart or stop the server (it waits for readiness).
PG_CTL_WAIT_S = 60
DATABASE = "astrago_state"
USER = "astrago"
TABLE = "pulumi_state"
FIRST_MESSAGE = "e2e: postgres backend first update"
SLOW_MESSAGE = "e2e: first of two concurrent updates"
REFUSED_MESSAGE = "e2e: second of two concurrent updates"
AFTER_RESTART_MESSAGE = "e2e: update after the server restarted"
# No node carries this label: astrago's pods never schedule, so its upgrade waits out the timeout.
NO_NODE_LABEL = "astrago.test/pool"
SLOW_TIMEOUT_S = 15


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


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
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


@dataclass
class PgStack:
    """The throwaway stack kept in PostgreSQL, and the server behind it."""

    stack: E2EStack
    server: PostgresServer


@pytest.fixture(scope="module")
def pg_stack(postgres: PostgresServer, engine_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgStack]:
    """A stack of the `local` settings whose state lives in PostgreSQL; destroyed and removed afterwards."""
    env = {**engine_env, "PULUMI_BACKEND_URL": postgres.url}
    project = copy_project(tmp_path_factory.mktemp("pg-backend") / "project")
    stack = new_stack(project, env, "local", {}, prefix="e2e-pg")
    try:
        yield PgStack(stack=stack, server=postgres)
    finally:
        dispose(stack)


def test_up_keeps_the_stack_state_in_postgres(pg_stack: PgStack) -> None:
    result = pg_stack.stack.stack.up(message=FIRST_MESSAGE, color="never")
    assert result.summary.result == "succeeded", result.stderr
    releases = {r["name"] for r in json.loads(pg_stack.stack.helm("list", "-A", "-o", "json"))}
    assert {"astrago", "keycloak-addons"} <= releases, releases

    name = pg_stack.stack.name
    assert pg_stack.server.psql(f"SELECT to_regclass('{TABLE}') IS NOT NULL") == "t", "Pulumi created its table on first use"
    checkpoints = pg_stack.server.rows(f"%.pulumi/stacks/%/{name}.json")
    assert len(checkpoints) == 1, f"one checkpoint row for {name}: {sorted(checkpoints)}"
    [checkpoint] = checkpoints.values()
    assert RELEASE_TYPE.encode() in checkpoint, "the deployed releases are in the stored checkpoint"
    history = pg_stack.server.rows(f"%.pulumi/history/%/{name}/%")
    assert history, "the update left a history row"
    stored = b"\n".join([*checkpoints.values(), *history.values()])
    for key, value in SECRETS.items():
        assert value.encode() not in stored, f"{key} is stored in plain text in PostgreSQL"


def test_a_second_update_from_another_process_is_refused_while_the_first_runs(pg_stack: PgStack) -> None:
    stack = pg_stack.stack.stack
    # The first update waits (SLOW_TIMEOUT_S) for pods that cannot schedule, holding the stack's lock row meanwhile.
    stack.set_config(f'releases.astrago.values.nodeSelector["{NO_NODE_LABEL}"]', auto.ConfigValue("nowhere"), path=True)
    stack.set_config("releases.astrago.helm.timeout", auto.ConfigValue(f"{SLOW_TIMEOUT_S}s"), path=True)
    errors: list[BaseException] = []
    first = threading.Thread(target=_capture, args=(errors, lambda: stack.up(color="never", message=SLOW_MESSAGE)))
    started = time.monotonic()
    first.start()
    try:
        locks = f"%.pulumi/locks/%/{pg_stack.stack.name}/%.json"
        deadline = time.monotonic() + 60
        while not pg_stack.server.rows(locks) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pg_stack.server.rows(locks), "the first update wrote its lock row within 60 s"
        with pytest.raises(subprocess.CalledProcessError) as refused:
            pg_stack.stack.pulumi("up", "--yes", "--skip-preview", "--message", REFUSED_MESSAGE)
        message = refused.value.stderr
        assert "the stack is currently locked by 1 lock(s)" in message, message[-800:]
        assert pg_stack.server.password not in message + refused.value.stdout, "the lock message shows the database password"
        assert "postgres://****:****@127.0.0.1" in message, "the lock message names the database with its credentials masked"
    finally:
        first.join(timeout=600)
    took = time.monotonic() - started
    assert not first.is_alive(), "the first update ended within 600 s"
    assert len(errors) == 1 and "astrago" in str(errors[0]) and "schema" not in str(errors[0]), f"the first update failed on astrago's readiness: {errors}"
    assert took >= SLOW_TIMEOUT_S, f"the first update ran to its own end (astrago's {SLOW_TIMEOUT_S} s timeout), not {took:.1f} s"
    assert pg_stack.server.rows(locks) == {}, "the first update removed its lock row"


def test_history_survives_a_server_restart_and_the_next_update_works(pg_stack: PgStack) -> None:
    started = pg_stack.server.psql("SELECT pg_postmaster_start_time()")
    pg_stack.server.restart()
    assert pg_stack.server.psql("SELECT pg_postmaster_start_time()") != started, "the server process was restarted"
    history = json.loads(pg_stack.stack.pulumi("stack", "history", "--json"))
    assert [(h["message"], h["result"]) for h in reversed(history)] == [(FIRST_MESSAGE, "succeeded"), (SLOW_MESSAGE, "failed")], \
        "history after the restart: the first update, the slow one; the refused one left no trace"

    stack = pg_stack.stack.stack
    stack.remove_config(f'releases.astrago.values.nodeSelector["{NO_NODE_LABEL}"]', path=True)
    stack.remove_config("releases.astrago.helm", path=True)
    result = stack.up(message=AFTER_RESTART_MESSAGE, color="never")
    assert result.summary.result == "succeeded", result.stderr
    latest = json.loads(pg_stack.stack.pulumi("stack", "history", "--json", "--page-size", "1"))
    assert [(h["message"], h["result"]) for h in latest] == [(AFTER_RESTART_MESSAGE, "succeeded")], latest


def _capture(errors: list[BaseException], action: Callable[[], object]) -> None:
    try:
        action()
    except BaseException as error:  # reported by the test thread
        errors.append(error)
