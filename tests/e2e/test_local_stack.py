"""The local stack on the local cluster: up, helm sees it, a second preview is clean."""

from __future__ import annotations

import json

from pulumi import automation as auto

from tests.support.engine import SECRETS, E2EStack


def test_up_deploys_the_local_stack_and_a_second_preview_is_clean(local_stack: E2EStack) -> None:
    result = local_stack.stack.up(on_output=print, message="e2e: local stack")
    changes = result.summary.resource_changes or {}
    assert result.summary.result == "succeeded", result.stderr
    assert changes.get(auto.OpType.CREATE, 0) >= 4 + 4, f"expected 4 releases and their namespaces created: {changes}"

    releases = {r["name"]: r for r in json.loads(local_stack.helm("list", "-A", "-o", "json"))}
    for name, namespace in {"astrago": "astrago", "gpu-operator-addons": "gpu-operator",
                            "gpu-process-exporter": "gpu-operator", "keycloak-addons": "keycloak"}.items():
        assert name in releases, f"helm list -A lacks {name}: {sorted(releases)}"
        assert releases[name]["status"] == "deployed" and releases[name]["namespace"] == namespace, releases[name]

    ready = local_stack.kubectl("get", "deploy", "-n", "astrago", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.readyReplicas}{'\\n'}{end}")
    assert "astrago-core=1" in ready.stdout and "astrago-proxy=1" in ready.stdout, ready.stdout

    outputs = result.outputs
    assert outputs["releases"].value["astrago"]["status"] == "deployed"
    assert outputs["endpoints"].value == {"astrago": "http://127.0.0.1:30080"}

    again = local_stack.stack.preview(expect_no_changes=True)
    assert set((again.change_summary or {}).keys()) <= {"same"}, again.change_summary

    # The Automation API's export_stack decrypts (--show-secrets): read what is stored instead.
    exported = local_stack.pulumi("stack", "export")
    stored = local_stack.stored_state()
    outputs_text = local_stack.pulumi("stack", "output", "--json")
    assert "astrago" in exported and "ciphertext" in exported, "the export should hold the releases with encrypted values"
    for key, value in SECRETS.items():
        assert value not in exported, f"{key} appears in plain text in `pulumi stack export`"
        assert value not in stored, f"{key} appears in plain text in the state backend's files"
        assert value not in outputs_text, f"{key} appears in the stack outputs"


def test_on_a_new_cluster_up_with_refresh_installs_the_missing_releases_again(local_stack: E2EStack) -> None:
    """What `make up` does on the disposable local cluster (LOCAL_REFRESH in the Makefile).

    After `make cluster-down` and `make cluster` the state still lists every
    release; without a refresh the engine trusts it and changes nothing.
    """
    first = local_stack.stack.up(on_output=print, message="e2e: local stack before the cluster is recreated")
    assert first.summary.result == "succeeded", first.stderr
    # What a recreated cluster looks like to this stack: the release and its namespace are gone.
    local_stack.helm("uninstall", "astrago", "--namespace", "astrago", "--wait", "--timeout", "120s")
    local_stack.kubectl("delete", "namespace", "astrago", "--wait=true", "--timeout=120s")

    blind = local_stack.stack.preview()
    assert set((blind.change_summary or {}).keys()) <= {"same"}, f"without a refresh the state hides the loss: {blind.change_summary}"

    again = local_stack.stack.up(refresh=True, on_output=print, message="e2e: up --refresh on the new cluster")
    created = (again.summary.resource_changes or {}).get(auto.OpType.CREATE, 0)
    assert again.summary.result == "succeeded" and created >= 2, f"the release and its namespace should be created again: {again.summary.resource_changes}"
    releases = {r["name"]: r for r in json.loads(local_stack.helm("list", "-A", "-o", "json"))}
    assert releases.get("astrago", {}).get("status") == "deployed", f"astrago is not deployed again: {sorted(releases)}"
    clean = local_stack.stack.preview(refresh=True, expect_no_changes=True)
    assert set((clean.change_summary or {}).keys()) <= {"same"}, clean.change_summary
