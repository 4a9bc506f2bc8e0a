"""Roll a stack's configuration back to what an update deployed (`make audit-restore`)."""

from __future__ import annotations

import io
import shutil
import sys
import tarfile
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from audit.verify import charts_dir, compare_tree, record_text
from cli.git import git, git_bytes
from cli.process import ToolError
from model.charts import load_lock, sha256_file, write_lock
from model.errors import InputError
from model.history import History, Update
from model.stackfile import Loader, StackFile, chain, file_name, parse_stack_file

# What a rollback takes from an update's commit: the data every stack is made
# of (plus the stack's own file), never the program.
DATA_PATHS = ("catalog", "values", "charts")


@dataclass(frozen=True)
class RestorePlan:
    """Where update N's configuration comes from and which paths it restores."""

    commit: str
    paths: list[str]
    """Paths (relative to the project root) present in the commit."""
    ancestors: tuple[str, ...]
    """Stack files of every stack this one inherits from, nearest first (model.stackfile.chain)."""


def restore_plan(root: Path, stack: str, update: Update) -> RestorePlan:
    """The commit and paths that hold update N's configuration; InputError when there is no automatic path."""
    if update.kind != "update":
        raise InputError(f"update {update.number} is a {update.kind}, which deploys no configuration; restore the `update` before it (`make audit STACK={stack}` lists them)")
    if update.releases is None:
        raise InputError(f"update {update.number}: the state after it cannot be read from this backend; nothing to compare a restore with")
    if not update.commit:
        raise InputError(f"update {update.number} recorded no git commit (it ran outside a git checkout); revert by hand from the record above (values per release) and `make up STACK={stack}`")
    try:
        git(root, "rev-parse", "--show-toplevel")
    except (ToolError, OSError):
        raise InputError(f"{root}: not a git checkout; the rollback takes the configuration from commit {update.commit}") from None
    if git(root, "cat-file", "-e", f"{update.commit}^{{commit}}", check=False).returncode != 0:
        raise InputError(f"commit {update.commit} (update {update.number}) is not in this clone; `git fetch` the branch that holds it and run again")
    wanted = [f"Pulumi.{stack}.yaml", *DATA_PATHS]
    present = [p for p in git(root, "ls-tree", "--name-only", update.commit, "--", *wanted).stdout.split() if p]
    if f"Pulumi.{stack}.yaml" not in present:
        raise InputError(f"commit {update.commit} (update {update.number}) holds no Pulumi.{stack}.yaml; the stack file was not committed then, revert it by hand from the record above")
    # The whole inherits chain as the commit holds it: the same rule (and refusals) as the program's.
    ancestors = tuple(file_name(f.stack) for f in chain(stack, _commit_loader(root, update.commit))[1:])
    return RestorePlan(commit=update.commit, paths=[*present, *ancestors], ancestors=ancestors)


def _commit_loader(root: Path, commit: str) -> Loader:
    """Stack files as a commit holds them (None for a stack without a file there)."""
    def load(name: str) -> StackFile | None:
        path = file_name(name)
        if not git(root, "ls-tree", "--name-only", commit, "--", path).stdout.strip():
            return None
        return parse_stack_file(git(root, "show", f"{commit}:./{path}").stdout, name, f"{path} at commit {commit[:12]}")
    return load


@dataclass(frozen=True)
class Scratch:
    """Update N's configuration written into a scratch folder, ready to resolve."""

    locked: dict[str, str]
    """External chart -> sha256 as the commit's lock records it."""
    missing: list[str]
    """`<chart> <version>` whose archive this checkout lacks (`make charts-sync` fetches them after the restore)."""
    archives: set[str]
    """Archive paths (relative to the charts folder) the commit's lock names."""


def scratch_tree(root: Path, plan: RestorePlan, stack: str, target: Path) -> Scratch:
    """Write the plan's paths as they were in its commit into target.

    Chart archives are not in git: those the commit's lock names are copied
    from this checkout. One this checkout lacks (a version a later sync
    replaced) gets a stand-in there and its lock entry the stand-in's
    checksum: resolving reads no archive content (verify_charts=False), and the digest compared is
    the one the commit's lock records, which `make up` later checks the
    fetched archive against.
    """
    data = git_bytes(root, "archive", "--format=tar", plan.commit, "--", *plan.paths)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(target, filter="data")
    folder = charts_dir(target, stack)
    if Path(folder).is_absolute():
        return Scratch(locked={}, missing=[], archives=set())  # archives live outside the checkout: resolved as they are
    lock = load_lock(target / folder)
    entries, missing = [], []
    for entry in lock.values():
        source, copy = root / folder / entry.archive, target / folder / entry.archive
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_file():
            shutil.copy2(source, copy)
            entries.append(entry)
        else:
            copy.write_bytes(f"stand-in for {entry.archive}, which this checkout lacks\n".encode())
            entries.append(replace(entry, sha256=sha256_file(copy)))
            missing.append(f"{entry.name} {entry.version}")
    if missing:
        write_lock(target / folder, entries)
    return Scratch(locked={e.name: e.sha256 for e in lock.values()}, missing=missing, archives={e.archive for e in lock.values()})


def tracked_files(root: Path, commit: str | None) -> dict[str, bytes]:
    """Tracked files under the shared data folders, at a commit (or in the working tree when None)."""
    if commit:
        names = git(root, "ls-tree", "-r", "--name-only", commit, "--", *DATA_PATHS).stdout.split("\n")
        return {n: git_bytes(root, "show", f"{commit}:./{n}") for n in names if n}
    names = git(root, "ls-files", "--", *DATA_PATHS).stdout.split("\n")
    return {n: (root / n).read_bytes() for n in names if n and (root / n).is_file()}


def restore(root: Path, history: History, number: int, apply: bool) -> int:
    """Roll the stack's configuration back to what update N deployed (dry run unless apply).

    Takes Pulumi.<stack>.yaml, catalog/, values/ and charts/ from the commit
    update N recorded, checks in a scratch folder that they resolve to exactly
    what update N deployed (releases, chart versions and digests, values,
    secrets), and only then, with apply, writes them into the working tree
    with `git restore`. Refuses, changing nothing, when the commit does not
    reproduce update N or the working tree holds uncommitted changes there.
    """
    update = history.get(number)
    stack = history.stack
    print(history.guard(record_text(update)))
    if update.result != "succeeded":
        print(f"note: update {number} {update.result}; its state holds what was deployed when it stopped")
    plan = restore_plan(root, stack, update)
    print(f"update {number} ran at commit {plan.commit}{' with uncommitted changes: the check below decides whether the commit reproduces it' if update.dirty else ''}")
    print(f"restore takes from it: {' '.join(plan.paths)}")
    with tempfile.TemporaryDirectory(prefix="astrago-restore-") as folder:
        scratch = scratch_tree(root, plan, stack, Path(folder))
        # The archives there may be stand-ins: the digests compared are the commit's lock's, and the
        # archives (with the values-key check against them) are checked by `make up` after `make charts-sync`.
        problems = compare_tree(Path(folder), stack, update, scratch.locked, verify_charts=False)
    if problems:
        print(f"commit {plan.commit[:12]} does not reproduce update {number}; nothing was changed:", file=sys.stderr)
        print("\n".join(f"- {p}" for p in problems), file=sys.stderr)
        print(f"revert by hand from the record above, then check with `make audit-verify STACK={stack} VERSION={number}`", file=sys.stderr)
        return 1
    print(f"check: commit {plan.commit[:12]} resolves to exactly what update {number} deployed (releases, chart versions and digests, values, secrets)")
    if scratch.missing:
        print(f"chart archives this checkout lacks: {', '.join(scratch.missing)}; `make charts-sync` fetches them after the restore")
    then, now = tracked_files(root, plan.commit), tracked_files(root, None)
    shared = sorted(n for n in set(then) | set(now) if then.get(n) != now.get(n))
    if shared:
        others = sorted(p.name for p in root.glob("Pulumi.*.yaml") if p.name not in {f"Pulumi.{stack}.yaml", "Pulumi.yaml"})
        print(f"warning: the restore changes files every stack reads ({', '.join(shared)}); the next `make up` of {', '.join(others) or 'another stack'} would deploy them too")
    if not apply:
        print(f"dry run: nothing changed. Apply with `make audit-restore STACK={stack} VERSION={number} APPLY=1`")
        return 0
    folder_name = charts_dir(root, stack)
    archive_dir = root / folder_name / "external"
    archives = f"{folder_name.rstrip('/')}/external/"
    status = [line for line in git(root, "status", "--porcelain", "--untracked-files=all", "--", *plan.paths).stdout.splitlines()
              if line and not line[3:].startswith(archives)]
    if status:
        raise InputError("uncommitted changes where the restore writes; commit or stash them first, nothing was changed:\n" + "\n".join(status))
    for ancestor in plan.ancestors:
        if (root / ancestor).is_file() and git_bytes(root, "show", f"{plan.commit}:./{ancestor}") != (root / ancestor).read_bytes():
            raise InputError(f"{ancestor} changed since update {number}; restoring it would roll back that stack too. Nothing was changed: revert Pulumi.{stack}.yaml by hand from the record above")
    git(root, "restore", f"--source={plan.commit}", "--worktree", "--", *plan.paths)
    # Archives of versions the restored lock does not name would fail the chart check of `make up`;
    # they are downloads, fetched again by `make charts-sync` whenever they are declared.
    stale = sorted(p for p in archive_dir.glob("*.tgz") if f"external/{p.name}" not in scratch.archives) if not Path(folder_name).is_absolute() else []
    for path in stale:
        path.unlink()
    print(f"restored {' '.join(plan.paths)} from {plan.commit[:12]}" + (f"; removed archives the restored lock does not name: {', '.join(p.name for p in stale)}" if stale else ""))
    if scratch.missing:
        print(f"next: `make charts-sync` (fetches {', '.join(scratch.missing)}), `make audit-verify STACK={stack} VERSION={number}` (checks the fetched archives are those update {number} deployed), "
              f"review `git diff`, commit, `make up STACK={stack}`")
        return 0
    problems = compare_tree(root, stack, update)
    if problems:
        print(f"the working tree still differs from update {number}:\n" + "\n".join(f"- {p}" for p in problems), file=sys.stderr)
        return 1
    print(f"this checkout now reproduces update {number}.")
    print(f"next: review `git diff`, commit (\"Roll back {stack} to update {number}\"), then `make preview STACK={stack}` and `make up STACK={stack}`")
    return 0
