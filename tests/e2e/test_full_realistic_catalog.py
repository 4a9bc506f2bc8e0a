"""The whole catalog from the realistic chart stand-ins, with dev's persistence, on the e2e cluster.

What `make up-full` does: every release of the four tiers, the external ones
from tests/realistic_charts (hooks, webhooks, CRDs, generated secrets, claims
with storage classes), dev's settings with persistence on and harbor enabled.
The cluster's provisioner binds every claim (harbor's five, keycloak's
PostgreSQL, loki's, the product's). A second preview changes nothing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.e2e.full_catalog import deployed_realistic_catalog


def test_the_whole_realistic_catalog_deploys_with_persistence_and_a_second_preview_is_clean(tmp_path: Path, engine_env: dict[str, str]) -> None:
    with deployed_realistic_catalog(tmp_path, engine_env, prefix="e2e-full") as catalog:
        stack = catalog.stack
        releases = json.loads(stack.helm("list", "--all-namespaces", "-o", "json"))
        deployed = {r["name"]: r["status"] for r in releases}
        expected = {"nfs-provisioner", "gpu-operator-addons", "gpu-operator", "prometheus", "loki-stack", "gpu-process-exporter",
                    "flux", "keycloak-addons", "keycloak", "harbor", "mpi-operator", "astrago"}
        assert expected <= set(deployed) and all(deployed[n] == "deployed" for n in expected), deployed

        claims = json.loads(stack.kubectl("get", "pvc", "--all-namespaces", "-o", "json").stdout)["items"]
        phases = {f"{c['metadata']['namespace']}/{c['metadata']['name']}": (c["status"].get("phase"), c["spec"].get("storageClassName")) for c in claims}
        harbor = {k: v for k, v in phases.items() if k.startswith("harbor/")}
        assert len(harbor) == 5, harbor
        assert any(k.startswith("keycloak/data-keycloak-postgresql") for k in phases), phases
        assert any(k.startswith("loki-stack/storage-loki-stack") for k in phases), phases
        assert all(phase == "Bound" for phase, _ in phases.values()), phases
        assert phases["harbor/harbor-registry"][1] == "astrago-nfs-csi", phases

        started = time.monotonic()
        preview = stack.stack.preview(color="never")
        changes = {op: n for op, n in preview.change_summary.items() if op != "same" and n}
        assert not changes, f"the second preview is not clean: {changes}\n{preview.stdout[-3000:]}"
        print(f"\nfull realistic catalog: up {catalog.up_s:.0f} s, second preview {time.monotonic() - started:.0f} s, "
              f"{len(phases)} claims bound: {sorted(phases)}")
