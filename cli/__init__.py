"""Wrappers of the pinned command-line tools (helm, kubectl, pulumi, crane): the one place they are called.

Every tool comes from the project's toolchain (`.tools/bin`, built by `make setup`), never from PATH.
"""
