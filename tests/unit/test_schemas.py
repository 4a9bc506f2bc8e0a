"""schemas/: the declared formats, the messages, and Pulumi.yaml declaring the same config keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from model import schemas
from model.catalog import load_catalog
from model.errors import InputError
from model.yamlload import parse
from tests.conftest import ROOT


def test_pulumi_yaml_declares_exactly_the_keys_the_stack_schema_allows() -> None:
    declared = set((yaml.safe_load((ROOT / "Pulumi.yaml").read_text()) or {})["config"])
    allowed = {k.removeprefix("astrago-deploy:") for k in schemas.schema("stack")["$defs"]["config"]["properties"]}
    assert declared == allowed


def test_every_catalog_secret_is_declared_as_an_encrypted_key() -> None:
    secrets = set(load_catalog(ROOT / "catalog" / "releases.yaml").secret_keys())
    properties = schemas.schema("stack")["$defs"]["config"]["properties"]
    assert {k for k in secrets if properties.get(f"astrago-deploy:{k}") == {"$ref": "#/$defs/secret"}} == secrets


@pytest.mark.parametrize("path", sorted(ROOT.glob("Pulumi.*.yaml")), ids=lambda p: p.name)
def test_the_repositorys_stack_files_pass(path: Path) -> None:
    assert schemas.problems("stack", parse(path.read_text(), path.name), hide=1) == []


@pytest.mark.parametrize(("value", "ok"), [
    ("https://sso.example.com", True), ("http://keycloak.keycloak.svc:80", True), ("http://10.0.0.1:9090/x", True),
    ("ht!tp//not a url", False), ("sso.example.com", False), ("https://", False), ("https://a b", False),
    ("ftp://host", False), ("http://host:99999", False),
])
def test_url_format(value: str, ok: bool) -> None:
    assert schemas.FORMATS["url"](value) is ok


@pytest.mark.parametrize(("value", "seconds"), [("600s", 600), ("10m", 600), ("1h30m", 5400), ("2h", 7200)])
def test_durations_are_go_durations(value: str, seconds: int) -> None:
    assert schemas.FORMATS["duration"](value) and schemas.duration_seconds(value) == seconds


@pytest.mark.parametrize("value", ["", "10", "ten minutes", "0s", "1.5h", "-5m", "10ms"])
def test_bad_durations(value: str) -> None:
    assert not schemas.FORMATS["duration"](value)


def test_messages_name_file_line_and_key_path(tmp_path: Path) -> None:
    document = parse("config:\n  astrago-deploy:offline:\n    fileServer: files.site\n", "Pulumi.site.yaml")
    with pytest.raises(InputError) as caught:
        schemas.check("stack", document, hide=1)
    assert str(caught.value) == ("Pulumi.site.yaml line 3: astrago-deploy:offline.fileServer: 'files.site' is not an http:// or https:// URL "
                                 "with a host, e.g. https://sso.example.com")


def test_a_document_that_passed_is_not_validated_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(schemas.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(schemas, "_PASSED", set())
    document = parse("config:\n  astrago-deploy:chartsDir: charts\n", "Pulumi.x.yaml")
    assert schemas.problems("stack", document, hide=1) == []
    assert len(list(tmp_path.iterdir())) == 1
    bad = parse("config:\n  astrago-deploy:chartsDir: 5\n", "Pulumi.x.yaml")
    assert schemas.problems("stack", bad, hide=1) == ["Pulumi.x.yaml line 2: astrago-deploy:chartsDir: must be a string, not 5"]
    assert len(list(tmp_path.iterdir())) == 1, "a failing document is never remembered"
