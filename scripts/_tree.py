"""What scripts/lowest and scripts/newest share: a copy of the tree to test
in, and running the checks in it to the end.

Each works on its own copy of the tree, so that it shares nothing with the
tree's own runs (the venv, ``*.egg-info``, the tools' caches) but
``.cache/``: ``.ci/run`` runs scripts/lowest beside the README's test
command, and scripts/newest may run beside either.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: What the copy of the tree leaves out: what git ignores (the venv, the
#: tools' caches, the package's build metadata, stores), and git's own files.
NOT_COPIED = (
    ".git", ".venv", ".cache", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis",
    "__pycache__", "*.egg-info", "*.db", "*.db-wal", "*.db-shm",
)  # fmt: skip


def copy_tree(tree: Path, root: Path = ROOT) -> Path:
    """A copy of ``root`` at ``tree``, sharing its ``.cache/`` (the SQLite
    build and axe-core) by a link."""
    shutil.copytree(root, tree, ignore=shutil.ignore_patterns(*NOT_COPIED), symlinks=True)
    (root / ".cache").mkdir(exist_ok=True)
    (tree / ".cache").symlink_to(root / ".cache", target_is_directory=True)
    return tree


def run_checks(
    python: Path, tree: Path, pytest_args: list[str], env: dict[str, str] | None = None
) -> int:
    """``scripts/check`` of ``tree`` with ``python``, beside a throwaway
    PostgreSQL server, without pytest's cache; its exit status."""
    checks = subprocess.Popen(
        [python, tree / "scripts" / "postgres", "run", "--", python, tree / "scripts" / "check",
         "-p", "no:cacheprovider", *pytest_args],
        cwd=tree, env=os.environ if env is None else env,
    )  # fmt: skip
    try:
        return checks.wait()
    except KeyboardInterrupt:
        # The interrupt reached it too (one process group): it stops its
        # PostgreSQL server and removes it, and is not killed meanwhile.
        checks.wait()
        raise
