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
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: What the copy of the tree leaves out, by name wherever it is: what git
#: ignores (the venv, the tools' caches, the package's build metadata,
#: stores), and git's own files. A test keeps it in step with .gitignore.
NOT_COPIED = (
    ".git", ".venv", ".cache", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis",
    "__pycache__", "*.egg-info", "*.db", "*.db-wal", "*.db-shm", ".coverage",
)  # fmt: skip
#: ... and by its path below the tree's root: a wheel's build (whose stale
#: copy of the package the linters of the copy would read), benchmark output.
NOT_COPIED_PATHS = ("build", "dist", "bench/results")


def _left_out(root: Path) -> Callable[[str, list[str]], set[str]]:
    """``shutil.copytree``'s ``ignore`` for a copy of ``root``."""
    by_name = shutil.ignore_patterns(*NOT_COPIED)

    def ignore(directory: str, names: list[str]) -> set[str]:
        here = Path(directory).relative_to(root)
        by_path = {n for n in names if (here / n).as_posix() in NOT_COPIED_PATHS}
        return set(by_name(directory, names)) | by_path

    return ignore


def copy_tree(tree: Path, root: Path = ROOT) -> Path:
    """A copy of ``root`` at ``tree``, sharing its ``.cache/`` (the SQLite
    build and axe-core) by a link."""
    shutil.copytree(root, tree, ignore=_left_out(root), symlinks=True)
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
