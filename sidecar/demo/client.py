"""Real HTTP through Envoy for the simulator: keep-alive connections per thread.

Each worker thread holds one plain and one TLS connection to Envoy's listeners and reuses
them (as a browser would).  A reply says which pool served it (``x-upstream-pool``, set
by every pool) and under which decision id (the ``/api/*`` JSON, or the
``x-upstream-decision`` header of a page).  A reply without a pool was answered by Envoy
itself: 429 from the guarded tier's rate limit, 403/400 when a tier is set to deny.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sidecar.demo.site import HDR_POOL, HDR_UPSTREAM_DECISION

_TIMEOUT_S: Final = 10.0
_POOL_TIERS: Final = {"tier1": 1, "tier2": 2, "tier3": 3}
_STALE: Final = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                 http.client.CannotSendRequest)


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back: HTTP status (0: no answer), the tier of the pool that served it
    (``None`` when Envoy answered alone or on error), the decision id, the round-trip time."""

    status: int
    tier: int | None
    decision: str | None
    seconds: float


class EnvoyClient:
    """GETs to Envoy's plain (``http_port``) and TLS (``https_port``) listeners."""

    def __init__(self, host: str, http_port: int, https_port: int | None,
                 cafile: Path | None) -> None:
        self.host = host
        self.http_port = http_port
        self.https_port = https_port
        self._ctx: ssl.SSLContext | None = None
        if https_port is not None and cafile is not None:
            self._ctx = ssl.create_default_context(cafile=str(cafile))
            self._ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self._local = threading.local()
        self._open: list[http.client.HTTPConnection] = []
        self._open_lock = threading.Lock()

    def _conn(self, tls: bool) -> http.client.HTTPConnection:
        key = "tls" if tls else "plain"
        conn: http.client.HTTPConnection | None = getattr(self._local, key, None)
        if conn is None:
            if tls and self._ctx is not None and self.https_port is not None:
                conn = http.client.HTTPSConnection(self.host, self.https_port,
                                                   context=self._ctx, timeout=_TIMEOUT_S)
            else:
                conn = http.client.HTTPConnection(self.host, self.http_port,
                                                  timeout=_TIMEOUT_S)
            setattr(self._local, key, conn)
            with self._open_lock:
                self._open.append(conn)
        return conn

    def _drop(self, tls: bool) -> None:
        key = "tls" if tls else "plain"
        conn: http.client.HTTPConnection | None = getattr(self._local, key, None)
        if conn is not None:
            conn.close()
            setattr(self._local, key, None)
            with self._open_lock:
                if conn in self._open:
                    self._open.remove(conn)

    def get(self, path: str, headers: Mapping[str, str], *, tls: bool = False) -> Reply:
        """GET ``path``; one retry on a fresh connection if the kept-alive one was stale."""
        t0 = time.perf_counter()
        for attempt in (0, 1):
            conn = self._conn(tls)
            try:
                conn.request("GET", path, headers=dict(headers))
                resp = conn.getresponse()
                raw = resp.read()
            except _STALE:
                self._drop(tls)
                if attempt == 0:
                    continue
                return Reply(0, None, None, time.perf_counter() - t0)
            except (OSError, http.client.HTTPException):
                self._drop(tls)
                return Reply(0, None, None, time.perf_counter() - t0)
            if resp.will_close:
                self._drop(tls)
            return _reply(resp, raw, time.perf_counter() - t0)
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close every connection (call once the worker threads are done)."""
        with self._open_lock:
            conns, self._open = self._open, []
        for conn in conns:
            conn.close()


def _reply(resp: http.client.HTTPResponse, raw: bytes, seconds: float) -> Reply:
    pool = resp.getheader(HDR_POOL)
    tier = _POOL_TIERS.get(pool or "")
    decision = resp.getheader(HDR_UPSTREAM_DECISION)
    if decision is None and (resp.getheader("content-type") or "").startswith("application/json"):
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("decision"), str):
            decision = body["decision"]
    return Reply(resp.status, tier, decision, seconds)
