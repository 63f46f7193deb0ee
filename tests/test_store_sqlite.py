"""SQLiteStore: the shared store contract, plus what only the embedded backend does."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_contract import ALICE, KEY_A, StoreContract

from sidecar.crypto import KeyRing, generate_dev_keys
from sidecar.store import PROFILE, StoreUnavailable, open_store, sqlite_path
from sidecar.store.sqlite import SCHEMA_VERSION, SQLiteStore


class SQLiteBackend:
    """One SQLite file in a temp dir; 'down' means another process holds the write lock."""

    reads_survive_outage = True  # WAL: readers never wait for the writer

    def __init__(self, path: Path) -> None:
        self.path = path
        self._locker: sqlite3.Connection | None = None

    def make_store(self, keyring: KeyRing, *, timeout_s: float | None = None) -> SQLiteStore:
        return SQLiteStore(self.path, keyring, busy_timeout_s=timeout_s or 10.0)

    def _raw(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, isolation_level=None)

    def raw_get(self, pseudonym: str, name: str = PROFILE) -> bytes | None:
        conn = self._raw()
        try:
            row = conn.execute("SELECT blob FROM records WHERE pseudonym = ? AND name = ?",
                               (pseudonym, name)).fetchone()
        finally:
            conn.close()
        return None if row is None else bytes(row[0])

    def raw_set(self, pseudonym: str, name: str, blob: bytes) -> None:
        conn = self._raw()
        try:
            conn.execute("INSERT OR REPLACE INTO records (pseudonym, name, blob) VALUES (?, ?, ?)",
                         (pseudonym, name, blob))
        finally:
            conn.close()

    def dump(self) -> bytes:
        files = [self.path, *(self.path.with_name(self.path.name + s) for s in ("-wal", "-shm"))]
        return b"".join(f.read_bytes() for f in files if f.exists())

    def take_down(self) -> None:
        self._locker = self._raw()
        self._locker.execute("BEGIN IMMEDIATE")

    def close(self) -> None:
        if self._locker is not None:
            self._locker.close()


class TestSQLiteStore(StoreContract):
    """SQLiteStore meets the ProfileStore contract."""

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[SQLiteBackend]:
        backend = SQLiteBackend(tmp_path / "data" / "profiles.db")
        yield backend
        backend.close()

    @pytest.fixture
    def outage_backend(self, backend: SQLiteBackend) -> SQLiteBackend:
        return backend


@pytest.fixture
def keyring() -> KeyRing:
    return KeyRing([KEY_A])


def test_file_is_private_and_in_wal_mode(tmp_path: Path, keyring: KeyRing) -> None:
    """The file (in a created directory) is mode 0600 and in WAL mode with secure_delete."""
    path = tmp_path / "new" / "dir" / "profiles.db"
    store = SQLiteStore(path, keyring)
    store.put(ALICE, b"x")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()
    store.close()


def test_refuses_newer_schema(tmp_path: Path, keyring: KeyRing) -> None:
    """A file written by a newer bioshard is refused, not silently mangled."""
    path = tmp_path / "profiles.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreUnavailable, match="newer"):
        SQLiteStore(path, keyring)


def test_unopenable_path_is_unavailable(tmp_path: Path, keyring: KeyRing) -> None:
    """A path that cannot hold a database raises StoreUnavailable."""
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StoreUnavailable):
        SQLiteStore(tmp_path / "file" / "profiles.db", keyring)


def test_closed_store_is_unavailable(tmp_path: Path, keyring: KeyRing) -> None:
    """After close(), calls raise StoreUnavailable and ping() is False."""
    store = SQLiteStore(tmp_path / "p.db", keyring)
    store.close()
    assert store.ping() is False
    with pytest.raises(StoreUnavailable):
        store.get(ALICE)


@pytest.mark.parametrize(("url", "expected"), [
    ("sqlite:///bioshard-data/profiles.db", Path("bioshard-data/profiles.db")),
    ("sqlite:////var/lib/bioshard/profiles.db", Path("/var/lib/bioshard/profiles.db")),
    ("sqlite:///with%20space.db", Path("with space.db")),
], ids=["relative", "absolute", "percent-encoded"])
def test_sqlite_path(url: str, expected: Path) -> None:
    """sqlite:/// URLs: three slashes relative, four absolute."""
    assert sqlite_path(url) == expected


@pytest.mark.parametrize("url", [
    "sqlite://host/file.db", "sqlite:///:memory:", "sqlite:///", "postgres://x/y", "profiles.db",
], ids=["with-host", "in-memory", "no-path", "unknown-scheme", "no-scheme"])
def test_open_store_rejects_bad_urls(url: str, keyring: KeyRing) -> None:
    """Malformed or unsupported store URLs raise ValueError."""
    with pytest.raises(ValueError):
        open_store(url, keyring)


def test_open_store_sqlite(tmp_path: Path) -> None:
    """open_store takes Keys or a KeyRing and opens SQLite for sqlite:// URLs."""
    keys = generate_dev_keys()
    store = open_store(f"sqlite:///{tmp_path}/p.db", keys)
    assert isinstance(store, SQLiteStore)
    store.put(ALICE, b"x")
    store.close()
    reopened = open_store(f"sqlite:///{tmp_path}/p.db", keys.keyring)
    assert reopened.get(ALICE) == b"x"
    reopened.close()
