"""The message every `pulumi up` records: who ran it, git commit, author and subject.

Pulumi also records its own environment metadata (git head, committer, CI
run) in each update, but not who ran it; the message adds the runner (the CI
actor or the local user) and makes the commit readable in `pulumi stack history`.
"""

import getpass
import os
import subprocess


def runner() -> str:
    """The CI actor when CI runs the update, else the local user."""
    for variable in ("GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILD_REQUESTEDFOR"):
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def message() -> str:
    try:
        line = subprocess.run(
            ["git", "log", "-1", "--format=%h %an: %s"], capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"by {runner()}: astrago-deploy (not a git checkout)"
    return f"by {runner()}: {line}{' (+ uncommitted changes)' if dirty else ''}"


if __name__ == "__main__":
    print(message())
