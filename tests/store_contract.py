"""The ProfileStore contract: one suite every backend must pass.

A backend's test module subclasses :class:`StoreContract` and provides two fixtures:

* ``backend`` — a :class:`Backend` on a clean, running backend for this test;
* ``outage_backend`` — a :class:`Backend` that the test may take down for real
  (a dedicated server when the usual one is shared between tests).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import ClassVar, Protocol

import pytest

from sidecar.crypto import DecryptError, KeyRing, Pseudonymizer
from sidecar.store import PROFILE, ProfileStore, StoreUnavailable


def _key(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


KEY_A = ("ka", _key("test encryption key A"))
KEY_B = ("kb", _key("test encryption key B"))
PSEUDONYMIZER = Pseudonymizer(_key("test pseudonym key"))
USER_ID = "alice.liddell@example.com"
ALICE = PSEUDONYMIZER.pseudonym(USER_ID)
BOB = PSEUDONYMIZER.pseudonym("bob@example.com")
PLAINTEXT = b"PLAINTEXT-PROFILE-MARKER " * 8


class Backend(Protocol):
    """What the contract needs from a backend besides the store itself."""

    reads_survive_outage: bool  # SQLite (WAL) still reads while writes are locked out

    def make_store(self, keyring: KeyRing, *, timeout_s: float | None = None
                   ) -> ProfileStore: ...

    def raw_get(self, pseudonym: str, name: str = PROFILE) -> bytes | None:
        """The stored blob, bypassing the store."""
        ...

    def raw_set(self, pseudonym: str, name: str, blob: bytes) -> None:
        """Write a blob, bypassing the store."""
        ...

    def dump(self) -> bytes:
        """Every byte the backend holds (files, or all keys and values)."""
        ...

    def take_down(self) -> None:
        """Make the backend unavailable for real."""
        ...


def increment(old: bytes | None) -> bytes:
    """The profile as a decimal counter, plus one."""
    count = 0 if old is None else int(old)
    return str(count + 1).encode()


def _read(store: ProfileStore, pseudonym: str, name: str) -> bytes | None:
    return store.get(pseudonym) if name == PROFILE else store.get_aux(pseudonym, name)


def _rewrite(store: ProfileStore, pseudonym: str, name: str) -> bytes | None:
    if name == PROFILE:
        return store.update(pseudonym, lambda old: b"overwritten")
    return store.update_aux(pseudonym, name, lambda old: b"overwritten")


def _hammer(stores: list[ProfileStore], threads_per_store: int, updates: int) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(len(stores) * threads_per_store)

    def work(store: ProfileStore) -> None:
        try:
            start.wait()
            for _ in range(updates):
                store.update(ALICE, increment)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores
               for _ in range(threads_per_store)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors


class StoreContract:
    """Behaviour every :class:`ProfileStore` backend must show."""

    THREADS: ClassVar[int] = 8
    UPDATES: ClassVar[int] = 25

    @pytest.fixture
    def keyring(self) -> KeyRing:
        return KeyRing([KEY_A])

    @pytest.fixture
    def store(self, backend: Backend, keyring: KeyRing) -> Iterator[ProfileStore]:
        store = backend.make_store(keyring)
        yield store
        store.close()

    # -- basics ------------------------------------------------------------------------

    @pytest.mark.parametrize("data", [b"", b"\x00\xff" * 3, bytes(range(256)) * 256],
                             ids=["empty", "binary", "64KiB"])
    def test_round_trip(self, store: ProfileStore, data: bytes) -> None:
        """What is put is what is got, byte for byte."""
        store.put(ALICE, data)
        assert store.get(ALICE) == data

    def test_missing_is_none(self, store: ProfileStore) -> None:
        """An unknown user has no profile and no auxiliary records."""
        assert store.get(ALICE) is None
        assert store.get_aux(ALICE, "history") is None

    def test_users_are_separate(self, store: ProfileStore) -> None:
        """Writing one user's profile leaves another's alone."""
        store.put(ALICE, b"a")
        store.put(BOB, b"b")
        assert (store.get(ALICE), store.get(BOB)) == (b"a", b"b")

    def test_ping(self, store: ProfileStore) -> None:
        """A running backend answers ping."""
        assert store.ping() is True

    def test_count_counts_profiles_only(self, store: ProfileStore) -> None:
        """count() is the number of profiles, not of auxiliary records."""
        assert store.count() == 0
        for i in range(3):
            store.put(PSEUDONYMIZER.pseudonym(f"user{i}"), b"p")
        store.put_aux(ALICE, "history", b"h")
        assert store.count() == 3
        store.delete(PSEUDONYMIZER.pseudonym("user0"))
        assert store.count() == 2

    @pytest.mark.parametrize("call", [
        lambda s: s.get(""),
        lambda s: s.get("a{b}"),
        lambda s: s.put("a*", b""),
        lambda s: s.get_aux(ALICE, "profile"),
        lambda s: s.put_aux(ALICE, "Bad-Name", b""),
        lambda s: s.put_aux(ALICE, "history", b"", ttl_s=0),
    ], ids=["empty-pseudonym", "hash-tag-braces", "glob-star", "aux-named-profile",
            "aux-bad-name", "zero-ttl"])
    def test_rejects_malformed_arguments(self, store: ProfileStore,
                                         call: Callable[[ProfileStore], object]) -> None:
        """Pseudonyms and record names that could escape their key are refused."""
        with pytest.raises(ValueError):
            call(store)

    # -- update ------------------------------------------------------------------------

    @pytest.mark.parametrize(("before", "fn", "after"), [
        (None, lambda old: b"new", b"new"),
        (b"old", lambda old: (old or b"") + b"+1", b"old+1"),
        (b"old", lambda old: None, None),
        (None, lambda old: None, None),
    ], ids=["creates", "modifies", "deletes", "absent-stays-absent"])
    def test_update(self, store: ProfileStore, before: bytes | None,
                    fn: Callable[[bytes | None], bytes | None], after: bytes | None) -> None:
        """update stores fn(old) — None deletes — and returns what it stored."""
        if before is not None:
            store.put(ALICE, before)
        assert store.update(ALICE, fn) == after
        assert store.get(ALICE) == after

    def test_update_failure_changes_nothing(self, store: ProfileStore) -> None:
        """An exception from fn propagates and leaves the record as it was."""
        store.put(ALICE, b"kept")

        def boom(old: bytes | None) -> bytes:
            raise RuntimeError("fn failed")

        with pytest.raises(RuntimeError):
            store.update(ALICE, boom)
        assert store.get(ALICE) == b"kept"

    def test_update_deleting_profile_keeps_aux(self, store: ProfileStore) -> None:
        """update returning None removes the profile only; delete() removes the rest."""
        store.put(ALICE, b"p")
        store.put_aux(ALICE, "history", b"h")
        store.update(ALICE, lambda old: None)
        assert store.get(ALICE) is None
        assert store.get_aux(ALICE, "history") == b"h"

    def test_aux_records(self, store: ProfileStore) -> None:
        """Auxiliary records round-trip, update atomically and are separate from the profile."""
        store.put(ALICE, b"profile")
        store.put_aux(ALICE, "history", b"1")
        assert store.update_aux(ALICE, "history", lambda old: (old or b"") + b"2") == b"12"
        assert store.get_aux(ALICE, "history") == b"12"
        assert store.get_aux(ALICE, "pending") is None
        assert store.get(ALICE) == b"profile"

    def test_aux_ttl_expires(self, store: ProfileStore) -> None:
        """An auxiliary record written with a TTL is gone once it expires."""
        store.put_aux(ALICE, "replay", b"bound", ttl_s=0.3)
        store.update_aux(ALICE, "pending", lambda old: b"w", ttl_s=0.3)
        store.put_aux(ALICE, "history", b"kept")
        assert store.get_aux(ALICE, "replay") == b"bound"
        time.sleep(0.45)
        assert store.get_aux(ALICE, "replay") is None
        assert store.get_aux(ALICE, "pending") is None
        assert store.update_aux(ALICE, "replay", lambda old: old) is None
        assert store.get_aux(ALICE, "history") == b"kept"

    # -- concurrency ---------------------------------------------------------------------

    def test_concurrent_threads_lose_no_update(self, store: ProfileStore) -> None:
        """THREADS threads incrementing one counter through update() lose nothing."""
        _hammer([store], self.THREADS, self.UPDATES)
        assert store.get(ALICE) == str(self.THREADS * self.UPDATES).encode()

    def test_two_sidecars_lose_no_update(self, backend: Backend, keyring: KeyRing) -> None:
        """Two store instances (two sidecars) updating the same profile lose nothing."""
        stores = [backend.make_store(keyring) for _ in range(2)]
        try:
            _hammer(stores, self.THREADS // 2, self.UPDATES)
            expected = str(self.THREADS * self.UPDATES).encode()
            assert [s.get(ALICE) for s in stores] == [expected, expected]
        finally:
            for s in stores:
                s.close()

    # -- privacy -------------------------------------------------------------------------

    def test_nothing_readable_at_rest(self, backend: Backend, store: ProfileStore) -> None:
        """The backend holds neither the raw user id nor the plaintext."""
        store.put(ALICE, PLAINTEXT)
        store.put_aux(ALICE, "history", PLAINTEXT)
        dump = backend.dump()
        assert ALICE.encode() in dump  # sanity: the dump does see the stored data
        assert USER_ID.encode() not in dump
        assert b"PLAINTEXT-PROFILE-MARKER" not in dump

    def test_delete_removes_everything(self, backend: Backend, store: ProfileStore) -> None:
        """delete() removes the profile and all the user's records, leaving no trace."""
        store.put(ALICE, PLAINTEXT)
        store.put_aux(ALICE, "history", b"h" * 64)
        store.put_aux(ALICE, "replay", b"r" * 64, ttl_s=60)
        store.put(BOB, b"bob stays")
        blobs = [backend.raw_get(ALICE, name) for name in (PROFILE, "history", "replay")]
        assert all(blobs)
        assert store.delete(ALICE) is True
        assert store.get(ALICE) is None
        assert store.get_aux(ALICE, "history") is None
        assert store.get_aux(ALICE, "replay") is None
        dump = backend.dump()
        assert ALICE.encode() not in dump
        for blob in blobs:
            assert blob is not None and blob[-32:] not in dump
        assert store.get(BOB) == b"bob stays"
        assert store.delete(ALICE) is False

    @pytest.mark.parametrize(("source", "target"), [
        ((ALICE, PROFILE), (BOB, PROFILE)),
        ((ALICE, "history"), (ALICE, PROFILE)),
        ((ALICE, PROFILE), (ALICE, "history")),
    ], ids=["to-another-user", "aux-into-profile", "profile-into-aux"])
    def test_moved_blob_fails_to_decrypt(self, backend: Backend, store: ProfileStore,
                                         source: tuple[str, str],
                                         target: tuple[str, str]) -> None:
        """A blob copied to another user or record is refused, and update won't clobber it."""
        store.put(ALICE, b"alice profile")
        store.put_aux(ALICE, "history", b"alice history")
        blob = backend.raw_get(*source)
        assert blob is not None
        backend.raw_set(*target, blob)
        user, name = target
        with pytest.raises(DecryptError):
            _read(store, user, name)
        with pytest.raises(DecryptError):
            _rewrite(store, user, name)
        assert backend.raw_get(*target) == blob

    def test_tampered_blob_fails_to_decrypt(self, backend: Backend,
                                            store: ProfileStore) -> None:
        """Flipping one ciphertext bit makes the profile undecryptable."""
        store.put(ALICE, b"alice profile")
        blob = bytearray(backend.raw_get(ALICE) or b"")
        blob[-1] ^= 0x01
        backend.raw_set(ALICE, PROFILE, bytes(blob))
        with pytest.raises(DecryptError):
            store.get(ALICE)

    def test_key_rotation(self, backend: Backend) -> None:
        """Data under key A reads with ring [B, A] and is re-encrypted under B on write."""
        old = backend.make_store(KeyRing([KEY_A]))
        old.put(ALICE, b"v1")
        old.close()
        rotated_ring = KeyRing([KEY_B, KEY_A])
        rotated = backend.make_store(rotated_ring)
        b_only = backend.make_store(KeyRing([KEY_B]))
        try:
            assert rotated.get(ALICE) == b"v1"
            with pytest.raises(DecryptError):
                b_only.get(ALICE)
            assert rotated_ring.needs_reencrypt(backend.raw_get(ALICE) or b"")
            rotated.update(ALICE, lambda old: (old or b"") + b"+v2")
            blob = backend.raw_get(ALICE) or b""
            assert rotated_ring.key_id_of(blob) == KEY_B[0]
            assert not rotated_ring.needs_reencrypt(blob)
            assert b_only.get(ALICE) == b"v1+v2"
        finally:
            rotated.close()
            b_only.close()

    # -- outage --------------------------------------------------------------------------

    def test_backend_down_raises_unavailable(self, outage_backend: Backend,
                                             keyring: KeyRing) -> None:
        """With the backend really down, calls fail fast with StoreUnavailable."""
        store = outage_backend.make_store(keyring, timeout_s=0.3)
        try:
            store.put(ALICE, b"before")
            outage_backend.take_down()
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                store.update(ALICE, increment)
            with pytest.raises(StoreUnavailable):
                store.put(BOB, b"x")
            if outage_backend.reads_survive_outage:
                assert store.get(ALICE) == b"before"
            else:
                with pytest.raises(StoreUnavailable):
                    store.get(ALICE)
                assert store.ping() is False
            assert time.monotonic() - started < 5.0
        finally:
            store.close()
