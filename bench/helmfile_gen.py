"""The same work for Helmfile: a helmfile.yaml and values files written from a resolved stack.

`write_helmfile` promises a Helmfile state that installs exactly what the
Pulumi program installs for the same stack:

- the same releases, namespaces and chart files (the local chart folders and
  the locked archives of the project the stack was resolved from);
- the same resolved values (`commands.values.resolve_stack`), in one values
  file per release; secrets are never written: a second, templated values file
  per release reads each one from an environment variable
  (`ASTRAGO_BENCH_SECRET_<key>`, see `secret_env`) when Helmfile renders it;
- the same order: `needs` on every enabled release of the previous tier plus
  the catalog's needs (both are `ResolvedRelease.depends_on`);
- the same Helm options: wait, waitForJobs, timeout, atomic, cleanupOnFail,
  historyMax, and the same hooks (a preInstall node-label check becomes a
  presync hook, as the team's Helmfile had; a preDelete delay a preuninstall
  sleep);
- the project's own helm binary (`helmBinary`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from model.deployment import Deployment, ResolvedRelease
from model.values import set_path
from postrender.plan import write_wrapper

SECRET_ENV_PREFIX = "ASTRAGO_BENCH_SECRET_"


def secret_env(key: str) -> str:
    """The environment variable a generated secrets file reads the secret config key from."""
    return SECRET_ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", key)


def _secret_template(key: str) -> str:
    # Rendered inside single quotes in YAML, so a quote in the secret is doubled.
    return "{{ requiredEnv \"" + secret_env(key) + "\" | replace \"'\" \"''\" }}"


def _secrets_file(release: ResolvedRelease) -> str:
    """A values template that sets each secret path of the release from its environment variable."""
    tree: dict[str, Any] = {}
    for path, key in release.secret_paths.items():
        set_path(tree, path, f"@@{key}@@")
    text = yaml.safe_dump(tree, sort_keys=True, default_style="'")
    for key in set(release.secret_paths.values()):
        text = text.replace(f"'@@{key}@@'", "'" + _secret_template(key) + "'")
    return text


def _hooks(release: ResolvedRelease) -> list[dict[str, Any]]:
    hooks: list[dict[str, Any]] = []
    for hook in release.hooks:
        if hook.when == "preInstall" and hook.check == "node-label":
            # Fails the sync when no node carries the label, as the program's Hook does.
            script = f'test -n "$(kubectl get nodes -l {hook.label} -o name)" || {{ echo "no node labelled {hook.label}" >&2; exit 1; }}'
            hooks.append({"events": ["presync"], "showlogs": True, "command": "sh", "args": ["-c", script]})
        elif hook.when == "preDelete" and hook.delay_s:
            hooks.append({"events": ["preuninstall"], "showlogs": True, "command": "sleep", "args": [str(hook.delay_s)]})
    return hooks


def helmfile_state(deployment: Deployment, project: Path, values_dir: Path, helm: Path) -> dict[str, Any]:
    """The helmfile.yaml content for a resolved stack of `project` (values files under values_dir)."""
    releases: list[dict[str, Any]] = []
    for release in deployment.releases.values():
        values = [str(values_dir / f"{release.name}.yaml")]
        if release.secret_paths:
            values.append(str(values_dir / f"{release.name}.secrets.yaml.gotmpl"))
        entry: dict[str, Any] = {
            "name": release.name,
            "namespace": release.namespace,
            "chart": str(project / release.chart_path),
            "createNamespace": True,
            "wait": release.helm.wait,
            "waitForJobs": release.helm.wait_for_jobs,
            "timeout": release.helm.timeout_s,
            "atomic": release.helm.atomic,
            "cleanupOnFail": release.helm.cleanup_on_fail,
            "historyMax": release.helm.max_history,
            "values": values,
        }
        needs = [f"{deployment.releases[dep].namespace}/{dep}" for dep in release.depends_on]
        if needs:
            entry["needs"] = needs
        hooks = _hooks(release)
        if hooks:
            entry["hooks"] = hooks
        if release.postrender is not None:
            # The program writes the same wrapper on every run; Helmfile runs it from the project root.
            write_wrapper(release.postrender)
            entry["postRenderer"] = str(project / release.postrender.wrapper)
        releases.append(entry)
    return {"helmBinary": str(helm), "releases": releases}


def write_helmfile(deployment: Deployment, project: Path, out: Path, helm: Path) -> Path:
    """Write out/helmfile.yaml and out/values/* for a resolved stack; return the helmfile path."""
    values_dir = out / "values"
    values_dir.mkdir(parents=True, exist_ok=True)
    for release in deployment.releases.values():
        (values_dir / f"{release.name}.yaml").write_text(yaml.safe_dump(release.values, sort_keys=True))
        if release.secret_paths:
            (values_dir / f"{release.name}.secrets.yaml.gotmpl").write_text(_secrets_file(release))
    path = out / "helmfile.yaml"
    path.write_text(yaml.safe_dump(helmfile_state(deployment, project, values_dir, helm), sort_keys=False))
    return path
