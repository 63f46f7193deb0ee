"""Learning in a child process: same result as on the thread, and nothing lost on failure."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from test_pipeline import make_pipeline

from sidecar.features import MODALITIES
from sidecar.learn_worker import Job
from sidecar.pipeline import AuthInput, Pipeline
from sidecar.scoring import (
    Persona,
    Profile,
    ScoringParams,
    score_window,
    synthetic_sid,
    synthetic_window,
)
from sidecar.telemetry import decode, encode_deflate


def windows(seed: int, n: int) -> list[str]:
    persona, rng = Persona.human(seed), np.random.default_rng(seed)
    sid = synthetic_sid(rng)
    return [encode_deflate(synthetic_window(persona, rng, sid=sid, seq=i + 1,
                                            ts_ms=int(time.time() * 1000)))
            for i in range(n)]


def feed(p: Pipeline, user: str, values: Sequence[str]) -> None:
    for v in values:
        p.check(AuthInput(user_id=user, telemetry=v, telemetry_source="header"))
        p.learner.flush()


def stored(p: Pipeline, user: str) -> Profile:
    raw = p.store.get(p.pseudonym(user))
    assert raw is not None
    return Profile.from_bytes(raw, p.settings.scoring)


def counts(profile: Profile) -> dict[str, int]:
    return {m: profile.windows_learned(m) for m in MODALITIES}


def learned_on_thread(tmp_path: Path, user: str, values: Sequence[str]) -> dict[str, int]:
    """Per-modality window counts when the same windows are learned without a worker."""
    p = make_pipeline(tmp_path / "oracle", BIOSHARD_LEARN_WORKER="false")
    try:
        feed(p, user, values)
        return counts(stored(p, user))
    finally:
        p.close()


def test_worker_learns_what_the_thread_learns(tmp_path: Path) -> None:
    """The child process and the learner thread produce the same model from the same windows."""
    values = windows(1, 12)
    with_worker = make_pipeline(tmp_path / "a", BIOSHARD_LEARN_WORKER="true")
    on_thread = make_pipeline(tmp_path / "b", BIOSHARD_LEARN_WORKER="false")
    try:
        assert with_worker.learner.worker_pid is None  # started on the first batch
        feed(with_worker, "amy", values)
        feed(on_thread, "amy", values)
        assert with_worker.learner.worker_pid not in (None, os.getpid())
        assert on_thread.learner.worker_pid is None
        a, b = stored(with_worker, "amy"), stored(on_thread, "amy")
        assert a.windows_learned("keys") == b.windows_learned("keys") > 5
        a.created_ms = a.updated_ms = b.created_ms = b.updated_ms = 0
        assert a == b
        assert with_worker.learner.applied == on_thread.learner.applied == 12
        # The learned object came back from the child and is served from the cache as is.
        hit, cached = with_worker.cache.get(with_worker.pseudonym("amy"))
        assert hit and cached is not None
        assert cached == stored(with_worker, "amy") and not cached.plans
    finally:
        with_worker.close()
        on_thread.close()


def test_learning_arithmetic_runs_in_the_child(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """With the parent's own learning code broken, the worker still learns (it is elsewhere)."""
    import sidecar.learner

    def broken(*args: object, **kwargs: object) -> None:
        raise AssertionError("learned in the serving process")

    expected = learned_on_thread(tmp_path, "bo", windows(2, 3))
    monkeypatch.setattr(sidecar.learner, "learn_bytes", broken)
    p = make_pipeline(tmp_path, BIOSHARD_LEARN_WORKER="true")
    try:
        feed(p, "bo", windows(2, 3))
        assert p.learner.applied == 3 and p.learner.failures == 0
        assert counts(stored(p, "bo")) == expected
    finally:
        p.close()


def test_killed_worker_is_replaced_and_nothing_is_lost(tmp_path: Path) -> None:
    p = make_pipeline(tmp_path, BIOSHARD_LEARN_WORKER="true")
    try:
        values = windows(3, 4)
        feed(p, "cy", values[:2])
        pid = p.learner.worker_pid
        assert pid is not None
        assert p.learner._worker is not None
        p.learner._worker.restart_backoff_s = 0.0
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        feed(p, "cy", values[2:3])  # this batch is learned on the thread; the child restarts
        assert p.learner.applied == 3 and p.learner.failures == 0
        feed(p, "cy", values[3:])
        assert p.learner.worker_pid not in (None, pid)
        assert p.learner._worker.restarts == 1
        assert p.learner.applied == 4
        assert counts(stored(p, "cy")) == learned_on_thread(tmp_path, "cy", values)
    finally:
        p.close()


def test_store_changed_after_the_child_computed(tmp_path: Path) -> None:
    """Another sidecar learned meanwhile: the child's result is discarded, both windows kept."""
    p = make_pipeline(tmp_path, BIOSHARD_LEARN_WORKER="true")
    try:
        values = windows(4, 3)
        feed(p, "di", values[:1])
        worker = p.learner._worker
        assert worker is not None
        real = worker.learn

        def learn_then_race(jobs: Sequence[Job], params: ScoringParams,
                            **kw: float) -> list[bytes | str]:
            out = real(jobs, params, **kw)
            # another sidecar's learned window lands between the read and the update
            profile = stored(p, "di")
            from sidecar.scoring import PopulationModel, learn_window
            learn_window(profile, decode(values[2]), 0.1, params,
                         population=PopulationModel.default())
            p.store.put(p.pseudonym("di"), profile.to_bytes())
            return out

        worker.learn = learn_then_race  # type: ignore[method-assign]
        feed(p, "di", values[1:2])
        assert counts(stored(p, "di")) == learned_on_thread(tmp_path, "di", values)
        assert p.learner.applied == 2
    finally:
        p.close()


def test_corrupt_profile_is_counted_not_overwritten(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    p = make_pipeline(tmp_path, BIOSHARD_LEARN_WORKER="true")
    try:
        pseudonym = p.pseudonym("ed")
        p.store.put(pseudonym, b"not a profile")
        p.learner.remember("d1", pseudonym, windows(5, 1)[0], 0.1, True)
        assert p.learner.flush() == 0
        assert p.learner.failures == 1
        assert p.store.get(pseudonym) == b"not a profile"
        assert "learning failed for one profile" in caplog.text
        assert "ed" not in caplog.text.split()
    finally:
        p.close()


def test_backlog_is_applied_in_slices(tmp_path: Path) -> None:
    """A backlog larger than one slice (a burst after a restart) is all learned by the thread."""
    from sidecar.learner import TAKE_LIMIT

    p = make_pipeline(tmp_path, BIOSHARD_LEARN_WORKER="true")
    p.start()
    try:
        n = 2 * TAKE_LIMIT + 5
        window = windows(6, 1)[0]
        for i in range(n):
            p.learner.remember(f"d{i}", p.pseudonym(f"user-{i}"), window, 0.1, True)
        deadline = time.monotonic() + 60
        while p.learner.applied < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert p.learner.applied == n and p.learner.failures == 0
        assert p.store.count() == n
    finally:
        p.close()


def test_learned_profile_arrives_with_its_whitening(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The child builds the whitening of the learned windows' feature masks: the serving
    process's next score of the same kind of window needs no Cholesky."""
    from sidecar.scoring.modality_model import ModalityModel

    p = make_pipeline(tmp_path, BIOSHARD_LEARN_WORKER="true")
    try:
        values = windows(7, 12)
        feed(p, "fay", values)
        hit, cached = p.cache.get(p.pseudonym("fay"))
        assert hit and cached is not None and not cached.plans

        def no_build(*args: object, **kwargs: object) -> None:
            raise AssertionError("whitening built in the serving process")

        monkeypatch.setattr(ModalityModel, "_build_stack", no_build)
        last = decode(values[-1])
        again = dataclasses.replace(last, seq=last.seq + 100)  # same features, new window
        result = score_window(cached, again, p.population, p.settings.scoring)
        assert not result.enrolling
    finally:
        p.close()
