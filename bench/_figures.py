"""The figure lines every benchmark prints, and the loading of one benchmark
by another (imported by the scripts beside it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


def sibling(script: str) -> ModuleType:
    """The benchmark ``script`` beside this file, loaded as a module (its
    name, such as ``import.py``, may be no importable name)."""
    spec = importlib.util.spec_from_file_location(
        f"bench_{Path(script).stem}", Path(__file__).with_name(script)
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"bench/{script} is missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def line(
    name: str, value: float, unit: str, target: float | None = None, lower: bool = True
) -> None:
    """``name  value unit``, and with a ``target`` the ratio to it and whether
    it is met (``lower``: at most the target; else at least)."""
    text = f"{name:<38} {value:>12,.2f} {unit}"
    if target is not None:
        ratio = value / target
        ok = ratio <= 1 if lower else ratio >= 1
        text += f"   target {target:,g} {unit}: ratio {ratio:.3f} ({'met' if ok else 'MISSED'})"
    print(text, flush=True)
