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

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from pulumi import automation as auto

from model.identity import RELEASE_TYPE
from tests.e2e.postgres_support import TABLE, PostgresServer, running_postgres
from tests.support.engine import SECRETS, E2EStack, copy_project, dispose, new_stack

pytestmark = pytest.mark.postgres

FIRST_MESSAGE = "e2e: postgres backend first update"
SLOW_MESSAGE = "e2e: first of two concurrent updates"
REFUSED_MESSAGE = "e2e: second of two concurrent updates"
AFTER_RESTART_MESSAGE = "e2e: update after the server restarted"
# No node carries this label: astrago's pods never schedule, so its upgrade waits out the timeout.
NO_NODE_LABEL = "astrago.test/pool"
SLOW_TIMEOUT_S = 15


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server with an empty database for the state, stopped and deleted afterwards."""
    with running_postgres() as server:
        yield server


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
