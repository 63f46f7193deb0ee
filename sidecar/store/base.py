"""The profile store contract every backend meets, and its errors.

A store keeps, per pseudonym, one *profile* (the user's learned behaviour model, as
opaque bytes) and any number of small named *auxiliary records* (per-user data that
other parts may need to keep next to the profile: score history, pending windows,
replay bindings...).  Everything is encrypted by the store itself with the key ring,
the pseudonym and record name as associated data: callers pass and get plaintext
bytes and never see ciphertext, and a blob copied to another user or record fails
with :class:`~sidecar.crypto.DecryptError`.

"Derived from the user" means every record the store holds under that pseudonym:
the profile and all auxiliary records.  :meth:`ProfileStore.delete` removes all of
them at once (and each backend sweeps anything else it finds under the user's key
prefix), so a new kind of per-user data is covered by deletion as soon as it is
stored through :meth:`ProfileStore.put_aux` / :meth:`ProfileStore.update_aux` — no
delete code to remember.  State a caller keeps *outside* the store (in-memory
caches, queues) is the caller's to drop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol, runtime_checkable

from sidecar.crypto import DecryptError

__all__ = [
    "PROFILE",
    "DecryptError",
    "ProfileStore",
    "StoreError",
    "StoreUnavailable",
    "UpdateConflict",
    "UpdateFn",
]

PROFILE: Final = "profile"
"""The record name of the profile itself (auxiliary records use other names)."""

UpdateFn = Callable[[bytes | None], bytes | None]
"""Read-modify-write step: old plaintext (None when absent) → new plaintext (None deletes).

It may be called more than once (optimistic backends retry on a conflict), so it must
not have side effects beyond computing its result.
"""


class StoreError(Exception):
    """Base class of store errors.  Messages never contain user data or keys."""


class StoreUnavailable(StoreError):
    """The backend cannot serve now (down, timed out, locked); the pipeline's reason
    ``store_unavailable``.  Retrying later may succeed."""


class UpdateConflict(StoreUnavailable):
    """An optimistic update lost to concurrent writers more times than the retry bound."""


@runtime_checkable
class ProfileStore(Protocol):
    """Encrypted per-pseudonym profiles (plus auxiliary records); thread-safe.

    Every method may raise :class:`StoreUnavailable`; reads and updates may raise
    :class:`~sidecar.crypto.DecryptError` (a blob the key ring cannot open is never
    silently treated as absent or overwritten by ``update``).
    """

    #: True when a read is local and never waits for a writer (SQLite in WAL mode): the
    #: pipeline then reads on the request's own thread instead of handing the read to
    #: a thread that enforces the deadline (a hand-off costs ~0.1 ms of two threads
    #: trading the GIL, several times the read itself).
    local_reads: bool

    def get(self, pseudonym: str) -> bytes | None:
        """The decrypted profile, or None when the user has none."""
        ...

    def put(self, pseudonym: str, data: bytes) -> None:
        """Store ``data`` as the profile (replacing any, readable or not)."""
        ...

    def update(self, pseudonym: str, fn: UpdateFn) -> bytes | None:
        """Atomically replace the profile with ``fn(old)``; return what was stored.

        Concurrent updates from any number of threads and store instances (sidecars)
        are serialised: none is lost.  ``fn`` returning None deletes the profile
        (only the profile; auxiliary records stay).  The result is always written
        under the key ring's primary key (re-encryption on write).
        """
        ...

    def delete(self, pseudonym: str) -> bool:
        """Remove everything stored for the user; True if anything existed."""
        ...

    def get_aux(self, pseudonym: str, name: str) -> bytes | None:
        """An auxiliary record (``name``: ``[a-z][a-z0-9_]{0,31}``, not ``profile``)."""
        ...

    def put_aux(self, pseudonym: str, name: str, data: bytes, *,
                ttl_s: float | None = None) -> None:
        """Store an auxiliary record, expiring after ``ttl_s`` seconds if given."""
        ...

    def update_aux(self, pseudonym: str, name: str, fn: UpdateFn, *,
                   ttl_s: float | None = None) -> bytes | None:
        """:meth:`update` for an auxiliary record (the TTL applies to the new value)."""
        ...

    def count(self) -> int:
        """How many profiles the store holds (an admin/metrics call: may scan)."""
        ...

    def ping(self) -> bool:
        """Whether the backend answers now; never raises."""
        ...

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...
