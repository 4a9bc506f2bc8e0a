"""`make drift` against the full catalog on the e2e cluster: changes made behind the program's back.

The tests share one deployment and run in order; each puts the cluster and
the state back (Helm rollback, then a refresh of the stack).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import yaml
from pulumi import automation as auto

from tests.e2e.full_catalog import Catalog, command, deployed_catalog
from tests.support.engine import SECRETS, E2EStack


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory, engine_env: dict[str, str]) -> Iterator[Catalog]:
    with deployed_catalog(tmp_path_factory.mktemp("drift"), engine_env, "e2e-drift") as deployed:
        yield deployed


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
    stack.helm("upgrade", "flux", str(stack.project / _archive(stack, "flux2")), "--namespace", "flux", "--reuse-values", "--set", "replicas=2", "--wait", "--timeout", "60s")
    try:
        run = command("drift", stack)
        print(f"\nmake drift after `helm upgrade --reuse-values --set replicas=2` of flux: {run.seconds:.1f}s\n{run.out}")
        assert run.code == 1, run.out + run.err
        assert _drifted(run.out) == ["flux"], run.out
        assert "Helm revision: 1 -> 2 (a Helm operation ran outside the program)" in run.out
        assert "values.replicas: (absent) -> 2" in run.out
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
