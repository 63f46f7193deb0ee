"""Embedded profile store: one SQLite file, no server (the default backend).

* WAL mode: readers never wait for the writer; ``synchronous=NORMAL`` (a power cut
  may lose the last transactions, never corrupt the file).
* Thread-safe through a small pool of connections, each used by one thread at a time
  (the gRPC server calls from a thread pool).
* ``update`` runs in ``BEGIN IMMEDIATE``: the write lock is taken before the read, so
  concurrent updates — from threads or from other processes on the same file — are
  serialised and none is lost.  A lock not obtained within ``busy_timeout_s`` raises
  :class:`StoreUnavailable`.
* Privacy: the file only holds pseudonyms and AES-GCM blobs.  ``secure_delete`` is on,
  so deleted rows are overwritten with zeros, and ``delete`` checkpoints and truncates
  the WAL so the old pages do not linger there either.  The file (and with it the
  ``-wal``/``-shm`` files) is created with mode 0600.

Table ``records(pseudonym, name, blob, expires_at)``: one row per record, the profile
under name ``profile``.  Every per-user row carries the pseudonym, so deleting a user
is ``DELETE ... WHERE pseudonym = ?``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, TypeVar

from sidecar.crypto import KeyRing
from sidecar.store.base import PROFILE, StoreUnavailable, UpdateFn
from sidecar.store.codec import RecordCodec, check_pseudonym
from sidecar.store.records import RecordStore

__all__ = ["SQLiteStore"]

log = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 1
_PURGE_EVERY: Final = 256  # writes with a TTL between sweeps of expired rows
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS records (
    pseudonym  TEXT NOT NULL,
    name       TEXT NOT NULL,
    blob       BLOB NOT NULL,
    expires_at REAL,
    PRIMARY KEY (pseudonym, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_expiry ON records (expires_at)
    WHERE expires_at IS NOT NULL;
"""
_LIVE: Final = "(expires_at IS NULL OR expires_at > ?)"

T = TypeVar("T")


class SQLiteStore(RecordStore):
    """:class:`~sidecar.store.base.ProfileStore` on a local SQLite file."""

    local_reads = True  # WAL: a reader never waits for the writer

    def __init__(self, path: str | os.PathLike[str], keyring: KeyRing, *,
                 busy_timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self._codec = RecordCodec(keyring)
        self._busy_timeout_s = busy_timeout_s
        self._idle: list[sqlite3.Connection] = []
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._ttl_writes = 0
        try:
            with _unavailable("open"):
                self._create_file()
                with self._connection() as conn:
                    self._init_schema(conn)
        except BaseException:
            self.close()
            raise

    # -- profile ----------------------------------------------------------------------

    def delete(self, pseudonym: str) -> bool:
        check_pseudonym(pseudonym)

        def remove(conn: sqlite3.Connection) -> bool:
            return conn.execute("DELETE FROM records WHERE pseudonym = ?",
                                (pseudonym,)).rowcount > 0

        existed = self._write("delete", remove)
        self._truncate_wal()
        return existed

    # -- housekeeping -------------------------------------------------------------------

    def count(self) -> int:
        with _unavailable("count"), self._connection() as conn:
            row = conn.execute("SELECT count(*) FROM records WHERE name = ?",
                               (PROFILE,)).fetchone()
        return int(row[0])

    def ping(self) -> bool:
        try:
            with self._connection() as conn:
                conn.execute("SELECT 1 FROM records LIMIT 1").fetchall()
        except (sqlite3.Error, StoreUnavailable):
            return False
        return True

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns, self._all, self._idle = self._all, [], []
        for conn in conns:
            conn.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # -- records --------------------------------------------------------------------------

    def _get(self, pseudonym: str, name: str) -> bytes | None:
        with _unavailable("get"), self._connection() as conn:
            row = conn.execute(
                f"SELECT blob FROM records WHERE pseudonym = ? AND name = ? AND {_LIVE}",
                (pseudonym, name, time.time())).fetchone()
        return None if row is None else self._codec.open(pseudonym, name, bytes(row[0]))

    def _put(self, pseudonym: str, name: str, data: bytes, ttl_s: float | None) -> None:
        blob = self._codec.seal(pseudonym, name, data)

        def write(conn: sqlite3.Connection) -> None:
            self._upsert(conn, pseudonym, name, blob, ttl_s)

        self._write("put", write)
        self._after_ttl_write(ttl_s)

    def _update(self, pseudonym: str, name: str, fn: UpdateFn,
                ttl_s: float | None) -> bytes | None:
        def read_modify_write(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute(
                f"SELECT blob FROM records WHERE pseudonym = ? AND name = ? AND {_LIVE}",
                (pseudonym, name, time.time())).fetchone()
            old = None if row is None else self._codec.open(pseudonym, name, bytes(row[0]))
            new = fn(old)
            if new is None:
                conn.execute("DELETE FROM records WHERE pseudonym = ? AND name = ?",
                             (pseudonym, name))
            else:
                self._upsert(conn, pseudonym, name, self._codec.seal(pseudonym, name, new),
                             ttl_s)
            return new

        result = self._write("update", read_modify_write)
        self._after_ttl_write(ttl_s)
        return result

    @staticmethod
    def _upsert(conn: sqlite3.Connection, pseudonym: str, name: str, blob: bytes,
                ttl_s: float | None) -> None:
        expires_at = None if ttl_s is None else time.time() + ttl_s
        conn.execute(
            "INSERT INTO records (pseudonym, name, blob, expires_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (pseudonym, name) DO UPDATE SET blob = excluded.blob, "
            "expires_at = excluded.expires_at",
            (pseudonym, name, blob, expires_at))

    def _write(self, op: str, body: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``body`` in a ``BEGIN IMMEDIATE`` transaction; roll back if it raises."""
        with _unavailable(op), self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = body(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return result

    def _after_ttl_write(self, ttl_s: float | None) -> None:
        if ttl_s is None:
            return
        with self._lock:
            self._ttl_writes += 1
            due = self._ttl_writes % _PURGE_EVERY == 0
        if due:
            self._write("purge", lambda conn: conn.execute(
                "DELETE FROM records WHERE expires_at <= ?", (time.time(),)))

    def _truncate_wal(self) -> None:
        """Fold the WAL into the file and truncate it: deleted pages leave no copy there."""
        try:
            with self._connection() as conn:
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except (sqlite3.Error, StoreUnavailable):
            busy = 1
        if busy:
            log.debug("WAL not truncated after a delete (busy); the next checkpoint will")

    # -- connections ---------------------------------------------------------------------

    def _create_file(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreUnavailable(f"sqlite: cannot enable WAL mode (got {mode})")
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreUnavailable(f"sqlite: schema version {version} is newer than "
                                       f"this bioshard ({SCHEMA_VERSION})")
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise StoreUnavailable("sqlite: the store is closed")
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
            with self._lock:
                self._all.append(conn)
        try:
            yield conn
        finally:
            with self._lock:
                if self._closed:
                    conn.close()
                else:
                    self._idle.append(conn)


@contextmanager
def _unavailable(op: str) -> Iterator[None]:
    """Map SQLite's "cannot serve now" errors (locked, I/O, unreadable) to StoreUnavailable."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise StoreUnavailable(f"sqlite {op}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        if type(exc) is not sqlite3.DatabaseError:  # Integrity/Programming errors are bugs
            raise
        raise StoreUnavailable(f"sqlite {op}: {exc}") from exc
    except OSError as exc:
        raise StoreUnavailable(f"sqlite {op}: {type(exc).__name__}") from exc
