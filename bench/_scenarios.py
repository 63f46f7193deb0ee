"""The four scenarios and the processes each one runs.

1. ``envoy``           Envoy straight to the upstream (no ext_authz filter): the floor.
2. ``noop``            Envoy + ``bench/noop_authz.py``: the floor of any Python grpcio ext_authz.
3. ``bioshard-sqlite`` Envoy + ``bioshard serve`` on the embedded SQLite store.
4. ``bioshard-redis``  Envoy + ``bioshard serve`` on a redis-server started here.

Every process binds 127.0.0.1 on a free port, logs into the run's work directory and is
stopped when its ``with`` block ends (:class:`sidecar.procs.ManagedProcess`).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from _envoy_setups import proxy_config, upstream_config

from sidecar.envoy_config import to_yaml
from sidecar.procs import ManagedProcess, free_port, http_ok, start_envoy, tcp_open

AuthzKind = Literal["none", "noop", "bioshard"]
NOOP_SCRIPT: Final = Path(__file__).with_name("noop_authz.py")


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    label: str
    authz: AuthzKind
    store: Literal["sqlite", "redis"] | None = None


SCENARIOS: Final = (
    Scenario("envoy", "1 Envoy only", "none"),
    Scenario("noop", "2 no-op grpcio ext_authz", "noop"),
    Scenario("bioshard-sqlite", "3 bioshard, SQLite", "bioshard", "sqlite"),
    Scenario("bioshard-redis", "4 bioshard, Redis", "bioshard", "redis"),
)
BY_NAME: Final = {s.name: s for s in SCENARIOS}


@dataclass(frozen=True, slots=True)
class Tuning:
    """Process settings shared by every scenario (reported with the results)."""

    envoy_concurrency: int
    sidecar_workers: int
    learn_delay_s: float
    max_telemetry_age_s: float


def start_upstream(workdir: Path, concurrency: int) -> tuple[ManagedProcess, int]:
    """The upstream Envoy (``direct_response``); returns the process and its port."""
    port, admin = free_port(), free_port()
    path = workdir / "upstream.yaml"
    path.write_text(to_yaml(upstream_config(port, admin)))
    proc = start_envoy(path, admin, workdir / "upstream.log",
                       extra_args=["--concurrency", str(concurrency)])
    return proc, port


@dataclass
class Proxy:
    """The proxy Envoy of one scenario."""

    process: ManagedProcess
    http_port: int
    admin_port: int


def start_proxy(workdir: Path, scenario: Scenario, *, upstream_port: int,
                authz_port: int | None, concurrency: int) -> Proxy:
    """bioshard's Envoy config for ``scenario`` (see :func:`_envoy_setups.proxy_config`)."""
    http_port, admin_port = free_port(), free_port()
    path = workdir / f"proxy-{scenario.name}.yaml"
    path.write_text(to_yaml(proxy_config(http_port=http_port, admin_port=admin_port,
                                         upstream_port=upstream_port,
                                         authz_port=authz_port)))
    proc = start_envoy(path, admin_port, workdir / f"proxy-{scenario.name}.log",
                       extra_args=["--concurrency", str(concurrency)])
    return Proxy(proc, http_port, admin_port)


@dataclass
class AuthzServer:
    """The ext_authz server of one scenario; ``admin_port`` only for bioshard."""

    process: ManagedProcess
    grpc_port: int
    admin_port: int | None = None


def start_noop(workdir: Path, workers: int) -> AuthzServer:
    """``bench/noop_authz.py`` on a free port."""
    port = free_port()
    proc = ManagedProcess(
        [sys.executable, str(NOOP_SCRIPT), "--listen", f"127.0.0.1:{port}",
         "--workers", str(workers)],
        log_path=workdir / "noop.log", ready=lambda: tcp_open("127.0.0.1", port),
        name="noop_authz")
    return AuthzServer(proc.start(), port)


def start_bioshard(workdir: Path, scenario: Scenario, *, store_url: str,
                   key_env: Mapping[str, str], tuning: Tuning) -> AuthzServer:
    """``bioshard serve`` (production key loading, not ``--dev``) on ``store_url``."""
    grpc_port, admin_port = free_port(), free_port()
    argv = [sys.executable, "-m", "sidecar", "serve",
            "--listen", f"127.0.0.1:{grpc_port}", "--admin-listen", f"127.0.0.1:{admin_port}",
            "--store", store_url, "--learn-delay-s", f"{tuning.learn_delay_s:g}",
            "--log-level", "WARNING"]
    env = {**key_env, "PYTHONUNBUFFERED": "1",
           "BIOSHARD_WORKERS": str(tuning.sidecar_workers),
           "BIOSHARD_MAX_TELEMETRY_AGE_S": f"{tuning.max_telemetry_age_s:g}"}
    health = f"http://127.0.0.1:{admin_port}/health/anomalydetection"
    proc = ManagedProcess(argv, log_path=workdir / f"sidecar-{scenario.name}.log", env=env,
                          ready=lambda: http_ok(health), name="bioshard", ready_timeout=60.0,
                          stop_timeout=15.0)
    return AuthzServer(proc.start(), grpc_port, admin_port)


def redis_binary() -> str | None:
    """``redis-server`` on PATH (Debian package ``redis-server``), else None."""
    return shutil.which("redis-server")


def start_redis(workdir: Path) -> tuple[ManagedProcess, str]:
    """A private, non-persistent redis-server; returns it and its ``redis://`` URL."""
    binary = redis_binary()
    if binary is None:
        raise FileNotFoundError("redis-server not found: apt-get install -y redis-server")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(workdir)]
    proc = ManagedProcess(argv, log_path=workdir / "redis.log",
                          ready=lambda: tcp_open("127.0.0.1", port), name="redis-server")
    return proc.start(), f"redis://127.0.0.1:{port}/0"
