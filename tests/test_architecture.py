"""Structural rules: the domain stays pure; every public name is exported."""

from __future__ import annotations

import ast
from pathlib import Path

import timebank

DOMAIN = Path(timebank.__file__).parent / "domain"
ALLOWED = {"attrs", "eventsourcing.domain", "timebank.domain"}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def is_allowed(module: str) -> bool:
    top = module.split(".", maxsplit=1)[0]
    if top in {"__future__"} or top in __import__("sys").stdlib_module_names:
        return top not in {"sqlite3", "socket", "subprocess", "urllib", "http"}
    return any(module == a or module.startswith(a + ".") for a in ALLOWED)


def test_the_domain_imports_only_the_standard_library_attrs_and_eventsourcing_domain() -> None:
    offending = {
        (path.name, module)
        for path in DOMAIN.glob("*.py")
        for module in imported_modules(path)
        if not is_allowed(module)
    }
    assert offending == set()


def test_the_purity_check_would_catch_a_storage_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import sqlite3\nfrom eventsourcing.sqlite import SQLiteFactory\nimport click\n")
    assert {m for m in imported_modules(bad) if not is_allowed(m)} == {
        "sqlite3", "eventsourcing.sqlite", "click",
    }  # fmt: skip


def test_every_name_in_all_is_importable() -> None:
    for name in timebank.__all__:
        assert hasattr(timebank, name), name


def test_the_package_ships_type_information() -> None:
    assert (Path(timebank.__file__).parent / "py.typed").exists()
