"""The astrago-deploy policy pack: `pulumi preview --policy-pack policy` starts it (see README.md).

The engine runs `python -u <this folder> <engine address>` with the project's
virtualenv (PulumiPolicy.yaml) in the project's folder; PolicyPack prints its
port and serves until the engine stops it.
"""

import sys
from pathlib import Path

# The rules import the repository's own code (policy.rules, model/), one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from policy.policies import POLICIES

PolicyPack(name="astrago-deploy", policies=list(POLICIES), enforcement_level=EnforcementLevel.MANDATORY)
