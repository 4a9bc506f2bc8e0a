"""The Astrago platform: read the stack's config, check it, deploy the tiers.

This is the only module that reads config. Everything is validated by
`model.deployment.prepare` before the first resource is registered.
"""

import os
from pathlib import Path

import pulumi
from pulumi.runtime.mocks import MockMonitor

from cli.kubectl import start_cluster_facts
from cli.pending import PendingQuery, check_not_pending

# A release left pending by an interrupted update blocks Helm: the pre-flight asks the
# cluster with one kubectl call (~30 ms), started here so it answers while the program
# loads and read before anything registers. Unit tests run under mocks, with no cluster.
pending_query = None if isinstance(pulumi.runtime.settings.get_monitor(), MockMonitor) else PendingQuery()
# The render (render/releases.py) needs the cluster's version and API versions: asked now too.
cluster_facts = None if pending_query is None else start_cluster_facts()

# The rest is imported after the query starts, on purpose.
from components.engine_log import drop_sdk_debug_lines  # noqa: E402
from components.failure import engine_errors_as_messages  # noqa: E402
from components.hook import PROVIDER_VERSION as HOOKS_VERSION  # noqa: E402
from components.kubernetes_provider import VERSION as KUBERNETES_VERSION  # noqa: E402
from components.platform import Platform, PlatformArgs  # noqa: E402
from model.catalog import load_catalog  # noqa: E402
from model.deployment import prepare, product_endpoints  # noqa: E402
from model.errors import InputError, debugging, describe  # noqa: E402
from model.identity import PLATFORM_NAME  # noqa: E402
from model.plugins import missing_plugins  # noqa: E402
from model.settings import check_adoption, parse_settings  # noqa: E402
from model.stackfile import INHERITED_KEYS, file_name, locator, stack_chain, with_inherited  # noqa: E402
from render.releases import render_for_program  # noqa: E402

ROOT = Path(__file__).resolve().parent
# Five SDK debug lines per resource, each a blocking call to the engine: 0.1 s of every preview (components/engine_log.py).
drop_sdk_debug_lines(os.environ)
# An error the engine answers a registration with (Ctrl-C, a cancelled job) ends the program with its message, no traceback.
engine_errors_as_messages(os.environ)
config = pulumi.Config()
stack = pulumi.get_stack()

try:
    catalog = load_catalog(ROOT / "catalog" / "releases.yaml")
    raw = {key: config.get_object(key) for key in INHERITED_KEYS if key != "chartsDir"}
    raw["chartsDir"] = config.get("chartsDir")
    raw = with_inherited(ROOT, raw, config.get("inherits"), stack)
    # Adoption is a one-off step of one stack: never inherited.
    raw["adopt"] = config.get_object("adopt")
    # A secret counts as set when it has a value; it must also be encrypted.
    present = {key for key in catalog.secret_keys() if pulumi.runtime.get_config(f"{config.name}:{key}")}
    plaintext = sorted(key for key in present if not pulumi.runtime.is_config_secret(f"{config.name}:{key}"))
    if plaintext:
        raise InputError(*(f"Pulumi.{stack}.yaml: {key} is stored in plain text; set it again with `pulumi config set --secret {key} --stack {stack}`" for key in plaintext))
    if pending_query is not None:
        # Under mocks no plugin runs; for the engine, a missing one would be a download attempt.
        unfound = missing_plugins(os.environ, [("kubernetes", KUBERNETES_VERSION), ("astrago-hooks", HOOKS_VERSION)])
        if unfound:
            raise InputError(*unfound)
    # The stack files (checked against the schema) tell the line of a bad key.
    settings = parse_settings(stack, raw, catalog, locator(stack_chain(ROOT, stack)) if (ROOT / file_name(stack)).is_file() else None)
    check_adoption(settings, os.environ, pulumi.runtime.is_dry_run())
    deployment = prepare(ROOT, catalog, settings, present)
    # Refused before anything acts, at preview too.
    if pending_query is not None and cluster_facts is not None:
        check_not_pending(stack, [(r.namespace, r.name) for r in catalog.releases], pulumi.log.warn, run=pending_query.run)
        # Every release rendered by Helm (schema, templates, required values, the cluster's capabilities) and put through
        # its post-render (patches, digest pins), which Helm runs only on install and upgrade.
        for line in render_for_program(ROOT, deployment, {key: pulumi.runtime.get_config(f"{config.name}:{key}") or "" for key in deployment.secret_keys},
                                       pending_query, cluster_facts, pulumi.log.warn):
            pulumi.log.info(line)
except Exception as error:
    # One message, no traceback (ASTRAGO_DEBUG=1 shows it): a bad file or a failed check is the user's to fix.
    if debugging() and not isinstance(error, InputError):
        raise
    raise pulumi.RunError(f"stack {stack!r} cannot be deployed; nothing was changed:\n{describe(error)[0]}") from None
finally:
    if pending_query is not None:
        pending_query.close()

platform = Platform(
    PLATFORM_NAME,
    PlatformArgs(
        deployment=deployment,
        secrets={key: config.require_secret(key) for key in deployment.secret_keys},
        endpoints=product_endpoints(deployment, settings),
    ),
)

pulumi.export("releases", platform.releases)
pulumi.export("endpoints", platform.endpoints)
