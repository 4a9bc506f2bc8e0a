"""The audit trail read from the state backend alone, after real updates of a throwaway stack.

Three updates with changes (a value, a release disabled then enabled again,
an own chart's version, a secret set again) and a refresh, then the report
and the diffs are made with nothing but the backend folder: no passphrase,
no kubeconfig. They must agree with what the engine and `pulumi stack
history` say, and hold no secret and no ciphertext.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from datetime import datetime
from pathlib import Path

from pulumi import automation as auto

from tests.e2e.audit_support import audit, ciphertexts, commit, init_repo, offline_env, set_values
from tests.support.engine import SECRETS, TOOLS, copy_project, dispose, new_stack

ROTATED = "e2e-db-user-rotated-Zq99"


def _history_cli(env: dict[str, str], stack: str, project: Path) -> list[dict]:
    """`pulumi stack history --json` without the passphrase: newest first, every version 0 on a file backend."""
    cli_env = {**env, "PULUMI_HOME": str(TOOLS.parent / "pulumi-home"), "PULUMI_SKIP_UPDATE_CHECK": "1"}
    out = subprocess.run([str(TOOLS / "pulumi"), "stack", "history", "--json", "--stack", stack], cwd=project, env=cli_env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout))


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_audit_report_and_diff_from_the_backend_alone(tmp_path: Path, engine_env: dict[str, str]) -> None:
    project = copy_project(tmp_path / "project")
    init_repo(project)
    stack = new_stack(project, engine_env, "local", {}, prefix="audit")
    try:
        commits = [commit(project, "first configuration")]
        started = time.monotonic()
        ups = [stack.stack.up(message="audit: first", color="never")]

        # Update 2: a value, a release off, an own chart's version, a secret set again.
        set_values(stack, "astrago", {"mariadb.connMaxLifetime": 120})
        set_values(stack, "gpu-process-exporter", enabled=False)
        chart = project / "charts/own/keycloak-addons/Chart.yaml"
        chart.write_text(chart.read_text().replace("version: 1.0.0", "version: 1.0.1"))
        stack.stack.set_config("mariadbPassword", auto.ConfigValue(value=ROTATED, secret=True))
        commits.append(commit(project, "second: shorter DB connections, no exporter, keycloak-addons 1.0.1, new DB password"))
        ups.append(stack.stack.up(message="audit: second", color="never"))

        # Update 3: the exporter back; no secret changes.
        set_values(stack, "gpu-process-exporter", enabled=True)
        commits.append(commit(project, "third: exporter back"))
        ups.append(stack.stack.up(message="audit: third", color="never"))
        stack.stack.refresh(message="audit: refresh", color="never")
        print(f"3 updates and a refresh: {time.monotonic() - started:.1f} s")
        assert all(u.summary.result == "succeeded" for u in ups)

        env = offline_env(engine_env)
        out_dir = tmp_path / "report"
        began = time.monotonic()
        run = audit(env, "--stack", stack.name, "--out-dir", str(out_dir))
        print(f"audit report: {time.monotonic() - began:.2f} s")
        assert run.returncode == 0, run.stderr
        print(run.stdout)
        report = json.loads((out_dir / f"audit-{stack.name}.json").read_text())
        markdown = (out_dir / f"audit-{stack.name}.md").read_text()
        page = (out_dir / f"audit-{stack.name}.html").read_text()
        updates = report["updates"]

        # Every update, numbered from 1, as the engine and the CLI's history record them.
        assert [u["number"] for u in updates] == [1, 2, 3, 4]
        assert [u["kind"] for u in updates] == ["update", "update", "update", "refresh"]
        assert [u["result"] for u in updates] == ["succeeded"] * 4
        assert [u["message"] for u in updates] == ["audit: first", "audit: second", "audit: third", "audit: refresh"]
        assert [u["git"]["commit"] for u in updates] == [*commits, commits[-1]]
        assert all(u["git"]["author"] == "Audit Tester" and u["git"]["dirty"] is False for u in updates), [u["git"] for u in updates]
        for u in updates:
            assert _epoch(u["start"]) <= _epoch(u["end"]), u
        for number, up in enumerate(ups, start=1):
            changes = {str(k.value if isinstance(k, auto.OpType) else k): v for k, v in (up.summary.resource_changes or {}).items()}
            assert updates[number - 1]["resourceChanges"] == changes, (number, updates[number - 1]["resourceChanges"], changes)
        cli = list(reversed(_history_cli(env, stack.name, project)))
        assert [c["version"] for c in cli] == [0] * 4, "the file backend numbers no update; the audit does"
        for ours, theirs in zip(updates, cli, strict=True):
            assert (ours["kind"], ours["message"], ours["result"], ours["resourceChanges"]) == \
                   (theirs["kind"], theirs["message"], theirs["result"], theirs["resourceChanges"])
            assert _epoch(ours["start"]) == _epoch(theirs["startTime"]) and _epoch(ours["end"]) == _epoch(theirs["endTime"])

        # Per release, the chart version and digest each update deployed (its stack outputs say the same).
        for number, up in enumerate(ups, start=1):
            deployed = up.outputs["releases"].value
            recorded = updates[number - 1]["releases"]
            assert set(recorded) == set(deployed), (number, sorted(recorded), sorted(deployed))
            for name, out in deployed.items():
                assert (recorded[name]["version"], recorded[name]["digest"]) == (out["version"], out["digest"]), (number, name)
                assert f"| {name} | {out['namespace']} | `{out['chart']}` | {out['version']} | `{out['digest']}` |" in markdown
        assert "gpu-process-exporter" not in updates[1]["releases"]
        assert updates[1]["releases"]["keycloak-addons"]["version"] == "1.0.1" and updates[0]["releases"]["keycloak-addons"]["version"] == "1.0.0"
        assert updates[0]["releases"]["astrago"]["values"]["mariadb"]["connMaxLifetime"] == 300
        assert updates[1]["releases"]["astrago"]["values"]["mariadb"]["connMaxLifetime"] == 120
        assert updates[1]["releases"]["astrago"]["values"]["mariadb"]["password"] == "[secret]"
        for number, message in enumerate(["audit: first", "audit: second", "audit: third", "audit: refresh"], start=1):
            assert f"## Update {number}: " in markdown and message in markdown
        assert "src=" not in page and all(h.startswith("#") for h in re.findall(r"href='([^']*)'", page)), "no external asset or link"
        assert "default-src 'none'" in page, "the page's policy allows no request"
        assert all(f"#{n} " in page for n in range(1, 5))

        # What changed from 1 to 2, and from 2 to 3.
        one_two = audit(env, "diff", "--stack", stack.name, "--from", "1", "--to", "2")
        assert one_two.returncode == 1, one_two.stderr
        text = one_two.stdout
        print(text)
        assert "release removed: gpu-process-exporter" in text
        assert 'chart.version: 1.0.0 -> 1.0.1' in text and "chart.digest: " in text
        assert "values.mariadb.connMaxLifetime: 300 -> 120" in text
        assert "values.mariadb.password: [secret] -> [secret]  [changed: secret config mariadbPassword was set again]" in text
        assert "rootPassword" not in text and "clientSecret" not in text, "secrets not set again must not show as changed"
        assert "astrago-deploy:mariadbPassword: [secret] -> [secret]" in text
        two_three = audit(env, "diff", "--stack", stack.name, "--from", "2", "--to", "3", "--json")
        assert two_three.returncode == 1, two_three.stderr
        print(two_three.stdout)
        data = json.loads(two_three.stdout)
        assert list(data["added"]) == ["gpu-process-exporter"] and data["removed"] == {}
        assert data["changed"] == {}, "update 3 changed nothing else (secrets are re-encrypted on every update, not changed)"
        assert [c["path"] for c in data["config"]] == ["astrago-deploy:releases.gpu-process-exporter.enabled"]
        refresh = audit(env, "diff", "--stack", stack.name)
        assert refresh.returncode == 0 and "no difference" in refresh.stdout, refresh.stdout + refresh.stderr

        # Nothing secret anywhere: neither a value nor a ciphertext.
        outputs = markdown + page + json.dumps(report) + text + two_three.stdout + refresh.stdout + run.stdout
        for key, value in {**SECRETS, "rotated": ROTATED}.items():
            assert value not in outputs, f"{key} appears in the audit output"
        leaked = [c for c in ciphertexts(stack) if c in outputs]
        assert not leaked, f"{len(leaked)} ciphertexts appear in the audit output"

        # Bad input fails with the fix named, changing nothing.
        missing = audit(env, "diff", "--stack", stack.name, "--from", "1", "--to", "9")
        assert missing.returncode == 2 and "has updates 1..4" in missing.stderr, missing.stderr
        unknown = audit(env, "--stack", "no-such-stack", "--out-dir", str(out_dir))
        assert unknown.returncode == 2 and stack.name in unknown.stderr, unknown.stderr
    finally:
        dispose(stack)
