"""Privacy primitives: pseudonyms for user ids, an AES-256-GCM key ring, key loading.

* :class:`Pseudonymizer` turns a raw user id into a stable pseudonym (HMAC-SHA256 under
  a secret key).  The raw id goes no further than the call: stores, caches and logs
  only ever see the pseudonym.
* :class:`KeyRing` encrypts profile blobs.  The first key encrypts, every key
  decrypts (rotation: put the new key first, keep the old ones until every blob has
  been rewritten).  The caller's associated data (the pseudonym) is authenticated, so
  a blob copied to another user fails to decrypt.
* :func:`load_keys` reads both from the environment and refuses missing, short or
  low-entropy keys; :func:`generate_dev_keys` makes throwaway ones for ``--dev``.

Blob layout (``KeyRing.encrypt``)::

    version (1 byte, 0x01) | key-id length (1 byte) | key id (ASCII) | nonce (12 bytes)
    | ciphertext + GCM tag (16 bytes)

The version byte and key id are authenticated too (prepended to the associated data).
No message raised here ever contains key material.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import itertools
import os
import re
import secrets
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "ENCRYPTION_KEYS_ENV",
    "PSEUDONYM_KEY_ENV",
    "DecryptError",
    "KeyRing",
    "Keys",
    "Pseudonymizer",
    "WeakKeyError",
    "add_parser",
    "generate_dev_keys",
    "load_keys",
]

PSEUDONYM_KEY_ENV: Final = "BIOSHARD_PSEUDONYM_KEY"
ENCRYPTION_KEYS_ENV: Final = "BIOSHARD_ENCRYPTION_KEYS"
_FILE_SUFFIX: Final = "_FILE"

MIN_KEY_BYTES: Final = 32
AES_KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
BLOB_VERSION: Final = 1
_MIN_DISTINCT_BYTES: Final = 16  # 32 random bytes have ~30 distinct values; < 16 is ~impossible
_KID_RE: Final = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_PSEUDONYM_CONTEXT: Final = b"bioshard/pseudonym/v1\x00"


class DecryptError(Exception):
    """A blob cannot be decrypted: unknown key id, wrong key, tampered, or another user's."""


class WeakKeyError(KeyError):
    """A key setting is missing, malformed or too weak; the message names the setting.

    A ``KeyError`` so that "a required key is missing" reads naturally, but ``str()``
    gives the plain message (``KeyError`` would quote it).
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# -- pseudonyms --------------------------------------------------------------------------


class Pseudonymizer:
    """HMAC-SHA256 pseudonyms: stable for one key, unlinkable without it.

    The pseudonym is the MAC in lower-case hex (64 characters of ``0-9a-f``): safe in
    Redis keys, file names and URLs.
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        check_key_strength(key, PSEUDONYM_KEY_ENV)
        self._key = bytes(key)

    def pseudonym(self, user_id: str) -> str:
        """The pseudonym for ``user_id`` (64 lower-case hex characters).

        Hex, not base32: ``hexdigest`` is C code, ``base64.b32encode`` pure Python
        (measured ~20 µs per call, on every Check).
        """
        mac = hmac.new(self._key, _PSEUDONYM_CONTEXT + user_id.encode("utf-8"), hashlib.sha256)
        return mac.hexdigest()

    def __repr__(self) -> str:
        return "Pseudonymizer(<secret>)"


# -- the key ring --------------------------------------------------------------------------


class KeyRing:
    """AES-256-GCM under a list of ``(key_id, key)``: the first key encrypts, all decrypt."""

    __slots__ = ("_aead", "_header", "_primary")

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise WeakKeyError(f"{ENCRYPTION_KEYS_ENV}: at least one key is required")
        aead: dict[str, AESGCM] = {}
        for kid, key in keys:
            if not _KID_RE.match(kid):
                raise WeakKeyError(f"{ENCRYPTION_KEYS_ENV}: key id {kid!r} must be 1-32 "
                                   "characters of A-Z a-z 0-9 _ . -")
            if kid in aead:
                raise WeakKeyError(f"{ENCRYPTION_KEYS_ENV}: key id {kid!r} appears twice")
            setting = f"{ENCRYPTION_KEYS_ENV} (key id {kid!r})"
            if len(key) != AES_KEY_BYTES:
                raise WeakKeyError(f"{setting}: an AES-256 key must be exactly "
                                   f"{AES_KEY_BYTES} bytes, got {len(key)}")
            check_key_strength(key, setting)
            aead[kid] = AESGCM(bytes(key))
        self._aead = aead
        self._primary = keys[0][0]
        self._header = _header(self._primary)

    @property
    def primary_kid(self) -> str:
        """The key id new blobs are encrypted under."""
        return self._primary

    @property
    def key_ids(self) -> tuple[str, ...]:
        """All key ids, the primary first."""
        return tuple(self._aead)

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt under the primary key; ``aad`` (e.g. the pseudonym) is authenticated."""
        nonce = os.urandom(NONCE_BYTES)
        ct = self._aead[self._primary].encrypt(nonce, plaintext, self._header + aad)
        return self._header + nonce + ct

    def decrypt(self, blob: bytes, aad: bytes) -> bytes:
        """Decrypt a blob from :meth:`encrypt`; raise :class:`DecryptError` on any mismatch."""
        kid, body_at = _parse_header(blob)
        aead = self._aead.get(kid)
        if aead is None:
            raise DecryptError("blob is under a key id that is not in the key ring")
        if len(blob) < body_at + NONCE_BYTES + TAG_BYTES:
            raise DecryptError("blob is truncated")
        nonce = blob[body_at:body_at + NONCE_BYTES]
        try:
            return aead.decrypt(nonce, blob[body_at + NONCE_BYTES:], blob[:body_at] + aad)
        except InvalidTag:
            raise DecryptError("blob failed authentication (tampered, wrong key or "
                               "another record's blob)") from None

    def key_id_of(self, blob: bytes) -> str:
        """The key id a blob was encrypted under (raises :class:`DecryptError` if malformed)."""
        return _parse_header(blob)[0]

    def needs_reencrypt(self, blob: bytes) -> bool:
        """True when the blob is not under the primary key (rewrite it on the next write)."""
        return self.key_id_of(blob) != self._primary

    def __repr__(self) -> str:
        return f"KeyRing(key_ids={list(self._aead)!r})"


def _header(kid: str) -> bytes:
    raw = kid.encode("ascii")
    return bytes((BLOB_VERSION, len(raw))) + raw


def _parse_header(blob: bytes) -> tuple[str, int]:
    """``(key_id, offset of the nonce)``."""
    if len(blob) < 2 or blob[0] != BLOB_VERSION:
        raise DecryptError("blob has an unknown format version")
    end = 2 + blob[1]
    if blob[1] == 0 or len(blob) < end:
        raise DecryptError("blob header is malformed")
    try:
        return blob[2:end].decode("ascii"), end
    except UnicodeDecodeError:
        raise DecryptError("blob header is malformed") from None


# -- key strength --------------------------------------------------------------------------


def check_key_strength(key: bytes, setting: str) -> None:
    """Refuse keys that are short or visibly not random; the message names ``setting``.

    Checks: at least 32 bytes; at least 16 distinct byte values; not a repetition of a
    shorter pattern; not an arithmetic run (``00 01 02 ...``).  These catch typed
    passwords, placeholders and test keys, not a weak random generator.
    """
    if not key:
        raise WeakKeyError(f"{setting}: the key is empty")
    if len(key) < MIN_KEY_BYTES:
        raise WeakKeyError(f"{setting}: the key is too short ({len(key)} bytes, "
                           f"need at least {MIN_KEY_BYTES})")
    if len(set(key)) == 1:
        raise WeakKeyError(f"{setting}: the key is one byte value repeated")
    if _period(key) is not None:
        raise WeakKeyError(f"{setting}: the key repeats a shorter pattern")
    steps = {(b - a) % 256 for a, b in itertools.pairwise(key)}
    if len(steps) == 1:
        raise WeakKeyError(f"{setting}: the key is a counting sequence")
    if len(set(key)) < _MIN_DISTINCT_BYTES:
        raise WeakKeyError(f"{setting}: the key has too few distinct bytes "
                           f"({len(set(key))}, need at least {_MIN_DISTINCT_BYTES})")


def _period(key: bytes) -> int | None:
    """The smallest p <= len/2 such that the key is its first p bytes repeated, if any."""
    n = len(key)
    for p in range(1, n // 2 + 1):
        if all(key[i] == key[i % p] for i in range(p, n)):
            return p
    return None


# -- loading -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Keys:
    """The sidecar's secrets: the pseudonym key and the encryption key ring."""

    pseudonym_key: bytes = field(repr=False)
    keyring: KeyRing

    def __post_init__(self) -> None:
        check_key_strength(self.pseudonym_key, PSEUDONYM_KEY_ENV)

    def pseudonymizer(self) -> Pseudonymizer:
        """A :class:`Pseudonymizer` under :attr:`pseudonym_key`."""
        return Pseudonymizer(self.pseudonym_key)


def load_keys(env: Mapping[str, str]) -> Keys:
    """Read the keys from ``env`` (e.g. ``os.environ``).

    * ``BIOSHARD_PSEUDONYM_KEY``: base64 (standard or URL-safe, padding optional) of
      at least 32 random bytes; or ``BIOSHARD_PSEUDONYM_KEY_FILE``: a file holding
      that text.
    * ``BIOSHARD_ENCRYPTION_KEYS``: ``kid:base64[,kid:base64...]`` of 32-byte keys, the
      encrypting key first; or ``BIOSHARD_ENCRYPTION_KEYS_FILE``: a file holding that
      text (entries may also be separated by newlines).

    Raises :class:`WeakKeyError` naming the setting when one is missing, set twice
    (variable and file), malformed, short or low-entropy.
    """
    pkey_text, pkey_setting = _read_setting(env, PSEUDONYM_KEY_ENV)
    pseudonym_key = _b64(pkey_text.strip(), pkey_setting)
    check_key_strength(pseudonym_key, pkey_setting)

    ring_text, ring_setting = _read_setting(env, ENCRYPTION_KEYS_ENV)
    entries: list[tuple[str, bytes]] = []
    for item in re.split(r"[,\s]+", ring_text.strip()):
        if not item:
            continue
        kid, sep, b64 = item.partition(":")
        if not sep or not kid or not b64:
            raise WeakKeyError(f"{ring_setting}: expected kid:base64 entries separated by "
                               "commas")
        entries.append((kid, _b64(b64, f"{ring_setting} (key id {kid!r})")))
    if not entries:
        raise WeakKeyError(f"{ring_setting}: no keys given")
    keyring = KeyRing(entries)
    if pseudonym_key in {key for _, key in entries}:
        raise WeakKeyError(f"{pkey_setting}: the pseudonym key must differ from the "
                           "encryption keys")
    return Keys(pseudonym_key, keyring)


def _read_setting(env: Mapping[str, str], name: str) -> tuple[str, str]:
    """The text of setting ``name`` from the variable or ``name_FILE``, and which it was."""
    file_name = name + _FILE_SUFFIX
    value, path = env.get(name), env.get(file_name)
    if value and path:
        raise WeakKeyError(f"{name} and {file_name} are both set; use one")
    if path:
        try:
            return Path(path).read_text(encoding="ascii"), file_name
        except (OSError, UnicodeDecodeError) as exc:
            raise WeakKeyError(f"{file_name}: cannot read the key file "
                               f"({type(exc).__name__})") from None
    if value:
        return value, name
    raise WeakKeyError(f"{name} (or {file_name}) is not set")


def _b64(text: str, setting: str) -> bytes:
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise WeakKeyError(f"{setting}: the key is not valid base64") from None


def generate_dev_keys() -> Keys:
    """Fresh random keys for ``--dev``: profiles are unreadable once the process ends."""
    return Keys(secrets.token_bytes(MIN_KEY_BYTES), KeyRing([("dev", _random_aes_key())]))


def _random_aes_key() -> bytes:
    return secrets.token_bytes(AES_KEY_BYTES)


def _b64_text(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


# -- `bioshard keys generate` -------------------------------------------------------------


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``bioshard keys generate`` on the CLI's subparsers."""
    keys = subparsers.add_parser("keys", help="generate pseudonym and encryption keys",
                                 description="Key management.")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    gen = keys_sub.add_parser(
        "generate", help="print new random keys as environment lines",
        description="Print new random keys as KEY=value lines (for an env file or a secret "
                    "store). To rotate the encryption key, generate one with "
                    "--encryption-only and put it FIRST in BIOSHARD_ENCRYPTION_KEYS, keeping "
                    "the old keys after it. Never rotate the pseudonym key: every profile "
                    "would be orphaned.")
    gen.add_argument("--kid", default=None,
                     help="key id for the encryption key (default k<YYYYMMDD>)")
    gen.add_argument("--encryption-only", action="store_true",
                     help="print only a new kid:base64 encryption key entry (for rotation)")
    gen.set_defaults(func=run_keys_generate)


def run_keys_generate(args: argparse.Namespace) -> int:
    """Print new keys; the handler behind ``bioshard keys generate``."""
    kid: str = args.kid or time.strftime("k%Y%m%d", time.gmtime())
    if not _KID_RE.match(kid):
        print("bioshard keys generate: --kid must be 1-32 characters of A-Z a-z 0-9 _ . -",
              file=sys.stderr)
        return 2
    entry = f"{kid}:{_b64_text(_random_aes_key())}"
    if args.encryption_only:
        print(entry)
        return 0
    print(f"{PSEUDONYM_KEY_ENV}={_b64_text(secrets.token_bytes(MIN_KEY_BYTES))}")
    print(f"{ENCRYPTION_KEYS_ENV}={entry}")
    return 0
