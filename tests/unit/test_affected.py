"""Which stacks a change touches (commands.affected): the rules CI's preview matrix is built from."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from commands import affected as cmd
from commands.affected import affected, changed_paths, read_stacks
from model.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def write_stacks(root: Path, stacks: dict[str, str | None]) -> Path:
    """Stack files as the repository holds them: name -> the stack it inherits from."""
    (root / "Pulumi.yaml").write_text("name: astrago-deploy\nruntime: python\n")
    for name, parent in stacks.items():
        config = {"astrago-deploy:cluster": {"domain": f"{name}.example"}}
        if parent:
            config["astrago-deploy:inherits"] = parent  # type: ignore[assignment]
        (root / f"Pulumi.{name}.yaml").write_text(json.dumps({"config": config}))
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_stacks(tmp_path, {"local": None, "dev": None, "stage": None, "prod": None, "site-b": "prod", "site-a": "prod"})


def stacks_for(root: Path, *paths: str) -> list[str]:
    return affected(paths, root)[0]


def test_a_stack_file_touches_only_that_stack(repo: Path) -> None:
    assert stacks_for(repo, "Pulumi.dev.yaml") == ["dev"]
    assert stacks_for(repo, "Pulumi.stage.yaml") == ["stage"]


def test_the_prod_stack_file_touches_the_customer_stacks_inheriting_from_it(repo: Path) -> None:
    stacks, [impact] = affected(["Pulumi.prod.yaml"], repo)
    assert stacks == ["prod", "site-a", "site-b"]
    assert impact.reason == "stack file of prod, inherited by site-a, site-b"


def test_a_customer_stack_file_touches_only_that_customer(repo: Path) -> None:
    assert stacks_for(repo, "Pulumi.site-a.yaml") == ["site-a"]


@pytest.mark.parametrize("path", [
    "catalog/releases.yaml", "values/astrago.yaml", "charts/external.yaml", "charts/own/astrago/templates/proxy.yaml",
    "components/tier.py", "model/values.py", "__main__.py", "Pulumi.yaml", "requirements.txt", "requirements-dev.txt",
    "constraints.txt", "toolchain/tools.toml", "commands/values.py", "Makefile", ".github/workflows/preview.yml",
])
def test_program_inputs_touch_every_deployed_stack_in_promotion_order(repo: Path, path: str) -> None:
    assert stacks_for(repo, path) == ["dev", "stage", "prod", "site-a", "site-b"]


def test_a_readme_inside_a_chart_is_part_of_the_chart(repo: Path) -> None:
    # Charts are packaged whole: a README changes the chart's digest, so it is not "docs".
    assert stacks_for(repo, "charts/own/astrago/README.md") == ["dev", "stage", "prod", "site-a", "site-b"]


@pytest.mark.parametrize("paths", [
    ["README.md"], ["docs/operations.md", "toolchain/README.md"], ["tests/unit/test_values.py", "tests/e2e/conftest.py"],
    ["cluster/cluster.py"], [".ci/run"], ["pyproject.toml", ".gitignore", "LICENSE"],
])
def test_docs_tests_and_tool_settings_touch_no_stack(repo: Path, paths: list[str]) -> None:
    assert stacks_for(repo, *paths) == []


def test_the_local_stack_is_never_listed(repo: Path) -> None:
    stacks, [impact] = affected(["Pulumi.local.yaml"], repo)
    assert stacks == []
    assert "CI does not deploy local" in impact.reason
    assert "local" not in stacks_for(repo, "catalog/releases.yaml")


def test_an_unknown_path_touches_every_stack_and_says_why(repo: Path) -> None:
    stacks, [impact] = affected(["policy/pack.py"], repo)
    assert stacks == ["dev", "stage", "prod", "site-a", "site-b"]
    assert impact.reason == "not known to leave deployments alone"


def test_paths_combine_and_docs_add_nothing(repo: Path) -> None:
    assert stacks_for(repo, "README.md", "Pulumi.stage.yaml", "Pulumi.site-b.yaml", "tests/unit/test_graph.py") == ["stage", "site-b"]


def test_a_removed_stack_file_touches_nothing(repo: Path) -> None:
    stacks, [impact] = affected(["Pulumi.site-old.yaml"], repo)
    assert stacks == [] and impact.reason == "stack file removed"


def test_inheritance_is_followed_through_a_chain(tmp_path: Path) -> None:
    root = write_stacks(tmp_path, {"prod": None, "site-a": "prod", "site-a-eu": "site-a"})
    assert stacks_for(root, "Pulumi.prod.yaml") == ["prod", "site-a", "site-a-eu"]


def test_a_stack_file_that_is_not_yaml_is_named(repo: Path) -> None:
    (repo / "Pulumi.site-a.yaml").write_text("config: [unclosed\n")
    with pytest.raises(InputError, match=r"Pulumi\.site-a\.yaml line 1: not valid YAML"):
        read_stacks(repo)


def test_inheriting_from_a_stack_without_a_file_is_named(repo: Path) -> None:
    (repo / "Pulumi.site-c.yaml").write_text(json.dumps({"config": {"astrago-deploy:inherits": "production"}}))
    with pytest.raises(InputError, match=r"Pulumi\.site-c\.yaml: astrago-deploy:inherits names 'production', which has no Pulumi\.production\.yaml"):
        read_stacks(repo)


def test_a_circular_chain_is_refused_as_the_program_refuses_it(tmp_path: Path) -> None:
    root = write_stacks(tmp_path, {"prod": None, "site-a": "site-b", "site-b": "site-a"})
    with pytest.raises(InputError, match=r"Pulumi\.site-b\.yaml: astrago-deploy:inherits goes round in a circle \(site-a -> site-b -> site-a\)"):
        read_stacks(root)


def test_a_stack_file_breaking_the_schema_is_named_with_its_line(repo: Path) -> None:
    (repo / "Pulumi.site-a.yaml").write_text("config:\n  astrago-deploy:inherits: prod\n  astrago-deploy:clutser: {}\n")
    with pytest.raises(InputError, match=r"Pulumi\.site-a\.yaml line 3: astrago-deploy:clutser: unknown key; did you mean astrago-deploy:cluster\?"):
        read_stacks(repo)


def test_a_file_name_that_is_no_stack_name_is_refused(repo: Path) -> None:
    # The name reaches CI jobs; shell syntax in it must never get that far.
    (repo / "Pulumi.$(id).yaml").write_text("config: {}\n")
    with pytest.raises(InputError, match=r"is not a valid stack name"):
        read_stacks(repo)


def test_the_repository_stacks_are_read_with_the_environments_first() -> None:
    stacks = read_stacks(ROOT)
    assert {"local", "dev", "stage", "prod"} <= set(stacks)
    assert stacks_for(ROOT, "values/astrago.yaml")[:3] == ["dev", "stage", "prod"]


def git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
                            cwd=root, capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.strip()


def test_changed_paths_come_from_the_merge_base_with_both_sides_of_a_rename(repo: Path) -> None:
    git(repo, "init", "--quiet", "--initial-branch=main")
    (repo / "README.md").write_text("docs\n")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "base")
    git(repo, "switch", "--quiet", "-c", "change")
    git(repo, "mv", "Pulumi.site-b.yaml", "Pulumi.site-c.yaml")
    (repo / "README.md").write_text("more docs\n")
    git(repo, "commit", "--quiet", "-am", "rename a customer")
    # A later commit on main is not part of the change under review.
    git(repo, "switch", "--quiet", "main")
    (repo / "Pulumi.dev.yaml").write_text("config: {}\n")
    git(repo, "commit", "--quiet", "-am", "main moved on")
    git(repo, "switch", "--quiet", "change")
    assert sorted(changed_paths("main", "HEAD", repo)) == ["Pulumi.site-b.yaml", "Pulumi.site-c.yaml", "README.md"]
    assert stacks_for(repo, *changed_paths("main", "HEAD", repo)) == ["site-c"]


def test_an_unknown_base_fails_with_the_fix(repo: Path) -> None:
    git(repo, "init", "--quiet")
    with pytest.raises(InputError, match="fetch-depth: 0"):
        changed_paths("no-such-rev", "HEAD", repo)


def test_the_command_prints_json_and_explains_on_stderr(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    assert cmd.main(["--explain", "Pulumi.prod.yaml", "README.md"], repo) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == ["prod", "site-a", "site-b"]
    assert "Pulumi.prod.yaml: prod, site-a, site-b (stack file of prod, inherited by site-a, site-b)" in err
    assert "README.md: no stack (documentation)" in err
    assert cmd.main(["--all"], repo) == 0
    assert json.loads(capsys.readouterr().out) == ["dev", "stage", "prod", "site-a", "site-b"]


def test_the_command_refuses_bad_input_with_exit_2(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    (repo / "Pulumi.dev.yaml").write_text("config: [unclosed\n")
    assert cmd.main(["values/astrago.yaml"], repo) == 2
    assert "Pulumi.dev.yaml line 1: not valid YAML" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        cmd.main([], repo)
    assert usage.value.code == 2
