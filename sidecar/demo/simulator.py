"""The traffic simulator: enrolment, then mixed traffic, on a bounded set of threads.

One driver thread runs the phases; a fixed pool of worker threads sends the requests
(real HTTP through Envoy, :mod:`sidecar.demo.client`) and counts the replies
(:mod:`sidecar.demo.tally`):

1. ``enrolment`` — every genuine user sends ``enrol_windows`` windows of their own
   behaviour, users in parallel, as fast as the workers go;
2. ``learning`` — waits until the sidecar has learned them (its learner queue is empty
   once the learn delay has passed);
3. ``mixed`` — Poisson arrivals at ``rate_rps`` overall; each picks a kind by its share
   (:func:`~sidecar.demo.actors.kind_weights`) and an actor of that kind.  When every
   worker is busy the arrival is skipped (counted), never queued without bound.

An actor's requests are sent one at a time (its lock), so its ``seq`` grows in order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from sidecar.demo.actors import KINDS, Actor, Cast, kind_weights
from sidecar.demo.client import EnvoyClient, Reply
from sidecar.demo.tally import ENROLMENT, Tally

log = logging.getLogger(__name__)

Phase = Literal["idle", "enrolment", "learning", "mixed", "stopped"]

_LEARN_TIMEOUT_S: Final = 30.0
_LEARN_POLL_S: Final = 0.1
_MAX_LAG_S: Final = 1.0   # behind schedule by more than this: restart the clock, no burst


@dataclass(frozen=True, slots=True)
class TrafficPlan:
    """How much traffic: overall mixed-phase rate, enrolment windows per genuine user,
    worker threads (also the bound on requests in flight)."""

    rate_rps: float = 20.0
    enrol_windows: int = 30
    workers: int = 8

    def __post_init__(self) -> None:
        if not self.rate_rps > 0:
            raise ValueError("rate_rps must be > 0")
        if self.enrol_windows < 0:
            raise ValueError("enrol_windows must be >= 0")
        if self.workers < 1:
            raise ValueError("workers must be >= 1")


class Simulator:
    """Drives :class:`Cast` through the phases; :meth:`start` returns at once."""

    def __init__(self, cast: Cast, client: EnvoyClient, tally: Tally, plan: TrafficPlan, *,
                 seed: int, learner_idle: Callable[[], bool], learn_delay_s: float) -> None:
        self.cast = cast
        self.client = client
        self.tally = tally
        self.plan = plan
        self.phase: Phase = "idle"
        self.skipped = 0
        self.phase_started: dict[str, float] = {}
        self.learned_in_time: bool | None = None
        self._rng = np.random.default_rng([seed, 99])
        self._learner_idle = learner_idle
        self._learn_delay_s = learn_delay_s
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=plan.workers,
                                        thread_name_prefix="demo-traffic")
        self._slots = threading.BoundedSemaphore(plan.workers)
        self._driver = threading.Thread(target=self._drive, name="demo-driver", daemon=True)

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        """Start the driver thread."""
        self._driver.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop sending, wait for requests in flight, close the connections."""
        self._stop.set()
        if self._driver.is_alive():
            self._driver.join(timeout=timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.client.close()
        self._set_phase("stopped")

    def _set_phase(self, phase: Phase) -> None:
        self.phase = phase
        self.phase_started.setdefault(phase, time.monotonic())

    # -- phases -----------------------------------------------------------------------
    def _drive(self) -> None:
        try:
            if self.cast.genuine and self.plan.enrol_windows > 0:
                self._enrol()
                self._wait_learned()
            if not self._stop.is_set():
                self._mixed()
        except Exception:  # a demo bug must not leave the stack running unnoticed
            log.exception("traffic simulator failed")

    def _enrol(self) -> None:
        self._set_phase("enrolment")
        futures = [self._pool.submit(self._enrol_user, a) for a in self.cast.genuine]
        for f in futures:
            f.result()

    def _enrol_user(self, actor: Actor) -> None:
        for _ in range(self.plan.enrol_windows):
            if self._stop.is_set():
                return
            with actor.lock:
                planned = actor.enrolment_request()
                reply = self._get(actor, planned.path, planned.headers)
            self.tally.record(ENROLMENT, planned.action, reply)

    def _wait_learned(self) -> None:
        self._set_phase("learning")
        if self._stop.wait(self._learn_delay_s):
            return
        deadline = time.monotonic() + _LEARN_TIMEOUT_S
        while not self._stop.is_set():
            if self._learner_idle():
                self.learned_in_time = True
                return
            if time.monotonic() > deadline:
                self.learned_in_time = False
                log.warning("the sidecar's learner did not catch up in %.0f s", _LEARN_TIMEOUT_S)
                return
            self._stop.wait(_LEARN_POLL_S)

    def _mixed(self) -> None:
        self._set_phase("mixed")
        weights = kind_weights(self.cast)
        kinds = [k for k in KINDS if weights[k] > 0]
        if not kinds:
            return
        p = np.array([weights[k] for k in kinds])
        due = time.monotonic()
        while not self._stop.is_set():
            due += float(self._rng.exponential(1.0 / self.plan.rate_rps))
            lag = due - time.monotonic()
            if lag > 0:
                if self._stop.wait(lag):
                    return
            elif lag < -_MAX_LAG_S:
                due = time.monotonic()
            actors = self.cast.of(kinds[int(self._rng.choice(len(kinds), p=p))])
            actor = actors[int(self._rng.integers(len(actors)))]
            if not self._slots.acquire(blocking=False):
                self.skipped += 1
                continue
            try:
                self._pool.submit(self._send, actor)
            except RuntimeError:  # the pool is shutting down
                self._slots.release()
                return

    def _send(self, actor: Actor) -> None:
        try:
            with actor.lock:
                planned = actor.next_request()
                reply = self._get(actor, planned.path, planned.headers)
            self.tally.record(actor.kind, planned.action, reply, actor.name)
        finally:
            self._slots.release()

    def _get(self, actor: Actor, path: str, headers: dict[str, str]) -> Reply:
        try:
            return self.client.get(path, headers, tls=actor.tls)
        except Exception:
            log.debug("request failed", exc_info=True)
            return Reply(0, None, None, 0.0)
