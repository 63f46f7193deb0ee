"""Follow Envoy's JSON access log (its stdout, in the stack's ``envoy.log``).

Each line carries the sidecar's decision facts from ext_authz dynamic metadata —
``decision``, ``reason``, ``tier``, ``score`` — and never a user id or telemetry.  The
demo joins ``decision`` with the decision ids its simulated requests got back, to show
the reasons per kind of traffic.  Envoy flushes the file every few seconds (10 s by
default) and on exit, so lines arrive in bursts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

_MAX_READ: Final = 4 << 20  # bytes per poll: bounded work per refresh


@dataclass(frozen=True, slots=True)
class LogEntry:
    """The decision facts of one access-log line."""

    decision: str
    reason: str
    tier: int | None
    status: int | None


class AccessLogTail:
    """Reads complete new lines of ``path`` on each :meth:`read` (partial lines wait)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def read(self) -> list[LogEntry]:
        """The entries appended since the last call (non-JSON lines are skipped)."""
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                chunk = f.read(_MAX_READ)
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        out = []
        for line in lines:
            entry = parse_line(line)
            if entry is not None:
                out.append(entry)
        return out


def parse_line(line: bytes | str) -> LogEntry | None:
    """One access-log line → :class:`LogEntry`; ``None`` for other lines or no decision."""
    text = line.decode(errors="replace") if isinstance(line, bytes) else line
    text = text.strip()
    if not text.startswith("{"):
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    decision, reason = doc.get("decision"), doc.get("reason")
    if not isinstance(decision, str) or not decision or not isinstance(reason, str):
        return None
    tier, status = doc.get("tier"), doc.get("status")
    return LogEntry(decision, reason, tier if isinstance(tier, int) else None,
                    status if isinstance(status, int) else None)
