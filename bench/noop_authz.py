"""A no-op ext_authz server: the floor for any Python grpcio ext_authz (scenario 2).

Same stack as ``bioshard serve`` (sync grpcio server on a thread pool, xds-protos
messages), but ``Check`` does no work: it answers one prebuilt ``CheckResponse`` that
allows the request and sets the same routing headers bioshard sets for tier 1, so
Envoy routes the request exactly as it routes a tier-1 decision.  Whatever bioshard
costs beyond this server is the decision pipeline itself.

Run: ``python bench/noop_authz.py --listen 127.0.0.1:9001 [--workers 4]``; it serves
until SIGTERM/SIGINT.  ``grpc.health.v1`` answers SERVING for readiness probes.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from concurrent import futures
from types import FrameType
from typing import Final

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2 as authz
from envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from sidecar.tiers import HDR_CLUSTER, HDR_DECISION, HDR_SCORE, HDR_TELEMETRY, HDR_TIER

DEFAULT_WORKERS: Final = 4
"""Thread-pool size; the same default as ``bioshard serve`` (``Settings.workers``)."""
_GRPC_OK: Final = 0
"""``google.rpc.Code.OK``."""
_OVERWRITE: Final = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


def _header(key: str, value: str) -> base_pb2.HeaderValueOption:
    return base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=key, value=value),
                                      append_action=_OVERWRITE)


ALLOW: Final = authz.CheckResponse(
    status={"code": _GRPC_OK},
    ok_response=authz.OkHttpResponse(
        headers=[_header(HDR_CLUSTER, "tier1"), _header(HDR_TIER, "1"),
                 _header(HDR_SCORE, "0.000"), _header(HDR_DECISION, "noop")],
        headers_to_remove=[HDR_TELEMETRY],
    ),
)
"""The one answer: allow, tier 1, telemetry header removed (as bioshard answers ``ok``)."""


class NoopAuthorization(authz_grpc.AuthorizationServicer):  # type: ignore[misc]
    """``Check`` returns :data:`ALLOW` without looking at the request."""

    def Check(self, request: authz.CheckRequest,  # the gRPC method's name
              context: grpc.ServicerContext) -> authz.CheckResponse:
        return ALLOW


def build_server(listen: str, workers: int = DEFAULT_WORKERS) -> grpc.Server:
    """A server bound to ``listen``, not started yet (``OSError`` if it cannot bind)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="noop-grpc"),
        options=[("grpc.so_reuseport", 0)],
    )
    authz_grpc.add_AuthorizationServicer_to_server(NoopAuthorization(), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", "envoy.service.auth.v3.Authorization"):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    if server.add_insecure_port(listen) == 0:
        raise OSError(f"cannot bind {listen}")
    return server


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:9001", help="gRPC address host:port")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                        help=f"thread-pool size ({DEFAULT_WORKERS})")
    args = parser.parse_args(argv)
    try:
        server = build_server(args.listen, args.workers)
    except OSError as exc:
        print(f"noop_authz: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    print(f"noop ext_authz serving on {args.listen}", flush=True)
    done.wait()
    server.stop(1.0).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
