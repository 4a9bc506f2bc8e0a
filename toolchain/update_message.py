"""The message every `pulumi up` records: git commit, author and subject.

Pulumi also records its own environment metadata (git head, committer, CI
run) in each update; this makes the commit readable in `pulumi stack history`.
"""

import subprocess


def message() -> str:
    try:
        line = subprocess.run(
            ["git", "log", "-1", "--format=%h %an: %s"], capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "astrago-deploy (not a git checkout)"
    return f"{line}{' (+ uncommitted changes)' if dirty else ''}"


if __name__ == "__main__":
    print(message())
