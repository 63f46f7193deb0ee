"""Real Envoy on rendered configs: what happens without the sidecar's decision (and, for
contrast, with one from a minimal stand-in authorization server)."""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import ssl
from collections.abc import Iterator, Mapping
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2 as authz
from envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc
from google.rpc import code_pb2, status_pb2

from sidecar import envoy_config as ec
from sidecar.devcerts import make_self_signed
from sidecar.procs import free_port, start_envoy, wait_until
from sidecar.tiers import (
    HDR_CLUSTER,
    HDR_DECISION,
    HDR_TELEMETRY,
    HDR_TIER,
    cluster_for,
)
from sidecar.upstream import IDS_COUNT_PATH, UpstreamServer, running_upstream

pytestmark = pytest.mark.e2e

POOLS = ("tier1", "tier2", "tier3", "ids")
SPOOF = {HDR_CLUSTER: "tier1", HDR_TIER: "1", "x-envoy-auth-failure-mode-allowed": "false"}


@dataclass(frozen=True)
class Proxy:
    """A running Envoy: its listener ports and the CA file of its TLS listener."""

    http_port: int
    https_port: int | None
    cafile: str | None


def _get(port: int, path: str = "/", headers: Mapping[str, str] | None = None,
         ) -> tuple[int, dict[str, Any] | None, http.client.HTTPMessage]:
    """GET through Envoy; returns status, decoded JSON body (None if not JSON) and headers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=dict(headers or {}))
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    return resp.status, body, resp.headers


@pytest.fixture(scope="module")
def pools() -> Iterator[dict[str, UpstreamServer]]:
    with contextlib.ExitStack() as stack:
        yield {pool: stack.enter_context(running_upstream(pool)) for pool in POOLS}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    cert, key = make_self_signed(tmp_path_factory.mktemp("certs"))
    return str(cert), str(key)


def _local(server: UpstreamServer) -> tuple[ec.HostPort, ...]:
    return (ec.HostPort("127.0.0.1", server.port),)


@contextlib.contextmanager
def _envoy(workdir: Path, pools: Mapping[str, UpstreamServer], sidecar_port: int,
           certs: tuple[str, str] | None = None, **changes: Any) -> Iterator[Proxy]:
    """Render a config for ``pools`` and the sidecar port, run Envoy, always stop it."""
    http_port, admin_port = free_port(), free_port()
    https_port = free_port() if certs else None
    opts = ec.RenderOptions(
        http_port=http_port, https_port=https_port, admin_port=admin_port,
        cert_path=certs[0] if certs else None, key_path=certs[1] if certs else None,
        sidecar=ec.HostPort("127.0.0.1", sidecar_port),
        tier1=_local(pools["tier1"]), tier2=_local(pools["tier2"]),
        tier3=_local(pools["tier3"]), ids=_local(pools["ids"]),
    )
    opts = dataclasses.replace(opts, **changes)
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "envoy.yaml"
    config.write_text(ec.to_yaml(ec.render(opts)))
    with start_envoy(config, admin_port, workdir / "envoy.log"):
        yield Proxy(http_port, https_port, certs[0] if certs else None)


@pytest.fixture(scope="module")
def no_sidecar(tmp_path_factory: pytest.TempPathFactory, pools: dict[str, UpstreamServer],
               certs: tuple[str, str]) -> Iterator[Proxy]:
    """Envoy whose sidecar address is a closed port (nothing listens there)."""
    with _envoy(tmp_path_factory.mktemp("no-sidecar"), pools, free_port(), certs,
                rate_limit_per_s=1000) as proxy:
        yield proxy


# ------------------------------------------------------------------ sidecar down


def test_no_decision_lands_in_guarded_tier(no_sidecar: Proxy) -> None:
    """Sidecar down: the request still succeeds, in tier2, with the challenge header upstream."""
    status, body, _ = _get(no_sidecar.http_port, "/api/ping")
    assert status == 200
    assert body is not None
    assert body["pool"] == "tier2"
    assert body["challenge"] == "required"
    assert body["failure_mode"] is True
    assert body["tier"] is None


@pytest.mark.parametrize(
    "headers",
    [SPOOF, {k.upper(): v for k, v in SPOOF.items()},
     {**SPOOF, "x-bioshard-challenge": "none", "x-bioshard-score": "0.000"}],
    ids=["lower-case", "upper-case", "with-score-and-challenge"],
)
def test_client_routing_headers_do_not_pick_the_pool(
    no_sidecar: Proxy, headers: dict[str, str]
) -> None:
    """A client claiming tier 1 / cluster tier1 still lands in tier2 (headers stripped)."""
    status, body, _ = _get(no_sidecar.http_port, "/", headers)
    assert status == 200
    assert body is not None
    assert (body["pool"], body["tier"], body["challenge"]) == ("tier2", None, "required")
    assert body["failure_mode"] is True  # Envoy's own value, not the client's "false"


def test_client_routing_headers_are_stripped_on_tls_too(no_sidecar: Proxy) -> None:
    """The TLS listener strips the same headers."""
    assert no_sidecar.https_port is not None
    ctx = ssl.create_default_context(cafile=no_sidecar.cafile)
    conn = http.client.HTTPSConnection("127.0.0.1", no_sidecar.https_port, context=ctx,
                                       timeout=10)
    try:
        conn.request("GET", "/", headers=SPOOF)
        resp = conn.getresponse()
        body = json.loads(resp.read())
    finally:
        conn.close()
    assert (resp.status, body["pool"], body["challenge"]) == (200, "tier2", "required")


@pytest.mark.parametrize(
    ("version", "accepted"),
    [(ssl.TLSVersion.TLSv1_2, False), (ssl.TLSVersion.TLSv1_3, True)],
    ids=["tls1.2-refused", "tls1.3-accepted"],
)
def test_tls_listener_accepts_only_tls13(
    no_sidecar: Proxy, version: ssl.TLSVersion, accepted: bool
) -> None:
    """A client limited to TLS 1.2 fails the handshake; TLS 1.3 completes it."""
    assert no_sidecar.https_port is not None
    ctx = ssl.create_default_context(cafile=no_sidecar.cafile)
    ctx.minimum_version = ctx.maximum_version = version
    conn = http.client.HTTPSConnection("127.0.0.1", no_sidecar.https_port, context=ctx,
                                       timeout=10)
    try:
        if accepted:
            conn.request("GET", "/")
            assert conn.getresponse().status == 200
            assert conn.sock is not None
            assert conn.sock.version() == "TLSv1.3"
        else:
            with pytest.raises(ssl.SSLError):
                conn.connect()
    finally:
        conn.close()


def test_rate_limit_on_default_route_answers_429(
    tmp_path: Path, pools: dict[str, UpstreamServer]
) -> None:
    """Past the guarded tier's budget (3/s here) Envoy answers 429 itself."""
    with _envoy(tmp_path, pools, free_port(), rate_limit_per_s=3) as proxy:
        results = [_get(proxy.http_port, "/") for _ in range(10)]
    statuses = [status for status, _, _ in results]
    assert statuses[:3] == [200, 200, 200]
    assert 429 in statuses
    assert statuses.count(200) <= 6  # at most one refill of 3 during the burst
    limited = next(headers for status, _, headers in results if status == 429)
    assert limited["x-ratelimit-limit"] == "3"


def test_fail_closed_option_denies_without_sidecar(
    tmp_path: Path, pools: dict[str, UpstreamServer]
) -> None:
    """With failure_mode_allow off, a request without a decision is denied (403)."""
    before = pools["tier2"].seen
    with _envoy(tmp_path, pools, free_port(), failure_mode_allow=False) as proxy:
        status, _, _ = _get(proxy.http_port, "/")
    assert status == 403
    assert pools["tier2"].seen == before


# ------------------------------------------------------------------ contrast: with a decision


class _StandInAuthz(authz_grpc.AuthorizationServicer):  # type: ignore[misc]
    """Answers OK with the tier the test asked for in ``x-test-tier`` (the real sidecar
    computes it; here only Envoy's side of the contract is under test)."""

    def Check(self, request: authz.CheckRequest, context: grpc.ServicerContext,
              ) -> authz.CheckResponse:
        tier = int(request.attributes.request.http.headers.get("x-test-tier", "2"))
        values = {HDR_CLUSTER: cluster_for(tier), HDR_TIER: str(tier), HDR_DECISION: "d-test"}
        ok = authz.OkHttpResponse(
            headers=[
                base_pb2.HeaderValueOption(
                    header=base_pb2.HeaderValue(key=k, value=v),
                    append_action=base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD,
                )
                for k, v in values.items()
            ],
            headers_to_remove=[HDR_TELEMETRY],
        )
        return authz.CheckResponse(status=status_pb2.Status(code=code_pb2.OK), ok_response=ok)


@pytest.fixture(scope="module")
def decided(tmp_path_factory: pytest.TempPathFactory,
            pools: dict[str, UpstreamServer]) -> Iterator[Proxy]:
    """Envoy in front of the stand-in authorization server."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    authz_grpc.add_AuthorizationServicer_to_server(_StandInAuthz(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with _envoy(tmp_path_factory.mktemp("decided"), pools, port) as proxy:
            yield proxy
    finally:
        server.stop(grace=None).wait()


@pytest.mark.parametrize(
    ("tier", "pool", "challenge"),
    [(1, "tier1", None), (2, "tier2", "required"), (3, "tier3", None)],
    ids=["tier1", "tier2", "tier3"],
)
def test_decision_routes_to_its_pool(
    decided: Proxy, tier: int, pool: str, challenge: str | None
) -> None:
    """The authorization server's tier picks the pool; only tier 2 carries the challenge."""
    status, body, _ = _get(decided.http_port, "/x",
                           {"x-test-tier": str(tier), HDR_TELEMETRY: "1j.e30"})
    assert status == 200
    assert body is not None
    assert (body["pool"], body["tier"], body["challenge"]) == (pool, str(tier), challenge)
    assert body["failure_mode"] is False
    assert body["telemetry_header_seen"] is False  # removed before going upstream


def test_tier3_is_mirrored_to_ids(decided: Proxy, pools: dict[str, UpstreamServer]) -> None:
    """Each tier-3 request is also copied to the IDS pool (GET /__ids/count counts it)."""
    before = pools["ids"].seen
    for _ in range(3):
        assert _get(decided.http_port, "/sandboxed", {"x-test-tier": "3"})[0] == 200
    wait_until(lambda: pools["ids"].seen >= before + 3, timeout=5, what="3 mirrored requests")
    conn = http.client.HTTPConnection("127.0.0.1", pools["ids"].port, timeout=5)
    try:
        conn.request("GET", IDS_COUNT_PATH)
        summary = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    assert summary["count"] >= before + 3
    assert summary["recent"][-1]["path"] == "/sandboxed"
    assert summary["recent"][-1]["tier"] == "3"
