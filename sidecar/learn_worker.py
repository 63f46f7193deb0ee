"""The arithmetic of learning, in a separate process.

Learning a window means decoding the stored profile, updating its models and encoding
it again: about a millisecond of pure-Python and numpy work.  Done on a thread of the
serving process it holds the GIL that the gRPC threads need, which stalls Checks by
milliseconds at a time.  :class:`LearnWorker` runs that arithmetic in a child process
instead; the serving process keeps everything that must stay there — the queue, the
feedback, the deletion cut, and the store's atomic update — and only ships
``(old profile bytes, windows)`` over a socket pair and gets back the new bytes and the
learned profile object (with its whitening built, see :func:`warm`).

The child sees plaintext profiles (it runs under the same user, from the same
package, and never writes anything); keys, pseudonyms and the store stay in the parent.
A child that dies or hangs is replaced, and the batch is computed in the parent, so
learning is never lost to a worker failure.  Its niceness is 10: when the cores are
busy, serving comes first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Final

from sidecar.scoring import PopulationModel, Profile, ScoringParams, learn_window, score_window
from sidecar.telemetry import decode

log = logging.getLogger(__name__)

#: One user's learning job: the stored profile bytes (``None``: no profile yet), when a
#: new profile would be created (ms), and the windows (v1 wire values, validated when
#: they were scored) with the scores they were given.
Job = tuple[bytes | None, int, Sequence[tuple[str, float]]]

#: A job's result: the new profile bytes (for the store) and the same profile as an
#: object, which the parent caches as it is (unpickling is ~2x cheaper than decoding
#: the bytes, and the next Check need not read the store).
Learned = tuple[bytes, Profile]

#: Learning is background work: the child yields the CPU to the serving process (and to
#: Envoy) when the cores are busy, e.g. during a burst of learning after a restart.
CHILD_NICENESS: Final = 10

#: After a failure the child is started again at the next batch after this long;
#: meanwhile the learner thread computes (a child that cannot start never loops).
RESTART_BACKOFF_S: Final = 10.0

#: How long a batch may take in the child before it is presumed hung and replaced.
BATCH_TIMEOUT_S: Final = 30.0


def learn_bytes(old: bytes | None, created_ms: int, items: Sequence[tuple[str, float]],
                params: ScoringParams, population: PopulationModel) -> tuple[Profile, bytes]:
    """Apply ``items`` (wire values and scores) to the profile encoded in ``old``: the
    new profile and its bytes."""
    profile = (Profile.from_bytes(old, params) if old is not None
               else Profile(params=params, created_ms=created_ms))
    for value, score in items:
        learn_window(profile, decode(value), score, params, population=population)
    return profile, profile.to_bytes()


def warm(profile: Profile, values: Sequence[str], params: ScoringParams,
         population: PopulationModel) -> None:
    """Build, here, the whitening the serving process will need to score the user next.

    A learned model has no cached whitening, and building it (a Cholesky per component
    and feature mask, ~0.1 ms) on the serving process's first Check after each learn
    was its largest cost after a burst of learning.  Scoring the learned windows builds
    it for their feature masks; the caches tied to this process's population object
    (plans, plan blocks) are dropped, the population-free whitening stacks travel with
    the pickled profile.
    """
    for value in values:
        with contextlib.suppress(ValueError):  # an empty window scores nothing
            score_window(profile, decode(value), population, params)
    profile.plans.clear()
    for model in profile.models.values():
        model.plan_blocks.clear()


def _child(conn: Connection, population: PopulationModel) -> None:  # pragma: no cover - child
    """The child's loop: ``(params, jobs)`` in, a list of results (or errors) out."""
    with contextlib.suppress(OSError):  # background work: the serving process comes first
        os.nice(CHILD_NICENESS)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        params, jobs = msg
        out: list[Learned | str] = []
        for old, created_ms, items in jobs:
            try:
                profile, new = learn_bytes(old, created_ms, items, params, population)
                warm(profile, [value for value, _ in items], params, population)
                out.append((new, profile))
            except Exception as exc:  # reported per job; the parent logs it
                out.append(f"{type(exc).__name__}: {exc}")
        conn.send(out)


class LearnWorker:
    """A child process that turns ``(old bytes, windows)`` into a new profile.

    The child is ``python -m sidecar.learn_worker FD``, a fresh interpreter on one end of
    a socket pair: nothing of the serving process is inherited (no gRPC threads, no
    keys, no ``__main__`` re-run as ``multiprocessing`` would do).

    :meth:`learn` is called by one thread at a time (the learner's).  Returns one entry
    per job: :data:`Learned`, or an error message string for a job that failed (a
    corrupt profile, say).  Raises :class:`WorkerFailed` when the child died, hung or
    cannot start; it is replaced at the next call, at most once per
    :data:`RESTART_BACKOFF_S`.
    """

    def __init__(self, population: PopulationModel) -> None:
        self._population = population
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._retry_at = 0.0
        self._failed = False
        self.restart_backoff_s = RESTART_BACKOFF_S
        self.restarts = 0
        """Children started to replace one that failed."""

    def start(self) -> None:
        with self._lock:
            self._spawn()

    def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        with ours, theirs:
            fd = theirs.fileno()
            proc = subprocess.Popen(
                [sys.executable, "-m", "sidecar.learn_worker", str(fd)],
                pass_fds=(fd,), stdin=subprocess.DEVNULL, close_fds=True)
            conn = Connection(os.dup(ours.fileno()))
        try:
            conn.send(self._population)
        except OSError:
            proc.kill()
            proc.wait()
            conn.close()
            raise
        self._conn, self._proc = conn, proc

    def _kill(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(timeout=5)
        self._conn = self._proc = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def learn(self, jobs: Sequence[Job], params: ScoringParams, *,
              timeout_s: float = BATCH_TIMEOUT_S) -> list[Learned | str]:
        with self._lock:
            try:
                if self._conn is None:
                    if time.monotonic() < self._retry_at:
                        raise WorkerFailed("learning process unavailable (restarting later)")
                    self._spawn()
                    self.restarts += self._failed
                    self._failed = False
                assert self._conn is not None
                self._conn.send((params, list(jobs)))
                if not self._conn.poll(timeout_s):
                    raise TimeoutError(f"no answer in {timeout_s:.0f} s")
                out: list[Learned | str] = self._conn.recv()
                if len(out) != len(jobs):
                    raise TimeoutError("answer out of step")
            except (EOFError, OSError, TimeoutError) as exc:
                self._kill()
                self._failed = True
                self._retry_at = time.monotonic() + self.restart_backoff_s
                raise WorkerFailed(f"learning process failed ({exc})") from None
            return out

    def stop(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(OSError):
                    self._conn.send(None)
            if self._proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=5)
            self._kill()


class WorkerFailed(RuntimeError):
    """The learning process died or hung (it has been replaced)."""


def main(argv: Sequence[str] | None = None) -> int:  # pragma: no cover - the child
    """``python -m sidecar.learn_worker FD``: serve the parent on socket ``FD``."""
    args = sys.argv[1:] if argv is None else argv
    conn = Connection(int(args[0]))
    try:
        population = conn.recv()
    except (EOFError, OSError):
        return 0
    _child(conn, population)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
