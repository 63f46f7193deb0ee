"""Profile stores on Redis and Redis Cluster (the scale-out engine shared by many sidecars).

Key layout (``{...}`` is a hash tag: all of one user's keys share a cluster slot, so
they can be updated and deleted together)::

    bsh:p:{<pseudonym>}          the profile blob
    bsh:a:{<pseudonym>}:<name>   an auxiliary record blob (optional TTL)

Values are AES-GCM blobs (:mod:`sidecar.store.codec`); the raw user id never reaches
Redis.  ``update`` is optimistic: ``WATCH`` the key, read, compute, ``MULTI``/``EXEC``
the write, and retry with jittered backoff when another sidecar wrote in between, up
to ``max_retries`` times (then :class:`UpdateConflict`).  ``delete`` removes every key
under ``bsh:*{<pseudonym>}*`` on the node owning the user's slot — including keys a
later version writes under the same hash tag — at the cost of a ``SCAN`` of that node.

Any Redis error other than a lost ``WATCH`` (connection refused, socket timeout,
cluster down...) raises :class:`StoreUnavailable`.  Socket timeouts default to
0.5 s and the client retries a failed command once, quickly, so an outage is
reported within about one timeout instead of redis-py's multi-second default.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException, RedisError, WatchError
from redis.retry import Retry

from sidecar.crypto import KeyRing
from sidecar.store.base import PROFILE, StoreUnavailable, UpdateConflict, UpdateFn
from sidecar.store.codec import RecordCodec, check_pseudonym
from sidecar.store.records import RecordStore

__all__ = ["RedisClusterStore", "RedisStore", "record_key", "user_key_pattern"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S: Final = 0.5
DEFAULT_MAX_RETRIES: Final = 50
_SCAN_COUNT: Final = 1000


def record_key(pseudonym: str, name: str = PROFILE) -> str:
    """The Redis key of a record (``bsh:p:{p}`` for the profile, ``bsh:a:{p}:name``)."""
    if name == PROFILE:
        return f"bsh:p:{{{pseudonym}}}"
    return f"bsh:a:{{{pseudonym}}}:{name}"


def user_key_pattern(pseudonym: str) -> str:
    """The ``SCAN MATCH`` pattern of every key derived from the user (same hash tag)."""
    return f"bsh:*{{{pseudonym}}}*"


def _retry(retries: int = 1) -> Retry:
    return Retry(ExponentialWithJitterBackoff(base=0.005, cap=0.05), retries)


class _RedisStoreBase(RecordStore):
    """The store logic; subclasses differ only in the client and where to scan."""

    _client: Any  # redis.Redis | RedisCluster: the same command API for what we use

    def __init__(self, client: Any, keyring: KeyRing, *,
                 max_retries: int = DEFAULT_MAX_RETRIES) -> None:
        self._client = client
        self._codec = RecordCodec(keyring)
        self._max_retries = max_retries
        self.conflicts = 0
        """How many optimistic updates were retried (lost a WATCH) since start."""

    # -- profile ----------------------------------------------------------------------

    def delete(self, pseudonym: str) -> bool:
        check_pseudonym(pseudonym)
        profile_key = record_key(pseudonym)
        with _unavailable("delete"):
            keys = {profile_key}
            keys.update(_text(k) for k in self._scan(user_key_pattern(pseudonym), profile_key))
            # One slot (hash tag), so one DEL removes them together.
            return int(self._client.delete(*sorted(keys))) > 0

    # -- housekeeping -------------------------------------------------------------------

    def count(self) -> int:
        with _unavailable("count"):
            return sum(1 for _ in self._scan("bsh:p:*", None))

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except (RedisError, RedisClusterException, OSError):
            return False

    def close(self) -> None:
        self._client.close()

    # -- records --------------------------------------------------------------------------

    def _get(self, pseudonym: str, name: str) -> bytes | None:
        with _unavailable("get"):
            blob = self._client.get(record_key(pseudonym, name))
        return None if blob is None else self._codec.open(pseudonym, name, bytes(blob))

    def _put(self, pseudonym: str, name: str, data: bytes, ttl_s: float | None) -> None:
        blob = self._codec.seal(pseudonym, name, data)
        with _unavailable("put"):
            self._client.set(record_key(pseudonym, name), blob, px=_ttl_ms(ttl_s))

    def _update(self, pseudonym: str, name: str, fn: UpdateFn,
                ttl_s: float | None) -> bytes | None:
        key = record_key(pseudonym, name)
        with _unavailable("update"), self._client.pipeline(transaction=True) as pipe:
            for attempt in range(self._max_retries):
                try:
                    pipe.watch(key)
                    blob = pipe.get(key)
                    old = None if blob is None else self._codec.open(pseudonym, name,
                                                                      bytes(blob))
                    new = fn(old)
                    pipe.multi()
                    if new is None:
                        pipe.delete(key)
                    else:
                        pipe.set(key, self._codec.seal(pseudonym, name, new),
                                 px=_ttl_ms(ttl_s))
                    pipe.execute()
                    return new
                except WatchError:
                    self.conflicts += 1
                    time.sleep(random.uniform(0.0, min(0.05, 0.0005 * 2 ** attempt)))
        raise UpdateConflict(f"redis update: gave up after {self._max_retries} "
                             "conflicting attempts")

    def _scan(self, pattern: str, slot_key: str | None) -> Iterator[bytes | str]:
        """Keys matching ``pattern`` (on the node owning ``slot_key`` when given)."""
        it: Iterator[bytes | str] = self._client.scan_iter(match=pattern, count=_SCAN_COUNT)
        return it


class RedisStore(_RedisStoreBase):
    """:class:`~sidecar.store.base.ProfileStore` on one Redis server (``redis.Redis``)."""

    def __init__(self, client: redis.Redis, keyring: KeyRing, *,
                 max_retries: int = DEFAULT_MAX_RETRIES) -> None:
        super().__init__(client, keyring, max_retries=max_retries)

    @classmethod
    def from_url(cls, url: str, keyring: KeyRing, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 max_retries: int = DEFAULT_MAX_RETRIES) -> RedisStore:
        """``redis://[user:password@]host:port/db`` or ``rediss://`` (TLS)."""
        client = redis.Redis.from_url(url, socket_timeout=timeout_s,
                                      socket_connect_timeout=timeout_s, retry=_retry())
        return cls(client, keyring, max_retries=max_retries)

    def __repr__(self) -> str:
        kw = self._client.connection_pool.connection_kwargs
        return f"RedisStore({kw.get('host')}:{kw.get('port')}/{kw.get('db', 0)})"


class RedisClusterStore(_RedisStoreBase):
    """:class:`~sidecar.store.base.ProfileStore` on a Redis Cluster (``RedisCluster``).

    Profiles spread over the cluster's hash slots; all of a user's keys share one slot.
    """

    def __init__(self, client: RedisCluster, keyring: KeyRing, *,
                 max_retries: int = DEFAULT_MAX_RETRIES) -> None:
        super().__init__(client, keyring, max_retries=max_retries)

    @classmethod
    def from_url(cls, url: str, keyring: KeyRing, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 max_retries: int = DEFAULT_MAX_RETRIES) -> RedisClusterStore:
        """``redis+cluster://[user:password@]host:port,host:port`` (``rediss+cluster`` = TLS).

        Any reachable node is enough to discover the cluster.  Raises
        :class:`StoreUnavailable` when none answers.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("redis+cluster", "rediss+cluster"):
            raise ValueError("expected a redis+cluster:// URL")
        creds, _, hosts = parts.netloc.rpartition("@")
        user, _, password = creds.partition(":")
        nodes = [_cluster_node(h) for h in hosts.split(",") if h]
        if not nodes:
            raise ValueError("redis+cluster:// URL names no host:port")
        with _unavailable("connect"):
            client = RedisCluster(
                startup_nodes=nodes, username=unquote(user) or None,
                password=unquote(password) or None, ssl=parts.scheme == "rediss+cluster",
                socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                retry=_retry(2))
        return cls(client, keyring, max_retries=max_retries)

    def _scan(self, pattern: str, slot_key: str | None) -> Iterator[bytes | str]:
        kwargs: dict[str, Any] = {}
        if slot_key is not None:
            kwargs["target_nodes"] = self._client.get_node_from_key(slot_key)
        it: Iterator[bytes | str] = self._client.scan_iter(match=pattern, count=_SCAN_COUNT,
                                                           **kwargs)
        return it

    def __repr__(self) -> str:
        return f"RedisClusterStore({len(self._client.get_primaries())} primaries)"


def _cluster_node(hostport: str) -> ClusterNode:
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError("redis+cluster:// hosts must be host:port")
    return ClusterNode(host.strip("[]"), int(port))  # type: ignore[no-untyped-call]


def _ttl_ms(ttl_s: float | None) -> int | None:
    return None if ttl_s is None else max(1, round(ttl_s * 1000))


def _text(key: bytes | str) -> str:
    return key.decode("utf-8") if isinstance(key, bytes) else key


@contextmanager
def _unavailable(op: str) -> Iterator[None]:
    """Map every client/server failure (not a lost WATCH) to :class:`StoreUnavailable`."""
    try:
        yield
    except (RedisError, RedisClusterException) as exc:
        raise StoreUnavailable(f"redis {op}: {type(exc).__name__}") from exc
