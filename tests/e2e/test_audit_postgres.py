"""The audit and the fleet view on a PostgreSQL state backend, as CI keeps it, after real updates.

One PostgreSQL server (tests/e2e/postgres_support.py), three stacks of the
`local` settings in it:

- `audit-pg-*`: update 1; update 2 raises an own chart's version and changes a
  value; update 3 fails (astrago's pods cannot schedule, Helm's 15 s timeout);
  `audit restore --version 2 --apply` writes update 2's configuration back, and
  update 4 deploys it. Report (Markdown, JSON, the page in headless Chromium),
  diffs, restore and verify read the backend alone: no passphrase, no cluster.
- `site-b-*`: one update, an older site (the chart version before the bump, another
  image tag). Its Helm releases are uninstalled afterwards so the first stack can
  install the same names on the one e2e cluster; its state keeps what it deployed,
  which is all the fleet view reads.
- `site-c-*`: created, never updated.

`make fleet` then shows the three, site-b behind on keycloak-addons.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi import automation as auto

from tests.e2e.audit_support import CIPHERTEXT, audit, commit, init_repo, offline_env, set_values
from tests.e2e.browser import body_attributes, dump_dom, png_facts, screenshot, visible_updates
from tests.e2e.postgres_support import PostgresServer, running_postgres
from tests.support.engine import ROOT, SECRETS, E2EStack, copy_project, dispose, new_stack

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

STABLE_SCREENSHOT = ROOT / ".state" / "audit" / "screenshot.png"
FLEET_SCREENSHOT = ROOT / ".state" / "audit" / "screenshot-fleet.png"
# No node carries this label (no dot in it: it is one key of the stack file's values).
NO_NODE_LABEL = "astrago-test-pool"
FAIL_TIMEOUT_S = 15


def _tag(tag: str) -> dict[str, Any]:
    return {"releases": {"astrago": {"values": {"core": {"image": {"tag": tag}}}}}}


def _set_helm_timeout(stack: E2EStack, timeout: str | None) -> None:
    """releases.astrago.helm.timeout in the stack file (None removes the helm block)."""
    path = stack.project / f"Pulumi.{stack.name}.yaml"
    data = yaml.safe_load(path.read_text())
    entry = data["config"]["astrago-deploy:releases"]["astrago"]
    if timeout is None:
        entry.pop("helm", None)
    else:
        entry["helm"] = {"timeout": timeout}
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _fleet(env: dict[str, str], out_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m commands.fleet` as `make fleet` runs it, with the given environment only."""
    return subprocess.run([sys.executable, "-m", "commands.fleet", "--out-dir", str(out_dir), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _stored_ciphertexts(server: PostgresServer, stack_file: Path) -> set[str]:
    text = "\n".join(b.decode(errors="replace") for b in server.rows("%").values()) + stack_file.read_text()
    found = {a or b for a, b in CIPHERTEXT.findall(text)}
    assert found, "expected ciphertexts in the state (secrets are stored encrypted)"
    return found


def test_audit_restore_and_fleet_read_a_postgres_backend(tmp_path: Path, engine_env: dict[str, str]) -> None:
    with running_postgres() as server:
        env = {**engine_env, "PULUMI_BACKEND_URL": server.url}
        project = copy_project(tmp_path / "project")
        init_repo(project)
        site = new_stack(project, env, "local", _tag("core-dev-aaaaaaa"), prefix="site-b")
        idle = new_stack(project, env, "local", {}, prefix="site-c")
        stack = new_stack(project, env, "local", _tag("core-dev-bbbbbbb"), prefix="audit-pg")
        offline = offline_env(env)
        try:
            commits = [commit(project, "three stacks")]
            started = time.monotonic()
            installed = site.stack.up(message="by site-runner: site-b install", color="never")
            assert installed.summary.result == "succeeded"
            for name, out in installed.outputs["releases"].value.items():
                site.helm("uninstall", name, "--namespace", out["namespace"], "--wait")

            ups = [stack.stack.up(message="by auditor: first", color="never")]
            set_values(stack, "astrago", {"mariadb.connMaxLifetime": 120})
            chart = project / "charts/own/keycloak-addons/Chart.yaml"
            chart.write_text(chart.read_text().replace("version: 1.0.0", "version: 1.0.1"))
            commits.append(commit(project, "second: keycloak-addons 1.0.1, shorter DB connections"))
            ups.append(stack.stack.up(message="by auditor: second", color="never"))

            set_values(stack, "astrago", {f"nodeSelector.{NO_NODE_LABEL}": "nowhere"})
            _set_helm_timeout(stack, f"{FAIL_TIMEOUT_S}s")
            commits.append(commit(project, "third: astrago on a pool that does not exist"))
            with pytest.raises(auto.CommandError) as failed:
                stack.stack.up(message="by auditor: third (fails)", color="never")
            assert "astrago" in str(failed.value)
            assert all(u.summary.result == "succeeded" for u in ups)

            restored = audit(offline, "restore", "--stack", stack.name, "--version", "2", "--root", str(project), "--apply")
            print(restored.stdout, restored.stderr)
            assert restored.returncode == 0, restored.stdout + restored.stderr
            assert "this checkout now reproduces update 2" in restored.stdout
            commits.append(commit(project, "Roll back to update 2"))
            ups.append(stack.stack.up(message="by auditor: fourth = second", color="never"))
            assert ups[-1].summary.result == "succeeded"
            print(f"5 updates (one failed) and a restore on PostgreSQL: {time.monotonic() - started:.1f} s")

            verified = audit(offline, "verify", "--stack", stack.name, "--version", "2", "--root", str(project))
            assert verified.returncode == 0, verified.stdout + verified.stderr

            out_dir = tmp_path / "report"
            began = time.monotonic()
            run = audit(offline, "--stack", stack.name, "--out-dir", str(out_dir))
            print(f"audit report from PostgreSQL: {time.monotonic() - began:.2f} s")
            assert run.returncode == 0, run.stderr
            report = json.loads((out_dir / f"audit-{stack.name}.json").read_text())
            updates = report["updates"]
            assert report["backend"].startswith("postgres://****:****@127.0.0.1:") and server.password not in json.dumps(report)
            assert [(u["number"], u["kind"], u["result"]) for u in updates] == [
                (1, "update", "succeeded"), (2, "update", "succeeded"), (3, "update", "failed"), (4, "update", "succeeded")]
            assert [u["message"] for u in updates] == ["by auditor: first", "by auditor: second", "by auditor: third (fails)", "by auditor: fourth = second"]
            assert [u["git"]["commit"] for u in updates] == commits[:4] and report["notes"] == []
            assert all(u["source"].endswith(".history.json") and f"/{stack.name}/" in u["source"] for u in updates), "read from the table's rows"
            assert all(u["ranBy"].startswith("auditor, Audit Tester (commit author)") for u in updates)
            cli = list(reversed(json.loads(stack.pulumi("stack", "history", "--json"))))
            assert [(c["kind"], c["message"], c["result"]) for c in cli] == [(u["kind"], u["message"], u["result"]) for u in updates]
            for index, up in ((0, ups[0]), (1, ups[1]), (3, ups[2])):
                recorded = updates[index]["releases"]
                for name, out in up.outputs["releases"].value.items():
                    assert (recorded[name]["version"], recorded[name]["digest"]) == (out["version"], out["digest"]), (index + 1, name)
            assert [u["releases"]["keycloak-addons"]["version"] for u in updates] == ["1.0.0", "1.0.1", "1.0.1", "1.0.1"]
            # Helm rolled the failed upgrade back (atomic), and the state after update 3 holds what runs: update 2's values.
            assert updates[2]["releases"]["astrago"]["values"] == updates[1]["releases"]["astrago"]["values"] == updates[3]["releases"]["astrago"]["values"]

            one_two = audit(offline, "diff", "--stack", stack.name, "--from", "1", "--to", "2")
            assert one_two.returncode == 1, one_two.stderr
            assert "chart.version: 1.0.0 -> 1.0.1" in one_two.stdout and "values.mariadb.connMaxLifetime: 300 -> 120" in one_two.stdout
            # What the failed update tried is its config; the restore took it out again.
            attempt = f'astrago-deploy:releases.astrago.values.nodeSelector: (absent) -> {{"{NO_NODE_LABEL}": "nowhere"}}'
            two_three = audit(offline, "diff", "--stack", stack.name, "--from", "2", "--to", "3")
            assert two_three.returncode == 1 and attempt in two_three.stdout and "release astrago:" not in two_three.stdout, two_three.stdout
            three_four = audit(offline, "diff", "--stack", stack.name, "--from", "3", "--to", "4")
            assert three_four.returncode == 1, three_four.stdout
            assert f'astrago-deploy:releases.astrago.values.nodeSelector: {{"{NO_NODE_LABEL}": "nowhere"}} -> (absent)' in three_four.stdout, three_four.stdout
            assert f'astrago-deploy:releases.astrago.helm: {{"timeout": "{FAIL_TIMEOUT_S}s"}} -> (absent)' in three_four.stdout, three_four.stdout
            same = audit(offline, "diff", "--stack", stack.name, "--from", "2", "--to", "4")
            assert same.returncode == 0 and "no difference" in same.stdout, same.stdout + same.stderr

            # The page of these four updates in a real browser.
            page = out_dir / f"audit-{stack.name}.html"
            dom = dump_dom(page.as_uri())
            attrs = body_attributes(dom)
            assert "data-script-errors" not in attrs and attrs.get("data-ready") == "yes", attrs
            assert visible_updates(dom) == [4, 3, 2, 1]
            assert re.search(r'<details class="ev failed" id="u3"', dom) and "keycloak-addons 1.0.0\u21921.0.1" in dom
            shot = screenshot(page.as_uri(), tmp_path / "screenshot.png", height=1000)
            assert png_facts(shot)[2] > 20, "the screenshot looks blank"
            STABLE_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(shot, STABLE_SCREENSHOT)
            print(f"screenshot: {shot} and {STABLE_SCREENSHOT}")

            # The fleet: three stacks, site-b behind on keycloak-addons, site-c never updated.
            fleet_dir = tmp_path / "fleet"
            listed = _fleet(offline, fleet_dir, "--json")
            assert listed.returncode == 0, listed.stderr
            fleet = json.loads(listed.stdout)
            rows = {s["name"]: s for s in fleet["stacks"]}
            assert set(rows) == {stack.name, site.name, idle.name}, sorted(rows)
            assert fleet["newest"]["keycloak-addons"] == "1.0.1"
            mine, old, never = rows[stack.name], rows[site.name], rows[idle.name]
            assert (mine["lastUpdate"]["result"], mine["lastUpdate"]["message"]) == ("succeeded", "by auditor: fourth = second")
            assert mine["lastUpdate"]["ranBy"].startswith("auditor") and old["lastUpdate"]["ranBy"].startswith("site-runner")
            assert mine["releases"]["keycloak-addons"] == {**mine["releases"]["keycloak-addons"], "version": "1.0.1", "behind": False}
            assert old["releases"]["keycloak-addons"]["version"] == "1.0.0" and old["releases"]["keycloak-addons"]["behind"] is True
            for name, out in installed.outputs["releases"].value.items():
                assert (old["releases"][name]["version"], old["releases"][name]["digest"]) == (out["version"], out["digest"]), name
            assert (mine["images"]["core"], old["images"]["core"]) == ("core-dev-bbbbbbb", "core-dev-aaaaaaa")
            assert never["lastUpdate"] is None and never["releases"] == {}
            markdown = (fleet_dir / "fleet.md").read_text()
            assert f"| {site.name} |" in markdown and "1.0.0" in markdown and "(behind)" in markdown and f"| {idle.name} | never updated |" in markdown
            fleet_dom = dump_dom((fleet_dir / "fleet.html").as_uri())
            assert "data-script-errors" not in body_attributes(fleet_dom) and f"data-stack=\"{site.name}\"" in fleet_dom
            fleet_shot = screenshot((fleet_dir / "fleet.html").as_uri(), tmp_path / "screenshot-fleet.png", height=600)
            assert png_facts(fleet_shot)[2] > 20
            shutil.copy2(fleet_shot, FLEET_SCREENSHOT)

            # Nothing secret in any output: neither a value, nor a ciphertext, nor the database password.
            outputs = "".join(p.read_text() for p in [*out_dir.iterdir(), *fleet_dir.iterdir()]) + "".join(
                r.stdout + r.stderr for r in (run, one_two, two_three, three_four, same, restored, verified, listed))
            for key, value in {**SECRETS, "database": server.password}.items():
                assert value not in outputs, f"{key} appears in the audit output"
            leaked = [c for c in _stored_ciphertexts(server, project / f"Pulumi.{stack.name}.yaml") if c in outputs]
            assert not leaked, f"{len(leaked)} ciphertexts appear in the audit output"

            unknown = audit(offline, "--stack", "no-such-stack", "--out-dir", str(out_dir))
            assert unknown.returncode == 2 and stack.name in unknown.stderr and server.password not in unknown.stderr, unknown.stderr
        finally:
            try:
                dispose(stack)
            finally:
                site.stack.workspace.remove_stack(site.name, force=True)
                idle.stack.workspace.remove_stack(idle.name)
