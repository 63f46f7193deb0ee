"""The gRPC server: ``envoy.service.auth.v3.Authorization/Check`` and ``grpc.health.v1``.

A sync grpcio server with a thread pool (measured faster than grpc.aio for this
workload, see DESIGN.md).  ``Check`` only orchestrates: convert in, run the pipeline,
convert out.
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from types import FrameType

import grpc
from envoy.service.auth.v3 import external_auth_pb2 as authz
from envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from sidecar import envoy_io
from sidecar.admin import AdminServer
from sidecar.config import Settings
from sidecar.gc_policy import GcPolicy
from sidecar.pipeline import Pipeline

log = logging.getLogger(__name__)

SERVICE_NAME = "envoy.service.auth.v3.Authorization"


class AuthorizationServicer(authz_grpc.AuthorizationServicer):  # type: ignore[misc]
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def Check(self, request: authz.CheckRequest,
              context: grpc.ServicerContext) -> authz.CheckResponse:
        s = self.pipeline.settings
        inp = envoy_io.to_input(request, identity_header=s.identity_header,
                                jwt_payload_key=s.jwt_payload_key, jwt_claim=s.jwt_claim)
        return envoy_io.to_response(self.pipeline.check(inp))


class Sidecar:
    """The running process: gRPC server, health, admin HTTP, learner."""

    def __init__(self, settings: Settings, pipeline: Pipeline) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.health = health.HealthServicer()
        self.grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=settings.workers,
                                       thread_name_prefix="bioshard-grpc"),
            options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", 1 << 20)])
        authz_grpc.add_AuthorizationServicer_to_server(AuthorizationServicer(pipeline), self.grpc)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.grpc)
        port = self.grpc.add_insecure_port(settings.listen)
        if port == 0:
            raise OSError(f"listen: cannot bind {settings.listen}")
        self.admin = AdminServer(settings, pipeline)
        self.gc = GcPolicy(settings.gc_full_interval_s)
        m = pipeline.metrics
        pauses = self.gc.pauses
        m.gauge("bioshard_gc_pause_max_seconds", lambda: pauses.pause_max_s)
        m.gauge("bioshard_gc_full_collections", lambda: pauses.collections[2])
        m.gauge("bioshard_gc_full_pause_seconds", lambda: pauses.pause_total_s[2])
        self._stopped = threading.Event()

    def start(self) -> None:
        self.pipeline.start()
        self.gc.start()
        self.grpc.start()
        self.admin.start()
        for name in ("", SERVICE_NAME):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("bioshard serving ext_authz on %s, admin on %s, store %s",
                 self.settings.listen, self.settings.admin_listen,
                 self.settings.store.split("://", 1)[0])

    def stop(self, grace: float = 2.0) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.enter_graceful_shutdown()
        self.grpc.stop(grace).wait()
        self.admin.stop()
        self.pipeline.close()
        self.gc.stop()
        log.info("bioshard stopped")

    def serve_forever(self) -> None:
        done = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("signal %s: shutting down", signal.Signals(signum).name)
            done.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        done.wait()
        self.stop()
