"""A tiny upstream pool server for the demo and the tests.

Every request, whatever its method and path, gets a JSON answer saying which pool and
instance served it and which bioshard headers arrived::

    {"pool": "tier2", "instance": "tier2@host:8082", "tier": "2", "score": "0.412",
     "decision": "…", "challenge": "required", "telemetry_header_seen": false,
     "failure_mode": false, "method": "GET", "path": "/api/ping"}

The ``ids`` pool stands in for an intrusion-detection system fed by Envoy's mirror: it
counts what it receives and answers ``GET /__ids/count`` with
``{"pool": "ids", "count": N, "recent": [...]}`` (the last requests' method, path, tier and
decision; never bodies or telemetry).

Run one per pool: ``python -m sidecar.upstream --pool tier1 --port 8081``, or in-process
with :func:`serve_upstream` / :func:`running_upstream`.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import signal
import socket
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from sidecar.tiers import HDR_CHALLENGE, HDR_DECISION, HDR_SCORE, HDR_TELEMETRY, HDR_TIER

IDS_POOL: Final = "ids"
IDS_COUNT_PATH: Final = "/__ids/count"
_RECENT: Final = 100
_MAX_BODY: Final = 1 << 20
_IDLE_TIMEOUT_S: Final = 60.0
_POLL_S: Final = 0.05  # shutdown() returns within one poll interval


class UpstreamServer(ThreadingHTTPServer):
    """HTTP/1.1 keep-alive server of one pool; ``seen`` counts requests (the IDS count)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, pool: str, host: str, port: int, instance: str | None = None) -> None:
        super().__init__((host, port), _Handler)
        self.pool = pool
        self.instance = instance or f"{pool}@{socket.gethostname()}:{self.server_address[1]}"
        self.seen = 0
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=_RECENT)
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        port: int = self.server_address[1]
        return port

    def record(self, entry: dict[str, Any]) -> None:
        """Count one request (thread-safe)."""
        with self.lock:
            self.seen += 1
            self.recent.append(entry)

    def ids_summary(self) -> dict[str, Any]:
        """The ``/__ids/count`` answer."""
        with self.lock:
            return {"pool": self.pool, "count": self.seen, "recent": list(self.recent)}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: Envoy reuses upstream connections
    timeout = _IDLE_TIMEOUT_S
    server: UpstreamServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: no per-request lines (they would carry decision ids and paths)."""

    def _drain_body(self) -> None:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                self.rfile.read(size + 2)  # chunk and its CRLF
        length = int(self.headers.get("content-length") or 0)
        if length > _MAX_BODY:
            self.close_connection = True
            return
        if length:
            self.rfile.read(length)

    def _answer(self) -> None:
        self._drain_body()
        path = self.path
        if self.server.pool == IDS_POOL and path == IDS_COUNT_PATH and self.command == "GET":
            self._send_json(self.server.ids_summary())
            return
        body: dict[str, Any] = {
            "pool": self.server.pool,
            "instance": self.server.instance,
            "tier": self.headers.get(HDR_TIER),
            "score": self.headers.get(HDR_SCORE),
            "decision": self.headers.get(HDR_DECISION),
            "challenge": self.headers.get(HDR_CHALLENGE),
            "telemetry_header_seen": self.headers.get(HDR_TELEMETRY) is not None,
            "failure_mode": self.headers.get("x-envoy-auth-failure-mode-allowed") == "true",
            "method": self.command,
            "path": path,
        }
        self.server.record(
            {k: body[k] for k in ("method", "path", "tier", "decision", "failure_mode")}
        )
        self._send_json(body)

    def _send_json(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-upstream-pool", self.server.pool)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer


def serve_upstream(
    pool: str, host: str = "127.0.0.1", port: int = 0, instance: str | None = None
) -> tuple[UpstreamServer, threading.Thread]:
    """Start a pool server on a daemon thread; stop it with ``shutdown()`` + ``server_close()``."""
    server = UpstreamServer(pool, host, port, instance)
    thread = threading.Thread(
        target=server.serve_forever, args=(_POLL_S,), name=f"upstream-{pool}", daemon=True
    )
    thread.start()
    return server, thread


@contextlib.contextmanager
def running_upstream(
    pool: str, host: str = "127.0.0.1", port: int = 0, instance: str | None = None
) -> Iterator[UpstreamServer]:
    """Context manager around :func:`serve_upstream` that always shuts the server down."""
    server, thread = serve_upstream(pool, host, port, instance)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sidecar.upstream --pool NAME --port N [--host H]``; runs until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(
        prog="python -m sidecar.upstream", description="Demo/test upstream pool server."
    )
    parser.add_argument("--pool", required=True, help="pool name echoed in answers (tier1, ids…)")
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--instance", default=None, help="instance name (default pool@host:port)")
    args = parser.parse_args(argv)

    server = UpstreamServer(args.pool, args.host, args.port, args.instance)

    def _stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"upstream {args.pool} listening on {args.host}:{server.port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
