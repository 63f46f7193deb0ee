"""Pseudonyms, the AES-256-GCM key ring, key loading and `bioshard keys generate`."""

from __future__ import annotations

import argparse
import base64
import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from sidecar.crypto import (
    ENCRYPTION_KEYS_ENV,
    NONCE_BYTES,
    PSEUDONYM_KEY_ENV,
    TAG_BYTES,
    DecryptError,
    KeyRing,
    Keys,
    Pseudonymizer,
    WeakKeyError,
    add_parser,
    check_key_strength,
    generate_dev_keys,
    load_keys,
)

_RNG = np.random.default_rng(0)
KEY_1 = _RNG.bytes(32)
KEY_2 = _RNG.bytes(32)
KEY_3 = _RNG.bytes(32)
AAD = b"pseudonym-of-alice"


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


# -- pseudonyms -------------------------------------------------------------------------


def test_pseudonym_is_stable_and_key_dependent() -> None:
    """Same key and id give the same pseudonym; another key or id gives another."""
    p = Pseudonymizer(KEY_1)
    assert p.pseudonym("alice") == Pseudonymizer(KEY_1).pseudonym("alice")
    assert p.pseudonym("alice") != Pseudonymizer(KEY_2).pseudonym("alice")
    assert p.pseudonym("alice") != p.pseudonym("alice ")


@pytest.mark.parametrize("user_id", ["alice", "", "Ünïcødé 用户", "a" * 10_000],
                         ids=["ascii", "empty", "unicode", "long"])
def test_pseudonym_format(user_id: str) -> None:
    """Pseudonyms are 64 lower-case hex characters and never contain the id."""
    pseudonym = Pseudonymizer(KEY_1).pseudonym(user_id)
    assert re.fullmatch(r"[0-9a-f]{64}", pseudonym)
    assert not user_id or user_id not in pseudonym


def test_pseudonymizer_refuses_weak_key() -> None:
    """A Pseudonymizer cannot be built on a weak key."""
    with pytest.raises(WeakKeyError):
        Pseudonymizer(b"\x00" * 32)


# -- key ring ---------------------------------------------------------------------------


def test_round_trip_and_layout() -> None:
    """encrypt/decrypt round-trips; the blob is version, key id, nonce, ciphertext+tag."""
    ring = KeyRing([("k1", KEY_1)])
    blob = ring.encrypt(b"profile", AAD)
    assert ring.decrypt(blob, AAD) == b"profile"
    assert blob[:4] == b"\x01\x02k1"
    assert len(blob) == 4 + NONCE_BYTES + len(b"profile") + TAG_BYTES
    assert ring.encrypt(b"profile", AAD) != blob  # fresh random nonce each time


def _flip(index: int) -> Callable[[bytes], bytes]:
    def flip(blob: bytes) -> bytes:
        b = bytearray(blob)
        b[index] ^= 0x01
        return bytes(b)
    return flip


@pytest.mark.parametrize("mangle", [
    _flip(0), _flip(1), _flip(2), _flip(5), _flip(-17), _flip(-1),
    lambda b: b[:-1], lambda b: b[:3], lambda b: b"", lambda b: b + b"\x00",
], ids=["version", "kid-length", "kid", "nonce", "ciphertext", "tag",
        "truncated-tag", "truncated-header", "empty", "extended"])
def test_tampered_blob_is_refused(mangle: Callable[[bytes], bytes]) -> None:
    """Any change to any part of a blob raises DecryptError."""
    ring = KeyRing([("k1", KEY_1)])
    blob = ring.encrypt(b"profile bytes", AAD)
    with pytest.raises(DecryptError):
        ring.decrypt(mangle(blob), AAD)


def test_blob_is_bound_to_its_associated_data() -> None:
    """A blob moved to another pseudonym (other AAD) fails to decrypt."""
    ring = KeyRing([("k1", KEY_1)])
    with pytest.raises(DecryptError):
        ring.decrypt(ring.encrypt(b"x", AAD), b"pseudonym-of-bob")


def test_unknown_key_id_is_refused() -> None:
    """A ring without the blob's key id raises DecryptError."""
    blob = KeyRing([("k1", KEY_1)]).encrypt(b"x", AAD)
    with pytest.raises(DecryptError, match="key id"):
        KeyRing([("k2", KEY_2)]).decrypt(blob, AAD)


def test_same_key_id_other_key_is_refused() -> None:
    """A ring whose key id matches but whose key differs raises DecryptError."""
    blob = KeyRing([("k1", KEY_1)]).encrypt(b"x", AAD)
    with pytest.raises(DecryptError):
        KeyRing([("k1", KEY_2)]).decrypt(blob, AAD)


def test_rotation_first_key_encrypts_all_decrypt() -> None:
    """With ring [k2, k1], old k1 blobs decrypt, need re-encryption; new blobs use k2."""
    old = KeyRing([("k1", KEY_1)]).encrypt(b"old", AAD)
    ring = KeyRing([("k2", KEY_2), ("k1", KEY_1)])
    assert ring.primary_kid == "k2" and ring.key_ids == ("k2", "k1")
    assert ring.decrypt(old, AAD) == b"old"
    assert ring.needs_reencrypt(old)
    new = ring.encrypt(b"new", AAD)
    assert ring.key_id_of(new) == "k2"
    assert not ring.needs_reencrypt(new)


@pytest.mark.parametrize("keys", [
    [],
    [("k1", KEY_1), ("k1", KEY_2)],
    [("bad id", KEY_1)],
    [("", KEY_1)],
    [("k1", KEY_1[:16])],
    [("k1", KEY_1 + KEY_2)],
    [("k1", b"\x07" * 32)],
], ids=["empty-ring", "duplicate-kid", "kid-with-space", "empty-kid", "aes-128-length",
        "64-bytes", "weak-key"])
def test_keyring_refuses_bad_keys(keys: list[tuple[str, bytes]]) -> None:
    """Bad rings are refused with WeakKeyError naming the setting."""
    with pytest.raises(WeakKeyError, match=ENCRYPTION_KEYS_ENV):
        KeyRing(keys)


def test_reprs_hide_keys() -> None:
    """repr() of rings, pseudonymizers and Keys never shows key bytes."""
    keys = Keys(KEY_1, KeyRing([("k2", KEY_2)]))
    text = repr(keys) + repr(keys.keyring) + repr(keys.pseudonymizer())
    for key in (KEY_1, KEY_2):
        assert b64(key) not in text and repr(key) not in text and key.hex() not in text
    assert "k2" in text


# -- key strength -----------------------------------------------------------------------


@pytest.mark.parametrize("key", [
    b"",
    KEY_1[:31],
    b"\x00" * 32,
    b"A" * 64,
    b"\xab\xcd" * 16,
    KEY_1[:16] * 2,
    bytes(range(32)),
    bytes(range(200, 232)),
    bytes(range(64, 0, -2)),
    b"0123456789" * 4,
    b"password" * 4 + b"!",
], ids=["empty", "31-bytes", "all-zero", "one-byte-repeated", "two-byte-pattern",
        "half-repeated", "counting-up", "counting-wraps", "counting-down",
        "ten-distinct-digits", "password-repeated"])
def test_weak_keys_are_refused(key: bytes) -> None:
    """Short, constant, periodic, counting and low-variety keys raise WeakKeyError."""
    with pytest.raises(WeakKeyError) as info:
        check_key_strength(key, "SOME_SETTING")
    message = str(info.value)
    assert message.startswith("SOME_SETTING: ")
    assert not key or (b64(key) not in message and key.hex() not in message)


@pytest.mark.parametrize("key", [KEY_1, KEY_2 + KEY_3, hashlib.sha256(b"seed").digest()],
                         ids=["random-32", "random-64", "sha256-digest"])
def test_strong_keys_are_accepted(key: bytes) -> None:
    """Random-looking keys of at least 32 bytes pass."""
    check_key_strength(key, "SOME_SETTING")


def test_weak_key_error_is_a_key_error_with_plain_message() -> None:
    """WeakKeyError is a KeyError whose str() is the message itself (not quoted)."""
    err = WeakKeyError("X: missing")
    assert isinstance(err, KeyError)
    assert str(err) == "X: missing"


# -- loading ----------------------------------------------------------------------------


def good_env() -> dict[str, str]:
    return {PSEUDONYM_KEY_ENV: b64(KEY_1),
            ENCRYPTION_KEYS_ENV: f"k2:{b64(KEY_2)},k3:{b64(KEY_3)}"}


def test_load_keys_from_variables() -> None:
    """Keys load from the two variables, the first encryption key primary."""
    keys = load_keys(good_env())
    assert keys.pseudonym_key == KEY_1
    assert keys.keyring.key_ids == ("k2", "k3")
    assert keys.keyring.decrypt(KeyRing([("k3", KEY_3)]).encrypt(b"x", AAD), AAD) == b"x"


def test_load_keys_from_files(tmp_path: Path) -> None:
    """The _FILE variants read the same text from files (newlines allowed between keys)."""
    (tmp_path / "pkey").write_text(b64(KEY_1) + "\n")
    (tmp_path / "ekeys").write_text(f"k2:{b64(KEY_2)}\nk3:{b64(KEY_3)}\n")
    keys = load_keys({f"{PSEUDONYM_KEY_ENV}_FILE": str(tmp_path / "pkey"),
                      f"{ENCRYPTION_KEYS_ENV}_FILE": str(tmp_path / "ekeys")})
    assert keys.pseudonym_key == KEY_1
    assert keys.keyring.key_ids == ("k2", "k3")


def test_load_keys_accepts_urlsafe_unpadded_base64() -> None:
    """URL-safe base64 without padding is accepted too."""
    env = good_env()
    env[PSEUDONYM_KEY_ENV] = base64.urlsafe_b64encode(KEY_1).decode().rstrip("=")
    assert load_keys(env).pseudonym_key == KEY_1


@pytest.mark.parametrize(("change", "setting"), [
    ({PSEUDONYM_KEY_ENV: None}, PSEUDONYM_KEY_ENV),
    ({ENCRYPTION_KEYS_ENV: None}, ENCRYPTION_KEYS_ENV),
    ({PSEUDONYM_KEY_ENV: ""}, PSEUDONYM_KEY_ENV),
    ({PSEUDONYM_KEY_ENV: b64(b"short")}, PSEUDONYM_KEY_ENV),
    ({PSEUDONYM_KEY_ENV: b64(b"\x01" * 32)}, PSEUDONYM_KEY_ENV),
    ({PSEUDONYM_KEY_ENV: "not base64!"}, PSEUDONYM_KEY_ENV),
    ({f"{PSEUDONYM_KEY_ENV}_FILE": "/nonexistent/key"}, f"{PSEUDONYM_KEY_ENV}_FILE"),
    ({ENCRYPTION_KEYS_ENV: f"k1{b64(KEY_2)}"}, ENCRYPTION_KEYS_ENV),
    ({ENCRYPTION_KEYS_ENV: ","}, ENCRYPTION_KEYS_ENV),
    ({ENCRYPTION_KEYS_ENV: f"k1:{b64(bytes(range(32)))}"}, ENCRYPTION_KEYS_ENV),
    ({ENCRYPTION_KEYS_ENV: f"k1:{b64(KEY_1)}"}, PSEUDONYM_KEY_ENV),
], ids=["pseudonym-missing", "encryption-missing", "pseudonym-empty", "pseudonym-short",
        "pseudonym-constant", "pseudonym-bad-base64", "both-variable-and-file",
        "entry-without-colon", "no-entries", "encryption-counting", "pseudonym-reused"])
def test_load_keys_refuses(change: dict[str, str | None], setting: str) -> None:
    """Missing, malformed, weak or conflicting settings raise WeakKeyError naming them."""
    env: dict[str, str | None] = {**good_env(), **change}
    clean = {k: v for k, v in env.items() if v is not None}
    with pytest.raises(WeakKeyError) as info:
        load_keys(clean)
    message = str(info.value)
    assert setting in message
    for value in clean.values():
        secret = value.partition(":")[2] or value
        assert len(secret) < 8 or secret not in message  # names the setting, never the key


def test_generate_dev_keys_are_fresh_and_usable() -> None:
    """Dev keys differ on every call and work."""
    a, b = generate_dev_keys(), generate_dev_keys()
    assert a.pseudonym_key != b.pseudonym_key
    assert a.keyring.decrypt(a.keyring.encrypt(b"x", AAD), AAD) == b"x"
    with pytest.raises(DecryptError):
        b.keyring.decrypt(a.keyring.encrypt(b"x", AAD), AAD)


# -- `bioshard keys generate` -------------------------------------------------------------


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bioshard")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


def test_keys_generate_prints_loadable_env(capsys: pytest.CaptureFixture[str]) -> None:
    """`keys generate` prints KEY=value lines that load_keys accepts, new each time."""
    assert _run(["keys", "generate", "--kid", "prod1"]) == 0
    first = capsys.readouterr().out
    env = dict(line.split("=", 1) for line in first.splitlines())
    assert set(env) == {PSEUDONYM_KEY_ENV, ENCRYPTION_KEYS_ENV}
    assert load_keys(env).keyring.key_ids == ("prod1",)
    _run(["keys", "generate", "--kid", "prod1"])
    assert capsys.readouterr().out != first


def test_keys_generate_encryption_only(capsys: pytest.CaptureFixture[str]) -> None:
    """--encryption-only prints one kid:base64 entry to put first in the ring."""
    assert _run(["keys", "generate", "--encryption-only"]) == 0
    entry = capsys.readouterr().out.strip()
    kid, _, key = entry.partition(":")
    assert re.fullmatch(r"k\d{8}", kid)
    assert len(base64.b64decode(key)) == 32


def test_keys_generate_rejects_bad_kid(capsys: pytest.CaptureFixture[str]) -> None:
    """An invalid --kid exits 2 with a message on stderr."""
    assert _run(["keys", "generate", "--kid", "no spaces"]) == 2
    assert "--kid" in capsys.readouterr().err
