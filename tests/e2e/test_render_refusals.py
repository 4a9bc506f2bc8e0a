"""Bad input is refused at preview and at up, before anything acts: no Helm revision, no stack resource changes.

On the local stack (the repository's own charts), deployed once: each bad input
is set in the stack together with a valid change of an earlier-tier release
(so a half-applied update would show as a new revision of that release), then
`preview` and `up` must fail with one message naming the release and what is
wrong, no traceback, and Helm's revisions and the stack's resources must be as
before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pulumi import automation as auto

from tests.support.engine import E2EStack, dispose, new_stack

# A valid change in the infrastructure tier: applied first if the update were allowed to start.
EARLIER = ("releases.gpu-operator-addons.values.devicePlugin.timeSlicingReplicas", "4")
EARLIER_KEY = "releases.gpu-operator-addons"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory, engine_env: dict[str, str]) -> Iterator[E2EStack]:
    from tests.support.engine import copy_project

    project = copy_project(tmp_path_factory.mktemp("refusals") / "project")
    stack = new_stack(project, engine_env, "local", {}, prefix="e2e-refuse")
    try:
        result = stack.stack.up(color="never", message="e2e: local stack for refusals")
        assert result.summary.result == "succeeded", result.stderr
        yield stack
    finally:
        dispose(stack)


def _revisions(stack: E2EStack) -> dict[str, int]:
    return {r["name"]: int(r["revision"]) for r in json.loads(stack.helm("list", "-A", "-o", "json"))}


def _resources(stack: E2EStack) -> int:
    return len((stack.stack.export_stack().deployment or {})["resources"])


def _refused(stack: E2EStack, config: list[tuple[str, str]], cleanup: list[str], *expected: str) -> None:
    """Set config (and the earlier-tier change), check preview and up refuse it, then remove the cleanup paths."""
    before, resources = _revisions(stack), _resources(stack)
    for path, value in [EARLIER, *config]:
        stack.stack.set_config(path, auto.ConfigValue(value), path=True)
    try:
        for operation in (stack.stack.preview, stack.stack.up):
            with pytest.raises(auto.CommandError) as error:
                operation(color="never")
            text = str(error.value)
            print(f"\n{operation.__name__}:\n{text[-1500:]}")
            assert "cannot be deployed; nothing was changed" in text, text[-2000:]
            for words in expected:
                assert words in text, f"{words!r} not in:\n{text[-2000:]}"
            assert "Traceback" not in text, "a user error never shows a traceback"
        assert _revisions(stack) == before, "no Helm revision was made"
        assert _resources(stack) == resources, "no stack resource was added or removed"
    finally:
        for path in [EARLIER_KEY, *cleanup]:
            stack.stack.remove_config(path, path=True)


def test_a_schema_violation_is_refused(deployed: E2EStack) -> None:
    _refused(deployed, [("releases.astrago.values.core.image.tag", "bad tag!")], ["releases.astrago.values.core"],
             "release 'astrago' (chart astrago", "Helm cannot render it at values path core.image.tag", "values don't meet the specifications of the schema")


def test_an_unknown_value_key_is_refused_with_the_closest_key(deployed: E2EStack) -> None:
    _refused(deployed, [("releases.astrago.values.mariadb.persistense.enabled", "false")], ["releases.astrago.values.mariadb.persistense"],
             "astrago-deploy:releases.astrago.values: mariadb.persistense (persistense: did you mean persistence?)")


def test_an_unknown_helm_option_key_is_refused_with_the_allowed_names(deployed: E2EStack) -> None:
    _refused(deployed, [("releases.astrago.helm.timeut", "10s"), ("releases.astrago.helm.maxHistroy", "3")], ["releases.astrago.helm"],
             "astrago-deploy:releases.astrago.helm.timeut: unknown key; did you mean timeout?",
             "astrago-deploy:releases.astrago.helm.maxHistroy: unknown key; did you mean maxHistory?",
             "Allowed here: atomic, cleanupOnFail, drift, maxHistory, timeout, wait, waitForJobs")


def test_a_template_error_is_refused(deployed: E2EStack) -> None:
    template = deployed.project / "charts" / "own" / "gpu-process-exporter" / "templates" / "broken.yaml"
    template.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: broken}\ndata: {a: {{ .Values.exporter.missing.deeper | quote }}}\n")
    try:
        _refused(deployed, [], [], "release 'gpu-process-exporter'", "broken.yaml", "nil pointer")
    finally:
        template.unlink()
