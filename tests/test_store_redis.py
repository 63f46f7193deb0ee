"""RedisStore and RedisClusterStore: the shared contract against real redis-server processes.

A single server and a 3-master cluster are started once per session on free ports in
a temp dir (and flushed before each test); the outage test gets its own dedicated
server / cluster, which it kills.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster
from redis_servers import (
    RedisClusterProcesses,
    RedisProcess,
    running_redis,
    running_redis_cluster,
)
from store_contract import ALICE, BOB, KEY_A, PSEUDONYMIZER, StoreContract

from sidecar.crypto import KeyRing
from sidecar.store import PROFILE, StoreUnavailable, open_store
from sidecar.store.redis_store import (
    RedisClusterStore,
    RedisStore,
    _cluster_node,
    record_key,
)


class RedisBackend:
    """A Redis server or cluster we started, seen through a raw client."""

    reads_survive_outage = False

    def __init__(self, url: str, client: Any, stop: list[RedisProcess]) -> None:
        self.url = url
        self.client = client  # redis.Redis | RedisCluster
        self._stop = stop

    def make_store(self, keyring: KeyRing, *, timeout_s: float | None = None) -> Any:
        return open_store(self.url, keyring, timeout_s=timeout_s or 5.0)

    def raw_get(self, pseudonym: str, name: str = PROFILE) -> bytes | None:
        blob = self.client.get(record_key(pseudonym, name))
        return None if blob is None else bytes(blob)

    def raw_set(self, pseudonym: str, name: str, blob: bytes) -> None:
        self.client.set(record_key(pseudonym, name), blob)

    def dump(self) -> bytes:
        out = bytearray()
        for key in self.client.scan_iter(count=1000):
            out += key + b"\n" + (self.client.get(key) or b"") + b"\n"
        return bytes(out)

    def take_down(self) -> None:
        for process in self._stop:
            process.stop()


def _cluster_client(cluster: RedisClusterProcesses) -> RedisCluster:
    node = cluster.nodes[0]
    return RedisCluster(host="127.0.0.1", port=node.port, socket_timeout=5.0)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[RedisClusterProcesses]:
    with running_redis_cluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


class TestRedisStore(StoreContract):
    """RedisStore meets the ProfileStore contract on one real redis-server."""

    @pytest.fixture
    def backend(self, redis_server: RedisProcess) -> Iterator[RedisBackend]:
        client = redis_server.client()
        client.flushdb()
        yield RedisBackend(redis_server.url, client, [])
        client.close()

    @pytest.fixture
    def outage_backend(self, tmp_path: Path) -> Iterator[RedisBackend]:
        with running_redis(tmp_path) as server, server.client() as client:
            yield RedisBackend(server.url, client, [server])


class TestRedisClusterStore(StoreContract):
    """RedisClusterStore meets the ProfileStore contract on a real 3-master cluster."""

    @pytest.fixture
    def backend(self, redis_cluster: RedisClusterProcesses) -> Iterator[RedisBackend]:
        client = _cluster_client(redis_cluster)
        client.flushdb(target_nodes=RedisCluster.PRIMARIES)
        yield RedisBackend(redis_cluster.url, client, [])
        client.close()

    @pytest.fixture
    def outage_backend(self, tmp_path: Path) -> Iterator[RedisBackend]:
        with running_redis_cluster(tmp_path) as cluster:
            client = _cluster_client(cluster)
            yield RedisBackend(cluster.url, client, cluster.nodes)
            client.close()

    def test_profiles_spread_over_masters(self, backend: RedisBackend,
                                          keyring: KeyRing) -> None:
        """Profiles land on every master, and each user's keys share one slot."""
        store = backend.make_store(keyring)
        for i in range(60):
            p = PSEUDONYMIZER.pseudonym(f"user{i}")
            store.put(p, b"p")
            store.put_aux(p, "history", b"h")
            assert (backend.client.keyslot(record_key(p))
                    == backend.client.keyslot(record_key(p, "history")))
        primaries = backend.client.get_primaries()
        sizes = [backend.client.get_redis_connection(n).dbsize() for n in primaries]
        assert len(sizes) == 3 and all(n > 0 for n in sizes), sizes
        assert store.count() == 60
        store.close()

    def test_unreachable_cluster_is_unavailable(self, keyring: KeyRing) -> None:
        """Opening a cluster store when no node answers raises StoreUnavailable."""
        from redis_servers import free_port

        with pytest.raises(StoreUnavailable):
            open_store(f"redis+cluster://127.0.0.1:{free_port()}", keyring, timeout_s=0.3)


def test_delete_sweeps_keys_under_the_users_hash_tag(redis_server: RedisProcess) -> None:
    """delete() also removes per-user keys written outside the store API (same hash tag)."""
    keyring = KeyRing([KEY_A])
    with redis_server.client() as client:
        client.flushdb()
        store = RedisStore(client, keyring)
        store.put(ALICE, b"p")
        client.set(f"bsh:x:{{{ALICE}}}:written-by-a-later-version", b"v")
        client.set(f"bsh:x:{{{BOB}}}:other-user", b"v")
        assert store.delete(ALICE) is True
        assert [k.decode() for k in client.scan_iter()] == [f"bsh:x:{{{BOB}}}:other-user"]


def test_update_conflicts_are_retried(redis_server: RedisProcess) -> None:
    """A write that slips in between read and EXEC makes update retry, not lose it."""
    keyring = KeyRing([KEY_A])
    with redis_server.client() as client:
        client.flushdb()
        store = RedisStore(client, keyring)
        other = RedisStore(redis_server.client(), keyring)
        store.put(ALICE, b"0")
        calls: list[bytes | None] = []

        def slow_increment(old: bytes | None) -> bytes:
            calls.append(old)
            if len(calls) == 1:
                other.put(ALICE, b"10")  # another sidecar writes meanwhile
            return str(int(old or b"0") + 1).encode()

        assert store.update(ALICE, slow_increment) == b"11"
        assert calls == [b"0", b"10"]
        assert store.conflicts == 1
        other.close()


@pytest.mark.parametrize(("hostport", "expected"), [
    ("10.0.0.1:7000", ("10.0.0.1", 7000)),
    ("[::1]:7001", ("::1", 7001)),
    ("redis-0.redis:6379", ("redis-0.redis", 6379)),
], ids=["ipv4", "ipv6", "dns-name"])
def test_cluster_node_parsing(hostport: str, expected: tuple[str, int]) -> None:
    """redis+cluster:// host lists accept IPv4, bracketed IPv6 and DNS names."""
    node = _cluster_node(hostport)
    assert (node.host, node.port) == expected


@pytest.mark.parametrize("url", ["redis+cluster://", "redis+cluster://host",
                                 "redis+cluster://host:port"],
                         ids=["no-hosts", "no-port", "bad-port"])
def test_cluster_url_rejects_malformed(url: str) -> None:
    """Malformed cluster URLs raise ValueError before any connection."""
    with pytest.raises(ValueError):
        RedisClusterStore.from_url(url, KeyRing([KEY_A]))


def test_open_store_picks_redis(redis_server: RedisProcess) -> None:
    """open_store returns a RedisStore for redis:// URLs."""
    store = open_store(redis_server.url, KeyRing([KEY_A]))
    assert isinstance(store, RedisStore)
    assert isinstance(redis.__version__, str) and store.ping()
    store.close()
