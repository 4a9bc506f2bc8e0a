"""render.releases's plain parts: the values path in Helm's messages, the cache file round trip (masked only), the summary."""

from __future__ import annotations

from pathlib import Path

from cli.helm import helm_message
from model.structdiff import ABSENT, Change, ObjectsDiff
from render.releases import Rendered, _load, _store, values_path


def test_the_values_path_helm_names_is_found() -> None:
    assert values_path("values don't meet the specifications of the schema(s) in the following chart(s):\nkps:\n"
                       "- at '/prometheus/prometheusSpec/retention': got number, want string") == "prometheus.prometheusSpec.retention"
    assert values_path("kps:\n- prometheus.prometheusSpec.retention: Invalid type. Expected: string, given: integer") == "prometheus.prometheusSpec.retention"
    assert values_path('template: x/templates/a.yaml:4:20: executing "x" at <.Values.storage.size>: nil pointer') == "storage.size"
    assert values_path("execution error at (keycloak/templates/NOTES.txt:1:4): PASSWORDS ERROR: you must provide your current passwords") is None


def test_helms_message_is_kept_whole() -> None:
    long = "execution error at (keycloak/templates/NOTES.txt:1:4): \nPASSWORDS ERROR: " + "word " * 200 + "end."
    assert helm_message(f"Error: UPGRADE FAILED: {long}\n") == f"UPGRADE FAILED: {long}".strip()


def test_the_cache_holds_the_masked_comparison_and_reads_back(tmp_path: Path) -> None:
    from model.catalog import HelmOptions
    from model.deployment import ResolvedRelease
    from render.releases import Cluster

    key = ("apps/v1", "Deployment", "", "app")
    diff = ObjectsDiff(added=[("v1", "Service", "kube-system", "kubelet")], changed={key: [Change("spec.replicas", 1, 3), Change("spec.paused", ABSENT, None)]})
    result = Rendered(name="app", namespace="ns", mode="server", latest=(2, "deployed"), revision=2, diff=diff)
    _store(tmp_path / "x.json", result)
    options = HelmOptions(timeout_s=1, wait=True, wait_for_jobs=True, atomic=True, cleanup_on_fail=True, max_history=2, drift_mode="enabled")
    release = ResolvedRelease(name="app", tier="t", namespace="ns", chart_path="c", chart_name="c", chart_version="1", chart_digest="d", source="local",
                              values={}, secret_paths={}, helm=options, hooks=(), depends_on=())
    loaded = _load(tmp_path / "x.json", release, Cluster(facts=None, releases={("ns", "app"): (2, "deployed")}))
    assert loaded is not None and loaded.cached
    assert loaded.diff == diff and loaded.revision == 2
    assert loaded.summary() == "app: 1 to add, 1 to change, 0 to remove (helm dry run on the cluster, against revision 2)"


def test_make_diff_prints_leaf_changes_and_cluster_scoped_objects_without_namespace() -> None:
    from commands.diff import format_release
    from model.manifest import CLUSTER_SCOPED_KINDS

    role = ("rbac.authorization.k8s.io/v1", "ClusterRole", "", "prometheus-operator")
    policy = ("nvidia.com/v1", "ClusterPolicy", "", "cluster-policy")
    service = ("v1", "Service", "kube-system", "prometheus-kubelet")
    diff = ObjectsDiff(added=[service], removed=[policy], changed={role: [Change("rules[3].verbs[1]", "list", "watch")]})
    text = format_release(Rendered(name="prometheus", namespace="prometheus", mode="server", latest=(1, "deployed"), revision=1, diff=diff),
                          CLUSTER_SCOPED_KINDS | {"ClusterPolicy"})
    assert text.splitlines() == [
        "# prometheus (namespace prometheus; compared with revision 1): 1 changed, 1 new, 1 removed",
        "~ rbac.authorization.k8s.io/v1 ClusterRole prometheus-operator",
        '    rules[3].verbs[1]: "list" -> "watch"',
        "+ v1 Service kube-system/prometheus-kubelet",
        "- nvidia.com/v1 ClusterPolicy cluster-policy",
    ]
