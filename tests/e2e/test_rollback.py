"""Rolling a stack back to an earlier update, through the documented path, on the local cluster.

The local stack plus mpi-operator, an external chart (a stand-in served on
127.0.0.1 and synced into the lock, as `make charts-sync` does). Update 1
deploys the committed configuration. Update 2 changes two astrago values and
moves mpi-operator from 1.2.2 to 1.2.3, and is run before the change is
committed (as when someone runs `make up` on a dirty checkout).
`audit restore --version 2` must refuse (its commit does not reproduce it);
`audit restore --version 1` checks, then with --apply writes update 1's
configuration back; after `charts-sync` fetches 1.2.2 again, `audit verify`
confirms it, and the deployment of that commit (update 3) runs update 1's
values and chart again. The audit then lists three updates, the third equal
to the first.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from commands.charts import sync
from tests.e2e.audit_support import audit, commit, configmap_value, git, init_repo, offline_env, set_values
from tests.support.chart_repo import build_repo, serve
from tests.support.engine import E2EStack, copy_project, dispose, new_stack

KEY = "DB_CONN_MAX_LIFETIME"


def _declare(project: Path, url: str, mpi_version: str) -> None:
    """Point every declared chart at the local repository; mpi-operator at the given version."""
    path = project / "charts" / "external.yaml"
    declared = yaml.safe_load(path.read_text())["charts"]
    for chart in declared:
        chart["repository"] = url
        if chart["name"] == "mpi-operator":
            chart["version"] = mpi_version
    path.write_text(yaml.safe_dump({"charts": declared}))


def _mpi_chart(stack: E2EStack) -> str:
    """The chart the mpi-operator release runs, as Helm and the cluster see it."""
    listed = {r["name"]: r["chart"] for r in json.loads(stack.helm("list", "-n", "mpi-operator", "-o", "json"))}
    rendered = stack.kubectl("get", "configmap", "mpi-operator-values", "-n", "mpi-operator", "-o", "jsonpath={.data.chart}").stdout
    assert listed["mpi-operator"] == rendered, (listed, rendered)
    return rendered


def test_rollback_to_update_1_through_audit_restore(tmp_path: Path, engine_env: dict[str, str]) -> None:
    project = copy_project(tmp_path / "project")
    init_repo(project)
    (project / ".gitignore").write_text((project / ".gitignore").read_text() + "charts/external/*.tgz\n")
    env = offline_env(engine_env)
    (tmp_path / "repo").mkdir()
    declared = yaml.safe_load((project / "charts" / "external.yaml").read_text())["charts"]
    with serve(tmp_path / "repo") as repo:
        build_repo(tmp_path / "repo", [(c["name"], c["version"]) for c in declared] + [("mpi-operator", "1.2.3")], repo.url)
        _declare(project, repo.url, "1.2.2")
        sync(project / "charts", None, 120)
        stack = new_stack(project, engine_env, "local", {"releases": {"mpi-operator": {"enabled": True}}}, prefix="rollback")
        stack_file = project / f"Pulumi.{stack.name}.yaml"
        try:
            first = commit(project, "configuration of update 1")
            started = time.monotonic()
            assert stack.stack.up(message="rollback: update 1", color="never").summary.result == "succeeded"
            assert configmap_value(stack, KEY) == "300" and _mpi_chart(stack) == "mpi-operator-1.2.2"

            set_values(stack, "astrago", {"mariadb.connMaxLifetime": 45, "features.oneview.enabled": False})
            _declare(project, repo.url, "1.2.3")
            assert sync(project / "charts", None, 120) == ["mpi-operator"]
            assert stack.stack.up(message="rollback: update 2 (uncommitted change)", color="never").summary.result == "succeeded"
            assert configmap_value(stack, KEY) == "45" and configmap_value(stack, "FEATURE_ONEVIEW") == "false"
            assert _mpi_chart(stack) == "mpi-operator-1.2.3"
            second = commit(project, "configuration of update 2")
            changed = stack_file.read_text()

            # Update 2 ran on commit 1 plus uncommitted changes: its commit does not reproduce it.
            refused = audit(env, "restore", "--stack", stack.name, "--version", "2", "--root", str(project), "--apply")
            print(refused.stderr)
            assert refused.returncode == 1, refused.stdout + refused.stderr
            assert "does not reproduce update 2" in refused.stderr
            assert "values.mariadb.connMaxLifetime is 300 here, 45 in update 2" in refused.stderr
            assert "release mpi-operator: chart version 1.2.2 here, 1.2.3 in update 2" in refused.stderr
            assert stack_file.read_text() == changed, "a refused restore changes nothing"

            # A dry run of the rollback to update 1: checked, nothing written. 1.2.2's archive is gone
            # (the sync replaced it), so the check uses the digest the commit's lock records.
            dry = audit(env, "restore", "--stack", stack.name, "--version", "1", "--root", str(project))
            print(dry.stdout)
            assert dry.returncode == 0, dry.stdout + dry.stderr
            assert f"update 1 ran at commit {first}" in dry.stdout and "resolves to exactly what update 1 deployed" in dry.stdout
            assert "connMaxLifetime: 300" in dry.stdout and "password: '[secret]'" in dry.stdout, dry.stdout
            assert "chart archives this checkout lacks: mpi-operator 1.2.2" in dry.stdout
            assert stack_file.read_text() == changed and (project / "charts/external/mpi-operator-1.2.3.tgz").is_file()

            # Uncommitted work where the restore writes: refused before anything changes.
            values_file = project / "values" / "astrago.yaml"
            values_file.write_text(values_file.read_text() + "# local edit\n")
            dirty = audit(env, "restore", "--stack", stack.name, "--version", "1", "--root", str(project), "--apply")
            assert dirty.returncode == 2 and "uncommitted changes" in dirty.stderr and "values/astrago.yaml" in dirty.stderr, dirty.stderr
            assert stack_file.read_text() == changed
            git(project, "checkout", "--", "values/astrago.yaml")

            applied = audit(env, "restore", "--stack", stack.name, "--version", "1", "--root", str(project), "--apply")
            print(applied.stdout[applied.stdout.index("update 1 ran at"):])
            assert applied.returncode == 0, applied.stdout + applied.stderr
            assert "removed archives the restored lock does not name: mpi-operator-1.2.3.tgz" in applied.stdout
            assert "next: `make charts-sync` (fetches mpi-operator 1.2.2)" in applied.stdout
            for path in (f"Pulumi.{stack.name}.yaml", "charts/external.yaml", "charts/versions.lock"):
                assert (project / path).read_text() == git(project, "show", f"{first}:./{path}"), path
            unsynced = audit(env, "verify", "--stack", stack.name, "--version", "1", "--root", str(project))
            assert unsynced.returncode == 2 and "make charts-sync" in unsynced.stderr, unsynced.stdout + unsynced.stderr
            assert sync(project / "charts", None, 120) == ["mpi-operator"]
            verified = audit(env, "verify", "--stack", stack.name, "--version", "1", "--root", str(project))
            assert verified.returncode == 0, verified.stdout + verified.stderr
            third = commit(project, "Roll back to update 1")
            assert third != second

            assert stack.stack.up(message="rollback: update 3 = update 1", color="never").summary.result == "succeeded"
            print(f"three updates with the rollback: {time.monotonic() - started:.1f} s")
            assert configmap_value(stack, KEY) == "300" and configmap_value(stack, "FEATURE_ONEVIEW") == "true"
            assert _mpi_chart(stack) == "mpi-operator-1.2.2"
            helm_values = json.loads(stack.helm("get", "values", "astrago", "-n", "astrago", "-o", "json"))
            assert helm_values["mariadb"]["connMaxLifetime"] == 300 and helm_values["features"]["oneview"]["enabled"] is True

            # The audit lists three updates; the third deployed what the first did.
            out_dir = tmp_path / "report"
            report_run = audit(env, "--stack", stack.name, "--out-dir", str(out_dir))
            assert report_run.returncode == 0, report_run.stderr
            updates = json.loads((out_dir / f"audit-{stack.name}.json").read_text())["updates"]
            assert [(u["number"], u["kind"], u["result"]) for u in updates] == [(n, "update", "succeeded") for n in (1, 2, 3)]
            assert [u["git"]["commit"] for u in updates] == [first, first, third]
            assert [u["git"]["dirty"] for u in updates] == [False, True, False]
            one, two, three = (u["releases"] for u in updates)
            assert three == {n: {**r, "revision": three[n]["revision"]} for n, r in one.items()}, "update 3 deploys update 1's charts and values"
            assert (one["mpi-operator"]["version"], two["mpi-operator"]["version"]) == ("1.2.2", "1.2.3")
            assert two["mpi-operator"]["digest"] != one["mpi-operator"]["digest"] == three["mpi-operator"]["digest"]
            assert two["astrago"]["values"]["mariadb"]["connMaxLifetime"] == 45
            same = audit(env, "diff", "--stack", stack.name, "--from", "1", "--to", "3")
            assert same.returncode == 0 and "no difference" in same.stdout, same.stdout
            back = audit(env, "diff", "--stack", stack.name, "--from", "2", "--to", "3")
            print(back.stdout)
            assert back.returncode == 1 and "values.mariadb.connMaxLifetime: 45 -> 300" in back.stdout, back.stdout
            assert "chart.version: 1.2.3 -> 1.2.2" in back.stdout
        finally:
            dispose(stack)
