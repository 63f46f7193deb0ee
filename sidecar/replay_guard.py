"""Detect telemetry captured once and sent again.

A window is *replayed*, not fresh, when

* its ``(sid, seq)`` was already seen (the collector increments ``seq`` for every value
  it attaches, so a repeat means a copy);
* its ``seq`` is far behind the newest seen for that session (beyond the reorder
  window, where individual seqs are no longer remembered);
* its ``ts`` is older than ``max_age_s`` or further in the future than the allowed skew;
* its session id was first seen for another user (a stolen window on another account);
  a session that began anonymously is adopted by the first user who signs in.

State is per sidecar and bounded: an LRU of sessions, each remembering its owner,
its highest ``seq`` and a 64-bit bitmap of the seqs just below it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum

REORDER_WINDOW = 64

#: The owner of windows sent before anyone signed in.
ANONYMOUS = "-anonymous-"


class ReplayKind(StrEnum):
    FRESH = "fresh"
    SEEN = "seen"
    STALE = "stale"
    FUTURE = "future"
    OTHER_USER = "other_user"


@dataclass(slots=True)
class _Session:
    owner: str
    max_seq: int
    bitmap: int  # bit i set ⇔ (max_seq - i) was seen


class ReplayGuard:
    def __init__(self, *, max_sessions: int, max_age_s: float, max_skew_s: float) -> None:
        self._max_sessions = max_sessions
        self._max_age_ms = int(max_age_s * 1000)
        self._max_skew_ms = int(max_skew_s * 1000)
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, *, sid: str, seq: int, ts_ms: int, owner: str, now_ms: int) -> ReplayKind:
        """Record the window and say whether it is fresh.  ``owner`` is the pseudonym
        (or a constant for anonymous traffic)."""
        if ts_ms < now_ms - self._max_age_ms:
            return ReplayKind.STALE
        if ts_ms > now_ms + self._max_skew_ms:
            return ReplayKind.FUTURE
        with self._lock:
            s = self._sessions.get(sid)
            if s is None:
                self._sessions[sid] = _Session(owner=owner, max_seq=seq, bitmap=1)
                if len(self._sessions) > self._max_sessions:
                    self._sessions.popitem(last=False)
                return ReplayKind.FRESH
            self._sessions.move_to_end(sid)
            if s.owner != owner:
                if s.owner != ANONYMOUS or owner == ANONYMOUS:
                    return ReplayKind.OTHER_USER
                # A session that began before sign-in (the page, its favicon) is adopted by
                # the first user who signs in; it can never move to a second user.
                s.owner = owner
            if seq > s.max_seq:
                shift = seq - s.max_seq
                s.bitmap = ((s.bitmap << shift) | 1) & ((1 << REORDER_WINDOW) - 1) \
                    if shift < REORDER_WINDOW else 1
                s.max_seq = seq
                return ReplayKind.FRESH
            back = s.max_seq - seq
            if back >= REORDER_WINDOW:
                return ReplayKind.SEEN
            bit = 1 << back
            if s.bitmap & bit:
                return ReplayKind.SEEN
            s.bitmap |= bit
            return ReplayKind.FRESH

    def forget_owner(self, owner: str) -> int:
        """Drop every session bound to ``owner`` (user deletion).  Returns how many."""
        with self._lock:
            sids = [sid for sid, s in self._sessions.items() if s.owner == owner]
            for sid in sids:
                del self._sessions[sid]
            return len(sids)

    def __len__(self) -> int:
        return len(self._sessions)
