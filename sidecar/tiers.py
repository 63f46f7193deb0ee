"""The one table that maps a tier to what Envoy does with the request.

The sidecar uses it to pick the ``x-bioshard-cluster`` value of a decision; the Envoy
config renderer (:mod:`sidecar.envoy_config`) uses it to build the routes (challenge
header, local rate limit, mirror to the IDS).  Both read this module so the two can
never disagree about a cluster name or a header name.

Header names are lower case: Envoy matches them case-insensitively and HTTP/2 requires
lower case on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

HDR_CLUSTER: Final = "x-bioshard-cluster"
"""Envoy cluster chosen by the sidecar; the routes use it as ``cluster_header``."""
HDR_TIER: Final = "x-bioshard-tier"
"""``1``, ``2`` or ``3``; the routes match on it."""
HDR_SCORE: Final = "x-bioshard-score"
"""Anomaly score in [0, 1], three decimals."""
HDR_DECISION: Final = "x-bioshard-decision"
"""Decision id (the request's ``x-request-id`` when present)."""
HDR_CHALLENGE: Final = "x-bioshard-challenge"
"""Added by Envoy (never by clients) on the guarded tier: the upstream must challenge."""
HDR_TELEMETRY: Final = "x-bioshard-telemetry"
"""Telemetry wire format v1 sent by the collector; removed before the request goes upstream."""
COOKIE_TELEMETRY: Final = "__bsh"
"""The same telemetry value carried as a cookie on plain navigations."""
HDR_FAILURE_MODE: Final = "x-envoy-auth-failure-mode-allowed"
"""Set by Envoy's ext_authz when it let a request through because the sidecar did not answer."""

CHALLENGE_REQUIRED: Final = "required"
"""Value of :data:`HDR_CHALLENGE` on the guarded tier."""

ROUTING_HEADERS: Final[tuple[str, ...]] = (
    HDR_CLUSTER,
    HDR_TIER,
    HDR_SCORE,
    HDR_DECISION,
    HDR_CHALLENGE,
    HDR_FAILURE_MODE,
)
"""Headers only Envoy or the sidecar may set: Envoy strips them from every client request
before ext_authz and before routing, otherwise a client could pick its own pool."""

EXT_AUTHZ_NAMESPACE: Final = "envoy.filters.http.ext_authz"
"""Dynamic-metadata namespace of the ext_authz filter (also its filter name in the config)."""
JWT_AUTHN_NAMESPACE: Final = "envoy.filters.http.jwt_authn"
"""ext_authz forwards this filter's dynamic metadata (the verified JWT payload) to the sidecar,
which reads the identity from it."""

SIDECAR_DEADLINE_MS: Final = 150
"""The sidecar's own deadline per Check (default), below Envoy's ext_authz timeout."""
EXT_AUTHZ_TIMEOUT_MS: Final = 250
"""Envoy's ext_authz timeout (default); the sidecar answers before it expires."""


@dataclass(frozen=True, slots=True)
class TierSpec:
    """What Envoy does with a request the sidecar put in ``tier``.

    ``cluster`` is the Envoy cluster (upstream pool); ``challenge`` adds
    ``x-bioshard-challenge: required`` to the upstream request; ``rate_limit_per_s`` is a
    local token bucket (requests per second, burst of the same size) on the tier's route,
    ``None`` for none; ``mirror_cluster`` receives a copy of every request (fire and forget).
    """

    tier: int
    cluster: str
    challenge: bool = False
    rate_limit_per_s: int | None = None
    mirror_cluster: str | None = None

    def __post_init__(self) -> None:
        if self.tier not in (1, 2, 3):
            raise ValueError(f"TierSpec.tier must be 1, 2 or 3, got {self.tier}")
        if not self.cluster:
            raise ValueError("TierSpec.cluster must not be empty")
        if self.rate_limit_per_s is not None and self.rate_limit_per_s < 1:
            raise ValueError("TierSpec.rate_limit_per_s must be >= 1 or None")


GUARDED_TIER: Final = 2
"""The tier Envoy falls back to when the sidecar gives no decision (see docs/envoy.md)."""

DEFAULT_TIERS: Final[Mapping[int, TierSpec]] = MappingProxyType({
    1: TierSpec(1, "tier1"),
    2: TierSpec(2, "tier2", challenge=True, rate_limit_per_s=50),
    3: TierSpec(3, "tier3", mirror_cluster="ids"),
})
"""1 fast pool; 2 guarded pool (challenge + rate limit); 3 sandbox mirrored to the IDS."""


def cluster_for(tier: int, tiers: Mapping[int, TierSpec] = DEFAULT_TIERS) -> str:
    """Envoy cluster name for ``tier`` (``KeyError`` for a tier not in the table)."""
    return tiers[tier].cluster
