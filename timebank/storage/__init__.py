"""Storage selected by URL: ``memory://``, ``sqlite:///path.db`` (default) or
``postgresql://user@host:5432/dbname``.

``open_backend(url)`` is the only place a URL is turned into a backend; the
domain, the API and the CLI never name a storage technology.
"""

from __future__ import annotations

import os
from pathlib import Path

from timebank.domain.errors import StoreNotFound, UnsupportedStorageURL
from timebank.storage.base import Backend, IndexedEntry, IndexUpdate, Profile, ProfileStore

__all__ = [
    "DEFAULT_URL",
    "ENV_VAR",
    "Backend",
    "IndexUpdate",
    "IndexedEntry",
    "Profile",
    "ProfileStore",
    "default_url",
    "open_backend",
]

#: Environment variable naming the store when no URL is given.
ENV_VAR = "TIMEBANK_DB"
#: The embedded default: a SQLite file in the working directory.
DEFAULT_URL = "sqlite:///timebank.db"


def default_url() -> str:
    """``$TIMEBANK_DB`` if set, else ``sqlite:///timebank.db``."""
    return os.environ.get(ENV_VAR) or DEFAULT_URL


def open_backend(url: str, *, create: bool = True) -> Backend:
    """The backend a URL names. With ``create=False`` a missing SQLite file,
    or a PostgreSQL schema without a store's tables, is
    :class:`StoreNotFound` instead of a new empty store."""
    if url == "memory://" or url.startswith("memory://"):
        from timebank.storage.memory import MemoryBackend

        return MemoryBackend(url)
    if url.startswith("sqlite:///"):
        from timebank.storage.sqlite import SqliteBackend

        raw = url.removeprefix("sqlite:///")
        if not raw or raw.endswith("/"):
            raise UnsupportedStorageURL(f"no file name in {url!r}", url=url)
        path = Path(raw)
        if not create and not path.exists():
            raise StoreNotFound(f"no timebank store at {path} ({url})", url=url)
        if not path.parent.exists():
            raise StoreNotFound(f"directory {path.parent} does not exist ({url})", url=url)
        return SqliteBackend(url, path, create=create)
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from timebank.storage.postgres import PostgresBackend
        except ImportError as e:
            raise UnsupportedStorageURL(
                f"PostgreSQL support is not installed ({e.name} is missing):"
                " pip install 'timebank[postgres]'",
                url=url.rsplit("@", maxsplit=1)[-1],
            ) from None
        return PostgresBackend(url, create=create)
    raise UnsupportedStorageURL(
        f"unsupported storage URL {url!r}: use memory://, sqlite:///path.db or"
        " postgresql://user@host:5432/dbname",
        url=url,
    )
