"""Decode telemetry wire format v1 (``1z.`` / ``1j.``) into a typed, validated window.

Everything here treats the value as hostile: the encoded size is capped before any
work, inflation is bounded (a deflate bomb stops at the cap), every number must be
finite, unknown modalities and features are ignored, and a modality whose event
count is below its minimum is dropped.  Failures raise :class:`TelemetryError`
with a short machine-readable ``detail``; the pipeline turns that into a
``bad_telemetry`` decision.  No value from the payload is ever put in an
exception message (they may end up in logs).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from sidecar.features import DEVICES, MODALITIES

MAX_ENCODED_BYTES: Final = 4096
MAX_JSON_BYTES: Final = 16384
_SID_RE: Final = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_MAX_SEQ: Final = 2**53


class TelemetryError(ValueError):
    """The telemetry value is malformed; ``detail`` says how (never what it contained)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ModalityWindow:
    """One modality's feature window: how many events it came from and the features.

    ``features`` holds only known v1 feature names with finite values clipped to the
    documented range; a feature the collector could not compute is simply absent.
    """

    n: int
    features: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Telemetry:
    """A decoded v1 telemetry window."""

    version: int
    sid: str
    seq: int
    ts_ms: int
    device: str
    modalities: Mapping[str, ModalityWindow]


_URLSAFE_TO_STD: Final = str.maketrans("-_", "+/")


def _b64url_decode(data: str) -> bytes:
    # Strict: only the URL-safe alphabet, no padding, no whitespace ("+/" are refused
    # before the translation so that a standard-alphabet value does not slip through).
    if not data or "+" in data or "/" in data or "=" in data:
        raise TelemetryError("base64")
    try:
        return base64.b64decode((data + "=" * (-len(data) % 4)).translate(_URLSAFE_TO_STD),
                                validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TelemetryError("base64") from exc


def _inflate_raw(data: bytes) -> bytes:
    """Inflate raw DEFLATE with a hard output cap (a bomb fails, never allocates)."""
    d = zlib.decompressobj(wbits=-15)
    try:
        out = d.decompress(data, MAX_JSON_BYTES + 1)
    except zlib.error as exc:
        raise TelemetryError("deflate") from exc
    if len(out) > MAX_JSON_BYTES or d.unconsumed_tail:
        raise TelemetryError("inflated_too_large")
    if not d.eof:
        raise TelemetryError("deflate_truncated")
    return out


def _reject_constant(name: str) -> float:
    raise TelemetryError("non_finite")


def _finite(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TelemetryError("not_a_number")
    f = float(value)
    if not math.isfinite(f):
        raise TelemetryError("non_finite")
    return f


def _int_field(obj: Mapping[str, object], key: str, lo: int, hi: int) -> int:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise TelemetryError(f"field_{key}")
    return v


def decode(value: str) -> Telemetry:
    """Decode one header or cookie value.  Raises :class:`TelemetryError`."""
    if len(value) > MAX_ENCODED_BYTES:
        raise TelemetryError("encoded_too_large")
    prefix, sep, body = value.partition(".")
    if not sep:
        raise TelemetryError("prefix")
    if prefix == "1z":
        raw = _inflate_raw(_b64url_decode(body))
    elif prefix == "1j":
        raw = _b64url_decode(body)
        if len(raw) > MAX_JSON_BYTES:
            raise TelemetryError("inflated_too_large")
    else:
        raise TelemetryError("unsupported_version")
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except TelemetryError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise TelemetryError("json") from exc
    return _from_doc(doc)


def _from_doc(doc: object) -> Telemetry:
    if not isinstance(doc, dict):
        raise TelemetryError("not_an_object")
    sid = doc.get("sid")
    if not isinstance(sid, str) or not _SID_RE.fullmatch(sid):
        raise TelemetryError("field_sid")
    seq = _int_field(doc, "seq", 0, _MAX_SEQ)
    ts = _int_field(doc, "ts", 0, _MAX_SEQ)
    dev = doc.get("dev")
    if dev not in DEVICES:
        raise TelemetryError("field_dev")
    m = doc.get("m")
    if not isinstance(m, dict):
        raise TelemetryError("field_m")
    modalities: dict[str, ModalityWindow] = {}
    for name, spec in MODALITIES.items():
        entry = m.get(name)
        if entry is None:
            continue
        if not isinstance(entry, dict):
            raise TelemetryError("modality")
        n = _int_field(entry, "n", 0, 10**9)
        feats = entry.get("f", {})
        if not isinstance(feats, dict):
            raise TelemetryError("modality")
        values: dict[str, float] = {}
        for fs in spec.features:
            if fs.name in feats:
                x = _finite(feats[fs.name])
                values[fs.name] = min(max(x, fs.lo), fs.hi)
        if n >= spec.min_events and values:
            modalities[name] = ModalityWindow(n=n, features=values)
    return Telemetry(version=1, sid=sid, seq=seq, ts_ms=ts, device=str(dev),
                     modalities=modalities)


def encode_json(doc: Mapping[str, object]) -> str:
    """Encode a document as ``1j.`` (tests, tools and old browsers)."""
    raw = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
    return "1j." + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def encode_deflate(doc: Mapping[str, object]) -> str:
    """Encode a document as ``1z.`` exactly as the browser collector does."""
    raw = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = c.compress(raw) + c.flush()
    return "1z." + base64.urlsafe_b64encode(body).rstrip(b"=").decode()
