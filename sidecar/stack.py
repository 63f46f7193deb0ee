"""A complete local bioshard deployment: Envoy + the sidecar + tier pools + IDS.

Used by ``bioshard demo``, the end-to-end tests and the serving benchmark, so that all
three run the same real processes wired the same way:

* the three tier pools and the IDS are small HTTP servers (:mod:`sidecar.upstream`),
  on threads of this process;
* the sidecar is a real ``bioshard serve`` process with freshly generated keys (not
  ``--dev``: the key-loading path runs as in production) and an SQLite store in the
  work directory (or ``store`` when given);
* Envoy is the real binary on a config rendered by :mod:`sidecar.envoy_config`, with a
  plain listener and a TLS 1.3-only one.

Every port is a free one on 127.0.0.1; :meth:`Stack.close` stops everything.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sidecar.admin_cli import request as admin_request
from sidecar.devcerts import make_self_signed
from sidecar.envoy_config import HostPort, RenderOptions, render, to_yaml
from sidecar.procs import ManagedProcess, free_port, http_ok, start_envoy
from sidecar.upstream import UpstreamServer, serve_upstream

POOLS = ("tier1", "tier2", "tier3", "ids")

PoolFactory = Callable[[str, str, int], tuple[UpstreamServer, threading.Thread]]
"""Starts one pool's server: ``(pool, host, port) -> (server, thread)``, like ``serve_upstream``."""


def generate_key_env() -> dict[str, str]:
    """Fresh production-form keys as environment variables."""
    return {
        "BIOSHARD_PSEUDONYM_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "BIOSHARD_ENCRYPTION_KEYS": "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
    }


@dataclass
class StackOptions:
    workdir: Path
    sidecar_env: Mapping[str, str] = field(default_factory=dict)
    store: str | None = None
    https: bool = True
    rate_limit_per_s: int | None = None
    start_sidecar: bool = True
    envoy_concurrency: int = 1
    admin_token: str = "test-admin-token-0123456789"
    upstreams: bool = True
    pool_factory: PoolFactory = serve_upstream


class Stack:
    def __init__(self, opts: StackOptions) -> None:
        self.opts = opts
        self.workdir = opts.workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.http_port = free_port()
        self.https_port = free_port() if opts.https else None
        self.envoy_admin_port = free_port()
        self.grpc_port = free_port()
        self.admin_port = free_port()
        self.pool_ports: dict[str, int] = {}
        self.pools: dict[str, UpstreamServer] = {}
        self._threads: list[threading.Thread] = []
        self.sidecar: ManagedProcess | None = None
        self.envoy: ManagedProcess | None = None
        self.key_env = generate_key_env()
        self.store = opts.store or f"sqlite:///{self.workdir / 'profiles.db'}"
        self.config_path = self.workdir / "envoy.yaml"
        self.cert_path: Path | None = None

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> Self:
        try:
            if self.opts.upstreams:
                for pool in POOLS:
                    server, thread = self.opts.pool_factory(pool, "127.0.0.1", 0)
                    self.pools[pool] = server
                    self.pool_ports[pool] = server.port
                    self._threads.append(thread)
            else:
                self.pool_ports = {pool: free_port() for pool in POOLS}
            if self.opts.start_sidecar:
                self.start_sidecar()
            self._write_envoy_config()
            self.envoy = start_envoy(
                self.config_path, self.envoy_admin_port, self.workdir / "envoy.log",
                extra_args=["--concurrency", str(self.opts.envoy_concurrency)])
        except BaseException:
            self.close()
            raise
        return self

    def _write_envoy_config(self) -> None:
        cert = key = None
        if self.https_port is not None:
            c, k = make_self_signed(self.workdir / "tls", ["127.0.0.1", "localhost"])
            cert, key = str(c), str(k)
            self.cert_path = c

        def ep(pool: str) -> tuple[HostPort, ...]:
            return (HostPort("127.0.0.1", self.pool_ports[pool]),)

        opts = RenderOptions(
            listen_host="127.0.0.1", http_port=self.http_port, https_port=self.https_port,
            cert_path=cert, key_path=key, admin_port=self.envoy_admin_port,
            sidecar=HostPort("127.0.0.1", self.grpc_port), tier1=ep("tier1"),
            tier2=ep("tier2"), tier3=ep("tier3"), ids=ep("ids"),
            rate_limit_per_s=self.opts.rate_limit_per_s)
        self.config_path.write_text(to_yaml(render(opts)))

    def sidecar_argv(self) -> list[str]:
        return [sys.executable, "-m", "sidecar", "serve",
                "--listen", f"127.0.0.1:{self.grpc_port}",
                "--admin-listen", f"127.0.0.1:{self.admin_port}",
                "--store", self.store]

    def start_sidecar(self) -> ManagedProcess:
        env = {**self.key_env, "BIOSHARD_ADMIN_TOKEN": self.opts.admin_token,
               "PYTHONUNBUFFERED": "1", **self.opts.sidecar_env}
        health = f"http://127.0.0.1:{self.admin_port}/health/anomalydetection"
        self.sidecar = ManagedProcess(self.sidecar_argv(), log_path=self.workdir / "sidecar.log",
                                      env=env, ready=lambda: http_ok(health), name="sidecar",
                                      ready_timeout=30.0, stop_timeout=10.0)
        return self.sidecar.start()

    def stop_sidecar(self) -> int | None:
        if self.sidecar is None:
            return None
        rc = self.sidecar.stop()
        self.sidecar = None
        return rc

    def close(self) -> None:
        for proc in (self.envoy, self.sidecar):
            if proc is not None:
                with contextlib.suppress(Exception):
                    proc.stop()
        self.envoy = self.sidecar = None
        for server in self.pools.values():
            server.shutdown()
            server.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self.pools.clear()
        self._threads.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- helpers --------------------------------------------------------------------
    def url(self, path: str = "/", *, tls: bool = False) -> str:
        if tls:
            return f"https://127.0.0.1:{self.https_port}{path}"
        return f"http://127.0.0.1:{self.http_port}{path}"

    def admin(self, method: str, path: str, body: Any = None,
              token: str | None = "") -> tuple[int, Any]:
        """Call the sidecar's admin API (the stack's token unless ``token`` is given or
        None); returns (status, decoded JSON or text)."""
        return admin_request(f"http://127.0.0.1:{self.admin_port}", method, path, body=body,
                             token=self.opts.admin_token if token == "" else token)
