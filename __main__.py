"""The Astrago platform: read the stack's config, check it, deploy the tiers.

This is the only module that reads config. Everything is validated by
`model.deployment.prepare` before the first resource is registered.
"""

from pathlib import Path

import pulumi

from components.platform import Platform, PlatformArgs
from model.catalog import load_catalog
from model.deployment import prepare, product_endpoints
from model.errors import InputError
from model.settings import parse_settings
from model.stackfile import INHERITED_KEYS, with_inherited

ROOT = Path(__file__).resolve().parent
config = pulumi.Config()
stack = pulumi.get_stack()

try:
    catalog = load_catalog(ROOT / "catalog" / "releases.yaml")
    raw = {key: config.get_object(key) for key in INHERITED_KEYS if key != "chartsDir"}
    raw["chartsDir"] = config.get("chartsDir")
    raw = with_inherited(ROOT, raw, config.get("inherits"))
    # A secret counts as set when it has a value; it must also be encrypted.
    present = {key for key in catalog.secret_keys() if pulumi.runtime.get_config(f"{config.name}:{key}")}
    plaintext = sorted(key for key in present if not pulumi.runtime.is_config_secret(f"{config.name}:{key}"))
    if plaintext:
        raise InputError(*(f"Pulumi.{stack}.yaml: {key} is stored in plain text; set it again with `pulumi config set --secret {key} --stack {stack}`" for key in plaintext))
    settings = parse_settings(stack, raw, catalog)
    deployment = prepare(ROOT, catalog, settings, present)
except InputError as error:
    raise pulumi.RunError(f"stack {stack!r} cannot be deployed; nothing was changed:\n{error}") from None

platform = Platform(
    "astrago",
    PlatformArgs(
        deployment=deployment,
        secrets={key: config.require_secret(key) for key in deployment.secret_keys},
        endpoints=product_endpoints(deployment, settings),
    ),
)

pulumi.export("releases", platform.releases)
pulumi.export("endpoints", platform.endpoints)
