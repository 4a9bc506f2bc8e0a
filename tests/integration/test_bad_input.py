"""The bad-input matrix: each mistake is refused with one message, and nothing changes.

Every case edits a copy of the project, runs what a person runs (the real
Makefile's `make preview`, `make stack`, the chart and values commands) with
a temporary file backend, and asserts the message (file, line, key, fix), no
traceback, a non-zero exit, and that the stack files, catalog, charts folder
and the backend are byte for byte as before. `make` runs with `-o setup`: the
toolchain is built already and must not be rebuilt by a test. The cases that
reach the Pulumi program and a cluster are in tests/e2e/test_bad_input_program.py.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.support.standin_charts import build_charts_dir

PY = sys.executable
# What the Makefile and the commands read; the rest of the checkout is not needed.
# The line the harbor repository stands on in the declaration (a YAML error there is reported on it).
HARBOR_LINE = next(n for n, line in enumerate((ROOT / "charts/external.yaml").read_text().splitlines(), 1) if "https://helm.goharbor.io" in line)
PARTS = ("Makefile", "Pulumi.yaml", "__main__.py", "catalog", "charts", "cli", "commands", "components", "model", "offline", "policy", "render", "schemas",
         "values", "postrender", "toolchain/shims", "toolchain/env.sh", "toolchain/update_message.py",
         "Pulumi.local.yaml", "Pulumi.dev.yaml", "Pulumi.stage.yaml", "Pulumi.prod.yaml")
# Watched for changes: every input file and the state backend (caches under .state are not inputs).
WATCHED = ("Pulumi.yaml", "catalog", "charts", "values", "schemas")


@dataclass
class Project:
    """A project copy with its own file backend, where the `local` stack exists."""

    root: Path
    backend: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(command), cwd=self.root, env=self.env, capture_output=True, text=True, timeout=300)

    def make(self, target: str, stack: str = "local", *extra: str) -> subprocess.CompletedProcess[str]:
        return self.run("make", "--no-print-directory", "-o", "setup", target, f"STACK={stack}", *extra)

    def fingerprint(self) -> dict[str, str]:
        """sha256 of every watched file, stack file and backend file, by path."""
        paths = [*self.root.glob("Pulumi.*.yaml")]
        for part in WATCHED:
            base = self.root / part
            paths.extend([base] if base.is_file() else [p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts])
        paths.extend(p for p in self.backend.rglob("*") if p.is_file() and ".lock" not in p.name)
        return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(paths)}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the project with stand-in chart archives and their lock (charts-verify passes)."""
    base = tmp_path_factory.mktemp("bad-input") / "project"
    base.mkdir()
    for part in PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, base / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, base / part)
    build_charts_dir(base / "charts")
    return base


@pytest.fixture
def project(pristine: Path, tmp_path: Path) -> Iterator[Project]:
    root = tmp_path / "project"
    shutil.copytree(pristine, root, symlinks=True)
    for link in (".venv", ".tools"):
        (root / link).symlink_to(ROOT / link)
    backend = tmp_path / "backend"
    backend.mkdir()
    # The local stack's documented passphrase (the Makefile's); no other stack is ever created here.
    env = {**os.environ, "PULUMI_BACKEND_URL": f"file://{backend}", "PULUMI_CONFIG_PASSPHRASE": "astrago-local",
           "PULUMI_HOME": str(ROOT / ".tools" / "pulumi-home"), "PULUMI_SKIP_UPDATE_CHECK": "1",
           "ASTRAGO_SCHEMA_CACHE": str(tmp_path / "schema-ok"), "KUBECONFIG": str(tmp_path / "no-cluster")}
    env.pop("ASTRAGO_DEBUG", None)
    made = Project(root=root, backend=backend, env=env)
    created = made.make("stack")
    assert created.returncode == 0, created.stdout + created.stderr
    yield made


def _edit_stack(name: str, key: str, value: object) -> Callable[[Path], None]:
    """Set `astrago-deploy:<key>` of a stack file (None removes it), keeping the rest."""
    def edit(root: Path) -> None:
        path = root / f"Pulumi.{name}.yaml"
        data = yaml.safe_load(path.read_text()) if path.is_file() else {}
        data.setdefault("config", {})
        if value is None:
            data["config"].pop(f"astrago-deploy:{key}", None)
        else:
            data["config"][f"astrago-deploy:{key}"] = value
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return edit


def _release(name: str, body: object) -> Callable[[Path], None]:
    """Set releases.<name> of the local stack."""
    def edit(root: Path) -> None:
        path = root / "Pulumi.local.yaml"
        data = yaml.safe_load(path.read_text())
        data["config"]["astrago-deploy:releases"][name] = body
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return edit


def _write(relative: str, text: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        (root / relative).write_text(text)
    return edit


def _replace(relative: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        path = root / relative
        text = path.read_text()
        assert old in text, f"{relative} lacks {old!r}"
        path.write_text(text.replace(old, new, 1))
    return edit


def _catalog(change: Callable[[dict[str, object]], None]) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        path = root / "catalog" / "releases.yaml"
        data = yaml.safe_load(path.read_text())
        change(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return edit


def _astrago(change: dict[str, object]) -> Callable[[dict[str, object]], None]:
    def apply(data: dict[str, object]) -> None:
        for release in data["releases"]:  # type: ignore[attr-defined]
            if release["name"] == "astrago":
                release.update(change)
    return apply


def _lock(change: Callable[[dict[str, object]], object]) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        path = root / "charts" / "versions.lock"
        data = yaml.safe_load(path.read_text())
        path.write_text(yaml.safe_dump(change(data), sort_keys=False))
    return edit


def _first_lock_entry(key: str, value: object) -> Callable[[dict[str, object]], object]:
    def change(data: dict[str, object]) -> object:
        entry = data["charts"][0]  # type: ignore[index]
        if value is None:
            del entry[key]
        else:
            entry[key] = value
        return data
    return change


def _circle(root: Path) -> None:
    _edit_stack("site-a", "inherits", "site-b")(root)
    _edit_stack("site-b", "inherits", "site-a")(root)


# A stack file whose 17th line breaks YAML (issue 13 item 5: Pulumi said "line 2", no file).
BROKEN_AT_17 = "\n".join([
    "config:", "  astrago-deploy:cluster:", "    externalIP: 127.0.0.1", "    domain: astrago.localhost", "    storageClass: standard",
    "  astrago-deploy:externals:", "    nfs-provisioner: {storageClass: standard}", "    keycloak: {url: 'http://keycloak.example.invalid'}",
    "    prometheus: {url: 'http://prometheus.example.invalid:9090'}", "  astrago-deploy:releases:", "    gpu-operator: {enabled: false}",
    "    loki-stack: {enabled: false}", "    flux: {enabled: false}", "    harbor: {enabled: false}", "    mpi-operator: {enabled: false}",
    "    astrago:", "     values: {mariadb: {persistence: {enabled: false}}", "",
])

PREVIEW = ("make", "preview")
STACK = ("make", "stack")
VERIFY = (PY, "-m", "commands.charts", "verify")
SYNC = (PY, "-m", "commands.charts", "sync")
VALUES = (PY, "-m", "commands.values", "--stack", "local")
AFFECTED = (PY, "-m", "commands.affected", "--all")


@dataclass(frozen=True)
class Case:
    id: str
    edit: Callable[[Path], None] | None
    command: tuple[str, ...]
    expected: tuple[str, ...]
    stack: str = "local"
    extra: tuple[str, ...] = ()


CASES = [
    # --- issue 13, items 1-6 -------------------------------------------------------------------------------
    Case("inherits-circle", _circle,
         PREVIEW, ("astrago-deploy:inherits goes round in a circle (site-a -> site-b -> site-a)",), stack="site-a"),
    Case("inherits-circle-ci", _circle,
         AFFECTED, ("goes round in a circle",)),
    Case("inherits-missing-parent", _edit_stack("site-a", "inherits", "prdo"), PREVIEW,
         ("Pulumi.site-a.yaml: astrago-deploy:inherits names 'prdo', which has no Pulumi.prdo.yaml",), stack="site-a"),
    Case("external-url", _edit_stack("local", "externals", {"keycloak": {"url": "ht!tp//not a url"}}), PREVIEW,
         ("Pulumi.local.yaml line ", "astrago-deploy:externals.keycloak.url: 'ht!tp//not a url' is not an http:// or https:// URL with a host",)),
    Case("plain-password-in-values", _release("astrago", {"values": {"mariadb": {"password": "hunter2"}}}), PREVIEW,
         ("Pulumi.local.yaml line ", "astrago-deploy:releases.astrago.values.mariadb.password is a credential: astrago reads it from the encrypted secret mariadbPassword",
          "`make secret STACK=local KEY=mariadbPassword < file`")),
    Case("stack-typo", None, PREVIEW, ("stack 'loacl' has no stack file Pulumi.loacl.yaml", "Did you mean 'local'?",
                                       "Known stacks: dev, local, prod, stage"), stack="loacl"),
    Case("stack-typo-make-stack", None, STACK, ("stack 'loacl' has no stack file Pulumi.loacl.yaml", "Did you mean 'local'?"), stack="loacl"),
    Case("stack-typo-drift", None, ("make", "drift"), ("stack 'loacl' has no stack file", "Did you mean 'local'?"), stack="loacl"),
    Case("stack-typo-destroy", None, ("make", "destroy"), ("stack 'loacl' has no stack file", "Did you mean 'local'?"), stack="loacl"),
    Case("stack-typo-secret", None, ("make", "secret"), ("stack 'loacl' has no stack file", "Did you mean 'local'?"), stack="loacl", extra=("KEY=mariadbPassword",)),
    Case("stack-typo-values", None, (PY, "-m", "commands.values", "--stack", "loacl"), ("stack 'loacl' has no stack file", "Did you mean 'local'?")),
    Case("fresh-checkout-dev-refresh", None, ("make", "refresh"), ("stack 'dev' is not in the backend",), stack="dev"),
    Case("fresh-checkout-dev", None, PREVIEW, ("stack 'dev' is not in the backend", "create the stack with `make stack STACK=dev`"), stack="dev"),
    Case("yaml-error-line-17", _write("Pulumi.local.yaml", BROKEN_AT_17), PREVIEW, ("Pulumi.local.yaml line 17: not valid YAML",)),
    Case("external-yaml-unclosed-verify", _replace("charts/external.yaml", "repository: https://helm.goharbor.io", "repository: [unclosed"), VERIFY,
         (f"external.yaml line {HARBOR_LINE}: not valid YAML",)),
    Case("external-yaml-unclosed-sync", _replace("charts/external.yaml", "repository: https://helm.goharbor.io", "repository: [unclosed"), SYNC,
         (f"external.yaml line {HARBOR_LINE}: not valid YAML",)),
    Case("external-yaml-unclosed-preview", _replace("charts/external.yaml", "repository: https://helm.goharbor.io", "repository: [unclosed"), PREVIEW,
         (f"charts/external.yaml line {HARBOR_LINE}: not valid YAML",)),
    Case("lock-list-preview", _write("charts/versions.lock", "- name: harbor\n"), PREVIEW, ("versions.lock line 1: (top level): must be a map, not a list",)),
    Case("external-yaml-list", _write("charts/external.yaml", "- name: harbor\n"), VERIFY, ("external.yaml line 1: (top level): must be a map, not a list",)),
    Case("lock-list", _write("charts/versions.lock", "- name: harbor\n"), VERIFY,
         ("versions.lock line 1: (top level): must be a map, not a list; regenerate it with `make charts-sync ARGS=--refresh`",)),
    Case("chart-yaml-no-version", _replace("charts/own/astrago/Chart.yaml", "version: 1.0.0\n", ""), VALUES,
         ("charts/own/astrago/Chart.yaml line 1: (top level): missing key version",)),
    Case("chart-yaml-broken", _write("charts/own/astrago/Chart.yaml", "apiVersion: v2\nname: astrago\nversion: [1.0.0\n"), VALUES,
         ("charts/own/astrago/Chart.yaml line ", "not valid YAML")),
    # --- issue 17 item 7: Flux-shaped option names are refused with Helm's -----------------------------------
    Case("flux-name-in-stack", _release("astrago", {"helm": {"upgrade": {"remediation": {"strategy": "none"}}}}), PREVIEW,
         ("astrago-deploy:releases.astrago.helm.upgrade: Flux's upgrade.* fields were replaced by Helm's flags", "-> atomic: true|false")),
    Case("flux-drift-in-stack", _release("astrago", {"helm": {"driftDetection": {"mode": "warn"}}}), PREVIEW,
         ("astrago-deploy:releases.astrago.helm.driftDetection: driftDetection.mode", "warn -> drift: warn")),
    Case("flux-name-in-catalog", _catalog(lambda d: d["defaults"]["helm"].update({"install": {"disableWait": True}})), PREVIEW,  # type: ignore[index]
         ("catalog/releases.yaml line ", "defaults.helm.install: Flux's install.* fields were replaced by Helm's flags", "install.disableWait: true -> wait: false")),
    # --- wrong types at each level of the stack file ------------------------------------------------------------
    Case("config-is-a-list", _write("Pulumi.local.yaml", "config:\n  - astrago-deploy:cluster\n"), PREVIEW,
         ("Pulumi.local.yaml line 1: config: must be a map, not a list",)),
    Case("cluster-is-a-string", _edit_stack("local", "cluster", "big"), PREVIEW, ("astrago-deploy:cluster: must be a map, not 'big'",)),
    Case("nfs-is-a-number", _edit_stack("local", "cluster", {"nfs": 5}), PREVIEW, ("astrago-deploy:cluster.nfs: must be a map, not 5",)),
    Case("releases-is-a-list", _edit_stack("local", "releases", ["astrago"]), PREVIEW, ("astrago-deploy:releases: must be a map, not a list",)),
    Case("release-is-a-bool", _release("astrago", True), PREVIEW, ("astrago-deploy:releases.astrago: must be a map, not True",)),
    Case("enabled-is-a-string", _release("harbor", {"enabled": "no"}), PREVIEW, ("astrago-deploy:releases.harbor.enabled: must be true or false, not 'no'",)),
    Case("values-is-a-list", _release("astrago", {"values": ["a"]}), PREVIEW, ("astrago-deploy:releases.astrago.values: must be a map, not a list",)),
    Case("timeout-is-a-number", _release("astrago", {"helm": {"timeout": 600}}), PREVIEW, ("astrago-deploy:releases.astrago.helm.timeout: must be a string, not 600",)),
    Case("bad-duration", _release("astrago", {"helm": {"timeout": "10 minutes"}}), PREVIEW,
         ("astrago-deploy:releases.astrago.helm.timeout: '10 minutes' is not a duration such as 600s, 10m or 1h30m",)),
    Case("external-is-a-string", _edit_stack("local", "externals", {"keycloak": "https://sso.example"}), PREVIEW,
         ("astrago-deploy:externals.keycloak: must be a map, not 'https://sso.example'",)),
    Case("charts-dir-is-a-number", _edit_stack("local", "chartsDir", 5), PREVIEW, ("astrago-deploy:chartsDir: must be a string, not 5",)),
    Case("adopt-is-a-string", _edit_stack("local", "adopt", "astrago"), PREVIEW, ("astrago-deploy:adopt: must be a list, not 'astrago'",)),
    # --- unknown keys and names -----------------------------------------------------------------------------------
    Case("unknown-config-key", _edit_stack("local", "clutser", {"domain": "x"}), PREVIEW, ("astrago-deploy:clutser: unknown key; did you mean astrago-deploy:cluster? Allowed here:",)),
    Case("unknown-cluster-key", _edit_stack("local", "cluster", {"domian": "astrago.localhost"}), PREVIEW,
         ("astrago-deploy:cluster.domian: unknown key; did you mean domain? Allowed here: domain, externalIP, nfs, storageClass",)),
    Case("unknown-release-key", _release("astrago", {"valeus": {}}), PREVIEW, ("astrago-deploy:releases.astrago.valeus: unknown key; did you mean values? Allowed here: enabled, helm, values",)),
    Case("unknown-top-level-key", _replace("Pulumi.local.yaml", "config:", "confg:"), PREVIEW,
         ("Pulumi.local.yaml line 2: confg: unknown key; did you mean config? Allowed here: config, encryptedkey, encryptionsalt, environment, secretsprovider",)),
    Case("unknown-release", _release("grafana", {"enabled": True}), PREVIEW, ("astrago-deploy:releases.grafana: no such release in", "known releases:")),
    Case("release-typo", _release("astrgo", {"enabled": True}), PREVIEW, ("astrago-deploy:releases.astrgo: no such release in ", "catalog/releases.yaml (did you mean 'astrago'?)")),
    Case("unknown-endpoint-key", _edit_stack("local", "externals", {"keycloak": {"address": "https://sso.example"}}), PREVIEW,
         ("astrago-deploy:externals.keycloak.address is not an endpoint key of keycloak; allowed: ['url']",)),
    # --- formats ----------------------------------------------------------------------------------------------------
    Case("bad-external-ip", _edit_stack("local", "cluster", {"externalIP": "10.0.0"}), PREVIEW,
         ("astrago-deploy:cluster.externalIP: '10.0.0' is not an IPv4 or IPv6 address",)),
    Case("bad-domain", _edit_stack("local", "cluster", {"domain": "astrago local"}), PREVIEW,
         ("astrago-deploy:cluster.domain: 'astrago local' is not a DNS name",)),
    Case("relative-nfs-path", _edit_stack("local", "cluster", {"nfs": {"server": "10.0.0.2", "path": "kube_storage"}}), PREVIEW,
         ("astrago-deploy:cluster.nfs.path: must be an absolute path on the NFS server, not 'kube_storage'",)),
    Case("file-server-without-scheme", _edit_stack("local", "offline", {"fileServer": "files.site"}), PREVIEW,
         ("astrago-deploy:offline.fileServer: 'files.site' is not an http:// or https:// URL",)),
    Case("plain-secret-key", _edit_stack("local", "mariadbPassword", "hunter2"), PREVIEW,
         ("astrago-deploy:mariadbPassword is a credential stored in plain text", "`make secret STACK=local KEY=mariadbPassword < file`")),
    # --- bad catalog entries ----------------------------------------------------------------------------------------
    Case("catalog-bad-tier", _catalog(_astrago({"tier": "platform"})), PREVIEW, ("catalog/releases.yaml line ", "release 'astrago': tier 'platform' is not one of",)),
    Case("catalog-duplicate", _catalog(lambda d: d["releases"].append(dict(d["releases"][0]))), PREVIEW, ("catalog/releases.yaml line ", "is declared twice",)),  # type: ignore[attr-defined,index]
    Case("catalog-unknown-key", _catalog(_astrago({"colour": "blue"})), PREVIEW, ("catalog/releases.yaml line ", "releases[astrago].colour: unknown key. Allowed here:")),
    Case("catalog-not-yaml", _write("catalog/releases.yaml", "tiers: [infrastructure\n"), PREVIEW, ("catalog/releases.yaml line ", "not valid YAML")),
    Case("catalog-bad-hook", _catalog(_astrago({"hooks": [{"name": "x", "when": "postInstall"}]})), PREVIEW,
         ("releases[astrago].hooks[x].when: 'postInstall' is not allowed; choose one of preInstall, preDelete",)),
    # --- corrupt lock and declaration files ----------------------------------------------------------------------------
    Case("lock-not-yaml", _write("charts/versions.lock", "charts: [\n"), VERIFY, ("versions.lock line 2: not valid YAML",)),
    Case("lock-bad-sha256", _lock(_first_lock_entry("sha256", "abc")), VERIFY, ("versions.lock line ", ".sha256: must be 64 lower-case hex digits, not 'abc'")),
    Case("lock-missing-archive", _lock(_first_lock_entry("archive", None)), VERIFY, ("versions.lock line ", "missing key archive")),
    Case("lock-digest-number", _lock(_first_lock_entry("repositoryDigest", 0)), VERIFY, (".repositoryDigest: must be a string, not 0",)),
    Case("declared-no-version", _replace("charts/external.yaml", "    version: 1.14.2\n", ""), VERIFY, ("external.yaml line ", "charts[harbor]: missing key version")),
    Case("declared-bad-repository", _replace("charts/external.yaml", "repository: https://helm.goharbor.io", "repository: helm.goharbor.io"), VERIFY,
         ("charts[harbor].repository: 'helm.goharbor.io' is not an http(s):// chart repository URL or an oci:// reference",)),
    Case("declared-version-number", _replace("charts/external.yaml", "version: 1.14.2", "version: 1.14"), VERIFY,
         ("charts[harbor].version: must be one exact chart version (quote it if YAML reads a number), not 1.14",)),
    Case("declared-twice", _replace("charts/external.yaml", "  - name: harbor\n", "  - name: harbor\n    repository: https://helm.goharbor.io\n    version: 1.14.2\n  - name: harbor\n"), VERIFY,
         ("chart 'harbor' is declared twice",)),
    # --- bad Chart.yaml of an own chart -----------------------------------------------------------------------------------
    Case("chart-yaml-version-latest", _replace("charts/own/astrago/Chart.yaml", "version: 1.0.0", "version: latest"), VALUES,
         ("Chart.yaml line ", "version: must be a SemVer 2 version such as 1.0.0 (quoted if YAML reads a number), not 'latest'")),
    Case("chart-yaml-list", _write("charts/own/astrago/Chart.yaml", "- astrago\n"), VALUES, ("Chart.yaml line 1: (top level): must be a map, not a list",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_and_changes_nothing(project: Project, case: Case) -> None:
    if case.edit is not None:
        case.edit(project.root)
    before = project.fingerprint()
    result = project.make(case.command[1], case.stack, *case.extra) if case.command[0] == "make" else project.run(*case.command)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for fragment in case.expected:
        assert fragment in output, f"{case.id}: message lacks {fragment!r}:\n{output}"
    assert "Traceback" not in output, output
    assert project.fingerprint() == before, f"{case.id} changed files or the backend"
    assert not (project.root / f"Pulumi.{case.stack}.yaml").exists() or case.stack in {"local", "dev", "site-a", "site-b"}
    stacks = project.run(str(ROOT / ".tools" / "bin" / "pulumi"), "stack", "ls", "--json")
    assert stacks.returncode == 0, stacks.stderr
    assert [s["name"] for s in yaml.safe_load(stacks.stdout)] == ["local"], "a stack was created"


def test_a_chain_of_three_keeps_what_the_farthest_stack_sets(project: Project) -> None:
    """Issue 13 item 1: site-a -> site-b -> local keeps global.domain and global.externalIP from local."""
    _edit_stack("site-b", "inherits", "local")(project.root)
    _edit_stack("site-a", "inherits", "site-b")(project.root)
    result = project.run(PY, "-m", "commands.values", "--stack", "site-a", "--release", "astrago")
    assert result.returncode == 0, result.stderr
    values = yaml.safe_load(result.stdout.split("\n", 1)[1])["astrago"]
    assert (values["global"]["domain"], values["global"]["externalIP"]) == ("astrago.localhost", "127.0.0.1")


def test_debug_shows_the_traceback(project: Project) -> None:
    _edit_stack("local", "chartsDir", 5)(project.root)
    check = (PY, "-m", "commands.stackcheck", "--stack", "local")
    quiet = project.run(*check)
    loud = subprocess.run([*check], cwd=project.root, env={**project.env, "ASTRAGO_DEBUG": "1"}, capture_output=True, text=True, timeout=120)
    flag = project.run(*check, "--debug")
    assert quiet.returncode == loud.returncode == flag.returncode == 2
    assert "astrago-deploy:chartsDir: must be a string, not 5" in quiet.stderr and "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr and "Traceback" in flag.stderr
