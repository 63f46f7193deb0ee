"""Read the sidecar's ``/metrics`` (Prometheus text): decisions and the Check histogram.

Only what :mod:`sidecar.metrics` renders: ``bioshard_decisions_total{reason,tier}`` and
the ``bioshard_check_seconds`` histogram (time inside the decision pipeline per Check,
not including gRPC or Envoy).  Quantiles are estimated like PromQL's
``histogram_quantile``: linear interpolation inside the bucket that holds the rank.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Final

_DECISION: Final = re.compile(
    r'^bioshard_decisions_total\{reason="([a-z_]+)",tier="(\d)"\} (\d+)$', re.M)
_BUCKET: Final = re.compile(r'^bioshard_check_seconds_bucket\{le="([^"]+)"\} (\d+)$', re.M)


@dataclass(frozen=True, slots=True)
class Histogram:
    """Cumulative buckets: ``bounds`` (n,) upper bounds in seconds, ascending, last ``inf``;
    ``counts`` (n,) observations at or below each bound."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]

    @property
    def count(self) -> int:
        """Number of observations."""
        return self.counts[-1] if self.counts else 0

    def quantile(self, q: float) -> float | None:
        """Estimated ``q``-quantile in seconds; ``None`` without observations.

        A rank in the ``+Inf`` bucket gives the largest finite bound (a lower bound).
        """
        if not 0.0 <= q <= 1.0:
            raise ValueError("q must be in [0, 1]")
        total = self.count
        if total == 0:
            return None
        rank = q * total
        prev_bound, prev_count = 0.0, 0
        for bound, cum in zip(self.bounds, self.counts, strict=True):
            if cum >= rank and cum > prev_count:
                if math.isinf(bound):
                    return prev_bound
                return prev_bound + (bound - prev_bound) * (rank - prev_count) / (cum - prev_count)
            if not math.isinf(bound):
                prev_bound = bound
            prev_count = cum
        return prev_bound


def parse_decisions(text: str) -> Counter[tuple[str, int]]:
    """``(reason, tier) → count`` of ``bioshard_decisions_total``."""
    return Counter({(r, int(t)): int(n) for r, t, n in _DECISION.findall(text)})


def parse_check_histogram(text: str) -> Histogram:
    """The ``bioshard_check_seconds`` buckets (empty if absent)."""
    pairs = sorted((math.inf if le == "+Inf" else float(le), int(n))
                   for le, n in _BUCKET.findall(text))
    return Histogram(tuple(b for b, _ in pairs), tuple(n for _, n in pairs))
