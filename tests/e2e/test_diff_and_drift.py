"""`make diff` and `make drift` against the full catalog on the e2e cluster: what `up` would change, and what changed behind the program's back.

The tests share one deployment and run in order; each puts the stack and the
cluster back as it found them (a Helm rollback, then a refresh of the stack).
One deployment serves both commands: deploying and destroying the catalog
costs about 40 s.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pulumi import automation as auto

from model.catalog import load_catalog
from tests.e2e.full_catalog import Catalog, command, deployed_catalog
from tests.support.engine import ROOT, SECRETS, E2EStack


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory, engine_env: dict[str, str]) -> Iterator[Catalog]:
    with deployed_catalog(tmp_path_factory.mktemp("diff-drift"), engine_env, "e2e-diff-drift") as deployed:
        yield deployed


# --- make diff ------------------------------------------------------------------------

def _no_secret_in(text: str, *extra: str) -> None:
    for key, value in [*SECRETS.items(), *(("new", e) for e in extra)]:
        assert value not in text, f"{key} printed in plain text"


def test_right_after_up_nothing_differs(catalog: Catalog) -> None:
    run = command("diff", catalog.stack)
    print(f"\nfull catalog: up {catalog.up_s:.1f}s; make diff (12 releases, nothing changed) {run.seconds:.1f}s")
    releases = len(load_catalog(ROOT / "catalog" / "releases.yaml").releases)
    # keycloak's and harbor's stand-ins keep every value, their secrets too, in a ConfigMap: equal only if masked on both sides.
    assert run.code == 0, run.out + run.err
    assert run.out.strip() == f"diff: no difference in {releases} release(s)", run.out
    _no_secret_in(run.out + run.err)


def test_a_changed_value_shows_only_its_objects_and_fields(catalog: Catalog) -> None:
    stack = catalog.stack.stack
    stack.set_config("releases.flux.values.replicas", auto.ConfigValue("3"), path=True)
    run = command("diff", catalog.stack)
    print(f"\nmake diff, one value changed: {run.seconds:.1f}s\n{run.out}")
    assert run.code == 1, run.out + run.err
    headers = [line for line in run.out.splitlines() if line.startswith("# ")]
    assert len(headers) == 1 and headers[0].startswith("# flux (namespace flux; compared with revision 1)"), headers
    assert "~ apps/v1 Deployment flux/flux" in run.out and "~ v1 ConfigMap flux/flux-values" in run.out
    changed = [line.strip() for line in run.out.splitlines() if line.startswith("    ")]
    assert "spec.replicas: 1 -> 3" in changed, changed
    # The container image did not change, so no line names its field (the values ConfigMap's text may mention images).
    assert not any(line.split(":", 1)[0].endswith(".image") for line in changed), "unchanged fields are not printed: one line per changed leaf"
    assert len(changed) == 2, changed  # spec.replicas and the ConfigMap holding the values
    stack.up(color="never", message="e2e: flux replicas 3")
    after = command("diff", catalog.stack)
    assert after.code == 0, after.out + after.err


def test_a_secret_change_is_never_printed(catalog: Catalog) -> None:
    stack = catalog.stack.stack
    rotated = "e2e-rotated-Zq77"
    stack.set_config("keycloakAdminPassword", auto.ConfigValue(rotated, secret=True))
    before = command("diff", catalog.stack)
    # Rendered from masked values: the keycloak Secret and its values ConfigMap differ only in what is masked.
    assert before.code == 0, before.out + before.err
    _no_secret_in(before.out + before.err, rotated)
    stack.up(color="never", message="e2e: rotate the keycloak admin password")
    after = command("diff", catalog.stack)
    assert after.code == 0, after.out + after.err
    _no_secret_in(after.out + after.err, rotated)


def test_a_release_not_installed_is_all_new(catalog: Catalog) -> None:
    catalog.stack.helm("uninstall", "mpi-operator", "--namespace", "mpi-operator", "--wait", "--timeout", "60s")
    try:
        run = command("diff", catalog.stack)
        assert run.code == 1, run.out + run.err
        assert "# mpi-operator (namespace mpi-operator; not installed: every object is new): 0 changed, 2 new, 0 removed" in run.out, run.out
        assert "+ apps/v1 Deployment mpi-operator/mpi-operator" in run.out and "+ v1 ConfigMap mpi-operator/mpi-operator-values" in run.out
        only = command("diff", catalog.stack, "--release", "flux")
        assert only.code == 0, "--release limits the comparison to one release"
    finally:
        # The state still holds the release: refresh drops it, up installs it again.
        catalog.stack.stack.refresh(color="never")
        catalog.stack.stack.up(color="never", message="e2e: reinstall mpi-operator")
    assert command("diff", catalog.stack).code == 0


def test_bad_input_exits_2_before_asking_the_cluster(catalog: Catalog, tmp_path: Path) -> None:
    unknown = command("diff", catalog.stack, "--release", "no-such-release")
    assert unknown.code == 2 and "not enabled" in unknown.err, unknown.err
    missing = tmp_path / "missing-kubeconfig"
    env = {**catalog.stack.env, "KUBECONFIG": str(missing)}
    saved = catalog.stack.env
    catalog.stack.env = env
    try:
        run = command("diff", catalog.stack)
    finally:
        catalog.stack.env = saved
    assert run.code == 2 and str(missing) in run.err, run.err
    helm = json.loads(catalog.stack.helm("list", "-A", "-o", "json"))
    assert all(r["status"] == "deployed" for r in helm), "nothing was changed"


# --- make drift -----------------------------------------------------------------------

def _reset(stack: E2EStack, release: str, namespace: str) -> None:
    """Roll the release back to the revision before the tampering (Helm re-applies its objects), then read it into the state."""
    history = json.loads(stack.helm("history", release, "--namespace", namespace, "-o", "json"))
    stack.helm("rollback", release, str(history[-2]["revision"]) if len(history) > 1 else "1", "--namespace", namespace, "--wait", "--timeout", "60s")
    stack.stack.refresh(color="never")


def _drifted(out: str) -> list[str]:
    return [line.split()[1] for line in out.splitlines() if line.startswith(("DRIFT", "WARN"))]


def test_right_after_up_there_is_no_drift(catalog: Catalog) -> None:
    run = command("drift", catalog.stack)
    print(f"\nfull catalog: up {catalog.up_s:.1f}s; make drift (12 releases, no drift) {run.seconds:.1f}s")
    assert run.code == 0, run.out + run.err
    assert run.out.splitlines()[-1] == "drift: none in 12 release(s)", run.out


def test_a_helm_upgrade_behind_the_programs_back_is_drift(catalog: Catalog) -> None:
    stack = catalog.stack
    # What the program left (the diff tests above set flux's replicas through the stack and ran `up`).
    revision = max(int(r["revision"]) for r in json.loads(stack.helm("history", "flux", "--namespace", "flux", "-o", "json")))
    replicas = json.loads(stack.helm("get", "values", "flux", "--namespace", "flux", "-o", "json") or "{}").get("replicas", "(absent)")
    stack.helm("upgrade", "flux", str(stack.project / _archive(stack, "flux2")), "--namespace", "flux", "--reuse-values", "--set", "replicas=2", "--wait", "--timeout", "60s")
    try:
        run = command("drift", stack)
        print(f"\nmake drift after `helm upgrade --reuse-values --set replicas=2` of flux: {run.seconds:.1f}s\n{run.out}")
        assert run.code == 1, run.out + run.err
        assert _drifted(run.out) == ["flux"], run.out
        assert f"Helm revision: {revision} -> {revision + 1} (a Helm operation ran outside the program)" in run.out
        assert f"values.replicas: {replicas} -> 2" in run.out
        for value in SECRETS.values():
            assert value not in run.out + run.err
    finally:
        _reset(stack, "flux", "flux")
    assert command("drift", stack).code == 0


def test_a_deleted_deployment_is_found_although_the_refresh_cannot_see_it(catalog: Catalog) -> None:
    stack = catalog.stack
    stack.kubectl("delete", "deployment", "harbor", "--namespace", "harbor", "--wait=true", "--timeout=60s")
    try:
        # What the refresh alone reports: the Helm release is unchanged (Helm still records the Deployment).
        refresh = stack.stack.preview_refresh(color="never")
        assert set(refresh.change_summary) == {auto.OpType.SAME}, refresh.change_summary
        run = command("drift", stack)
        print(f"\nmake drift after `kubectl delete deployment harbor`: {run.seconds:.1f}s\n{run.out}")
        assert run.code == 1, run.out + run.err
        assert _drifted(run.out) == ["harbor"], run.out
        assert "object missing from the cluster: apps/v1 Deployment harbor/harbor (deleted outside Helm)" in run.out
        assert "Helm revision" not in run.out
    finally:
        _reset(stack, "harbor", "harbor")
    assert command("drift", stack).code == 0


def test_warn_reports_without_failing_and_disabled_ignores(catalog: Catalog) -> None:
    stack = catalog.stack
    stack.stack.set_config("releases.mpi-operator.helm.drift", auto.ConfigValue("warn"), path=True)
    stack.helm("upgrade", "mpi-operator", str(stack.project / _archive(stack, "mpi-operator")), "--namespace", "mpi-operator",
               "--reuse-values", "--set", "replicas=2", "--wait", "--timeout", "60s")
    try:
        warned = command("drift", stack)
        assert warned.code == 0, warned.out + warned.err
        assert "WARN  mpi-operator (namespace mpi-operator) [helm.drift: warn]" in warned.out, warned.out
        assert warned.out.splitlines()[-1].startswith("drift: warnings only"), warned.out
        # An enabled release drifting as well still fails the run.
        stack.kubectl("label", "namespace", "flux", "app.kubernetes.io/managed-by-")
        both = command("drift", stack)
        assert both.code == 1 and sorted(_drifted(both.out)) == ["mpi-operator", "namespace"], both.out
        assert 'metadata.labels["app.kubernetes.io/managed-by"]: "astrago-deploy" -> (absent)' in both.out
        stack.kubectl("label", "namespace", "flux", "app.kubernetes.io/managed-by=astrago-deploy")
        stack.stack.set_config("releases.mpi-operator.helm.drift", auto.ConfigValue("ignore"), path=True)
        ignored = command("drift", stack)
        assert ignored.code == 0 and "not checked (helm.drift: ignore): mpi-operator" in ignored.out, ignored.out
        assert _drifted(ignored.out) == []
    finally:
        stack.stack.remove_config("releases.mpi-operator.helm", path=True)
        _reset(stack, "mpi-operator", "mpi-operator")


def _archive(stack: E2EStack, chart: str) -> str:
    """The locked archive of an external chart in the project copy."""
    lock = (stack.project / "charts" / "versions.lock").read_text()
    entry = next(c for c in yaml.safe_load(lock)["charts"] if c["name"] == chart)
    return f"charts/{entry['archive']}"
