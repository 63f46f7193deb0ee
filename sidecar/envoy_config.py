"""Render, validate and write bioshard's Envoy configuration.

``render(opts)`` builds the whole static bootstrap with ``envoy-data-plane``'s typed
classes (so a misspelt field fails here, not in Envoy) and returns it as a plain dict;
``to_yaml``/``to_json`` serialise it; ``validate`` runs ``envoy --mode validate``.  The
committed ``envoy/bioshard.yaml`` is ``render(compose_defaults())`` with comments, and a
test keeps the two equal.

The safety choices (see docs/envoy.md and DESIGN.md "Decisions Envoy sees"):

* client-supplied routing headers (:data:`sidecar.tiers.ROUTING_HEADERS`) are removed
  by the HCM's early header mutation, *before route selection* and before ext_authz, so
  neither the route cache nor the sidecar ever sees a client's own tier;
* the route table has no path to tier 1 without the sidecar's ``x-bioshard-tier: 1``;
  a request without a decision (sidecar down, ``failure_mode_allow``) takes the default
  route to the guarded tier-2 pool with its challenge and rate limit;
* ext_authz waits ``ext_authz_timeout_ms``, longer than the sidecar's own deadline, so
  the sidecar's explicit deadline decision normally arrives before Envoy gives up.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import ipaddress
import json
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import betterproto2
import yaml

from sidecar.procs import envoy_binary
from sidecar.tiers import (
    CHALLENGE_REQUIRED,
    DEFAULT_TIERS,
    EXT_AUTHZ_NAMESPACE,
    EXT_AUTHZ_TIMEOUT_MS,
    GUARDED_TIER,
    HDR_CHALLENGE,
    HDR_CLUSTER,
    HDR_FAILURE_MODE,
    HDR_TIER,
    JWT_AUTHN_NAMESPACE,
    ROUTING_HEADERS,
    SIDECAR_DEADLINE_MS,
    TierSpec,
)

with warnings.catch_warnings():
    # envoy-data-plane's generated classes use a pydantic idiom deprecated in pydantic 2.12
    # (``@model_validator(mode="after")`` on a classmethod); the warning fires on import.
    warnings.simplefilter("ignore", DeprecationWarning)
    from envoy_data_plane.envoy.config.accesslog import v3 as accesslog
    from envoy_data_plane.envoy.config.bootstrap import v3 as bootstrap
    from envoy_data_plane.envoy.config.cluster import v3 as cluster_v3
    from envoy_data_plane.envoy.config.common.mutation_rules import v3 as mutation_rules
    from envoy_data_plane.envoy.config.core import v3 as core
    from envoy_data_plane.envoy.config.endpoint import v3 as endpoint_v3
    from envoy_data_plane.envoy.config.listener import v3 as listener_v3
    from envoy_data_plane.envoy.config.overload import v3 as overload
    from envoy_data_plane.envoy.config.route import v3 as route_v3
    from envoy_data_plane.envoy.extensions.access_loggers.stream import v3 as stream_log
    from envoy_data_plane.envoy.extensions.common.ratelimit import v3 as ratelimit_common
    from envoy_data_plane.envoy.extensions.filters.http.ext_authz import v3 as ext_authz
    from envoy_data_plane.envoy.extensions.filters.http.local_ratelimit import v3 as local_ratelimit
    from envoy_data_plane.envoy.extensions.filters.http.router import v3 as router
    from envoy_data_plane.envoy.extensions.filters.network.http_connection_manager import v3 as hcm
    from envoy_data_plane.envoy.extensions.formatter.req_without_query import (
        v3 as req_without_query,
    )
    from envoy_data_plane.envoy.extensions.http.early_header_mutation.header_mutation import (
        v3 as early_mutation,
    )
    from envoy_data_plane.envoy.extensions.resource_monitors.downstream_connections import (
        v3 as downstream_connections,
    )
    from envoy_data_plane.envoy.extensions.transport_sockets.tls import v3 as tls
    from envoy_data_plane.envoy.extensions.upstreams.http import v3 as upstream_http
    from envoy_data_plane.envoy.type import v3 as type_v3
    from envoy_data_plane.envoy.type.matcher import v3 as matcher
    from envoy_data_plane.google import protobuf as pb

SIDECAR_CLUSTER: Final = "bioshard_sidecar"
ADMIN_HOST: Final = "127.0.0.1"
"""The admin interface can drain listeners and quit Envoy: loopback only, never configurable."""
LOCAL_RATELIMIT_FILTER: Final = "envoy.filters.http.local_ratelimit"
ROUTER_FILTER: Final = "envoy.filters.http.router"
HCM_FILTER: Final = "envoy.filters.network.http_connection_manager"
EARLY_MUTATION_EXT: Final = "envoy.http.early_header_mutation.header_mutation"
TLS_TRANSPORT_SOCKET: Final = "envoy.transport_sockets.tls"
MAX_EXT_AUTHZ_TIMEOUT_MS: Final = 10_000
_CONNECT_TIMEOUT_MS: Final = 1000
_ROUTE_TIMEOUT_MS: Final = 15_000
_MAX_MESSAGE: Final = 2000
_MAX_DOWNSTREAM_CONNECTIONS: Final = 50_000
_HTTP_PROTOCOL_OPTIONS: Final = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

class EnvoyConfigError(ValueError):
    """Invalid render options, or Envoy rejected a config (message = Envoy's own)."""


@dataclass(frozen=True, slots=True, order=True)
class HostPort:
    """A ``host:port`` endpoint; ``host`` is a DNS name or an IP literal (IPv6 without brackets)."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> HostPort:
        """``"host:port"`` or ``"[v6]:port"`` → :class:`HostPort` (``ValueError`` if malformed)."""
        host, sep, port = text.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"expected host:port, got {text!r}")
        return cls(host.removeprefix("[").removesuffix("]"), int(port))

    @property
    def is_ip(self) -> bool:
        """``True`` for an IP literal (STATIC cluster), ``False`` for a name (STRICT_DNS)."""
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_endpoints(*texts: str) -> tuple[HostPort, ...]:
    """``parse_endpoints("a:1", "b:2")`` → ``(HostPort("a", 1), HostPort("b", 2))``."""
    return tuple(HostPort.parse(t) for t in texts)


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """Everything that varies between deployments; validated once, immutable afterwards.

    Ports are TCP ports (1–65535); ``https_port`` ``None`` means no TLS listener, otherwise
    ``cert_path``/``key_path`` (PEM files as seen by Envoy) are required.  ``tier1`` …
    ``ids`` are the endpoints of the clusters named in ``tiers`` (``ids`` feeds every
    tier's ``mirror_cluster``).  ``rate_limit_per_s`` overrides the rate limit of every
    tier that has one in ``tiers`` (``None`` keeps the table's).  ``sidecar_deadline_ms``
    is only checked: Envoy's ext_authz timeout must exceed it.
    """

    listen_host: str = "127.0.0.1"
    http_port: int = 10000
    https_port: int | None = None
    cert_path: str | None = None
    key_path: str | None = None
    admin_port: int = 9901
    sidecar: HostPort = HostPort("127.0.0.1", 9001)
    tier1: tuple[HostPort, ...] = parse_endpoints("127.0.0.1:8081")
    tier2: tuple[HostPort, ...] = parse_endpoints("127.0.0.1:8082")
    tier3: tuple[HostPort, ...] = parse_endpoints("127.0.0.1:8083")
    ids: tuple[HostPort, ...] = parse_endpoints("127.0.0.1:8084")
    ext_authz_timeout_ms: int = EXT_AUTHZ_TIMEOUT_MS
    sidecar_deadline_ms: int = SIDECAR_DEADLINE_MS
    failure_mode_allow: bool = True
    rate_limit_per_s: int | None = None
    tiers: Mapping[int, TierSpec] = field(default_factory=lambda: DEFAULT_TIERS)

    def __post_init__(self) -> None:
        for name in ("http_port", "https_port", "admin_port"):
            _check_port(name, getattr(self, name))
        _check_port("sidecar", self.sidecar.port)
        ports = [p for p in (self.http_port, self.https_port, self.admin_port) if p is not None]
        if len(set(ports)) != len(ports):
            raise EnvoyConfigError("http_port, https_port and admin_port must differ")
        if self.https_port is not None and not (self.cert_path and self.key_path):
            raise EnvoyConfigError("https_port needs cert_path and key_path")
        if self.https_port is None and (self.cert_path or self.key_path):
            raise EnvoyConfigError("cert_path/key_path given without https_port")
        for name in ("tier1", "tier2", "tier3", "ids"):
            eps: tuple[HostPort, ...] = getattr(self, name)
            if not eps:
                raise EnvoyConfigError(f"{name} needs at least one endpoint")
            for ep in eps:
                _check_port(name, ep.port)
        if not 1 <= self.ext_authz_timeout_ms <= MAX_EXT_AUTHZ_TIMEOUT_MS:
            raise EnvoyConfigError(
                f"ext_authz_timeout_ms must be in 1..{MAX_EXT_AUTHZ_TIMEOUT_MS}, "
                f"got {self.ext_authz_timeout_ms}"
            )
        if self.ext_authz_timeout_ms <= self.sidecar_deadline_ms:
            raise EnvoyConfigError(
                f"ext_authz_timeout_ms ({self.ext_authz_timeout_ms}) must exceed "
                f"sidecar_deadline_ms ({self.sidecar_deadline_ms}): otherwise Envoy gives up "
                "before the sidecar's explicit deadline decision arrives"
            )
        if self.rate_limit_per_s is not None and self.rate_limit_per_s < 1:
            raise EnvoyConfigError(f"rate_limit_per_s must be >= 1, got {self.rate_limit_per_s}")
        if sorted(self.tiers) != [1, 2, 3] or any(
            spec.tier != t for t, spec in self.tiers.items()
        ):
            raise EnvoyConfigError("tiers must map exactly 1, 2, 3 to their TierSpec")
        names = [self.tiers[t].cluster for t in (1, 2, 3)]
        if len(set(names)) != 3 or SIDECAR_CLUSTER in names:
            raise EnvoyConfigError(f"tiers cluster names must be distinct, got {names}")

    def tier_spec(self, tier: int) -> TierSpec:
        """The table entry for ``tier`` with ``rate_limit_per_s`` applied."""
        spec = self.tiers[tier]
        if self.rate_limit_per_s is not None and spec.rate_limit_per_s is not None:
            spec = dataclasses.replace(spec, rate_limit_per_s=self.rate_limit_per_s)
        return spec

    def upstream_clusters(self) -> dict[str, tuple[HostPort, ...]]:
        """Cluster name → endpoints for the tier pools and the mirror target(s)."""
        clusters = {
            self.tiers[1].cluster: self.tier1,
            self.tiers[2].cluster: self.tier2,
            self.tiers[3].cluster: self.tier3,
        }
        for spec in self.tiers.values():
            if spec.mirror_cluster is not None:
                clusters.setdefault(spec.mirror_cluster, self.ids)
        return clusters


def _check_port(name: str, port: int | None) -> None:
    if port is not None and not 1 <= port <= 65535:
        raise EnvoyConfigError(f"{name} port must be in 1..65535, got {port}")


def compose_defaults() -> RenderOptions:
    """The docker-compose deployment (docker/docker-compose.yml); ``envoy/bioshard.yaml``."""
    return RenderOptions(
        listen_host="0.0.0.0",
        http_port=10000,
        https_port=10443,
        cert_path="/etc/bioshard/certs/tls.crt",
        key_path="/etc/bioshard/certs/tls.key",
        admin_port=9901,
        sidecar=HostPort("sidecar", 9001),
        tier1=parse_endpoints("tier1:8080"),
        tier2=parse_endpoints("tier2:8080"),
        tier3=parse_endpoints("tier3:8080"),
        ids=parse_endpoints("ids:8080"),
    )


# --------------------------------------------------------------------------- builders


def _ms(ms: int) -> dt.timedelta:
    return dt.timedelta(milliseconds=ms)


def _percent_100(runtime_key: str) -> core.RuntimeFractionalPercent:
    return core.RuntimeFractionalPercent(
        default_value=type_v3.FractionalPercent(
            numerator=100, denominator=type_v3.FractionalPercentDenominatorType.HUNDRED
        ),
        runtime_key=runtime_key,
    )


def _set_header(name: str, value: str) -> core.HeaderValueOption:
    """Overwrite, never append: a client value could otherwise ride along."""
    return core.HeaderValueOption(
        header=core.HeaderValue(key=name, value=value),
        append_action=core.HeaderValueOptionHeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
    )


def _address(host: str, port: int) -> core.Address:
    return core.Address(socket_address=core.SocketAddress(address=host, port_value=port))


def _cluster(
    name: str, endpoints: Sequence[HostPort], *, http2: bool = False
) -> cluster_v3.Cluster:
    """Round-robin cluster: STATIC when every host is an IP literal, else STRICT_DNS."""
    static = all(ep.is_ip for ep in endpoints)
    cluster = cluster_v3.Cluster(
        name=name,
        type=(
            cluster_v3.ClusterDiscoveryType.STATIC
            if static
            else cluster_v3.ClusterDiscoveryType.STRICT_DNS
        ),
        connect_timeout=_ms(_CONNECT_TIMEOUT_MS),
        lb_policy=cluster_v3.ClusterLbPolicy.ROUND_ROBIN,
        load_assignment=endpoint_v3.ClusterLoadAssignment(
            cluster_name=name,
            endpoints=[
                endpoint_v3.LocalityLbEndpoints(
                    lb_endpoints=[
                        endpoint_v3.LbEndpoint(
                            endpoint=endpoint_v3.Endpoint(address=_address(ep.host, ep.port))
                        )
                        for ep in endpoints
                    ]
                )
            ],
        ),
    )
    if not static:
        cluster.dns_lookup_family = cluster_v3.ClusterDnsLookupFamily.V4_PREFERRED
    if http2:  # gRPC needs HTTP/2 to the sidecar
        options = upstream_http.HttpProtocolOptions(
            explicit_http_config=upstream_http.HttpProtocolOptionsExplicitHttpConfig(
                http2_protocol_options=core.Http2ProtocolOptions()
            )
        )
        cluster.typed_extension_protocol_options = {_HTTP_PROTOCOL_OPTIONS: pb.Any.pack(options)}
    return cluster


def _strip_routing_headers() -> list[mutation_rules.HeaderMutation]:
    return [mutation_rules.HeaderMutation(remove=name) for name in ROUTING_HEADERS]


def _rate_limit(spec: TierSpec) -> pb.Any:
    """Per-route local token bucket: ``rate`` requests/s with a burst of ``rate``, then 429."""
    assert spec.rate_limit_per_s is not None
    rate = spec.rate_limit_per_s
    return pb.Any.pack(
        local_ratelimit.LocalRateLimit(
            stat_prefix=f"bioshard_tier{spec.tier}",
            token_bucket=type_v3.TokenBucket(
                max_tokens=rate, tokens_per_fill=rate, fill_interval=dt.timedelta(seconds=1)
            ),
            filter_enabled=_percent_100("bioshard.rate_limit.enabled"),
            filter_enforced=_percent_100("bioshard.rate_limit.enforced"),
            enable_x_ratelimit_headers=ratelimit_common.XRateLimitHeadersRfcVersion.DRAFT_VERSION_03,
        )
    )


def _route(name: str, spec: TierSpec, *, tier_match: int | None) -> route_v3.Route:
    """The route of ``spec``; ``tier_match`` ``None`` makes the catch-all default route.

    Decided requests use ``cluster_header`` (the sidecar names the cluster from the tier
    table); the default route names the guarded cluster itself: there is no decision.
    """
    match = route_v3.RouteMatch(prefix="/")
    action = route_v3.RouteAction(timeout=_ms(_ROUTE_TIMEOUT_MS))
    if tier_match is None:
        action.cluster = spec.cluster
    else:
        match.headers = [
            route_v3.HeaderMatcher(
                name=HDR_TIER, string_match=matcher.StringMatcher(exact=str(tier_match))
            )
        ]
        action.cluster_header = HDR_CLUSTER
    if spec.mirror_cluster is not None:
        action.request_mirror_policies = [
            route_v3.RouteActionRequestMirrorPolicy(
                cluster=spec.mirror_cluster,
                runtime_fraction=_percent_100("bioshard.mirror.enabled"),
            )
        ]
    route = route_v3.Route(name=name, match=match, route=action)
    if spec.challenge:
        route.request_headers_to_add = [_set_header(HDR_CHALLENGE, CHALLENGE_REQUIRED)]
    if spec.rate_limit_per_s is not None:
        route.typed_per_filter_config = {LOCAL_RATELIMIT_FILTER: _rate_limit(spec)}
    return route


def _route_config(opts: RenderOptions) -> route_v3.RouteConfiguration:
    routes = [_route(f"tier{t}", opts.tier_spec(t), tier_match=t) for t in (1, 2, 3)]
    routes.append(_route("no_decision", opts.tier_spec(GUARDED_TIER), tier_match=None))
    return route_v3.RouteConfiguration(
        name="bioshard",
        virtual_hosts=[route_v3.VirtualHost(name="bioshard", domains=["*"], routes=routes)],
    )


def _access_log() -> accesslog.AccessLog:
    """JSON lines on stdout: decision facts only (no user id, no telemetry, no query string)."""
    fields = {
        "time": "%START_TIME%",
        "method": "%REQ(:METHOD)%",
        "path": "%REQ_WITHOUT_QUERY(:PATH):200%",
        "status": "%RESPONSE_CODE%",
        "flags": "%RESPONSE_FLAGS%",
        "details": "%RESPONSE_CODE_DETAILS%",
        "duration_ms": "%DURATION%",
        "upstream_cluster": "%UPSTREAM_CLUSTER%",
        **{
            key: f"%DYNAMIC_METADATA({EXT_AUTHZ_NAMESPACE}:{key})%"
            for key in ("tier", "score", "reason", "decision")
        },
        "failure_mode": f"%REQ({HDR_FAILURE_MODE})%",
        "request_id": "%REQ(X-REQUEST-ID)%",
    }
    log = stream_log.StdoutAccessLog(
        log_format=core.SubstitutionFormatString(
            json_format=pb.Struct.from_dict(fields),
            formatters=[  # provides %REQ_WITHOUT_QUERY%: query strings may carry secrets
                core.TypedExtensionConfig(
                    name="envoy.formatter.req_without_query",
                    typed_config=pb.Any.pack(req_without_query.ReqWithoutQuery()),
                )
            ],
        )
    )
    return accesslog.AccessLog(name="envoy.access_loggers.stdout", typed_config=pb.Any.pack(log))


def _http_filters(opts: RenderOptions) -> list[hcm.HttpFilter]:
    """ext_authz → local rate limit (configured per route) → router.

    The client's routing headers are already gone: :func:`_connection_manager` strips them
    before route selection, which an HTTP filter (e.g. ``header_mutation``) cannot do.
    """
    authz = ext_authz.ExtAuthz(
        grpc_service=core.GrpcService(
            envoy_grpc=core.GrpcServiceEnvoyGrpc(cluster_name=SIDECAR_CLUSTER),
            timeout=_ms(opts.ext_authz_timeout_ms),
        ),
        transport_api_version=core.ApiVersion.V3,
        failure_mode_allow=opts.failure_mode_allow,
        failure_mode_allow_header_add=opts.failure_mode_allow,
        clear_route_cache=True,
        metadata_context_namespaces=[JWT_AUTHN_NAMESPACE],
        include_peer_certificate=False,
    )
    limit = local_ratelimit.LocalRateLimit(stat_prefix="bioshard_rate_limit")
    return [
        hcm.HttpFilter(name=EXT_AUTHZ_NAMESPACE, typed_config=pb.Any.pack(authz)),
        hcm.HttpFilter(name=LOCAL_RATELIMIT_FILTER, typed_config=pb.Any.pack(limit)),
        hcm.HttpFilter(name=ROUTER_FILTER, typed_config=pb.Any.pack(router.Router())),
    ]


def _connection_manager(opts: RenderOptions, stat_prefix: str) -> hcm.HttpConnectionManager:
    """HCM shared by both listeners.

    Early header mutation strips :data:`ROUTING_HEADERS` before anything looks at the
    request.  An HTTP filter is too late: ext_authz (and header_mutation) resolve the route
    when they read their per-route config, the route is cached with the client's
    ``x-bioshard-tier: 1``, and when the sidecar is down (failure_mode_allow, no
    ``clear_route_cache``) that cached tier-1 route would be used.  Measured with Envoy 1.40.
    """
    early = early_mutation.HeaderMutation(mutations=_strip_routing_headers())
    return hcm.HttpConnectionManager(
        stat_prefix=stat_prefix,
        codec_type=hcm.HttpConnectionManagerCodecType.AUTO,
        early_header_mutation_extensions=[
            core.TypedExtensionConfig(name=EARLY_MUTATION_EXT, typed_config=pb.Any.pack(early))
        ],
        route_config=_route_config(opts),
        http_filters=_http_filters(opts),
        access_log=[_access_log()],
        use_remote_address=True,
        normalize_path=True,
        merge_slashes=True,
        common_http_protocol_options=core.HttpProtocolOptions(
            headers_with_underscores_action=(
                core.HttpProtocolOptionsHeadersWithUnderscoresAction.DROP_HEADER
            )
        ),
    )


def _hcm_filter(opts: RenderOptions, stat_prefix: str) -> listener_v3.Filter:
    return listener_v3.Filter(
        name=HCM_FILTER, typed_config=pb.Any.pack(_connection_manager(opts, stat_prefix))
    )


def _listeners(opts: RenderOptions) -> list[listener_v3.Listener]:
    listeners = [
        listener_v3.Listener(
            name="http",
            address=_address(opts.listen_host, opts.http_port),
            filter_chains=[listener_v3.FilterChain(filters=[_hcm_filter(opts, "http")])],
        )
    ]
    if opts.https_port is not None:
        assert opts.cert_path is not None and opts.key_path is not None
        tls_context = tls.DownstreamTlsContext(
            common_tls_context=tls.CommonTlsContext(
                tls_params=tls.TlsParameters(
                    tls_minimum_protocol_version=tls.TlsParametersTlsProtocol.TLSv1_3,
                    tls_maximum_protocol_version=tls.TlsParametersTlsProtocol.TLSv1_3,
                ),
                tls_certificates=[
                    tls.TlsCertificate(
                        certificate_chain=core.DataSource(filename=opts.cert_path),
                        private_key=core.DataSource(filename=opts.key_path),
                    )
                ],
                alpn_protocols=["h2", "http/1.1"],
            )
        )
        listeners.append(
            listener_v3.Listener(
                name="https",
                address=_address(opts.listen_host, opts.https_port),
                filter_chains=[
                    listener_v3.FilterChain(
                        filters=[_hcm_filter(opts, "https")],
                        transport_socket=core.TransportSocket(
                            name=TLS_TRANSPORT_SOCKET, typed_config=pb.Any.pack(tls_context)
                        ),
                    )
                ],
            )
        )
    return listeners


def build_bootstrap(opts: RenderOptions) -> bootstrap.Bootstrap:
    """The typed Envoy bootstrap for ``opts`` (see :func:`render` for the plain dict)."""
    clusters = [_cluster(SIDECAR_CLUSTER, [opts.sidecar], http2=True)]
    clusters += [_cluster(name, eps) for name, eps in opts.upstream_clusters().items()]
    # Edge hardening: a global cap on open client connections (Envoy warns without one).
    connection_cap = downstream_connections.DownstreamConnectionsConfig(
        max_active_downstream_connections=_MAX_DOWNSTREAM_CONNECTIONS
    )
    return bootstrap.Bootstrap(
        admin=bootstrap.Admin(address=_address(ADMIN_HOST, opts.admin_port)),
        static_resources=bootstrap.BootstrapStaticResources(
            listeners=_listeners(opts), clusters=clusters
        ),
        overload_manager=overload.OverloadManager(
            resource_monitors=[
                overload.ResourceMonitor(
                    name="envoy.resource_monitors.global_downstream_max_connections",
                    typed_config=pb.Any.pack(connection_cap),
                )
            ]
        ),
    )


def render(opts: RenderOptions) -> dict[str, Any]:
    """The Envoy bootstrap for ``opts`` as a plain dict (proto JSON, snake_case keys)."""
    rendered: dict[str, Any] = build_bootstrap(opts).to_dict(casing=betterproto2.Casing.SNAKE)
    return rendered


def to_yaml(config: Mapping[str, Any]) -> str:
    """YAML text of a rendered config (keys in proto field order)."""
    return yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=False, width=100)


def to_json(config: Mapping[str, Any]) -> str:
    """JSON text of a rendered config."""
    return json.dumps(config, indent=2) + "\n"


def validate(config: Path | str) -> None:
    """Run ``envoy --mode validate`` on a file (a ``Path`` or a path string) or on YAML/JSON text.

    Raises :class:`EnvoyConfigError` carrying Envoy's own message when Envoy rejects it.
    Validation mode checks the schema and builds listeners and clusters, but it neither
    resolves DNS names nor binds ports.
    """
    with tempfile.TemporaryDirectory(prefix="bioshard-envoy-") as tmp:
        if isinstance(config, Path):
            path = config
        elif "\n" not in config and Path(config).is_file():
            path = Path(config)
        else:
            path = Path(tmp) / "config.yaml"
            path.write_text(config)
        proc = subprocess.run(
            [envoy_binary(), "--mode", "validate", "-c", str(path), "--log-level", "error",
             "--disable-hot-restart"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    if proc.returncode != 0:
        message = "\n".join(
            line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()
        )
        if len(message) > _MAX_MESSAGE:  # Envoy may append the whole config as JSON
            message = message[:_MAX_MESSAGE] + " …"
        raise EnvoyConfigError(f"envoy rejected the config: {message}")


# --------------------------------------------------------------------------- CLI


def _endpoint_list(text: str) -> tuple[HostPort, ...]:
    try:
        return tuple(HostPort.parse(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _host_port(text: str) -> HostPort:
    try:
        return HostPort.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``bioshard envoy-config`` (render, optionally validate, print or write)."""
    d = RenderOptions()
    p = subparsers.add_parser(
        "envoy-config",
        help="render the Envoy configuration (optionally validate it with envoy)",
        description="Render bioshard's Envoy bootstrap config from the tier table.",
    )
    p.add_argument("--compose", action="store_true",
                   help="start from the docker-compose defaults (envoy/bioshard.yaml)")
    p.add_argument("--listen-host", help=f"listener address (default {d.listen_host})")
    p.add_argument("--http-port", type=int, help=f"plain HTTP listener port ({d.http_port})")
    p.add_argument("--https-port", type=int,
                   help="TLS 1.3 listener port (default: no TLS listener)")
    p.add_argument("--cert", help="PEM certificate chain for the TLS listener")
    p.add_argument("--key", help="PEM private key for the TLS listener")
    p.add_argument("--admin-port", type=int,
                   help=f"admin port, bound to {ADMIN_HOST} only ({d.admin_port})")
    p.add_argument("--sidecar", type=_host_port,
                   help=f"sidecar gRPC address host:port ({d.sidecar})")
    for name in ("tier1", "tier2", "tier3", "ids"):
        default = ",".join(str(ep) for ep in getattr(d, name))
        p.add_argument(f"--{name}", type=_endpoint_list,
                       help=f"{name} endpoints host:port[,host:port...] ({default})")
    p.add_argument("--ext-authz-timeout-ms", type=int,
                   help=f"Envoy's ext_authz timeout in ms ({d.ext_authz_timeout_ms})")
    p.add_argument("--sidecar-deadline-ms", type=int,
                   help=f"the sidecar's own deadline, checked to be below the timeout "
                        f"({d.sidecar_deadline_ms})")
    p.add_argument("--failure-mode-allow", action=argparse.BooleanOptionalAction, default=None,
                   help="when the sidecar does not answer, route to the guarded tier "
                        "(--no-failure-mode-allow: deny with 403)")
    p.add_argument("--rate-limit", type=int, dest="rate_limit_per_s",
                   help="requests/s on rate-limited tiers (default: the tier table's)")
    p.add_argument("--format", choices=("yaml", "json"), default="yaml",
                   help="output format (default yaml)")
    p.add_argument("--out", type=Path, help="write to this file instead of stdout")
    p.add_argument("--validate", action="store_true",
                   help="also run `envoy --mode validate` on the result")
    p.set_defaults(func=run_cli)


_CLI_FIELDS: Final = {
    "listen_host": "listen_host", "http_port": "http_port", "https_port": "https_port",
    "cert": "cert_path", "key": "key_path", "admin_port": "admin_port", "sidecar": "sidecar",
    "tier1": "tier1", "tier2": "tier2", "tier3": "tier3", "ids": "ids",
    "ext_authz_timeout_ms": "ext_authz_timeout_ms",
    "sidecar_deadline_ms": "sidecar_deadline_ms",
    "failure_mode_allow": "failure_mode_allow", "rate_limit_per_s": "rate_limit_per_s",
}


def options_from_args(args: argparse.Namespace) -> RenderOptions:
    """:class:`RenderOptions` from parsed CLI arguments (unset options keep the base's)."""
    base = compose_defaults() if args.compose else RenderOptions()
    changes = {
        field_name: getattr(args, arg)
        for arg, field_name in _CLI_FIELDS.items()
        if getattr(args, arg) is not None
    }
    return dataclasses.replace(base, **changes)


def run_cli(args: argparse.Namespace) -> int:
    """Handler of ``bioshard envoy-config``: 0 on success, 2 on invalid options/config."""
    try:
        opts = options_from_args(args)
        config = render(opts)
        text = to_json(config) if args.format == "json" else to_yaml(config)
        if args.validate:
            validate(text)
    except EnvoyConfigError as exc:
        print(f"envoy-config: {exc}", file=sys.stderr)
        return 2
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
    return 0
