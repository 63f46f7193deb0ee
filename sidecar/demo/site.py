"""The demo site: a tier pool that also serves the collector's demo page.

Every tier pool of the demo stack is a :class:`DemoSiteServer`.  Whichever pool Envoy
routes a request to, it answers the same site, so a visitor sees the same page in every
tier; only the ``x-upstream-pool`` response header (and the ``/api/*`` JSON) says where the
request went:

* ``/`` → ``<demo_dir>/index.html``; other paths → files under ``demo_dir``;
* ``/collector/<file>`` → files under ``dist_dir`` (the built collector bundle);
* ``/api/*`` → the pool JSON of :mod:`sidecar.upstream` (pool, tier, score, decision…).

Static answers carry ``x-upstream-pool`` and ``x-upstream-decision`` (the decision id that
Envoy's sidecar attached), and are counted like API requests.  Paths never leave their
root directory.  The IDS pool stays a plain :class:`~sidecar.upstream.UpstreamServer`:
it only counts what the tier-3 route mirrors to it.
"""

from __future__ import annotations

import mimetypes
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sidecar.stack import PoolFactory
from sidecar.tiers import HDR_DECISION, HDR_TIER
from sidecar.upstream import IDS_POOL, UpstreamServer, serve_upstream

# The pool request handler is private to sidecar.upstream; subclassing it keeps the
# /api/* answers identical to every other pool instead of copying its JSON logic.
from sidecar.upstream import _Handler as _PoolHandler

API_PREFIX: Final = "/api/"
COLLECTOR_PREFIX: Final = "/collector/"
INDEX: Final = "index.html"
HDR_POOL: Final = "x-upstream-pool"
HDR_UPSTREAM_DECISION: Final = "x-upstream-decision"
_POLL_S: Final = 0.05

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
DEFAULT_DEMO_DIR: Final = REPO_ROOT / "collector_js" / "demo"
DEFAULT_DIST_DIR: Final = REPO_ROOT / "collector_js" / "dist"


@dataclass(frozen=True, slots=True)
class SiteFiles:
    """Where the page and the collector bundle are read from (read at request time)."""

    demo_dir: Path = DEFAULT_DEMO_DIR
    dist_dir: Path = DEFAULT_DIST_DIR

    def resolve(self, url_path: str) -> Path | None:
        """The file for ``url_path`` (already without query), or ``None`` if there is none.

        ``None`` also for anything that would leave its root (``..``, symlinks out).
        """
        path = urllib.parse.unquote(url_path)
        if path.startswith(COLLECTOR_PREFIX):
            root, rel = self.dist_dir, path[len(COLLECTOR_PREFIX):]
        else:
            root, rel = self.demo_dir, path.lstrip("/")
        if rel in ("", "/") or rel.endswith("/"):
            rel += INDEX
        try:
            base = root.resolve()
            candidate = (base / rel).resolve()
        except (OSError, RuntimeError):
            return None
        if not candidate.is_relative_to(base) or not candidate.is_file():
            return None
        return candidate

    def missing(self) -> list[str]:
        """Human-readable notes about files the page needs but that do not exist."""
        notes = []
        if not (self.demo_dir / INDEX).is_file():
            notes.append(f"no demo page at {self.demo_dir / INDEX}")
        if not self.dist_dir.is_dir() or not any(self.dist_dir.glob("*.js")):
            notes.append(f"no collector bundle in {self.dist_dir} (run `make bundle`)")
        return notes


class DemoSiteServer(UpstreamServer):
    """A tier pool (:class:`~sidecar.upstream.UpstreamServer`) that also serves the site."""

    def __init__(self, pool: str, host: str, port: int, files: SiteFiles,
                 instance: str | None = None) -> None:
        super().__init__(pool, host, port, instance)
        self.RequestHandlerClass = _SiteHandler
        self.files = files


class _SiteHandler(_PoolHandler):
    server: DemoSiteServer

    def _answer(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith(API_PREFIX) or self.command not in ("GET", "HEAD"):
            super()._answer()
            return
        self._drain_body()
        decision = self.headers.get(HDR_DECISION)
        self.server.record({"method": self.command, "path": path,
                            "tier": self.headers.get(HDR_TIER), "decision": decision,
                            "failure_mode": False})
        file = self.server.files.resolve(path)
        if file is None:
            self._send_bytes(404, b"not found\n", "text/plain; charset=utf-8", decision)
            return
        try:
            data = file.read_bytes()
        except OSError:
            self._send_bytes(404, b"not found\n", "text/plain; charset=utf-8", decision)
            return
        ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype == "application/javascript":
            ctype += "; charset=utf-8"
        self._send_bytes(200, data, ctype, decision)

    def _send_bytes(self, status: int, data: bytes, ctype: str, decision: str | None) -> None:
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        self.send_header("cache-control", "no-store")  # every visit goes through a decision
        self.send_header(HDR_POOL, self.server.pool)
        if decision:
            self.send_header(HDR_UPSTREAM_DECISION, decision)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer


def serve_site(pool: str, host: str, port: int, files: SiteFiles
               ) -> tuple[UpstreamServer, threading.Thread]:
    """Start one pool on a daemon thread: the site for tier pools, a plain IDS for ``ids``."""
    if pool == IDS_POOL:
        return serve_upstream(pool, host, port)
    server = DemoSiteServer(pool, host, port, files)
    thread = threading.Thread(target=server.serve_forever, args=(_POLL_S,),
                              name=f"demo-site-{pool}", daemon=True)
    thread.start()
    return server, thread


def site_pool_factory(files: SiteFiles) -> PoolFactory:
    """A :class:`~sidecar.stack.StackOptions` ``pool_factory`` that serves ``files``."""

    def factory(pool: str, host: str, port: int) -> tuple[UpstreamServer, threading.Thread]:
        return serve_site(pool, host, port, files)

    return factory
