"""Checks of the API's arguments that are not values of the ledger: paths,
files to write to, rows to import, a store's URL, a function to call. Each
refuses an object of the wrong kind with :class:`~timebank.errors.InvalidInput`
naming the argument, before anything is opened or written, where Python
would raise its own ``TypeError`` or ``AttributeError`` from deep inside."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from timebank.domain.errors import InvalidInput

__all__ = ["validate_function", "validate_path", "validate_rows", "validate_url", "validate_writer"]


def validate_path(value: object, name: str) -> Path:
    """A file's path: text or an ``os.PathLike`` of text, with no NUL
    character (which no file system takes)."""
    if isinstance(value, str | os.PathLike):
        path = os.fspath(value)
        if isinstance(path, str) and "\0" not in path:
            return Path(path)
    raise InvalidInput(f"{name} must be a file's path, as text or a Path: {value!r}")


def validate_writer(value: object, name: str) -> TextIO:
    """A text file open for writing (anything with a ``write`` method)."""
    if isinstance(value, str | bytes | os.PathLike) or not callable(getattr(value, "write", None)):
        raise InvalidInput(f"{name} must be a text file open for writing: {value!r}")
    writer: TextIO = value  # type: ignore[assignment]
    return writer


def validate_rows(value: object) -> Iterable[Any]:
    """Rows to import: an iterable of rows (not text, whose characters would
    be taken for rows)."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidInput(
            f"rows must be an iterable of rows (dicts of column -> text, or read_csv(path)):"
            f" {value!r}"
        )
    return value


def validate_url(value: object) -> str | None:
    """A store's URL: text, or ``None`` for the default."""
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"a store's URL must be text: {value!r}")
    return value


def validate_function(value: object, name: str, does: str) -> Callable[..., Any] | None:
    """A function given to the API (a clock, a progress callback), or
    ``None``; ``does`` says what it is for, in the error."""
    if value is not None and not callable(value):
        raise InvalidInput(f"{name} must be a function that {does}: {value!r}")
    return value
