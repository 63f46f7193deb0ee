"""The decision pipeline in-process, on the real SQLite store: every path has a reason."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from redis_servers import running_redis

from sidecar.config import Settings, load_settings
from sidecar.crypto import generate_dev_keys
from sidecar.pipeline import AuthInput, Pipeline
from sidecar.procs import free_port
from sidecar.reasons import Reason
from sidecar.scoring import Persona, synthetic_sid, synthetic_window
from sidecar.store import open_store
from sidecar.telemetry import encode_deflate, encode_json


def make_pipeline(tmp_path: Path, **env: str) -> Pipeline:
    settings = load_settings(env={"BIOSHARD_LEARN_DELAY_S": "0", "BIOSHARD_LEARN_INTERVAL_S": "0",
                                  **env})
    keys = generate_dev_keys()
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}", keys.keyring)
    return Pipeline(settings, pseudonymizer=keys.pseudonymizer(), store=store)


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    p = make_pipeline(tmp_path)
    yield p
    p.close()


class Browser:
    def __init__(self, persona: Persona, seed: int) -> None:
        self.persona = persona
        self.rng = np.random.default_rng(seed)
        self.sid = synthetic_sid(self.rng)
        self.seq = 0

    def value(self) -> str:
        self.seq += 1
        return encode_deflate(synthetic_window(self.persona, self.rng, sid=self.sid,
                                               seq=self.seq, ts_ms=int(time.time() * 1000)))


def check(p: Pipeline, user: str | None, value: str | None, source: str = "header"):  # type: ignore[no-untyped-def]
    return p.check(AuthInput(user_id=user, telemetry=value,
                             telemetry_source=source if value is not None else None))


def enrol(p: Pipeline, user: str, persona: Persona, n: int = 30) -> None:
    b = Browser(persona, 1)
    for _ in range(n):
        check(p, user, b.value())
        p.learner.flush()


def test_enrolment_then_ok(pipeline: Pipeline) -> None:
    """A new user is scored by the population (enrolling), then by their own model (ok)."""
    alice = Persona.human(3)
    first = check(pipeline, "alice", Browser(alice, 9).value())
    assert first.reason is Reason.ENROLLING
    enrol(pipeline, "alice", alice)
    d = check(pipeline, "alice", Browser(alice, 10).value())
    assert d.reason is Reason.OK
    assert d.tier == 1 and d.cluster == "tier1"
    assert d.remove_telemetry_header


@pytest.mark.parametrize(("user", "value", "reason", "tier"), [
    ("bob", None, Reason.NO_TELEMETRY, 2),
    ("bob", "1z.@@@", Reason.BAD_TELEMETRY, 3),
    ("bob", encode_json({"sid": "AAECAwQFBgcICQoLDA0ODw", "seq": 1,
                         "ts": int(time.time() * 1000), "dev": "desktop",
                         "m": {"keys": {"n": 2, "f": {"hold_mean": 90}}}}),
     Reason.INSUFFICIENT_TELEMETRY, 2),
    (None, None, Reason.NO_TELEMETRY, 2),
], ids=["no-telemetry", "bad-telemetry", "too-few-events", "anonymous-nothing"])
def test_reasons_without_score(pipeline: Pipeline, user: str | None, value: str | None,
                               reason: Reason, tier: int) -> None:
    """Requests that cannot be scored get their reason and the default policy's tier."""
    d = check(pipeline, user, value)
    assert (d.reason, d.tier, d.score) == (reason, tier, None)


def test_anonymous_scored_by_population(pipeline: Pipeline) -> None:
    """Anonymous traffic with telemetry is scored by the population model (no_identity)."""
    d = check(pipeline, None, Browser(Persona.human(4), 4).value())
    assert d.reason is Reason.NO_IDENTITY
    assert d.score is not None
    bot = check(pipeline, None, Browser(Persona.bot_straight_mouse(), 40).value())
    assert (bot.reason, bot.tier) == (Reason.SCRIPTED_INPUT, 3)


def test_cookie_repeat_is_not_a_replay(pipeline: Pipeline) -> None:
    """The same cookie resent by the browser is 'nothing new'; the same header is a replay."""
    value = Browser(Persona.human(5), 5).value()
    assert check(pipeline, "carol", value, "cookie").reason is not Reason.NO_TELEMETRY
    again = check(pipeline, "carol", value, "cookie")
    assert (again.reason, again.detail) == (Reason.NO_TELEMETRY, "cookie_repeated")
    assert check(pipeline, "carol", value, "header").reason is Reason.REPLAYED_TELEMETRY


def test_policy_and_deny(tmp_path: Path) -> None:
    """Policies are configurable per reason; 'deny' answers 400 for bad telemetry, 403 else."""
    p = make_pipeline(tmp_path, BIOSHARD_POLICY_BAD_TELEMETRY="deny",
                      BIOSHARD_POLICY_NO_TELEMETRY="1", BIOSHARD_TIER3_ACTION="deny")
    try:
        assert check(p, "x", "junk").deny_status == 400
        assert check(p, "x", None).tier == 1
        bot = check(p, "x", Browser(Persona.bot_constant_keys(), 1).value())
        assert (bot.tier, bot.deny_status) == (3, 403)
    finally:
        p.close()


def _redis_pipeline(url: str, **env: str) -> Pipeline:
    settings = load_settings(env={"BIOSHARD_LEARN_DELAY_S": "0", "BIOSHARD_LEARN_INTERVAL_S": "0",
                                  **env})
    keys = generate_dev_keys()
    return Pipeline(settings, pseudonymizer=keys.pseudonymizer(),
                    store=open_store(url, keys.keyring, timeout_s=2.0))


def test_deadline(tmp_path: Path) -> None:
    """A frozen store (a real redis-server stopped with SIGSTOP) gives reason deadline."""
    with running_redis(tmp_path) as server:
        p = _redis_pipeline(server.url, BIOSHARD_DEADLINE_MS="50")
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            t0 = time.perf_counter()
            d = check(p, "dave", Browser(Persona.human(6), 6).value())
            elapsed = time.perf_counter() - t0
            assert (d.reason, d.tier) == (Reason.DEADLINE, 2)
            assert elapsed < 1.0  # answered on the sidecar's deadline, not the socket timeout
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
            p.close()


def test_store_unavailable(tmp_path: Path) -> None:
    """A store that is down (nothing listens) answers store_unavailable (tier 2)."""
    p = _redis_pipeline(f"redis://127.0.0.1:{free_port()}/0")
    try:
        d = check(p, "erin", Browser(Persona.human(7), 7).value())
        assert (d.reason, d.tier) == (Reason.STORE_UNAVAILABLE, 2)
    finally:
        p.close()


def test_feedback_withdraws_pending_window(tmp_path: Path) -> None:
    """Impostor feedback withdraws a queued window before it is learned."""
    p = make_pipeline(tmp_path, BIOSHARD_LEARN_DELAY_S="3600")
    try:
        d = check(p, "frank", Browser(Persona.human(8), 8).value())
        assert p.learner.pending == 1
        assert p.learner.withdraw(d.decision_id)
        assert p.learner.flush(all_pending=True) == 0
        assert p.store.get(p.pseudonym("frank")) is None
    finally:
        p.close()


def test_reconfigure_applies_to_next_request(pipeline: Pipeline) -> None:
    """New thresholds swapped in at run time apply to the next decision."""
    assert check(pipeline, None, None).tier == 2
    new: Settings = dataclasses.replace(
        pipeline.settings, policy={**pipeline.settings.policy, Reason.NO_TELEMETRY: 3})
    pipeline.reconfigure(new)
    assert check(pipeline, None, None).tier == 3


def test_delete_during_learning_does_not_resurrect(pipeline: Pipeline) -> None:
    """Windows queued before a user's deletion are never applied, even by a batch in flight."""
    pipeline.learner._delay = 3600.0
    check(pipeline, "gina", Browser(Persona.human(9), 9).value())
    batch = pipeline.learner._take(float("inf"))  # a batch already taken by the thread
    assert len(batch) == 1
    pipeline.learner.forget_user(pipeline.pseudonym("gina"))
    pipeline.store.delete(pipeline.pseudonym("gina"))
    assert pipeline.learner._apply(batch) == 0
    assert pipeline.store.get(pipeline.pseudonym("gina")) is None


def test_learning_rate_limited_per_user(tmp_path: Path) -> None:
    """At most one window per user per learn interval is queued for learning."""
    p = make_pipeline(tmp_path, BIOSHARD_LEARN_DELAY_S="3600", BIOSHARD_LEARN_INTERVAL_S="3600")
    try:
        b, other = Browser(Persona.human(12), 12), Browser(Persona.human(13), 13)
        for _ in range(5):
            check(p, "hana", b.value())
        check(p, "ivan", other.value())
        assert p.learner.pending == 2
        assert p.learner.rate_limited == 4
    finally:
        p.close()


def test_expired_cache_entry_revalidated_without_decoding(tmp_path: Path) -> None:
    """After the TTL, unchanged store bytes renew the cached profile object (plans kept)."""
    p = make_pipeline(tmp_path, BIOSHARD_CACHE_TTL_S="0.05")
    try:
        enrol(p, "jo", Persona.human(14), n=6)
        b = Browser(Persona.human(14), 15)
        check(p, "jo", b.value())
        first = p.cache.get(p.pseudonym("jo"))[1]
        time.sleep(0.1)
        check(p, "jo", b.value())
        assert p.cache.revalidated >= 1
        assert p.cache.get(p.pseudonym("jo"))[1] is first
    finally:
        p.close()


def test_sqlite_read_on_the_request_thread(pipeline: Pipeline) -> None:
    """SQLite reads never wait for a writer: a cache miss reads inline, no thread hand-off."""
    enrol(pipeline, "kim", Persona.human(16), n=6)
    pipeline.cache.invalidate(pipeline.pseudonym("kim"))

    def no_handoff(*args: object, **kwargs: object) -> None:
        raise AssertionError("SQLite read handed to the I/O thread")

    pipeline._io.submit = no_handoff  # type: ignore[method-assign]
    d = check(pipeline, "kim", Browser(Persona.human(16), 17).value())
    assert d.reason in (Reason.OK, Reason.ENROLLING)
    assert pipeline.cache.get(pipeline.pseudonym("kim"))[0]
