"""A bounded, thread-safe LRU of decoded profiles with a time to live.

The hot path reads profiles from here; a miss goes to the store.  Entries expire
after ``ttl_s`` so that learning done by *other* sidecars sharing a Redis store
shows up here within that time.  ``None`` (no profile yet) is cached as well, so an
unknown user does not cost a store round trip per request.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from sidecar.scoring import Profile

_MISSING = object()


class ProfileCache:
    def __init__(self, *, max_entries: int, ttl_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._max = max_entries
        self._ttl = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Profile | None]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, pseudonym: str) -> tuple[bool, Profile | None]:
        """``(True, profile_or_None)`` on a fresh hit, ``(False, None)`` on a miss."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(pseudonym)
            if entry is None or entry[0] < now:
                if entry is not None:
                    del self._entries[pseudonym]
                self.misses += 1
                return False, None
            self._entries.move_to_end(pseudonym)
            self.hits += 1
            return True, entry[1]

    def put(self, pseudonym: str, profile: Profile | None) -> None:
        if self._max == 0:
            return
        with self._lock:
            self._entries[pseudonym] = (self._clock() + self._ttl, profile)
            self._entries.move_to_end(pseudonym)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def invalidate(self, pseudonym: str) -> None:
        with self._lock:
            self._entries.pop(pseudonym, None)

    def __len__(self) -> int:
        return len(self._entries)
