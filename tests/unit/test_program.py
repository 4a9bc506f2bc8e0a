"""The program under Pulumi mocks: one property per test."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components.hook import Hook
from model.identity import NAMESPACE_TYPE, SECRET_SIG_KEY
from model.identity import RELEASE_TYPE as RELEASE
from tests.conftest import ROOT, TEST_SECRETS, RunProgram
from tests.support.standin_charts import build_charts_dir

SECRET_SIG = SECRET_SIG_KEY


def _releases(run: Any) -> dict[str, Any]:
    return {r.inputs["name"]: r for r in run.of_type(RELEASE)}


def _plain(value: Any) -> Any:
    """Inputs as the provider receives them, with secret wrappers opened."""
    if isinstance(value, dict) and SECRET_SIG in value:
        return _plain(value["value"])
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def test_local_stack_deploys_only_the_repos_own_charts(run_program: RunProgram) -> None:
    run = run_program("local")
    names = set(_releases(run))
    assert names == {"gpu-operator-addons", "gpu-process-exporter", "keycloak-addons", "astrago"}, names
    for name, release in _releases(run).items():
        assert release.inputs["chart"].startswith("charts/own/"), f"{name}: chart {release.inputs['chart']} is not a path in charts/own"


@pulumi.runtime.test
def test_every_release_waits_for_the_whole_previous_tier(run_program: RunProgram) -> pulumi.Output[None]:
    run = run_program("dev")
    platform = run.module.platform
    tiers = platform.tiers
    checks = []
    for before, after in itertools.pairwise(tiers):
        previous = [m.ready[0] for m in before.releases.values()]
        for member in after.releases.values():
            checks.append(pulumi.Output.all(member.urn, [r.urn for r in member.waits_for], [r.urn for r in previous]))

    def verify(rows: list[Any]) -> None:
        assert rows, "dev should have more than one tier"
        for urn, waits, previous in rows:
            missing = set(previous) - set(waits)
            assert not missing, f"{urn} does not wait for {sorted(missing)}"

    return pulumi.Output.all(*checks).apply(verify)


@pulumi.runtime.test
def test_needs_inside_a_tier_are_honoured(run_program: RunProgram) -> pulumi.Output[None]:
    run = run_program("dev")
    infrastructure = run.module.platform.tiers[0].releases
    operator, addons = infrastructure["gpu-operator"], infrastructure["gpu-operator-addons"]

    def verify(args: list[Any]) -> None:
        urn, waits, addons_urn = args
        assert addons_urn in waits, f"{urn} must wait for gpu-operator-addons ({addons_urn})"

    return pulumi.Output.all(operator.urn, [r.urn for r in operator.waits_for], addons.ready[0].urn).apply(verify)


@pulumi.runtime.test
def test_gpu_operator_waits_for_its_gpu_node_check(run_program: RunProgram) -> pulumi.Output[None]:
    run = run_program("dev")
    operator = run.module.platform.tiers[0].releases["gpu-operator"]
    hooks = [r for r in operator.waits_for if isinstance(r, Hook)]
    assert len(hooks) == 1, "gpu-operator should have exactly one preInstall hook"

    def verify(args: list[Any]) -> None:
        urn, label = args
        assert label == "nvidia.com/gpu.present=true", f"{urn}: checks label {label}"

    return pulumi.Output.all(hooks[0].urn, hooks[0].label).apply(verify)


def test_dev_and_prod_differ_where_the_design_says(run_program: RunProgram) -> None:
    dev = {n: _plain(r.inputs["values"]) for n, r in _releases(run_program("dev")).items()}
    prod = {n: _plain(r.inputs["values"]) for n, r in _releases(run_program("prod")).items()}
    assert dev["loki-stack"]["loki"]["config"]["table_manager"]["retention_period"] == "168h"
    assert prod["loki-stack"]["loki"]["config"]["table_manager"]["retention_period"] == "2160h"
    assert dev["loki-stack"]["loki"]["persistence"]["size"] == "20Gi"
    assert prod["loki-stack"]["loki"]["persistence"]["size"] == "100Gi"
    assert prod["loki-stack"]["loki"]["resources"]["limits"]["memory"] == "8Gi"
    assert dev["gpu-process-exporter"]["schedule"] == "* * * * *"
    assert prod["gpu-process-exporter"]["schedule"] == "*/5 * * * *"
    assert "harbor" not in dev and "harbor" in prod, "Harbor is off in dev and on in prod"
    assert dev["astrago"]["core"]["image"]["tag"].startswith("core-dev-")
    assert prod["astrago"]["core"]["image"]["tag"].startswith("core-prod-")
    assert dev["astrago"]["experiment"]["enabled"] is True and "experiment" not in prod["astrago"]
    # Shared settings stay the same where neither stack overrides them.
    assert dev["astrago"]["proxy"] == prod["astrago"]["proxy"]


def test_platform_settings_and_endpoints_reach_the_values(run_program: RunProgram) -> None:
    values = {n: _plain(r.inputs["values"]) for n, r in _releases(run_program("dev")).items()}
    assert values["nfs-provisioner"]["storageClass"]["parameters"] == {"server": "10.61.3.2", "share": "/kube_storage/dev"}
    assert values["astrago"]["keycloak"]["url"] == "http://keycloak.keycloak.svc:80"
    assert values["astrago"]["storage"]["storageClass"] == "astrago-nfs-csi"
    assert values["astrago"]["global"]["externalIP"] == "10.61.3.12"
    assert values["gpu-process-exporter"]["prometheus"]["url"].startswith("http://prometheus-")


def test_offline_registry_is_passed_to_the_product(run_program: RunProgram) -> None:
    run = run_program("dev", overrides={"offline": {"registry": "registry.site.local:5000"}})
    values = _plain(_releases(run)["astrago"].inputs["values"])
    assert values["global"]["imageRegistry"] == "registry.site.local:5000"


def test_external_endpoint_replaces_a_needed_release(run_program: RunProgram) -> None:
    run = run_program("dev", overrides={
        "externals": {"keycloak": {"url": "https://sso.customer.example"}},
    })
    releases = _releases(run)
    assert "keycloak" not in releases
    assert _plain(releases["astrago"].inputs["values"])["keycloak"]["url"] == "https://sso.customer.example"


def test_customer_stack_inherits_its_environment(run_program: RunProgram, tmp_path: Path) -> None:
    run = run_program("customer-test", overrides={"inherits": "prod", "cluster": {"externalIP": "192.0.2.10"}})
    values = {n: _plain(r.inputs["values"]) for n, r in _releases(run).items()}
    assert values["loki-stack"]["loki"]["config"]["table_manager"]["retention_period"] == "2160h", "inherited from prod"
    assert values["astrago"]["global"]["externalIP"] == "192.0.2.10", "the customer's own value wins"
    assert values["astrago"]["global"]["domain"] == "astrago.io", "untouched keys of a map come from prod"


def test_secrets_reach_the_release_as_secret_values(run_program: RunProgram) -> None:
    run = run_program("dev")
    astrago = _releases(run)["astrago"]
    assert SECRET_SIG in astrago.inputs["values"], "astrago's values must be sent to the provider as a secret"
    plain = _plain(astrago.inputs["values"])
    assert plain["mariadb"]["rootPassword"] == TEST_SECRETS["mariadbRootPassword"]
    loki = _releases(run)["loki-stack"]
    assert SECRET_SIG not in loki.inputs["values"], "a release without secrets keeps readable values"


@pulumi.runtime.test
def test_exported_outputs_hold_no_secret(run_program: RunProgram) -> pulumi.Output[None]:
    run = run_program("dev")
    platform = run.module.platform

    def verify(args: list[Any]) -> None:
        urn, releases, endpoints = args
        text = json.dumps([releases, endpoints])
        for key, secret in TEST_SECRETS.items():
            assert secret not in text, f"{urn}: exported outputs contain {key}"
        assert releases["astrago"]["chart"] == "charts/own/astrago"
        assert endpoints["astrago"] == "http://10.61.3.12:30080"

    return pulumi.Output.all(platform.urn, platform.releases, platform.endpoints).apply(verify)


def test_chart_digest_is_in_the_release_inputs(run_program: RunProgram, tmp_path: Path) -> None:
    before = _releases(run_program("local"))["astrago"].inputs["description"]
    assert "sha256:" in before
    from model.charts import chart_digest

    digest = chart_digest(ROOT / "charts/own/astrago")
    assert digest in before, f"description {before!r} should carry the chart digest {digest}"


def test_helm_options_follow_the_catalog(run_program: RunProgram) -> None:
    release = _releases(run_program("local"))["astrago"].inputs
    assert release["atomic"] is True and release["cleanupOnFail"] is True
    assert release["timeout"] == 600 and release["waitForJobs"] is True
    assert release.get("skipAwait") in (None, False)
    assert release["maxHistory"] == 10


def test_a_stack_overrides_helm_options_of_one_release(run_program: RunProgram) -> None:
    run = run_program("local", overrides={"releases": {"astrago": {"helm": {"timeout": "2m", "atomic": False}}}})
    releases = _releases(run)
    assert releases["astrago"].inputs["timeout"] == 120 and releases["astrago"].inputs["atomic"] is False
    assert releases["keycloak-addons"].inputs["timeout"] == 600, "other releases keep the catalog's options"


def test_a_bad_helm_override_names_the_stack_key(run_program: RunProgram) -> None:
    _fails(run_program, "local", ["astrago-deploy:releases.astrago.helm.timeout: 'soon' is not a duration such as 600s, 10m or 1h30m"],
           overrides={"releases": {"astrago": {"helm": {"timeout": "soon"}}}})


def test_a_flux_named_helm_option_of_a_stack_is_refused_with_helms_name(run_program: RunProgram) -> None:
    _fails(run_program, "local", ["astrago-deploy:releases.astrago.helm.upgrade: Flux's upgrade.* fields were replaced by Helm's flags",
                                  "upgrade.remediation.strategy: rollback|none -> atomic: true|false"],
           overrides={"releases": {"astrago": {"helm": {"upgrade": {"remediation": {"strategy": "none"}}}}}})


def test_namespaces_are_created_once_each(run_program: RunProgram) -> None:
    run = run_program("dev")
    names = [r.inputs["metadata"]["name"] for r in run.of_type(NAMESPACE_TYPE)]
    assert sorted(names) == sorted(set(names)), "a namespace is registered twice"
    assert "gpu-operator" in names and "keycloak" in names


# --- bad input: each fails before any resource is registered -------------------

def _fails(run_program: RunProgram, stack: str, expected: list[str], **kwargs: Any) -> None:
    with pytest.raises(pulumi.RunError) as caught:
        run_program(stack, **kwargs)
    message = str(caught.value)
    for fragment in expected:
        assert fragment in message, f"message lacks {fragment!r}:\n{message}"
    assert "nothing was changed" in message


def test_unknown_release_in_stack_config_is_refused(run_program: RunProgram) -> None:
    with pytest.raises(pulumi.RunError) as caught:
        run_program("dev", overrides={"releases": {"grafana": {"enabled": True}}})
    assert "astrago-deploy:releases.grafana" in str(caught.value) and "known releases" in str(caught.value)


def test_unknown_cluster_key_names_the_allowed_keys(run_program: RunProgram) -> None:
    _fails(run_program, "dev", ["astrago-deploy:cluster.externalIp: unknown key; did you mean externalIP? Allowed here:"], overrides={"cluster": {"externalIp": "1.2.3.4"}})


def test_missing_secret_lists_keys_and_commands(run_program: RunProgram) -> None:
    secrets = {k: v for k, v in TEST_SECRETS.items() if k != "mariadbPassword"}
    _fails(run_program, "dev", ["mariadbPassword", "pulumi config set --secret mariadbPassword --stack dev"], secrets=secrets)


def test_plaintext_secret_is_refused(run_program: RunProgram) -> None:
    secrets = {k: v for k, v in TEST_SECRETS.items() if k != "mariadbPassword"}
    _fails(run_program, "dev", ["mariadbPassword is stored in plain text", "--secret"], secrets=secrets, plaintext={"mariadbPassword": "oops"})


def test_need_on_a_disabled_release_is_refused(run_program: RunProgram) -> None:
    _fails(run_program, "dev", ["'astrago' needs 'keycloak'", "externals.keycloak"], overrides={"releases": {"keycloak": {"enabled": False}}})


def test_missing_chart_names_chart_version_and_command(run_program: RunProgram, tmp_path: Path) -> None:
    charts = build_charts_dir(tmp_path / "charts")
    (charts / "external" / "loki-stack-2.9.10.tgz").unlink()
    _fails(run_program, "dev", ["loki-stack 2.9.10", "make charts-sync"], charts_dir=charts)


def test_tampered_chart_is_refused(run_program: RunProgram, tmp_path: Path) -> None:
    charts = build_charts_dir(tmp_path / "charts")
    with (charts / "external" / "harbor-1.14.2.tgz").open("ab") as archive:
        archive.write(b"tampered")
    _fails(run_program, "prod", ["harbor 1.14.2", "the lock expects", "altered"], charts_dir=charts)


def test_charts_missing_on_a_fresh_machine_fail_dev_preview(run_program: RunProgram) -> None:
    # The repository itself holds no third-party archive: dev needs a sync first.
    _fails(run_program, "dev", ["declared but not fetched", "make charts-sync"], charts_dir=ROOT / "charts")


def test_nothing_is_registered_when_input_is_bad(run_program: RunProgram) -> None:
    with pytest.raises(pulumi.RunError):
        run_program("dev", overrides={"releases": {"nope": {}}})
    recorded = run_program.last_mocks.resources  # type: ignore[attr-defined]
    assert recorded == [], f"registered before failing: {[r.name for r in recorded]}"


def test_catalog_cycle_is_refused_before_registration(tmp_path: Path) -> None:
    from model.catalog import load_catalog, parse_catalog
    from model.errors import InputError
    from model.graph import plan

    data = yaml.safe_load((ROOT / "catalog/releases.yaml").read_text())
    for release in data["releases"]:
        if release["name"] == "nfs-provisioner":
            release["needs"] = ["astrago"]
    catalog = parse_catalog(data, "catalog/releases.yaml")
    with pytest.raises(InputError) as caught:
        plan(catalog, {r.name for r in catalog.releases}, set())
    assert "dependency cycle" in str(caught.value) and "nfs-provisioner (infrastructure)" in str(caught.value)
    assert load_catalog(ROOT / "catalog/releases.yaml").releases, "the real catalog still loads"
