"""End to end through a real Envoy and a real sidecar process: behaviour picks the pool."""

from __future__ import annotations

import base64
import json
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from e2e_client import Session, decision_counts, reasons_between, request

from sidecar.procs import wait_until
from sidecar.scoring import Persona
from sidecar.stack import Stack, StackOptions
from sidecar.telemetry import encode_json

pytestmark = pytest.mark.e2e

USER = "alice@example.com"
ENROL_WINDOWS = 30


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"BIOSHARD_LEARN_DELAY_S": "0.05", "BIOSHARD_LEARN_INTERVAL_S": "0",
           "BIOSHARD_POLICY_BAD_TELEMETRY": "2",
           "BIOSHARD_LOG_LEVEL": "INFO"}
    with Stack(StackOptions(workdir=tmp_path_factory.mktemp("stack"), sidecar_env=env)) as s:
        yield s


def send(stack: Stack, session: Session | None, user: str | None = USER, *,
         value: str | None = None, extra: dict[str, str] | None = None,
         tls: bool = False) -> dict[str, object]:
    headers = dict(extra or {})
    if user is not None:
        headers["x-user-id"] = user
    if value is None and session is not None:
        value = session.next_value()
    if value is not None:
        headers["x-bioshard-telemetry"] = value
    status, body, _ = request(stack, headers, tls=tls)
    assert status == 200, body
    return body


def wait_learned(stack: Stack) -> None:
    def idle() -> bool:
        _, h = stack.admin("GET", "/health/anomalydetection", token=None)
        return isinstance(h, dict) and h["learner_pending"] == 0
    wait_until(idle, 20, "learner idle")


@pytest.fixture(scope="module")
def enrolled(stack: Stack) -> Persona:
    """alice enrols with 30 windows of her own behaviour (learned off the hot path)."""
    alice = Persona.human(11)
    session = Session(alice, np.random.default_rng(11))
    for _ in range(ENROL_WINDOWS):
        send(stack, session)
        time.sleep(0.01)
    time.sleep(0.2)
    wait_learned(stack)
    status, summary = stack.admin("GET", f"/profiles/{USER}")
    assert status == 200, summary
    assert all(m["enrolled"] for m in summary["modalities"].values())
    # It was learned by the sidecar's learning process, which never had to be replaced.
    _, health = stack.admin("GET", "/health/anomalydetection", token=None)
    learner = health["learner"]
    assert learner["applied"] >= ENROL_WINDOWS and learner["failures"] == 0, learner
    assert learner["worker_restarts"] == 0, learner
    cmdline = Path(f"/proc/{learner['worker_pid']}/cmdline").read_bytes()
    assert b"sidecar.learn_worker" in cmdline
    # The garbage-collector policy is on: pauses are measured, no automatic full collection.
    _, metrics = stack.admin("GET", "/metrics", token=None)
    assert "bioshard_gc_pause_max_seconds " in str(metrics)
    assert "bioshard_gc_full_collections 0.0" in str(metrics)
    return alice


def test_enrolled_user_reaches_tier1(stack: Stack, enrolled: Persona) -> None:
    """An enrolled user's normal behaviour reaches the tier-1 upstream, scored ``ok``."""
    session = Session(enrolled, np.random.default_rng(1011))
    before = decision_counts(stack)
    pools = Counter(send(stack, session)["pool"] for _ in range(20))
    assert pools["tier1"] >= 17, pools
    assert pools["tier3"] == 0, pools
    made = reasons_between(before, decision_counts(stack))
    assert set(r for r, _ in made) == {"ok"}, made


def test_decision_headers_reach_upstream(stack: Stack, enrolled: Persona) -> None:
    """The upstream sees tier, score and decision id, and never the telemetry header (TLS)."""
    body = send(stack, Session(enrolled, np.random.default_rng(7)), tls=True)
    assert body["tier"] in {"1", "2"}
    assert 0.0 <= float(str(body["score"])) <= 1.0
    assert body["decision"]
    assert body["telemetry_header_seen"] is False


def test_impostor_on_same_account_reaches_tier3(stack: Stack, enrolled: Persona) -> None:
    """Someone else's behaviour on alice's account lands in the sandbox."""
    session = Session(Persona.impostor(11), np.random.default_rng(99))
    pools = Counter(send(stack, session)["pool"] for _ in range(10))
    assert pools["tier3"] >= 9, pools
    assert pools["tier1"] == 0, pools


@pytest.mark.parametrize(("persona", "seed"), [(Persona.bot_constant_keys(), 5),
                                               (Persona.bot_straight_mouse(), 6)],
                         ids=["constant-keys", "straight-mouse"])
def test_bot_without_profile_reaches_tier3(stack: Stack, persona: Persona, seed: int) -> None:
    """A script with no profile (new user id) is sandboxed with reason scripted_input."""
    session = Session(persona, np.random.default_rng(seed))
    before = decision_counts(stack)
    body = send(stack, session, user=f"new-user-{persona.name}")
    assert body["pool"] == "tier3"
    assert reasons_between(before, decision_counts(stack)) == {("scripted_input", 3): 1}


def test_client_cannot_choose_its_pool(stack: Stack, enrolled: Persona) -> None:
    """Client-supplied routing headers are stripped: an impostor asking for tier1 gets tier3."""
    session = Session(Persona.impostor(11), np.random.default_rng(123))
    spoof = {"x-bioshard-cluster": "tier1", "x-bioshard-tier": "1", "x-bioshard-score": "0.000",
             "x-bioshard-decision": "forged", "x-envoy-auth-failure-mode-allowed": "true"}
    body = send(stack, session, extra=spoof)
    assert body["pool"] == "tier3"
    assert body["decision"] != "forged"
    assert body["failure_mode"] is False
    # Without any telemetry the spoofed headers still do not reach tier1.
    body = send(stack, None, extra=spoof)
    assert body["pool"] == "tier2"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _deflate(raw: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(raw) + c.flush()


def _nan_window() -> str:
    doc = {"sid": "AAECAwQFBgcICQoLDA0ODw", "seq": 1, "ts": int(time.time() * 1000),
           "dev": "desktop", "m": {"keys": {"n": 40, "f": {"hold_mean": 1.0}}}}
    return "1j." + _b64(json.dumps(doc).replace("1.0", "NaN").encode())


@pytest.mark.parametrize("value", [
    "1z.%%%not-base64%%%",
    "1j." + _b64(b'{"sid": 3}'),
    "1z." + "A" * 5000,
    "1z." + _b64(_deflate(b"{" * 3_000_000)),
    _nan_window(),
    "9x.whatever",
], ids=["malformed", "wrong-shape", "oversized", "deflate-bomb", "nan", "unknown-version"])
def test_bad_telemetry_gets_configured_tier(stack: Stack, value: str) -> None:
    """Every kind of bad telemetry gets the configured tier (2 here) with reason bad_telemetry."""
    before = decision_counts(stack)
    body = send(stack, None, value=value)
    assert body["pool"] == "tier2"
    assert reasons_between(before, decision_counts(stack)) == {("bad_telemetry", 2): 1}


def test_replayed_window_is_refused(stack: Stack, enrolled: Persona) -> None:
    """A genuine window captured once and sent again is replayed_telemetry (tier 3)."""
    session = Session(enrolled, np.random.default_rng(2024))
    value = session.next_value()
    send(stack, None, value=value)
    before = decision_counts(stack)
    body = send(stack, None, value=value)
    assert body["pool"] == "tier3"
    assert reasons_between(before, decision_counts(stack)) == {("replayed_telemetry", 3): 1}
    # The same window on another account is a replay too.
    value2 = session.next_value()
    send(stack, None, value=value2)
    before = decision_counts(stack)
    send(stack, None, user="mallory", value=value2)
    assert reasons_between(before, decision_counts(stack)) == {("replayed_telemetry", 3): 1}


def test_stale_window_is_replayed(stack: Stack) -> None:
    """A window older than the configured age is not fresh."""
    doc = {"sid": "c3RhbGUtc2Vzc2lvbi0wMDE", "seq": 1, "ts": int(time.time() * 1000) - 3_600_000,
           "dev": "desktop", "m": {"keys": {"n": 40, "f": {"hold_mean": 90.0}}}}
    before = decision_counts(stack)
    send(stack, None, value=encode_json(doc))
    assert reasons_between(before, decision_counts(stack)) == {("replayed_telemetry", 3): 1}


def test_missing_identity_and_telemetry(stack: Stack) -> None:
    """No telemetry → no_telemetry (tier 2); anonymous with a bot window → tier 3."""
    before = decision_counts(stack)
    assert send(stack, None, user=None)["pool"] == "tier2"
    assert reasons_between(before, decision_counts(stack)) == {("no_telemetry", 2): 1}
    bot = Session(Persona.bot_constant_keys(3), np.random.default_rng(3))
    assert send(stack, bot, user=None)["pool"] == "tier3"


def test_raw_user_id_never_stored_or_logged(stack: Stack, enrolled: Persona) -> None:
    """The raw user id is neither in the SQLite file nor in the sidecar's INFO log."""
    db = Path(stack.store.removeprefix("sqlite:///"))
    blobs = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    assert blobs, "the store file should exist"
    assert USER.encode() not in blobs
    assert stack.sidecar is not None
    log = stack.sidecar.log_path.read_text()
    assert USER not in log
    assert "1z." not in log


def test_sidecar_down_failure_mode(stack: Stack, enrolled: Persona) -> None:
    """With the sidecar stopped, Envoy fails open to the guarded tier 2, never tier 1."""
    stack.stop_sidecar()
    session = Session(enrolled, np.random.default_rng(77))
    body = send(stack, session)
    assert body["pool"] == "tier2"
    assert body["failure_mode"] is True
    assert body["challenge"] == "required"
