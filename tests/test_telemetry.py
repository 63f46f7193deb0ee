"""Decoder for telemetry wire format v1: valid values decode, every bad one is refused."""

from __future__ import annotations

import base64
import json
import zlib

import pytest

from sidecar.telemetry import (
    MAX_ENCODED_BYTES,
    TelemetryError,
    decode,
    encode_deflate,
    encode_json,
)

SID = "AAECAwQFBgcICQoLDA0ODw"


def doc(**over: object) -> dict[str, object]:
    d: dict[str, object] = {
        "sid": SID, "seq": 3, "ts": 1764086400000, "dev": "desktop",
        "m": {"keys": {"n": 40, "f": {"hold_mean": 96.2, "hold_std": 21.7, "dd_mean": 180.0}},
              "mouse": {"n": 240, "f": {"speed_mean": 0.8, "straightness": 0.7}},
              "scroll": {"n": 2, "f": {"speed_mean": 1.0}},
              "touch": {"n": 0, "f": {}}}}
    d.update(over)
    return d


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def deflate(raw: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(raw) + c.flush()


@pytest.mark.parametrize("encode", [encode_deflate, encode_json], ids=["1z", "1j"])
def test_round_trip(encode: object) -> None:
    """Both encodings decode to the same typed window; sparse modalities are dropped."""
    t = decode(encode(doc()))  # type: ignore[operator]
    assert (t.sid, t.seq, t.ts_ms, t.device) == (SID, 3, 1764086400000, "desktop")
    assert set(t.modalities) == {"keys", "mouse"}  # scroll n=2 < min, touch n=0
    assert t.modalities["keys"].features["hold_mean"] == pytest.approx(96.2)
    assert t.modalities["keys"].n == 40


def test_unknown_names_ignored_and_values_clipped() -> None:
    """Unknown modalities/features are ignored; values are clipped to the documented range."""
    d = doc(m={"keys": {"n": 40, "f": {"hold_mean": 1e9, "bogus": 1, "pause_ratio": -3}},
               "gaze": {"n": 99, "f": {"x": 1}}})
    t = decode(encode_json(d))
    assert set(t.modalities) == {"keys"}
    assert t.modalities["keys"].features == {"hold_mean": 2000.0, "pause_ratio": 0.0}


BOMB = deflate(b"[" * 2_500_000)  # ~3.3 KiB on the wire, 2.4 MB inflated


@pytest.mark.parametrize(("value", "detail"), [
    ("", "prefix"),
    ("garbage", "prefix"),
    ("2z." + b64(b"{}"), "unsupported_version"),
    ("1z.!!!!", "base64"),
    ("1z." + b64(b"not deflate at all"), "deflate"),
    ("1z." + b64(deflate(b'{"sid":')[:-2]), "deflate_truncated"),
    ("1z." + b64(BOMB), "inflated_too_large"),
    ("1j." + b64(b"x" * 20000), "encoded_too_large"),
    ("1j." + b64(b"\xff\xfe"), "json"),
    ("1j." + b64(b"[1,2]"), "not_an_object"),
    ("1j." + b64(b"[" * 3000), "json"),
    ("1z." + "A" * (MAX_ENCODED_BYTES + 1), "encoded_too_large"),
    (encode_json(doc(sid="short")), "field_sid"),
    (encode_json(doc(seq=-1)), "field_seq"),
    (encode_json(doc(seq=True)), "field_seq"),
    (encode_json(doc(ts="now")), "field_ts"),
    (encode_json(doc(dev="toaster")), "field_dev"),
    (encode_json(doc(m=[])), "field_m"),
    (encode_json(doc(m={"keys": [1]})), "modality"),
    (encode_json(doc(m={"keys": {"n": "many", "f": {}}})), "field_n"),
    (encode_json(doc(m={"keys": {"n": 50, "f": {"hold_mean": "96"}}})), "not_a_number"),
    ("1j." + b64(json.dumps(doc()).replace("96.2", "NaN").encode()), "non_finite"),
    ("1j." + b64(json.dumps(doc()).replace("96.2", "Infinity").encode()), "non_finite"),
    ("1j." + b64(json.dumps(doc()).replace("96.2", "1e999").encode()), "non_finite"),
], ids=["empty", "no-prefix", "version-2", "bad-base64", "not-deflate", "truncated",
        "deflate-bomb", "json-too-long", "not-utf8", "array", "deep-nesting", "huge-value",
        "sid", "seq-negative", "seq-bool", "ts-string", "dev", "m-array", "modality-array",
        "n-string", "feature-string", "nan", "infinity", "overflow"])
def test_bad_values_refused(value: str, detail: str) -> None:
    """Each malformed value raises TelemetryError with a stable detail and no payload echo."""
    with pytest.raises(TelemetryError) as ei:
        decode(value)
    assert ei.value.detail == detail


def test_bomb_is_small_on_the_wire() -> None:
    """The deflate bomb used above fits the 4 KiB limit, so the inflate cap is what stops it."""
    assert len("1z." + b64(BOMB)) < MAX_ENCODED_BYTES
