"""Envoy configurations of the serving benchmark: the upstream and the proxy per scenario.

* The **upstream** is a second Envoy whose only listener answers every request with a
  fixed ``direct_response`` (no I/O, no Python): fast, and the same in every scenario.
* The **proxy** is bioshard's real config (:func:`sidecar.envoy_config.render`) with
  every pool (tier 1, 2, 3 and the IDS mirror) pointed at that upstream, the guarded
  tier's rate limit lifted out of the way, and, for the baseline scenario, the
  ext_authz filter removed.  The access log is dropped by default (it costs the same in
  every scenario and only lowers the ceiling all of them share).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any, Final

from sidecar.envoy_config import HostPort, RenderOptions, render
from sidecar.tiers import EXT_AUTHZ_NAMESPACE

UPSTREAM_BODY: Final = '{"pool":"bench","ok":true}'
"""What the upstream answers (small JSON, like an API ping)."""
NO_RATE_LIMIT: Final = 1_000_000
"""Requests/s given to the guarded tier's token bucket: never reached by the benchmark."""

Config = dict[str, Any]


def upstream_config(port: int, admin_port: int) -> Config:
    """Bootstrap of the upstream Envoy: ``port`` answers 200 :data:`UPSTREAM_BODY` to all."""
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network."
                 "http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "upstream",
        "route_config": {
            "name": "upstream",
            "virtual_hosts": [{
                "name": "all",
                "domains": ["*"],
                "routes": [{
                    "match": {"prefix": "/"},
                    "direct_response": {"status": 200,
                                        "body": {"inline_string": UPSTREAM_BODY}},
                    "response_headers_to_add": [{
                        "header": {"key": "content-type", "value": "application/json"},
                        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                    }],
                }],
            }],
        },
        "http_filters": [{
            "name": "envoy.filters.http.router",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        }],
    }
    return {
        "admin": {"address": _socket("127.0.0.1", admin_port)},
        "static_resources": {"listeners": [{
            "name": "upstream",
            "address": _socket("127.0.0.1", port),
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": hcm,
            }]}],
        }]},
    }


def proxy_config(*, http_port: int, admin_port: int, upstream_port: int,
                 authz_port: int | None, access_log: bool = False) -> Config:
    """bioshard's Envoy config for one scenario.

    ``authz_port`` ``None`` removes the ext_authz filter (scenario 1: Envoy straight to the
    upstream); otherwise the ``bioshard_sidecar`` cluster points at that port (the no-op
    server or bioshard).  Every pool is ``127.0.0.1:upstream_port``.
    """
    up = (HostPort("127.0.0.1", upstream_port),)
    opts = RenderOptions(
        listen_host="127.0.0.1", http_port=http_port, admin_port=admin_port,
        sidecar=HostPort("127.0.0.1", authz_port or upstream_port),
        tier1=up, tier2=up, tier3=up, ids=up, rate_limit_per_s=NO_RATE_LIMIT,
    )
    config = copy.deepcopy(render(opts))
    for hcm in _connection_managers(config):
        if authz_port is None:
            hcm["http_filters"] = [f for f in hcm["http_filters"]
                                   if f["name"] != EXT_AUTHZ_NAMESPACE]
        if not access_log:
            hcm.pop("access_log", None)
    return config


def has_ext_authz(config: Config) -> bool:
    """Whether any listener of ``config`` runs the ext_authz filter."""
    return any(f["name"] == EXT_AUTHZ_NAMESPACE
               for hcm in _connection_managers(config) for f in hcm["http_filters"])


def _connection_managers(config: Config) -> Iterator[dict[str, Any]]:
    for listener in config["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for flt in chain["filters"]:
                if flt["name"] == "envoy.filters.network.http_connection_manager":
                    hcm: dict[str, Any] = flt["typed_config"]
                    yield hcm


def _socket(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}
