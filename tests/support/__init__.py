"""Helpers the tests and the bench share: chart repositories and registries on 127.0.0.1, stand-in charts, engine stacks."""
