"""Real redis-server processes for tests: one server, or a Redis Cluster of N masters.

Everything binds 127.0.0.1 on free ports and lives in the caller's temp directory;
nothing persists (no RDB, no AOF).  The machine's own Redis (6379) is never touched.
Use the context managers from fixtures::

    with running_redis(tmp_path) as server: ...          # server.url, server.stop()
    with running_redis_cluster(tmp_path) as cluster: ... # cluster.url, cluster.nodes
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
_BUS_OFFSET = 10000  # Redis Cluster's bus listens on port + 10000


@dataclass
class RedisProcess:
    """One redis-server we started."""

    port: int
    workdir: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def hostport(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2.0)

    def stop(self) -> None:
        """Stop the process for real (SIGKILL: nothing to save) and wait for it."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@dataclass
class RedisClusterProcesses:
    """A Redis Cluster of masters we started (no replicas)."""

    nodes: list[RedisProcess]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(n.hostport for n in self.nodes)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def free_port(*, with_bus: bool = False) -> int:
    """A port free on 127.0.0.1 now (and port + 10000 too when ``with_bus``)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not with_bus:
            return port
        if port + _BUS_OFFSET < 65536 and _is_free(port + _BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair found")


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_redis(workdir: Path, *, cluster: bool = False) -> RedisProcess:
    """Start a redis-server in ``workdir`` and wait until it answers PING."""
    port = free_port(with_bus=cluster)
    workdir = workdir / f"redis-{port}"
    workdir.mkdir(parents=True)
    args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
            "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--logfile", str(workdir / "redis.log")]
    if cluster:
        args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                 "--cluster-node-timeout", "2000"]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    server = RedisProcess(port, workdir, proc)
    try:
        _wait(lambda: _pings(server), what=f"redis-server on {port}")
    except BaseException:
        server.stop()
        raise
    return server


def _pings(server: RedisProcess) -> bool:
    if server.proc.poll() is not None:
        raise RuntimeError(f"redis-server exited ({server.proc.returncode}); "
                           f"see {server.workdir / 'redis.log'}")
    try:
        with server.client() as c:
            return bool(c.ping())
    except redis.ConnectionError:
        return False


def _wait(ready: object, *, what: str, timeout_s: float = 15.0) -> None:
    assert callable(ready)
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout_s} s")
        time.sleep(0.02)


@contextmanager
def running_redis(workdir: Path) -> Iterator[RedisProcess]:
    """A single redis-server, stopped on exit."""
    server = start_redis(workdir)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def running_redis_cluster(workdir: Path, *, masters: int = 3) -> Iterator[RedisClusterProcesses]:
    """A Redis Cluster of ``masters`` masters (``redis-cli --cluster create``), stopped on exit."""
    with ExitStack() as stack:
        nodes = []
        for _ in range(masters):
            node = start_redis(workdir, cluster=True)
            stack.callback(node.stop)
            nodes.append(node)
        subprocess.run(
            [REDIS_CLI, "--cluster", "create", *(n.hostport for n in nodes),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, timeout=60)
        _wait(lambda: all(_cluster_ok(n) for n in nodes), what="redis cluster")
        yield RedisClusterProcesses(nodes)


def _cluster_ok(node: RedisProcess) -> bool:
    with node.client() as c:
        info = c.execute_command("CLUSTER", "INFO")
    text = info.decode() if isinstance(info, bytes) else str(info)
    return "cluster_state:ok" in text
