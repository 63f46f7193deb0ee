"""In-process counters and a latency histogram, rendered in Prometheus text format.

Labels are reason codes and tiers only: never a user, a pseudonym or a feature.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Callable

from sidecar.reasons import ALL_REASONS, Reason

# Check latency buckets in seconds (inside the sidecar, not including gRPC).
BUCKETS: tuple[float, ...] = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                              0.025, 0.05, 0.1, 0.25)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._decisions: Counter[tuple[str, int]] = Counter()
        self._bucket_counts = [0] * (len(BUCKETS) + 1)
        self._sum = 0.0
        self._count = 0
        self._gauges: dict[str, Callable[[], float]] = {}

    def observe(self, reason: Reason, tier: int, seconds: float) -> None:
        i = bisect.bisect_left(BUCKETS, seconds)
        with self._lock:
            self._decisions[(reason.value, tier)] += 1
            self._bucket_counts[i] += 1
            self._sum += seconds
            self._count += 1

    def gauge(self, name: str, fn: Callable[[], float]) -> None:
        """Register a value read at scrape time (queue lengths, cache sizes)."""
        self._gauges[name] = fn

    def decisions(self) -> dict[tuple[str, int], int]:
        with self._lock:
            return dict(self._decisions)

    def render(self) -> str:
        with self._lock:
            decisions = dict(self._decisions)
            buckets = list(self._bucket_counts)
            total, count = self._sum, self._count
        out = ["# HELP bioshard_decisions_total Decisions by reason code and tier.",
               "# TYPE bioshard_decisions_total counter"]
        for reason in ALL_REASONS:
            for tier in (1, 2, 3):
                n = decisions.get((reason, tier), 0)
                if n:
                    out.append(f'bioshard_decisions_total{{reason="{reason}",tier="{tier}"}} {n}')
        out += ["# HELP bioshard_check_seconds Time spent in the decision pipeline per Check.",
                "# TYPE bioshard_check_seconds histogram"]
        cum = 0
        for le, n in zip(BUCKETS, buckets, strict=False):
            cum += n
            out.append(f'bioshard_check_seconds_bucket{{le="{le}"}} {cum}')
        out.append(f'bioshard_check_seconds_bucket{{le="+Inf"}} {count}')
        out.append(f"bioshard_check_seconds_sum {total:.6f}")
        out.append(f"bioshard_check_seconds_count {count}")
        for name, fn in sorted(self._gauges.items()):
            try:
                value = float(fn())
            except Exception:
                continue
            out += [f"# TYPE {name} gauge", f"{name} {value}"]
        return "\n".join(out) + "\n"
