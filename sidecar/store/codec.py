"""Record naming and sealing shared by the backends.

A record is addressed by ``(pseudonym, name)``.  Its blob is
``KeyRing.encrypt(plaintext, aad)`` with ``aad = b"bsh1|" + pseudonym + b"|" + name``,
so a blob only opens for the record it was written for.  Pseudonyms and names are
restricted to characters that are safe in Redis keys and glob patterns and cannot
contain the ``|`` separator, which keeps the associated data unambiguous.
"""

from __future__ import annotations

import re
from typing import Final

from sidecar.crypto import KeyRing
from sidecar.store.base import PROFILE

_PSEUDONYM_RE: Final = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_AUX_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_AAD_PREFIX: Final = b"bsh1|"


def check_pseudonym(pseudonym: str) -> str:
    """Return ``pseudonym`` if it is a well-formed pseudonym, else raise ``ValueError``."""
    if not _PSEUDONYM_RE.match(pseudonym):
        raise ValueError("malformed pseudonym (expected 1-128 characters of A-Z a-z 0-9 _ . -)")
    return pseudonym


def check_aux_name(name: str) -> str:
    """Return ``name`` if it is a valid auxiliary record name, else raise ``ValueError``."""
    if name == PROFILE or not _AUX_NAME_RE.match(name):
        raise ValueError(f"invalid auxiliary record name {name!r} (expected "
                         f"[a-z][a-z0-9_]{{0,31}}, not {PROFILE!r})")
    return name


def check_ttl(ttl_s: float | None) -> float | None:
    """Return ``ttl_s`` if None or positive and finite, else raise ``ValueError``."""
    if ttl_s is not None and not 0.0 < ttl_s < float("inf"):
        raise ValueError("ttl_s must be a positive number of seconds")
    return ttl_s


class RecordCodec:
    """Seal and open record blobs with a key ring, bound to ``(pseudonym, name)``."""

    __slots__ = ("keyring",)

    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    @staticmethod
    def aad(pseudonym: str, name: str) -> bytes:
        """The associated data binding a blob to its record."""
        return _AAD_PREFIX + pseudonym.encode("ascii") + b"|" + name.encode("ascii")

    def seal(self, pseudonym: str, name: str, plaintext: bytes) -> bytes:
        """Encrypt ``plaintext`` for the record under the primary key."""
        return self.keyring.encrypt(plaintext, self.aad(pseudonym, name))

    def open(self, pseudonym: str, name: str, blob: bytes) -> bytes:
        """Decrypt a record's blob (raises ``DecryptError``)."""
        return self.keyring.decrypt(blob, self.aad(pseudonym, name))
