"""The whole lifecycle of the full four-tier catalog on the local cluster.

External charts are stand-ins written for the tests, served by a real chart
repository on 127.0.0.1 and synced into the project copy's lock; the
product's own charts are the real ones. One deployment is shared by the tests
of this module, which run in order: up, then changes on top of it, then
destroy.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi import automation as auto

from commands.charts import sync
from components.engine_log import KEEP_ENV
from model.catalog import load_catalog
from model.identity import HOOK_TYPE
from tests.support.chart_repo import build_repo, serve
from tests.support.engine import KWOK_VALUES, ROOT, E2EStack, Recorder, copy_project, dispose, new_stack, release_of


def _delete_window(recorder: Recorder, typ: str, name_end: str) -> float:
    """Seconds the delete step of the `typ` resource whose name ends with name_end took (engine event arrival times)."""
    starts = [at for at, e in recorder.events if e.resource_pre_event and e.resource_pre_event.metadata.op == "delete"
              and e.resource_pre_event.metadata.type == typ and e.resource_pre_event.metadata.urn.endswith(name_end)]
    ends = [at for at, e in recorder.events if e.res_outputs_event and e.res_outputs_event.metadata.op == "delete"
            and e.res_outputs_event.metadata.type == typ and e.res_outputs_event.metadata.urn.endswith(name_end)]
    assert len(starts) == len(ends) == 1, f"no single delete of a {typ} named *{name_end} in the destroy's events"
    return ends[0] - starts[0]


# The provisioner's preDelete delay in this module's project copy.
HOOK_DELAY_S = 5


@dataclass
class Deployed:
    stack: E2EStack
    up: Recorder
    wall_s: float
    charts: Path
    repo_url: str


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory, engine_env: dict[str, str]) -> Iterator[Deployed]:
    root = tmp_path_factory.mktemp("lifecycle")
    # The destroy test checks that the preDelete hook waits its delay (a short one: 30 s in the catalog).
    project = copy_project(root / "project", hook_delay_s=HOOK_DELAY_S)
    catalog = load_catalog(ROOT / "catalog" / "releases.yaml")
    declared = yaml.safe_load((ROOT / "charts" / "external.yaml").read_text())["charts"]
    (root / "repo").mkdir()
    with serve(root / "repo") as repo:
        build_repo(root / "repo", [(c["name"], c["version"]) for c in declared] + [("loki-stack", "2.9.11")], repo.url)
        for chart in declared:
            chart["repository"] = repo.url
        (project / "charts" / "external.yaml").write_text(yaml.safe_dump({"charts": declared}))
        sync(project / "charts", None, 120)
        assert len(catalog.releases) == 12
        stack = new_stack(project, engine_env, "stage", {"releases": KWOK_VALUES}, prefix="e2e-catalog")
        try:
            recorder = Recorder()
            started = time.monotonic()
            result = stack.stack.up(on_event=recorder, message="e2e: full catalog", color="never")
            wall = time.monotonic() - started
            assert result.summary.result == "succeeded", result.stderr
            yield Deployed(stack=stack, up=recorder, wall_s=wall, charts=project / "charts", repo_url=repo.url)
        finally:
            dispose(stack)


def test_every_tier_starts_after_the_previous_one_is_ready(deployed: Deployed) -> None:
    windows = deployed.up.windows()
    catalog = load_catalog(ROOT / "catalog" / "releases.yaml")
    assert set(windows) == {r.name for r in catalog.releases}, f"releases deployed: {sorted(windows)}"
    releases = catalog.by_name()
    for tier_index, tier in enumerate(catalog.tiers[1:], start=1):
        previous = [r.name for r in catalog.releases if r.tier == catalog.tiers[tier_index - 1]]
        ready = max(windows[p][1] for p in previous)
        for release in (r for r in catalog.releases if r.tier == tier):
            assert windows[release.name][0] >= ready, f"{release.name} ({tier}) started before tier {catalog.tiers[tier_index - 1]} was ready"
    for release in catalog.releases:
        for need in release.needs:
            assert windows[release.name][0] >= windows[need.release][1], f"{release.name} started before its need {need.release} was ready"
    helm = {r["name"]: r for r in json.loads(deployed.stack.helm("list", "-A", "-o", "json"))}
    assert all(helm[name]["status"] == "deployed" for name in releases), {n: helm[n]["status"] for n in releases if n in helm}


def test_independent_releases_of_a_tier_deploy_at_the_same_time(deployed: Deployed) -> None:
    windows = deployed.up.windows()
    catalog = load_catalog(ROOT / "catalog" / "releases.yaml")
    # prometheus and loki-stack need only the previous tier: their installs overlap.
    (a_start, a_end), (b_start, b_end) = windows["prometheus"], windows["loki-stack"]
    assert max(a_start, b_start) < min(a_end, b_end), f"prometheus {windows['prometheus']} and loki-stack {windows['loki-stack']} did not overlap"
    durations = {name: end - start for name, (start, end) in windows.items()}
    slowest_per_tier = sum(max(durations[r.name] for r in catalog.releases if r.tier == tier) for tier in catalog.tiers)
    print(f"\nup of 12 releases: wall {deployed.wall_s:.1f}s; sum of the slowest release per tier {slowest_per_tier:.1f}s; "
          f"sum of all releases {sum(durations.values()):.1f}s")
    assert sum(durations.values()) > slowest_per_tier, "some releases of a tier ran side by side"


def test_a_second_preview_and_a_refresh_show_no_changes(deployed: Deployed) -> None:
    preview = deployed.stack.stack.preview(expect_no_changes=True, color="never")
    assert set(preview.change_summary) == {"same"}, preview.change_summary
    deployed.stack.stack.refresh(color="never")
    again = deployed.stack.stack.preview(expect_no_changes=True, color="never")
    assert set(again.change_summary) == {"same"}, again.change_summary


def _sdk_debug_lines(recorder: Recorder) -> list[str]:
    """The SDK's "registering resource" debug lines for the program's resources (the stack's own comes before the program runs)."""
    return [e.diagnostic_event.message for _, e in recorder.events
            if e.diagnostic_event and e.diagnostic_event.severity == "debug" and "registering resource" in e.diagnostic_event.message
            and "ty=pulumi:pulumi:Stack," not in e.diagnostic_event.message]


def test_the_sdks_debug_lines_stay_in_the_program_unless_asked_for(deployed: Deployed) -> None:
    """components/engine_log.py: no per-resource debug call reaches the engine; ASTRAGO_SDK_DEBUG=1 brings them back."""
    assert _sdk_debug_lines(deployed.up) == [], "the up's events carry the SDK's per-resource debug lines"
    workspace = deployed.stack.stack.workspace
    original = workspace.env_vars
    workspace.env_vars = {**original, KEEP_ENV: "1"}
    try:
        recorder = Recorder()
        deployed.stack.stack.preview(on_event=recorder, color="never")
    finally:
        workspace.env_vars = original
    assert len(_sdk_debug_lines(recorder)) >= len(recorder.steps("same")), "ASTRAGO_SDK_DEBUG=1 should keep one line per registration"


def test_one_changed_value_is_one_update_naming_the_key(deployed: Deployed) -> None:
    stack = deployed.stack.stack
    stack.set_config("releases.loki-stack.values.loki.persistence.size", auto.ConfigValue("15Gi"), path=True)
    recorder = Recorder()
    preview = stack.preview(on_event=recorder, diff=True, color="never")
    assert preview.change_summary.get(auto.OpType.UPDATE) == 1, preview.change_summary
    [update] = recorder.steps("update")
    assert release_of(update.urn) == "loki-stack", update.urn
    assert update.detailed_diff is not None and "values.loki.persistence.size" in update.detailed_diff, update.detailed_diff
    assert update.old is not None and update.new is not None and update.old.inputs and update.new.inputs
    assert update.old.inputs["values"]["loki"]["persistence"]["size"] == "10Gi"
    assert update.new.inputs["values"]["loki"]["persistence"]["size"] == "15Gi"
    assert "10Gi" in preview.stdout and "15Gi" in preview.stdout, "the printed diff shows old and new value"
    stack.up(color="never", message="e2e: loki volume 15Gi")


def test_a_secret_changing_shows_as_secret_never_in_plain_text(deployed: Deployed) -> None:
    stack = deployed.stack.stack
    stack.set_config("mariadbPassword", auto.ConfigValue("e2e-rotated-Zq99", secret=True))
    preview = stack.preview(diff=True, color="never")
    assert preview.change_summary.get(auto.OpType.UPDATE) == 1, preview.change_summary
    assert "e2e-rotated-Zq99" not in preview.stdout and "[secret]" in preview.stdout
    stack.up(color="never", message="e2e: rotate the database password")


def test_a_chart_version_bump_is_an_update_with_old_and_new_version(deployed: Deployed) -> None:
    declared_file = deployed.charts / "external.yaml"
    declared = yaml.safe_load(declared_file.read_text())
    for chart in declared["charts"]:
        if chart["name"] == "loki-stack":
            chart["version"] = "2.9.11"
    declared_file.write_text(yaml.safe_dump(declared))
    assert sync(deployed.charts, None, 60) == ["loki-stack"]
    recorder = Recorder()
    preview = deployed.stack.stack.preview(on_event=recorder, diff=True, color="never")
    [update] = recorder.steps("update")
    assert release_of(update.urn) == "loki-stack"
    assert update.old and update.new and update.old.inputs and update.new.inputs
    assert "2.9.10" in update.old.inputs["description"] and "2.9.11" in update.new.inputs["description"], (update.old.inputs["description"], update.new.inputs["description"])
    assert "2.9.11" in preview.stdout
    deployed.stack.stack.up(color="never", message="e2e: loki-stack 2.9.11")
    [listed] = json.loads(deployed.stack.helm("list", "-n", "loki-stack", "-o", "json"))
    assert listed["chart"] == "loki-stack-2.9.11", listed


def test_a_template_edit_without_a_version_bump_is_an_update(deployed: Deployed) -> None:
    template = deployed.stack.project / "charts/own/keycloak-addons/templates/realm.yaml"
    template.write_text(template.read_text() + "# edited without bumping the chart version\n")
    recorder = Recorder()
    preview = deployed.stack.stack.preview(on_event=recorder, color="never")
    updates = [release_of(s.urn) for s in recorder.steps("update")]
    assert updates == ["keycloak-addons"], (updates, preview.change_summary)
    deployed.stack.stack.up(color="never", message="e2e: realm template edit")


def test_a_failed_upgrade_rolls_back_and_unrelated_releases_still_deploy(deployed: Deployed) -> None:
    stack = deployed.stack.stack
    before = json.loads(deployed.stack.helm("history", "harbor", "-n", "harbor", "-o", "json"))
    # No node carries this label: the upgrade can never become ready.
    stack.set_config("releases.harbor.values.nodeSelector[\"astrago.test/none\"]", auto.ConfigValue("true"), path=True)
    stack.set_config("releases.harbor.helm.timeout", auto.ConfigValue("20s"), path=True)
    stack.set_config("releases.flux.values.replicas", auto.ConfigValue("2"), path=True)
    with pytest.raises(auto.CommandError) as failed:
        stack.up(continue_on_error=True, color="never", message="e2e: an upgrade that cannot become ready")
    assert "harbor" in str(failed.value)
    history = json.loads(deployed.stack.helm("history", "harbor", "-n", "harbor", "-o", "json"))
    assert len(history) >= len(before) + 2, history
    assert history[-1]["status"] == "deployed" and "Rollback" in history[-1]["description"], history[-1]
    ready = deployed.stack.kubectl("get", "deploy", "harbor", "-n", "harbor", "-o", "jsonpath={.status.readyReplicas}")
    assert ready.stdout == "1", "harbor still serves its previous revision"
    flux = deployed.stack.kubectl("get", "deploy", "flux", "-n", "flux", "-o", "jsonpath={.spec.replicas}")
    assert flux.stdout == "2", "flux, in the same tier, was upgraded despite harbor failing"
    pending = stack.preview(color="never")
    assert pending.change_summary.get(auto.OpType.UPDATE) == 1, f"the harbor change is still pending: {pending.change_summary}"
    stack.remove_config("releases.harbor", path=True)
    stack.up(color="never", message="e2e: revert harbor")


def test_a_second_update_of_the_same_stack_is_refused_while_one_runs(deployed: Deployed) -> None:
    stack = deployed.stack.stack
    # The first update waits (15 s) for pods that cannot schedule, holding the stack's lock meanwhile.
    stack.set_config("releases.mpi-operator.values.nodeSelector[\"astrago.test/none\"]", auto.ConfigValue("true"), path=True)
    stack.set_config("releases.mpi-operator.helm.timeout", auto.ConfigValue("15s"), path=True)
    errors: list[BaseException] = []
    first = threading.Thread(target=lambda: _capture(errors, lambda: stack.up(color="never", message="e2e: first of two")))
    first.start()
    try:
        deadline = time.monotonic() + 60
        lock_dir = Path(deployed.stack.env["PULUMI_BACKEND_URL"].removeprefix("file://")) / ".pulumi" / "locks"
        while not any(lock_dir.rglob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.1)
        with pytest.raises(subprocess.CalledProcessError) as refused:
            deployed.stack.pulumi("up", "--yes", "--skip-preview")
        assert "locked" in refused.value.stderr.lower(), refused.value.stderr[-800:]
    finally:
        first.join(timeout=600)
    assert len(errors) == 1 and "mpi-operator" in str(errors[0]), "the first update ran to its own end (a timeout of its release)"
    stack.remove_config("releases.mpi-operator", path=True)
    stack.up(color="never", message="e2e: revert mpi-operator")


def test_history_records_every_update_with_its_message(deployed: Deployed) -> None:
    history = deployed.stack.stack.history()
    messages = [h.message for h in history]
    assert "e2e: full catalog" in messages and "e2e: revert harbor" in messages, messages
    failed = [h for h in history if h.message == "e2e: an upgrade that cannot become ready"]
    assert failed and failed[0].result == "failed"
    assert all(h.kind == "update" or h.kind == "refresh" for h in history)


def _capture(errors: list[BaseException], action: Any) -> None:
    try:
        action()
    except BaseException as error:  # reported by the test thread
        errors.append(error)


def test_destroy_removes_everything_in_reverse_tier_order(deployed: Deployed) -> None:
    recorder = Recorder()
    deployed.stack.stack.destroy(on_event=recorder, color="never")
    deletes = [release_of(s.urn) for s in recorder.steps("delete")]
    catalog = load_catalog(ROOT / "catalog" / "releases.yaml")
    tier_of = {r.name: catalog.tiers.index(r.tier) for r in catalog.releases}
    order = [tier_of[name] for name in deletes]
    assert order == sorted(order, reverse=True), f"deleted out of tier order: {deletes}"
    # The provisioner's preDelete hook waits its delay before the release it guards goes.
    [hook] = next(h for h in load_catalog(deployed.stack.project / "catalog" / "releases.yaml").releases if h.name == "nfs-provisioner").hooks
    waited = _delete_window(recorder, HOOK_TYPE, f"-{hook.name}")
    assert hook.delay_s == HOOK_DELAY_S and waited >= hook.delay_s, f"the {hook.name} hook's delete took {waited:.1f}s, not its {hook.delay_s}s delay"
    assert json.loads(deployed.stack.helm("list", "-A", "-o", "json")) == [], "helm releases remain"
    namespaces = deployed.stack.kubectl("get", "ns", "-l", "app.kubernetes.io/managed-by=astrago-deploy", "-o", "name")
    assert namespaces.stdout.strip() == "", f"namespaces remain: {namespaces.stdout}"
    leftovers = deployed.stack.kubectl("get", "all", "-A", "-l", "app.kubernetes.io/managed-by=Helm", "-o", "name")
    assert leftovers.stdout.strip() == "", f"orphaned objects: {leftovers.stdout}"
