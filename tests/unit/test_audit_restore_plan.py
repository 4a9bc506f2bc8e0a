"""The restore plan follows the stack's whole `inherits` chain as the update's commit holds it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from audit.restore import restore_plan
from model.errors import InputError
from model.history import Update


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=60, check=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@example.invalid", "HOME": str(repo), "PATH": "/usr/bin:/bin"})
    return done.stdout.strip()


def _repo(tmp_path: Path, files: dict[str, str]) -> tuple[Path, str]:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    for name, text in files.items():
        (repo / name).write_text(text)
    (repo / "values").mkdir()
    (repo / "values" / "astrago.yaml").write_text("a: 1\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "stacks")
    return repo, _git(repo, "rev-parse", "HEAD")


def _update(commit: str) -> Update:
    return Update(number=1, kind="update", result="succeeded", start=0, end=1, message="", environment={"git.head": commit},
                  resource_changes={}, config={}, releases={}, source="test")


def _stack(parent: str | None) -> str:
    return "config:\n" + (f"  astrago-deploy:inherits: {parent}\n" if parent else "  astrago-deploy:cluster: {domain: c.example}\n")


def test_every_ancestor_of_a_three_level_chain_is_restored(tmp_path: Path) -> None:
    repo, commit = _repo(tmp_path, {"Pulumi.site.yaml": _stack("region"), "Pulumi.region.yaml": _stack("prod"), "Pulumi.prod.yaml": _stack(None)})
    plan = restore_plan(repo, "site", _update(commit))
    assert plan.ancestors == ("Pulumi.region.yaml", "Pulumi.prod.yaml")
    assert plan.paths == ["Pulumi.site.yaml", "values", "Pulumi.region.yaml", "Pulumi.prod.yaml"]


def test_a_chain_the_commit_cannot_complete_is_refused_naming_the_file(tmp_path: Path) -> None:
    repo, commit = _repo(tmp_path, {"Pulumi.site.yaml": _stack("region"), "Pulumi.region.yaml": _stack("gone")})
    with pytest.raises(InputError) as refused:
        restore_plan(repo, "site", _update(commit))
    assert f"Pulumi.region.yaml at commit {commit[:12]}: astrago-deploy:inherits names 'gone', which has no Pulumi.gone.yaml" in str(refused.value)
