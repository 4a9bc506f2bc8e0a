"""model/errors.py: every command ends with one message and an exit code; tracebacks only when asked."""

from __future__ import annotations

import subprocess

import pytest

from cli.process import ToolError
from model.errors import EXIT_FAILURE, EXIT_INPUT, EXIT_INTERRUPTED, InputError, describe, entry_point


def _run(main: object, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as caught:
        entry_point(main, "tool", list(argv))  # type: ignore[arg-type]
    return int(caught.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize(("error", "code", "text"), [
    (InputError("Pulumi.dev.yaml line 3: bad"), EXIT_INPUT, "Pulumi.dev.yaml line 3: bad"),
    (ToolError("`helm template` failed (exit 1): boom"), EXIT_FAILURE, "`helm template` failed (exit 1): boom"),
    (KeyboardInterrupt(), EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
    (subprocess.TimeoutExpired(["/x/bin/kubectl", "get", "nodes"], 20), EXIT_FAILURE, "`kubectl get nodes` did not finish within 20 s"),
    (FileNotFoundError(2, "No such file or directory", "/x/helm"), EXIT_FAILURE, "/x/helm: no such file or program"),
    (KeyError("version"), EXIT_FAILURE, "unexpected KeyError: 'version'; this is a bug of astrago-deploy, run again with ASTRAGO_DEBUG=1"),
])
def test_each_failure_is_one_message(error: BaseException, code: int, text: str) -> None:
    message, exit_code = describe(error)
    assert exit_code == code and text in message


def test_a_command_ends_with_its_message_and_no_traceback(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASTRAGO_DEBUG", raising=False)

    def main(argv: list[str]) -> int:
        raise KeyError("version")

    code, err = _run(main, capsys)
    assert code == EXIT_FAILURE and err.startswith("tool: error: unexpected KeyError") and "Traceback" not in err


def test_debug_flag_or_variable_shows_the_traceback(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def main(argv: list[str]) -> int:
        seen.append(argv)
        raise InputError("bad")

    monkeypatch.delenv("ASTRAGO_DEBUG", raising=False)
    code, err = _run(main, capsys, "--stack", "dev", "--debug")
    assert code == EXIT_INPUT and "Traceback" in err and seen[-1] == ["--stack", "dev"], "--debug is the wrapper's, not the command's"
    monkeypatch.setenv("ASTRAGO_DEBUG", "1")
    code, err = _run(main, capsys)
    assert code == EXIT_INPUT and "Traceback" in err and "tool: error: bad" in err


def test_a_command_that_returns_keeps_its_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(lambda argv: 3, capsys) == (3, "")
