"""The cyclic garbage collector, tuned for a long-lived process that caches much.

CPython's full (generation-2) collection scans every tracked container object while
holding the GIL.  A sidecar caching 10,000 profiles holds a few hundred thousand such
objects (a profile is ~25: models, components, sketches, deques), and an automatic full
collection stalled every Check for 0.3–0.5 s: in the serving benchmark, Envoy's
250 ms ext_authz timeout fired for half a second of requests, several times a minute
while the cache filled.

bioshard's own data is acyclic: it is freed by reference counting when it is evicted or
replaced (measured: the full collections during a learning burst freed 0 objects).
So :class:`GcPolicy` keeps the young generations (0 and 1, which catch short-lived
cycles such as those of a finished RPC, in well under a millisecond) and turns off
the *automatic* full collection.  Objects alive at start-up (modules, the population
model) are frozen out of every collection.  ``full_interval_s > 0`` runs a full
collection on a timer instead, for deployments that prefer a predictable pause to
the (small) risk of keeping cyclic garbage that lived long enough to reach generation 2.

The policy also times every collection (``gc.callbacks``) so that ``/metrics`` shows
the longest pause and the time spent in full collections.
"""

from __future__ import annotations

import gc
import threading
import time
from typing import Any, Final

#: Generation-2 threshold that no run reaches: automatic full collections are off.
NEVER: Final = 1 << 30


class GcPauses:
    """Times every collection (``gc.callbacks``): count, total and longest pause."""

    def __init__(self) -> None:
        self.pause_max_s = 0.0
        self.pause_total_s = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]
        self._t0: float | None = None

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
            return
        if self._t0 is None:
            return
        pause = time.perf_counter() - self._t0
        self._t0 = None
        gen = int(info.get("generation", 0))
        self.collections[gen] += 1
        self.pause_total_s[gen] += pause
        self.pause_max_s = max(self.pause_max_s, pause)

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)

    def stop(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)


class GcPolicy:
    """Young collections only (plus optional timed full ones); pauses in ``pauses``."""

    def __init__(self, full_interval_s: float = 0.0) -> None:
        self.full_interval_s = full_interval_s
        self.pauses = GcPauses()
        self._saved: tuple[int, int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.pauses.start()
        g0, g1, g2 = gc.get_threshold()
        self._saved = (g0, g1, g2)
        gc.freeze()  # modules, settings, the population model: alive for the whole run
        gc.set_threshold(g0, g1, NEVER)
        if self.full_interval_s > 0:
            self._thread = threading.Thread(target=self._run, name="bioshard-gc", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.full_interval_s):
            gc.collect()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            gc.unfreeze()
            self._saved = None
        self.pauses.stop()
