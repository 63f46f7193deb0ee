"""Learning off the hot path, delayed so that feedback can still withdraw a window.

``Check`` only *submits* a window that scored as normal.  A background thread applies
it to the stored profile ``delay_s`` later, through the store's atomic ``update`` (so
several sidecars learning for the same user never lose each other's windows), and
then refreshes the local cache.  Until then, ``withdraw(decision_id)`` (an analyst's
"impostor" feedback) drops it: an attacker holding a session cannot teach the model
their behaviour faster than the security team can react.

With ``worker=True`` (the sidecar's default, setting ``learn_worker``) the arithmetic —
decode, learn, encode, about a millisecond per user — runs in a child process
(:mod:`sidecar.learn_worker`); this thread keeps the queue and the store's atomic
update, so a deletion or a concurrent writer is handled exactly as without it.

Recent decisions are also remembered (bounded) so that "genuine" feedback on a
window that was *not* learned (it scored anomalous) can still teach the model.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from sidecar.learn_worker import Job, Learned, LearnWorker, WorkerFailed, learn_bytes
from sidecar.profile_cache import ProfileCache, digest
from sidecar.scoring import PopulationModel, Profile, ScoringParams
from sidecar.store.base import ProfileStore, StoreUnavailable

log = logging.getLogger(__name__)

#: Users per round trip to the learning process.
WORKER_CHUNK: Final = 32
#: Due windows the learner thread takes off the queue at a time.
TAKE_LIMIT: Final = 8 * WORKER_CHUNK


@dataclass(order=True, slots=True)
class _Pending:
    due: float
    seq: int
    pseudonym: str = field(compare=False)
    window: str = field(compare=False)  # the v1 wire value, decoded where it is learned
    score: float = field(compare=False)
    decision_id: str = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class Remembered(NamedTuple):
    """A recent decision, for feedback.  A tuple of strings and numbers: the cyclic
    garbage collector stops scanning it, so 50,000 of them cost no GC pause (decoded
    windows, ~8 tracked objects each, made full collections take ~0.5 s)."""

    pseudonym: str
    window: str  # the v1 wire value (validated when the decision was made)
    score: float
    learned: bool


class Learner:
    def __init__(self, store: ProfileStore, cache: ProfileCache, params: ScoringParams, *,
                 delay_s: float, interval_s: float = 0.0,
                 population: PopulationModel | None = None,
                 max_pending: int = 100_000, remember: int = 50_000,
                 worker: bool = False) -> None:
        self._store = store
        self._population = population or PopulationModel.default()
        self._cache = cache
        self.params = params
        self._delay = delay_s
        self._interval = interval_s
        # pseudonym → when its last window was queued: at most one window per user per
        # interval is learned (consecutive requests carry overlapping snapshots of the
        # same sliding window; learning each would over-weight busy minutes and cost CPU).
        self._last_queued: OrderedDict[str, float] = OrderedDict()
        self._max_pending = max_pending
        self._heap: list[_Pending] = []
        self._by_decision: dict[str, _Pending] = {}
        self._recent: OrderedDict[str, Remembered] = OrderedDict()
        self._remember = remember
        self._cv = threading.Condition()
        self._seq = 0
        self._stopping = False
        # pseudonym → queue sequence number at deletion: windows queued before it are never
        # applied, even by a batch already in flight (no profile resurrected after a delete).
        self._deleted: OrderedDict[str, int] = OrderedDict()
        self._thread: threading.Thread | None = None
        # The arithmetic of learning in a child process (``worker``), so that it never
        # holds the serving process's GIL; without it, on the learner thread.
        self._worker = LearnWorker(self._population) if worker else None
        self.applied = 0
        self.dropped = 0
        self.withdrawn = 0
        self.failures = 0
        self.rate_limited = 0

    # -- hot path -------------------------------------------------------------------
    def remember(self, decision_id: str, pseudonym: str, window: str, score: float,
                 learnable: bool) -> bool:
        """Record a decision for feedback and, when ``learnable``, queue it for learning.
        Never blocks on I/O.  Returns False when the queue is full (the window is dropped
        and counted)."""
        with self._cv:
            self._recent[decision_id] = Remembered(pseudonym, window, score, learnable)
            if len(self._recent) > self._remember:
                self._recent.popitem(last=False)
            if not learnable:
                return True
            now = time.monotonic()
            if self._interval > 0:
                last = self._last_queued.get(pseudonym)
                if last is not None and now - last < self._interval:
                    self.rate_limited += 1
                    return True
                self._last_queued[pseudonym] = now
                self._last_queued.move_to_end(pseudonym)
                while len(self._last_queued) > self._remember:
                    self._last_queued.popitem(last=False)
            return self._enqueue(decision_id, pseudonym, window, score, self._delay)

    def _enqueue(self, decision_id: str, pseudonym: str, window: str, score: float,
                 delay: float) -> bool:
        if len(self._heap) >= self._max_pending:
            self.dropped += 1
            return False
        self._seq += 1
        p = _Pending(time.monotonic() + delay, self._seq, pseudonym, window, score, decision_id)
        heapq.heappush(self._heap, p)
        self._by_decision[decision_id] = p
        self._cv.notify()
        return True

    # -- feedback -------------------------------------------------------------------
    def withdraw(self, decision_id: str) -> bool:
        """Impostor feedback: the window must never be learned.  True if it was pending."""
        with self._cv:
            p = self._by_decision.pop(decision_id, None)
            if p is None or p.cancelled:
                return False
            p.cancelled = True
            self.withdrawn += 1
            return True

    def confirm(self, decision_id: str) -> bool:
        """Genuine feedback: learn the window now even if it scored anomalous.
        False when the decision is unknown (too old) or was already learned."""
        with self._cv:
            r = self._recent.get(decision_id)
            if r is None or r.learned or decision_id in self._by_decision:
                return False
            self._recent[decision_id] = Remembered(r.pseudonym, r.window, r.score, True)
            return self._enqueue(decision_id, r.pseudonym, r.window, r.score, 0.0)

    def lookup(self, decision_id: str) -> Remembered | None:
        with self._cv:
            return self._recent.get(decision_id)

    def forget_user(self, pseudonym: str) -> int:
        """Deletion: drop pending windows and remembered decisions of one user."""
        n = 0
        with self._cv:
            self._deleted[pseudonym] = self._seq
            self._deleted.move_to_end(pseudonym)
            while len(self._deleted) > self._remember:
                self._deleted.popitem(last=False)
            for p in self._heap:
                if p.pseudonym == pseudonym and not p.cancelled:
                    p.cancelled = True
                    n += 1
            for did in [d for d, r in self._recent.items() if r.pseudonym == pseudonym]:
                del self._recent[did]
                self._by_decision.pop(did, None)
        return n

    @property
    def pending(self) -> int:
        return sum(1 for p in self._heap if not p.cancelled)

    # -- background -----------------------------------------------------------------
    def start(self) -> None:
        if self._worker is not None:
            self._worker.start()
        self._thread = threading.Thread(target=self._run, name="bioshard-learner", daemon=True)
        self._thread.start()

    def stop(self, *, flush: bool = True) -> None:
        """Stop the thread.  With ``flush`` the windows still waiting are applied now
        (they scored normal; losing them would lose learning)."""
        with self._cv:
            self._stopping = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if flush:
            self.flush(all_pending=True)
        if self._worker is not None:
            self._worker.stop()

    @property
    def worker_restarts(self) -> int:
        """Learning processes started to replace one that died or hung."""
        return 0 if self._worker is None else self._worker.restarts

    @property
    def worker_pid(self) -> int | None:
        """The learning process's pid (None when learning runs on the thread)."""
        return None if self._worker is None else self._worker.pid

    def flush(self, *, all_pending: bool = False) -> int:
        """Apply due windows (all of them with ``all_pending``) now, on this thread."""
        batch = self._take(time.monotonic() if not all_pending else float("inf"))
        return self._apply(batch)

    def _take(self, now: float, limit: int | None = None) -> list[_Pending]:
        """Pop the windows due at ``now`` (at most ``limit`` of them)."""
        with self._cv:
            batch: list[_Pending] = []
            while self._heap and self._heap[0].due <= now and (
                    limit is None or len(batch) < limit):
                p = heapq.heappop(self._heap)
                if self._by_decision.get(p.decision_id) is p:
                    del self._by_decision[p.decision_id]
                if not p.cancelled:
                    batch.append(p)
            return batch

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stopping and (
                        not self._heap or self._heap[0].due > time.monotonic()):
                    timeout = self._heap[0].due - time.monotonic() if self._heap else None
                    self._cv.wait(timeout=timeout)
                if self._stopping:
                    return
            # A bounded batch: Check's remember() waits for this lock meanwhile, and a
            # backlog (a burst of traffic after a restart) is worked off in slices.
            self._apply(self._take(time.monotonic(), TAKE_LIMIT))

    def _apply(self, batch: list[_Pending]) -> int:
        by_user: dict[str, list[_Pending]] = {}
        for p in batch:
            by_user.setdefault(p.pseudonym, []).append(p)
        # With a worker process, compute every user's new profile there in one round
        # trip from the bytes stored now; the atomic update below uses that result when
        # the stored bytes are still the same, and recomputes here when they changed.
        # Chunks keep each pickled message, a single call that holds the GIL, short.
        users = list(by_user.items())
        applied = 0
        for i in range(0, len(users), WORKER_CHUNK):
            chunk = dict(users[i:i + WORKER_CHUNK])
            precomputed = self._precompute(chunk) if self._worker is not None else {}
            for pseudonym, items in chunk.items():
                applied += self._write(pseudonym, items, precomputed.get(pseudonym))
        self.applied += applied
        return applied

    def _live(self, pseudonym: str, items: list[_Pending]) -> list[_Pending]:
        """``items`` queued after the user's last deletion (all of them if never deleted)."""
        with self._cv:
            cut = self._deleted.get(pseudonym, -1)
        return [it for it in items if it.seq > cut]

    def _precompute(self, by_user: dict[str, list[_Pending]]
                    ) -> dict[str, tuple[bytes | None, Learned]]:
        assert self._worker is not None
        users: list[tuple[str, bytes | None]] = []
        jobs: list[Job] = []
        created_ms = int(time.time() * 1000)
        for pseudonym, items in by_user.items():
            try:
                old = self._store.get(pseudonym)
            except Exception:  # unavailable or undecryptable: _write meets it and says so
                continue
            users.append((pseudonym, old))
            jobs.append((old, created_ms, [(it.window, it.score) for it in items]))
        if not jobs:
            return {}
        try:
            results = self._worker.learn(jobs, self.params)
        except WorkerFailed as exc:
            log.warning("%s: learning %d profiles in the serving process", exc, len(jobs))
            return {}
        out: dict[str, tuple[bytes | None, Learned]] = {}
        for (pseudonym, old), res in zip(users, results, strict=True):
            if not isinstance(res, str):
                out[pseudonym] = (old, res)
            else:  # recomputed in _write, where a failure is counted and logged
                log.debug("learning process could not learn one profile: %s", res)
        return out

    def _write(self, pseudonym: str, items: list[_Pending],
               pre: tuple[bytes | None, Learned] | None) -> int:
        """Apply ``items`` to one user's stored profile through the atomic update."""
        built: list[tuple[Profile, int]] = []  # what the last attempt of fn applied

        def fn(old: bytes | None) -> bytes | None:
            live = self._live(pseudonym, items)
            built.clear()
            if not live:  # the user was deleted meanwhile: change nothing
                return old
            if pre is not None and len(live) == len(items) and pre[0] == old:
                new, profile = pre[1]
                built.append((profile, len(live)))
                return new
            params = self.params
            profile, new = learn_bytes(old, int(time.time() * 1000),
                                       [(it.window, it.score) for it in live], params,
                                       self._population)
            built.append((profile, len(live)))
            return new
        try:
            new = self._store.update(pseudonym, fn)
        except StoreUnavailable:
            self.failures += 1
            log.warning("learning postponed: store unavailable (%d windows)", len(items))
            with self._cv:  # put them back, retry later: learning is never silently lost
                for it in items:
                    self._enqueue(it.decision_id, it.pseudonym, it.window, it.score, 5.0)
            return 0
        except Exception:  # a corrupt profile or a bug: keep the thread alive, say so
            self.failures += 1
            log.exception("learning failed for one profile (%d windows)", len(items))
            return 0
        if built and new is not None:  # swap the learned object in: no read, no decode
            self._cache.put(pseudonym, built[0][0], digest(new))
        else:
            self._cache.invalidate(pseudonym)
        return built[0][1] if built else 0
