"""Encrypted per-user profile stores: SQLite (default), Redis, Redis Cluster.

``open_store(url, keyring)`` picks the backend from the URL; every backend meets the
:class:`ProfileStore` contract (see :mod:`sidecar.store.base` and ``docs/storage.md``).
The Redis backends import ``redis`` only when asked for.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from sidecar.crypto import DecryptError, KeyRing, Keys
from sidecar.store.base import (
    PROFILE,
    ProfileStore,
    StoreError,
    StoreUnavailable,
    UpdateConflict,
    UpdateFn,
)

__all__ = [
    "PROFILE",
    "DecryptError",
    "ProfileStore",
    "StoreError",
    "StoreUnavailable",
    "UpdateConflict",
    "UpdateFn",
    "open_store",
    "sqlite_path",
]


def open_store(url: str, keys: KeyRing | Keys, *, timeout_s: float | None = None) -> ProfileStore:
    """Open the store named by ``url``, encrypting with ``keys`` (a key ring, or ``Keys``).

    * ``sqlite:///relative/file.db``, ``sqlite:////absolute/file.db`` — embedded
      (``timeout_s``: how long a writer waits for the lock, default 5 s);
    * ``redis://[user:pw@]host:port/db``, ``rediss://...`` — one Redis server;
    * ``redis+cluster://[user:pw@]host:port,host:port``, ``rediss+cluster://...`` —
      Redis Cluster (``timeout_s``: socket timeout, default 0.5 s).

    Raises ``ValueError`` for an unknown or malformed URL and
    :class:`StoreUnavailable` when the backend cannot be opened.
    """
    keyring = keys.keyring if isinstance(keys, Keys) else keys
    scheme = url.partition("://")[0].lower()
    if scheme == "sqlite":
        from sidecar.store.sqlite import SQLiteStore

        if timeout_s is None:
            return SQLiteStore(sqlite_path(url), keyring)
        return SQLiteStore(sqlite_path(url), keyring, busy_timeout_s=timeout_s)
    if scheme in ("redis", "rediss", "redis+cluster", "rediss+cluster"):
        from sidecar.store.redis_store import DEFAULT_TIMEOUT_S, RedisClusterStore, RedisStore

        timeout = DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s
        if scheme.endswith("+cluster"):
            return RedisClusterStore.from_url(url, keyring, timeout_s=timeout)
        return RedisStore.from_url(url, keyring, timeout_s=timeout)
    raise ValueError("store URL: expected sqlite:///path, redis://host:port/db or "
                     "redis+cluster://host:port,...")


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///`` URL: three slashes relative, four absolute.

    ``sqlite:///bioshard-data/profiles.db`` → ``bioshard-data/profiles.db``;
    ``sqlite:////var/lib/bioshard/profiles.db`` → ``/var/lib/bioshard/profiles.db``.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqlite" or parts.netloc or not parts.path.startswith("/"):
        raise ValueError("store URL: expected sqlite:///relative/path or "
                         "sqlite:////absolute/path")
    path = unquote(parts.path[1:])
    if not path or path == ":memory:" or path.endswith("/"):
        raise ValueError("store URL: sqlite needs a file path (in-memory is not supported)")
    return Path(path)
