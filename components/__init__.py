"""Pulumi ComponentResources: Platform -> Tier -> LocalRelease (+ Hook).

Components take plain values resolved by `model.deployment.prepare`; only
secrets arrive as Outputs. Config is read in __main__.py alone.
"""
