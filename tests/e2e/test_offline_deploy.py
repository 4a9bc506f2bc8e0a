"""An air-gapped install, end to end: prepare where the sources are reachable, install where they are not.

Preparation: the realistic stand-ins of every declared chart
(tests/realistic_charts: the images, hooks, CRDs and subcharts of the real
ones), served from an HTTP chart repository and (keycloak, as bitnami
publishes it) an OCI registry on 127.0.0.1; the stage stack's images
assembled and pushed to a source registry that a mirrors file puts in place
of docker.io, quay.io, ghcr.io, registry.k8s.io, nvcr.io. `charts sync`,
then a signed bundle with every image. Then the repository and both
registries are stopped (their ports checked closed), the project loses its
own chart archives and lock, and on site: verify and unpack into a fresh
folder, push the images to a site registry, and deploy a throwaway stack with
the stage settings, `chartsDir` on the unpacked charts and `offline.registry`
on the site registry (the stack file the bundle carries says the same; the
bundle's images lock goes into the checkout's images/ under the stack's
name, where the post-render reads the digests). Every pod's image must be at the site registry and
present there with the digest the bundle recorded.

Times of both halves are printed (pytest -s) with the bundle size.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import yaml

from model.catalog import load_catalog
from model.images import canonical
from model.images_lock import load_images_lock
from model.signing import generate
from offline.bundle import TOOL_PINS
from offline.transfer import site_reference
from tests.support.chart_repo import build_realistic_repo, push_realistic_oci, serve
from tests.support.engine import KWOK_VALUES, ROOT, TOOLS, copy_project, dispose, new_stack
from tests.support.registry import free_port, port_closed, publish_stack_images, serve_registry

PYTHON = str(ROOT / ".venv" / "bin" / "python")
OCI_CHARTS = ("keycloak",)


def _run(*args: str, timeout_s: float = 900) -> subprocess.CompletedProcess[str]:
    return _run_in(ROOT, *args, timeout_s=timeout_s)


def _run_in(cwd: Path, *args: str, timeout_s: float = 900) -> subprocess.CompletedProcess[str]:
    """`python -m <command>` as the make targets run it (ROOT's code; `create` reads the stack files of cwd's project via --root)."""
    if cwd != ROOT:
        args = (*args, "--root", str(cwd))
    done = subprocess.run([PYTHON, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done


def test_a_signed_bundle_with_images_deploys_on_a_site_with_every_source_down(engine_env: dict[str, str], tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    charts = project / "charts"
    site_host = f"127.0.0.1:{free_port()}"
    for pin in TOOL_PINS:
        (project / pin).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / pin, project / pin)
    stage = yaml.safe_load((ROOT / "Pulumi.stage.yaml").read_text())
    offline = {**(stage["config"].get("astrago-deploy:offline") or {}), "registry": site_host}
    stage["config"]["astrago-deploy:offline"] = offline
    (project / "Pulumi.stage.yaml").write_text(yaml.safe_dump(stage, sort_keys=False))
    generate(tmp_path / "keys" / "signing.key", tmp_path / "keys" / "signing.key.pub")
    declared = yaml.safe_load((ROOT / "charts" / "external.yaml").read_text())["charts"]
    (tmp_path / "repo").mkdir()
    times: dict[str, float] = {}
    with serve(tmp_path / "repo") as repo, serve_registry(tmp_path / "oci-charts") as oci, serve_registry(tmp_path / "source") as source:
        build_realistic_repo(tmp_path / "repo", [c["name"] for c in declared if c["name"] not in OCI_CHARTS], repo.url)
        oci_repository = push_realistic_oci([c["name"] for c in declared if c["name"] in OCI_CHARTS], oci.host, "bitnamicharts", tmp_path / "oci-src")
        for chart in declared:
            chart["repository"] = oci_repository if chart["name"] in OCI_CHARTS else repo.url
            if chart["name"] in OCI_CHARTS:
                chart["plainHttp"] = True
        (charts / "external.yaml").write_text(yaml.safe_dump({"charts": declared}))
        started = time.monotonic()
        _run("commands.charts", "sync", "--charts-dir", str(charts))
        times["sync"] = time.monotonic() - started
        publish_stack_images("stage", charts, source.host, tmp_path / "mirrors.yaml", root=project)
        started = time.monotonic()
        made = _run_in(project, "commands.bundle", "create", "--stack", "stage", "--out", str(tmp_path / "stage.tar"), "--charts-dir", str(charts),
                    "--signing-key", str(tmp_path / "keys" / "signing.key"), "--mirrors", str(tmp_path / "mirrors.yaml"))
        times["images+bundle+sign"] = time.monotonic() - started
        ports = {"chart repository": repo.port, "OCI chart registry": oci.port, "source image registry": source.port}
    assert all(port_closed(port) for port in ports.values()), f"still answering: {ports}"
    sha256 = made.stdout.split("bundle: sha256 ", 1)[1].split()[0]
    shutil.rmtree(charts / "external")
    (charts / "versions.lock").unlink()

    with serve_registry(tmp_path / "site-registry", port=int(site_host.rsplit(":", 1)[1])) as site_registry:
        site = tmp_path / "site"
        started = time.monotonic()
        unpacked = _run("commands.bundle", "unpack", "--bundle", str(tmp_path / "stage.tar"), "--into", str(site),
                        "--trusted-key", str(tmp_path / "keys" / "signing.key.pub"), "--sha256", sha256, "--registry", site_registry.host)
        times["verify+unpack+push"] = time.monotonic() - started
        assert f"bundle: sha256 {sha256}" in unpacked.stdout and "every digest checked" in unpacked.stdout, unpacked.stdout
        images = load_images_lock(site / "images" / "stage.lock.yaml").images
        assert images and all((i.digest or "").startswith("sha256:") for i in images)
        print(f"\noffline preparation: charts sync {times['sync']:.1f}s, images+bundle+sign {times['images+bundle+sign']:.1f}s; "
              f"on site: verify+unpack+push {times['verify+unpack+push']:.1f}s; bundle {(tmp_path / 'stage.tar').stat().st_size} bytes, {len(images)} images")

        stack = new_stack(project, engine_env, "stage", {"releases": KWOK_VALUES, "chartsDir": str(site / "charts"), "offline": offline},
                          prefix="e2e-offline")
        (project / "images").mkdir(exist_ok=True)
        shutil.copy(site / "images" / "stage.lock.yaml", project / "images" / f"{stack.name}.lock.yaml")
        try:
            started = time.monotonic()
            result = stack.stack.up(color="never", message="e2e: offline bundle, every source down")
            times["deploy"] = time.monotonic() - started
            assert result.summary.result == "succeeded", result.stderr
            assert all(port_closed(port) for port in ports.values())

            catalog = load_catalog(ROOT / "catalog" / "releases.yaml")
            listed = {r["name"]: r for r in json.loads(stack.helm("list", "-A", "-o", "json"))}
            assert {r.name for r in catalog.releases} <= set(listed), f"releases deployed: {sorted(listed)}"
            assert all(listed[r.name]["status"] == "deployed" for r in catalog.releases), {n: r["status"] for n, r in listed.items()}

            namespaces = {r.namespace for r in catalog.releases}
            pods = [pod for pod in json.loads(stack.kubectl("get", "pods", "--all-namespaces", "-o", "json").stdout)["items"]
                    if pod["metadata"]["namespace"] in namespaces]
            running = [c["image"] for pod in pods for c in pod["spec"].get("containers", []) + pod["spec"].get("initContainers", [])]
            assert running, "the deployed releases run pods"
            expected = {site_reference(i, site_registry.host): i.digest for i in images}
            # Helm gives hooks no post-render: a hook's pod keeps the image its chart renders (the lock says inHooks).
            hooks = {i.reference for i in images if i.in_hooks}
            off_site = sorted(image for image in running if not image.startswith(f"{site_registry.host}/") and canonical(image) not in hooks)
            assert not off_site, f"pods whose image is not at the site registry: {off_site}"
            for image in sorted(i for i in set(running) if i.startswith(f"{site_registry.host}/")):
                name = image.split("@", 1)[0]
                assert name in expected, f"{image} runs but the bundle does not carry it"
                digest = subprocess.run([str(TOOLS / "crane"), "digest", name], capture_output=True, text=True, timeout=60)
                assert digest.stdout.strip() == expected[name], f"{name}: the site registry holds {digest.stdout.strip() or digest.stderr}"
                if "@" in image:
                    assert image.endswith(expected[name]), f"{image} is pinned to another digest than the bundle's {expected[name]}"
            pinned = sum("@sha256:" in image for image in running)
        finally:
            dispose(stack)
    print(f"on site: deploy {times['deploy']:.1f}s; pods run {len(running)} images, {pinned} pinned by digest")
