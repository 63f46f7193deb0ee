"""Where each kind of simulated traffic went: thread-safe counts and reasons.

Rows are the kinds of :mod:`sidecar.demo.actors` plus ``enrolment`` (genuine users'
first windows).  Each reply is counted by the tier of the pool that served it, or as
rate-limited (429), denied (Envoy answered 4xx itself) or an error.  Reasons come from
Envoy's access log, joined on the decision id the reply carried; a log line whose
decision no simulated request got back (a human on the page, a 429) is *unattributed*.
"""

from __future__ import annotations

import collections
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sidecar.demo.accesslog import LogEntry
from sidecar.demo.actors import KINDS
from sidecar.demo.client import Reply

ENROLMENT: Final = "enrolment"
ROWS: Final[tuple[str, ...]] = (*KINDS, ENROLMENT)
_MAX_PENDING: Final = 100_000     # decision ids waiting for their access-log line
_MAX_LATENCIES: Final = 50_000
_RATE_WINDOW_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class RowCounts:
    """Replies of one row: per tier (index 0 = tier 1), then the ones no pool served."""

    tiers: tuple[int, int, int] = (0, 0, 0)
    rate_limited: int = 0
    denied: int = 0
    errors: int = 0

    @property
    def other(self) -> int:
        """Replies that no tier pool served."""
        return self.rate_limited + self.denied + self.errors

    @property
    def total(self) -> int:
        """All replies of the row."""
        return sum(self.tiers) + self.other

    def share(self, tier: int) -> float:
        """Share (0–1) of the row's replies served by ``tier``'s pool (0 for an empty row)."""
        return self.tiers[tier - 1] / self.total if self.total else 0.0

    def add(self, reply: Reply) -> RowCounts:
        """These counts plus one reply."""
        if reply.tier is not None:
            t = list(self.tiers)
            t[reply.tier - 1] += 1
            return RowCounts((t[0], t[1], t[2]), self.rate_limited, self.denied, self.errors)
        if reply.status == 429:
            return RowCounts(self.tiers, self.rate_limited + 1, self.denied, self.errors)
        if 400 <= reply.status < 500:
            return RowCounts(self.tiers, self.rate_limited, self.denied + 1, self.errors)
        return RowCounts(self.tiers, self.rate_limited, self.denied, self.errors + 1)

    def to_json(self) -> dict[str, Any]:
        """Counts and row percentages, for ``--json``."""
        return {"tier1": self.tiers[0], "tier2": self.tiers[1], "tier3": self.tiers[2],
                "rate_limited": self.rate_limited, "denied": self.denied,
                "errors": self.errors, "total": self.total,
                "pct": {f"tier{t}": round(100.0 * self.share(t), 1) for t in (1, 2, 3)}}


@dataclass(frozen=True, slots=True)
class TallySnapshot:
    """A consistent copy of the counts at one moment."""

    rows: Mapping[str, RowCounts]
    actions: Mapping[str, Mapping[str, RowCounts]]
    actors: Mapping[str, RowCounts]
    reasons: Mapping[str, Counter[str]]
    unattributed: Counter[str]
    latencies_s: tuple[float, ...]
    requests: int
    rate_rps: float
    awaiting_log: int = field(default=0)


class Tally:
    """Counts replies per row and action; joins reasons from the access log."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, RowCounts] = {r: RowCounts() for r in ROWS}
        self._actions: dict[str, dict[str, RowCounts]] = {r: {} for r in ROWS}
        self._actors: dict[str, RowCounts] = {}
        self._reasons: dict[str, Counter[str]] = {r: Counter() for r in ROWS}
        self._unattributed: Counter[str] = Counter()
        self._pending: OrderedDict[str, str] = OrderedDict()   # decision → row
        self._orphans: OrderedDict[str, str] = OrderedDict()   # decision → reason
        self._latencies: collections.deque[float] = collections.deque(maxlen=_MAX_LATENCIES)
        self._done: collections.deque[float] = collections.deque()
        self._requests = 0

    def record(self, row: str, action: str, reply: Reply, actor: str | None = None) -> None:
        """Count one reply of ``row`` (``action`` labels what the request tried; ``actor``
        names who sent it, counted separately when given)."""
        now = time.monotonic()
        with self._lock:
            self._rows[row] = self._rows[row].add(reply)
            acts = self._actions[row]
            acts[action] = acts.get(action, RowCounts()).add(reply)
            if actor is not None:
                self._actors[actor] = self._actors.get(actor, RowCounts()).add(reply)
            self._requests += 1
            self._done.append(now)
            if row != ENROLMENT:
                self._latencies.append(reply.seconds)
            if reply.decision:
                reason = self._orphans.pop(reply.decision, None)
                if reason is not None:
                    self._reasons[row][reason] += 1
                else:
                    _bounded_put(self._pending, reply.decision, row, None)

    def attribute(self, entries: Iterable[LogEntry]) -> None:
        """Join access-log entries with the rows whose replies carried their decision."""
        with self._lock:
            for e in entries:
                row = self._pending.pop(e.decision, None)
                if row is not None:
                    self._reasons[row][e.reason] += 1
                else:
                    _bounded_put(self._orphans, e.decision, e.reason, self._unattributed)

    def snapshot(self) -> TallySnapshot:
        """Copy the counts; ``rate_rps`` is over the last few seconds."""
        now = time.monotonic()
        with self._lock:
            while self._done and self._done[0] < now - _RATE_WINDOW_S:
                self._done.popleft()
            recent = len(self._done)
            unattributed = Counter(self._unattributed)
            unattributed.update(self._orphans.values())
            return TallySnapshot(
                rows=dict(self._rows),
                actions={r: dict(a) for r, a in self._actions.items()},
                actors=dict(self._actors),
                reasons={r: Counter(c) for r, c in self._reasons.items()},
                unattributed=unattributed,
                latencies_s=tuple(self._latencies),
                requests=self._requests,
                rate_rps=recent / _RATE_WINDOW_S,
                awaiting_log=len(self._pending),
            )


def _bounded_put(d: OrderedDict[str, str], key: str, value: str,
                 overflow: Counter[str] | None) -> None:
    d[key] = value
    if len(d) > _MAX_PENDING:
        _, old = d.popitem(last=False)
        if overflow is not None:
            overflow[old] += 1
