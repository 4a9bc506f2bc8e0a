"""The program itself (under Pulumi's mocks) refuses the bad-input cases with one message, before any resource.

The same cases stop `make` at its pre-flight (tests/integration/test_bad_input.py);
here they reach `__main__.py`, as a bare `pulumi preview` would.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pulumi
import pytest

from tests.conftest import RunProgram


def _refused(run_program: RunProgram, expected: list[str], **kwargs: Any) -> str:
    with pytest.raises(pulumi.RunError) as caught:
        run_program("dev", **kwargs)
    message = str(caught.value)
    assert message.startswith("stack 'dev' cannot be deployed; nothing was changed:"), message
    for fragment in expected:
        assert fragment in message, f"message lacks {fragment!r}:\n{message}"
    assert "Traceback" not in message
    return message


def test_an_external_endpoint_that_is_no_url(run_program: RunProgram) -> None:
    _refused(run_program, ["astrago-deploy:externals.keycloak.url: 'ht!tp//not a url' is not an http:// or https:// URL with a host"],
             overrides={"externals": {"keycloak": {"url": "ht!tp//not a url"}}})


def test_a_credential_in_a_stacks_values(run_program: RunProgram) -> None:
    _refused(run_program, ["astrago-deploy:releases.astrago.values.mariadb.password is a credential: astrago reads it from the encrypted secret mariadbPassword",
                           "`make secret STACK=dev KEY=mariadbPassword < file`"],
             overrides={"releases": {"astrago": {"values": {"mariadb": {"password": "hunter2"}}}}})


@pytest.mark.parametrize(("file", "text", "expected"), [
    ("external.yaml", "charts:\n  - name: harbor\n    repository: [unclosed\n", "external.yaml line 3: not valid YAML"),
    ("external.yaml", "- name: harbor\n", "external.yaml line 1: (top level): must be a map, not a list"),
    ("versions.lock", "- name: harbor\n", "versions.lock line 1: (top level): must be a map, not a list"),
])
def test_a_broken_chart_declaration_or_lock(run_program: RunProgram, standin_charts: Path, tmp_path: Path, file: str, text: str, expected: str) -> None:
    charts = tmp_path / "charts"
    shutil.copytree(standin_charts, charts)
    (charts / file).write_text(text)
    _refused(run_program, [expected], charts_dir=charts)


def test_an_unexpected_failure_is_one_message_too(run_program: RunProgram, monkeypatch: pytest.MonkeyPatch) -> None:
    import model.deployment

    def broken(*args: Any, **kwargs: Any) -> None:
        raise KeyError("version")

    monkeypatch.setattr(model.deployment, "prepare", broken)
    monkeypatch.delenv("ASTRAGO_DEBUG", raising=False)
    _refused(run_program, ["unexpected KeyError: 'version'", "ASTRAGO_DEBUG=1"])
