"""The figure lines every benchmark prints (imported by the scripts beside it)."""

from __future__ import annotations


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
