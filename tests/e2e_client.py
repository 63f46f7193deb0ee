"""Client helpers for the end-to-end tests: real HTTP through Envoy, synthetic behaviour."""

from __future__ import annotations

import http.client
import json
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sidecar.scoring import Persona, synthetic_sid, synthetic_window
from sidecar.stack import Stack
from sidecar.telemetry import encode_deflate


@dataclass
class Session:
    """One browser session of a persona: a random sid and a growing seq, like the collector."""

    persona: Persona
    rng: np.random.Generator
    sid: str = ""
    seq: int = 0
    sent: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sid = self.sid or synthetic_sid(self.rng)

    def next_value(self) -> str:
        self.seq += 1
        doc = synthetic_window(self.persona, self.rng, sid=self.sid, seq=self.seq,
                               ts_ms=int(time.time() * 1000))
        value = encode_deflate(doc)
        self.sent.append(value)
        return value


def request(stack: Stack, headers: Mapping[str, str], *, path: str = "/api/ping",
            tls: bool = False) -> tuple[int, dict[str, Any], dict[str, str]]:
    """GET through Envoy; returns (status, JSON body from the upstream, response headers)."""
    if tls:
        ctx = ssl.create_default_context(cafile=str(stack.cert_path))
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", stack.https_port, context=ctx, timeout=10)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=10)
    try:
        conn.request("GET", path, headers=dict(headers))
        resp = conn.getresponse()
        raw = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {"raw": raw.decode(errors="replace")}
    return resp.status, body, hdrs


_METRIC = re.compile(r'^bioshard_decisions_total\{reason="([a-z_]+)",tier="(\d)"\} (\d+)$', re.M)


def decision_counts(stack: Stack) -> dict[tuple[str, int], int]:
    status, text = stack.admin("GET", "/metrics", token=None)
    assert status == 200
    return {(r, int(t)): int(n) for r, t, n in _METRIC.findall(str(text))}


def reasons_between(before: Mapping[tuple[str, int], int],
                    after: Mapping[tuple[str, int], int]) -> dict[tuple[str, int], int]:
    """The decisions (reason, tier) → count made between two /metrics snapshots."""
    return {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0) > 0}
