"""astrago-deploy:adopt under Pulumi mocks: which resources carry an import id, and what is refused."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from model.catalog import load_catalog
from model.errors import InputError
from model.identity import NAMESPACE_TYPE as NAMESPACE
from model.identity import RELEASE_TYPE as RELEASE
from model.settings import SKIP_CHECKPOINTS, check_adoption, parse_settings
from tests.conftest import ROOT, RunProgram

LOCAL = {"gpu-operator-addons": "gpu-operator", "gpu-process-exporter": "gpu-operator", "keycloak-addons": "keycloak", "astrago": "astrago"}


def _import_ids(run: Any, typ: str = RELEASE) -> dict[str, str | None]:
    """Helm release (or namespace) name -> the import id it was registered with ('' or None: none)."""
    key = (lambda r: r.inputs["name"]) if typ == RELEASE else (lambda r: r.inputs["metadata"]["name"])
    return {key(r): r.resource_id for r in run.of_type(typ)}


@pytest.fixture
def checkpoints_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment of an adopting `up`: Pulumi writes only the final state."""
    monkeypatch.setenv(SKIP_CHECKPOINTS, "true")


def test_no_import_id_without_adopt(run_program: RunProgram) -> None:
    run = run_program("local")
    ids = _import_ids(run)
    assert set(ids) == set(LOCAL)
    assert not any(ids.values()), f"releases imported although adopt is not set: {ids}"
    assert not any(_import_ids(run, NAMESPACE).values())


@pytest.mark.usefixtures("checkpoints_off")
def test_adopt_all_imports_every_release_by_namespace_and_name(run_program: RunProgram) -> None:
    run = run_program("local", overrides={"adopt": ["all"]})
    assert _import_ids(run) == {name: f"{namespace}/{name}" for name, namespace in LOCAL.items()}
    # Namespaces are taken over by server-side apply (the provider upserts), never imported.
    assert not any(_import_ids(run, NAMESPACE).values())


@pytest.mark.usefixtures("checkpoints_off")
def test_adopt_by_name_imports_only_those_releases(run_program: RunProgram) -> None:
    run = run_program("local", overrides={"adopt": ["astrago", "keycloak-addons"]})
    ids = _import_ids(run)
    assert ids["astrago"] == "astrago/astrago" and ids["keycloak-addons"] == "keycloak/keycloak-addons"
    assert not ids["gpu-operator-addons"] and not ids["gpu-process-exporter"], ids


@pytest.mark.usefixtures("checkpoints_off")
def test_adoption_changes_no_input_of_the_release(run_program: RunProgram) -> None:
    """Only the option differs: the update after the import is the stack's usual inputs."""
    plain = {r.inputs["name"]: r.inputs for r in run_program("local").of_type(RELEASE)}
    adopted = {r.inputs["name"]: r.inputs for r in run_program("local", overrides={"adopt": ["all"]}).of_type(RELEASE)}
    assert plain == adopted


def _refused(run_program: RunProgram, adopt: Any, expected: list[str]) -> None:
    with pytest.raises(pulumi.RunError) as caught:
        run_program("local", overrides={"adopt": adopt})
    message = str(caught.value)
    for fragment in expected:
        assert fragment in message, f"message lacks {fragment!r}:\n{message}"
    assert "nothing was changed" in message


@pytest.mark.usefixtures("checkpoints_off")
def test_adopting_a_release_the_stack_does_not_deploy_is_refused(run_program: RunProgram) -> None:
    _refused(run_program, ["harbor"], ["Pulumi.local.yaml: astrago-deploy:adopt names 'harbor'", "adopt only enabled releases"])


@pytest.mark.usefixtures("checkpoints_off")
@pytest.mark.parametrize(("adopt", "expected"), [
    (["grafana"], "'grafana', which is not a release of the catalog"),
    (["all", "astrago"], "list either [all] or release names"),
    ({"astrago": True}, "must be a list of release names"),
    ([{"name": "astrago"}], "must be a list of release names"),
])
def test_bad_adopt_value_is_refused(run_program: RunProgram, adopt: Any, expected: str) -> None:
    _refused(run_program, adopt, ["astrago-deploy:adopt", expected])


def test_adopting_update_with_checkpoints_on_is_refused(run_program: RunProgram, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SKIP_CHECKPOINTS, raising=False)
    _refused(run_program, ["all"], [f"{SKIP_CHECKPOINTS}=true make up STACK=local", "unencrypted"])


@pytest.mark.parametrize(("adopt", "environ", "dry_run", "allowed"), [
    ([], {}, False, True),  # not adopting: nothing to protect
    (["all"], {}, True, True),  # a preview writes no state
    (["all"], {SKIP_CHECKPOINTS: "true"}, False, True),
    (["all"], {SKIP_CHECKPOINTS: "1"}, False, True),
    (["all"], {SKIP_CHECKPOINTS: "false"}, False, False),
    (["astrago"], {}, False, False),
])
def test_check_adoption(adopt: list[str], environ: dict[str, str], dry_run: bool, allowed: bool) -> None:
    catalog = load_catalog(ROOT / "catalog" / "releases.yaml")
    settings = parse_settings("site", {"adopt": adopt}, catalog)
    if allowed:
        check_adoption(settings, environ, dry_run)
    else:
        with pytest.raises(InputError, match="PULUMI_SKIP_CHECKPOINTS=true make up STACK=site"):
            check_adoption(settings, environ, dry_run)

