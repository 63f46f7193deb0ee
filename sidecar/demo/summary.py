"""The end-of-run summary: one value, rendered as text (:mod:`.table`) or JSON (``--json``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sidecar.demo.prom import Histogram
from sidecar.demo.tally import ENROLMENT, RowCounts, TallySnapshot


@dataclass(frozen=True, slots=True)
class Latency:
    """Quantiles in milliseconds over ``count`` observations (``None``: no data)."""

    p50_ms: float | None
    p99_ms: float | None
    count: int

    @classmethod
    def from_histogram(cls, h: Histogram) -> Latency:
        """Estimated from the sidecar's Check histogram (bucket interpolation)."""
        p50, p99 = h.quantile(0.5), h.quantile(0.99)
        return cls(None if p50 is None else p50 * 1e3, None if p99 is None else p99 * 1e3,
                   h.count)

    @classmethod
    def from_samples(cls, seconds: Sequence[float]) -> Latency:
        """Exact quantiles of client-side round-trip samples."""
        if not seconds:
            return cls(None, None, 0)
        a = np.asarray(seconds, dtype=float) * 1e3
        return cls(float(np.quantile(a, 0.5)), float(np.quantile(a, 0.99)), len(a))

    def to_json(self) -> dict[str, Any]:
        """Rounded to microseconds."""
        return {"p50_ms": None if self.p50_ms is None else round(self.p50_ms, 3),
                "p99_ms": None if self.p99_ms is None else round(self.p99_ms, 3),
                "count": self.count}


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """Everything the demo reports when it stops."""

    elapsed_s: float
    stopped_by: str
    traffic: bool
    tally: TallySnapshot
    decisions: Counter[tuple[str, int]]
    check_latency: Latency
    client_latency: Latency
    enrolled_users: int
    genuine_users: int
    enrol_windows: int
    learn_delay_s: float
    mixed_s: float
    skipped: int
    ids_mirrored: int | None
    workdir: str
    logs: Mapping[str, str]
    urls: Mapping[str, str]
    ports: Sequence[int]
    startup_s: float = 0.0
    stop_s: float = 0.0
    accounts: Mapping[str, str] = field(default_factory=dict)
    """Actor name → the account it presents (``"-"`` for none), for the per-actor rows."""

    def matrix(self) -> dict[str, RowCounts]:
        """Mixed-phase rows (kind → counts), without the enrolment row."""
        return {k: v for k, v in self.tally.rows.items() if k != ENROLMENT}

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document (stable keys; counts, percentages, milliseconds)."""
        t = self.tally
        return {
            "elapsed_s": round(self.elapsed_s, 2),
            "startup_s": round(self.startup_s, 2),
            "stop_s": round(self.stop_s, 2),
            "mixed_s": round(self.mixed_s, 2),
            "stopped_by": self.stopped_by,
            "traffic": self.traffic,
            "requests": t.requests,
            "mixed_rate_rps": round(sum(r.total for r in self.matrix().values())
                                    / self.mixed_s, 2) if self.mixed_s > 0 else 0.0,
            "skipped_arrivals": self.skipped,
            "confusion": {k: v.to_json() for k, v in self.matrix().items()},
            "by_action": {row: {a: c.to_json() for a, c in sorted(acts.items())}
                          for row, acts in t.actions.items() if acts},
            "enrolment": {"genuine_users": self.genuine_users,
                          "enrolled_users": self.enrolled_users,
                          "windows_per_user": self.enrol_windows,
                          "learn_delay_s": self.learn_delay_s,
                          "routed": t.rows[ENROLMENT].to_json()},
            "by_actor": {name: {"account": self.accounts.get(name, "?"), **c.to_json()}
                         for name, c in sorted(t.actors.items())},
            "reasons": {row: dict(c.most_common()) for row, c in t.reasons.items() if c},
            "reasons_unattributed": dict(t.unattributed.most_common()),
            "sidecar_decisions": {f"{r}/tier{tier}": n
                                  for (r, tier), n in sorted(self.decisions.items())},
            "check_latency_ms": self.check_latency.to_json(),
            "client_latency_ms": self.client_latency.to_json(),
            "ids_mirrored": self.ids_mirrored,
            "workdir": self.workdir,
            "logs": dict(self.logs),
            "urls": dict(self.urls),
            "ports": list(self.ports),
        }
