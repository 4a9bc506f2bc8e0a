"""model/stackfile.py: the one reader of stack files and its `inherits` rule (the whole chain, no circles)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from commands.affected import read_stacks, with_inheritors
from model.catalog import load_catalog
from model.errors import InputError
from model.stackfile import stack_chain, stack_settings, unknown_stack, with_inherited
from tests.conftest import ROOT


def _write(root: Path, stack: str, config: dict[str, Any]) -> None:
    (root / f"Pulumi.{stack}.yaml").write_text(json.dumps({"config": {f"astrago-deploy:{k}": v for k, v in config.items()}}))


@pytest.fixture
def chain_root(tmp_path: Path) -> Path:
    """site-a -> site-base -> prod: each level sets something of its own."""
    _write(tmp_path, "prod", {"cluster": {"domain": "astrago.io", "externalIP": "10.0.0.5", "storageClass": "astrago-nfs-csi"}})
    _write(tmp_path, "site-base", {"inherits": "prod", "cluster": {"externalIP": "10.9.0.5"}, "offline": {"fileServer": "http://files.site"}})
    _write(tmp_path, "site-a", {"inherits": "site-base", "releases": {"harbor": {"enabled": False}}})
    return tmp_path


def test_a_chain_of_three_keeps_what_the_farthest_stack_sets(chain_root: Path) -> None:
    settings = stack_settings(chain_root, "site-a", load_catalog(ROOT / "catalog" / "releases.yaml"))
    assert settings.cluster == {"domain": "astrago.io", "externalIP": "10.9.0.5", "storageClass": "astrago-nfs-csi"}
    assert settings.offline == {"fileServer": "http://files.site"}
    assert settings.releases["harbor"].enabled is False


def test_the_program_and_the_tools_lay_the_same_chain(chain_root: Path) -> None:
    # __main__.py reads its own stack through Pulumi and the rest with with_inherited: same result.
    own = {"releases": {"harbor": {"enabled": False}}}
    assert with_inherited(chain_root, own, "site-base", "site-a")["cluster"]["domain"] == "astrago.io"
    assert [f.stack for f in stack_chain(chain_root, "site-a")] == ["site-a", "site-base", "prod"]
    # CI selection follows the same chain: a change to prod touches both sites.
    assert with_inheritors("prod", read_stacks(chain_root)) == {"prod", "site-base", "site-a"}


def test_a_circle_is_refused_by_the_program_and_by_ci(tmp_path: Path) -> None:
    _write(tmp_path, "a", {"inherits": "b"})
    _write(tmp_path, "b", {"inherits": "c"})
    _write(tmp_path, "c", {"inherits": "a"})
    with pytest.raises(InputError, match=r"goes round in a circle \(a -> b -> c -> a\)"):
        stack_chain(tmp_path, "a")
    with pytest.raises(InputError, match=r"goes round in a circle \(a -> b -> c -> a\)"):
        with_inherited(tmp_path, {}, "b", "a")
    with pytest.raises(InputError, match="goes round in a circle"):
        read_stacks(tmp_path)


def test_a_missing_parent_is_named_with_the_file_that_names_it(chain_root: Path) -> None:
    _write(chain_root, "site-b", {"inherits": "prdo"})
    with pytest.raises(InputError, match=r"Pulumi\.site-b\.yaml: astrago-deploy:inherits names 'prdo', which has no Pulumi\.prdo\.yaml"):
        stack_chain(chain_root, "site-b")


def test_an_unknown_stack_names_the_known_ones_and_the_closest() -> None:
    message = str(unknown_stack(ROOT, "loacl"))
    assert "stack 'loacl' has no stack file Pulumi.loacl.yaml" in message
    assert "Did you mean 'local'?" in message and "Known stacks: dev, local, local-full, prod, stage" in message
