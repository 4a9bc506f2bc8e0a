"""One audit for every self-hosted backend: the same report from a file folder and from PostgreSQL.

A program without resources (stack outputs only, one of them secret) runs
three real updates through the pinned CLI on each backend: the first, a
failing one, and one that changes a value and sets the secret again. The
audit then reads each backend with nothing but its URL. With zstd-compressed
objects, which this Python cannot unpack, the audit falls back to what the
CLI alone gives (as for an object store): every update, the latest state only,
and a note saying so. No cluster is needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.postgres_support import running_postgres
from tests.support.engine import ROOT, TOOLS

PROGRAM = '''import pulumi
config = pulumi.Config()
if config.get("fail"):
    raise Exception("failing on purpose")
pulumi.export("n", config.get("n"))
pulumi.export("token", config.get_secret("token"))
'''
SECRET_VALUES = ("first-token-Zq71", "second-token-Zq72")
MESSAGES = ["by tester: first", "by tester: fails", "by tester: n=2, token set again"]


def _project(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "Pulumi.yaml").write_text(f"name: astrago-deploy\nruntime:\n  name: python\n  options:\n    virtualenv: {ROOT / '.venv'}\n")
    (folder / "__main__.py").write_text(PROGRAM)
    return folder


def _pulumi(project: Path, env: dict[str, str], *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(TOOLS / "pulumi"), *args, "--non-interactive"], cwd=project, env=env, input=stdin, capture_output=True,
                            text=True, timeout=300)
    assert not check or result.returncode == 0, f"pulumi {' '.join(args)}: {result.stderr[-1500:]}"
    return result


def _three_updates(project: Path, backend: str, extra_env: dict[str, str] | None = None) -> None:
    env = {**os.environ, "PATH": f"{TOOLS}:{os.environ['PATH']}", "PULUMI_HOME": str(TOOLS.parent / "pulumi-home"), "PULUMI_SKIP_UPDATE_CHECK": "1",
           "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true", "PULUMI_BACKEND_URL": backend, "PULUMI_CONFIG_PASSPHRASE": "backends-test",
           **(extra_env or {})}
    _pulumi(project, env, "stack", "init", "mini")
    _pulumi(project, env, "config", "set", "n", "1")
    _pulumi(project, env, "config", "set", "--secret", "token", stdin=SECRET_VALUES[0])
    _pulumi(project, env, "up", "--yes", "--skip-preview", "--message", MESSAGES[0])
    _pulumi(project, env, "config", "set", "fail", "yes")
    assert _pulumi(project, env, "up", "--yes", "--skip-preview", "--message", MESSAGES[1], check=False).returncode != 0
    _pulumi(project, env, "config", "rm", "fail")
    _pulumi(project, env, "config", "set", "n", "2")
    _pulumi(project, env, "config", "set", "--secret", "token", stdin=SECRET_VALUES[1])
    _pulumi(project, env, "up", "--yes", "--skip-preview", "--message", MESSAGES[2])


def _audit(backend: str, project: Path, *args: str, stack: str = "mini") -> subprocess.CompletedProcess[str]:
    """The audit of a stack with only PATH, HOME and the backend: no passphrase."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "PULUMI_BACKEND_URL": backend}
    return subprocess.run([sys.executable, "-m", "commands.audit", *args, "--stack", stack, "--root", str(project)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)


def _report(backend: str, project: Path, out: Path) -> dict[str, Any]:
    run = _audit(backend, project, "report", "--out-dir", str(out))
    assert run.returncode == 0, run.stderr
    return dict(json.loads((out / "audit-mini.json").read_text()))


def _comparable(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What must not depend on the backend: every update's number, kind, result, message, changes and state."""
    return [(u["number"], u["kind"], u["result"], u["message"], u["ranBy"], u["resourceChanges"], u["releases"]) for u in report["updates"]]


def _no_secret(*texts: str) -> None:
    for text in texts:
        for value in SECRET_VALUES:
            assert value not in text, "a secret value appears in the audit's output"
        assert "v1:" not in text, "a ciphertext appears in the audit's output"


@pytest.mark.postgres
def test_file_and_postgres_backends_give_the_same_audit(tmp_path: Path) -> None:
    file_backend = tmp_path / "backend"
    file_backend.mkdir()
    _three_updates(_project(tmp_path / "file-project"), f"file://{file_backend}")
    from_file = _report(f"file://{file_backend}", tmp_path / "file-project", tmp_path / "file-report")
    file_diff = _audit(f"file://{file_backend}", tmp_path / "file-project", "diff", "--from", "1", "--to", "3")
    with running_postgres() as server:
        _three_updates(_project(tmp_path / "pg-project"), server.url)
        from_pg = _report(server.url, tmp_path / "pg-project", tmp_path / "pg-report")
        pg_diff = _audit(server.url, tmp_path / "pg-project", "diff", "--from", "1", "--to", "3")
        missing = _audit(server.url, tmp_path / "pg-project", "report", "--out-dir", str(tmp_path / "x"), stack="nope")
        password = server.password

    assert _comparable(from_file) == _comparable(from_pg)
    assert [(u["kind"], u["result"], u["message"]) for u in from_pg["updates"]] == list(zip(["update"] * 3, ["succeeded", "failed", "succeeded"], MESSAGES, strict=True))
    assert all(u["source"].startswith(".pulumi/history/astrago-deploy/mini/mini-") for u in from_pg["updates"] + from_file["updates"])
    assert from_file["notes"] == from_pg["notes"] == []
    assert from_pg["backend"].startswith("postgres://****:****@127.0.0.1:") and from_file["backend"] == f"file://{file_backend}"
    for diff in (file_diff, pg_diff):
        assert diff.returncode == 1, diff.stderr
        assert 'astrago-deploy:n: "1" -> "2"' in diff.stdout
        assert "astrago-deploy:token: [secret] -> [secret]  [changed: set again]" in diff.stdout, diff.stdout
    assert file_diff.stdout.split("\n", 3)[3] == pg_diff.stdout.split("\n", 3)[3], "the same changes from both backends"
    assert missing.returncode == 2 and "stack nope: not in postgres://****:****@" in missing.stderr and password not in missing.stderr, missing.stderr
    _no_secret(json.dumps(from_file), json.dumps(from_pg), file_diff.stdout, pg_diff.stdout, *(p.read_text() for p in (tmp_path / "pg-report").iterdir()))


def test_where_the_backend_objects_cannot_be_read_the_cli_alone_gives_every_update_and_the_latest_state(tmp_path: Path) -> None:
    backend = tmp_path / "backend"
    backend.mkdir()
    project = _project(tmp_path / "project")
    _three_updates(project, f"file://{backend}", {"PULUMI_DIY_BACKEND_ZSTD": "true"})
    assert any(p.name.endswith(".history.json.zst") for p in backend.rglob("*")), "the objects are zstd-compressed"
    report = _report(f"file://{backend}", project, tmp_path / "report")
    assert [(u["number"], u["result"], u["message"]) for u in report["updates"]] == [(1, "succeeded", MESSAGES[0]), (2, "failed", MESSAGES[1]), (3, "succeeded", MESSAGES[2])]
    assert [u["releases"] for u in report["updates"]] == [None, None, {}], "the latest state only (`pulumi stack export`)"
    assert [u["source"] for u in report["updates"]] == ["pulumi stack history"] * 3
    assert len(report["notes"]) == 1 and "zstd" in report["notes"][0]
    markdown = (tmp_path / "report" / "audit-mini.md").read_text()
    assert "zstd" in markdown and "cannot be read from this backend" in markdown
    diff = _audit(f"file://{backend}", project, "diff", "--from", "2", "--to", "3")
    assert diff.returncode == 2 and "the state after update 2 cannot be read" in diff.stderr, diff.stderr
    _no_secret(json.dumps(report), markdown)
