"""Admin HTTP API: token, profiles (summary, deletion), feedback, tuning, health, metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sidecar.admin import AdminServer
from sidecar.admin_cli import request
from sidecar.config import load_settings
from sidecar.crypto import generate_dev_keys
from sidecar.pipeline import AuthInput, Pipeline
from sidecar.procs import free_port
from sidecar.scoring import Persona, synthetic_sid, synthetic_window
from sidecar.store import open_store
from sidecar.telemetry import encode_deflate

TOKEN = "admin-token-for-tests-0001"


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[tuple[Pipeline, str]]:
    port = free_port()
    settings = load_settings(env={"BIOSHARD_ADMIN_TOKEN": TOKEN,
                                  "BIOSHARD_ADMIN_LISTEN": f"127.0.0.1:{port}",
                                  "BIOSHARD_LEARN_DELAY_S": "0", "BIOSHARD_LEARN_INTERVAL_S": "0"})
    keys = generate_dev_keys()
    p = Pipeline(settings, pseudonymizer=keys.pseudonymizer(),
                 store=open_store(f"sqlite:///{tmp_path / 'a.db'}", keys.keyring))
    server = AdminServer(settings, p)
    server.start()
    yield p, f"http://127.0.0.1:{port}"
    server.stop()
    p.close()


def call(base: str, method: str, path: str, body: Any = None,
         token: str | None = TOKEN, raw: bytes | None = None) -> tuple[int, Any]:
    return request(base, method, path, body=body, raw=raw, token=token, timeout=5)


def learn(p: Pipeline, user: str, n: int) -> list[str]:
    rng = np.random.default_rng(0)
    persona, sid, ids = Persona.human(1), synthetic_sid(rng), []
    for seq in range(1, n + 1):
        v = encode_deflate(synthetic_window(persona, rng, sid=sid, seq=seq,
                                            ts_ms=int(time.time() * 1000)))
        ids.append(p.check(AuthInput(user_id=user, telemetry=v, telemetry_source="header"))
                   .decision_id)
        p.learner.flush()
    return ids


@pytest.mark.parametrize(("method", "path", "token", "status"), [
    ("GET", "/profiles/alice", None, 401),
    ("GET", "/profiles/alice", "wrong-token-wrong-token", 401),
    ("DELETE", "/profiles/alice", None, 401),
    ("POST", "/feedback", None, 401),
    ("GET", "/anomalydetection/configure", "nope", 401),
    ("GET", "/health/anomalydetection", None, 200),
    ("GET", "/metrics", None, 200),
    ("GET", "/openapi.json", None, 200),
    ("GET", "/nowhere", TOKEN, 404),
    ("PUT", "/feedback", TOKEN, 405),
], ids=["no-token", "wrong-token", "delete-no-token", "feedback-no-token", "configure-wrong",
        "health-open", "metrics-open", "openapi-open", "unknown-path", "wrong-method"])
def test_auth_and_routes(admin: tuple[Pipeline, str], method: str, path: str,
                         token: str | None, status: int) -> None:
    """Protected endpoints need the bearer token; errors are explicit JSON."""
    got, body = call(admin[1], method, path, token=token)
    assert got == status
    if status >= 400:
        assert "error" in body


def test_disabled_without_token(tmp_path: Path) -> None:
    """Without a configured token the protected endpoints answer 503 and say why."""
    port = free_port()
    settings = load_settings(env={"BIOSHARD_ADMIN_LISTEN": f"127.0.0.1:{port}"})
    keys = generate_dev_keys()
    p = Pipeline(settings, pseudonymizer=keys.pseudonymizer(),
                 store=open_store(f"sqlite:///{tmp_path / 'b.db'}", keys.keyring))
    server = AdminServer(settings, p)
    server.start()
    try:
        status, body = call(f"http://127.0.0.1:{port}", "GET", "/profiles/x", token="anything")
        assert status == 503 and "BIOSHARD_ADMIN_TOKEN" in body["error"]
    finally:
        server.stop()
        p.close()


def test_profile_summary_and_delete(admin: tuple[Pipeline, str]) -> None:
    """A summary shows counts (never features); delete removes the profile for real."""
    p, base = admin
    assert call(base, "GET", "/profiles/alice")[0] == 404
    learn(p, "alice", 8)
    status, summary = call(base, "GET", "/profiles/alice")
    assert status == 200
    assert sum(m["windows_learned"] for m in summary["modalities"].values()) >= 8
    assert "hold_mean" not in json.dumps(summary)
    status, body = call(base, "DELETE", "/profiles/alice")
    assert status == 200 and body["deleted"] is True
    assert p.store.get(p.pseudonym("alice")) is None
    assert call(base, "GET", "/profiles/alice")[0] == 404
    assert call(base, "DELETE", "/profiles/alice")[0] == 404


@pytest.mark.parametrize(("body", "status"), [
    ({"decision": "nope", "label": "genuine"}, 404),
    ({"decision": "x", "label": "maybe"}, 400),
    ({"label": "genuine"}, 400),
], ids=["unknown-decision", "bad-label", "missing-decision"])
def test_feedback_errors(admin: tuple[Pipeline, str], body: dict[str, str],
                         status: int) -> None:
    """Feedback with an unknown decision or a bad label is refused with a message."""
    got, resp = call(admin[1], "POST", "/feedback", body)
    assert got == status and "error" in resp


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"x" * (70 * 1024)],
                         ids=["invalid-json", "not-object", "too-large"])
def test_bad_bodies(admin: tuple[Pipeline, str], raw: bytes) -> None:
    """Malformed or oversized bodies get 400/413 with a message, never a crash."""
    status, body = call(admin[1], "POST", "/feedback", raw=raw)
    assert status in (400, 413) and "error" in body


def test_feedback_impostor_withdraws(tmp_path: Path, admin: tuple[Pipeline, str]) -> None:
    """'impostor' feedback on a pending decision withdraws its window from learning."""
    p, base = admin
    p.learner._delay = 3600.0  # this test needs the window to wait
    ids = learn(p, "bob", 1)
    status, body = call(base, "POST", "/feedback", {"decision": ids[0], "label": "impostor"})
    assert status == 200 and body["withdrawn"] is True
    assert p.learner.flush(all_pending=True) == 0


def test_configure(admin: tuple[Pipeline, str]) -> None:
    """Thresholds and policy change at run time; invalid values are refused naming the field."""
    p, base = admin
    status, body = call(base, "POST", "/anomalydetection/configure", {"scoring": {"t1": 0.9}})
    assert status == 400 and "t1" in body["error"]
    status, body = call(base, "POST", "/anomalydetection/configure",
                        {"policy": {"no_telemetry": 3}, "scoring": {"t1": 0.45}})
    assert status == 200, body
    assert body["policy"]["no_telemetry"] == 3 and body["scoring"]["t1"] == 0.45
    assert p.check(AuthInput(user_id="z", telemetry=None, telemetry_source=None)).tier == 3
    status, body = call(base, "POST", "/anomalydetection/configure", {"listen": "x"})
    assert status == 400 and "listen" in body["error"]


def test_admin_cli(admin: tuple[Pipeline, str], monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture[str]) -> None:
    """`bioshard admin` drives the same API; exit codes say success, refusal, unreachable."""
    from sidecar.cli import main

    p, base = admin
    monkeypatch.setenv("BIOSHARD_ADMIN_TOKEN", TOKEN)
    assert main(["admin", "--url", base, "profile", "carol"]) == 1
    assert "no profile" in capsys.readouterr().err
    learn(p, "carol", 3)
    assert main(["admin", "--url", base, "profile", "carol"]) == 0
    assert "windows_learned" in capsys.readouterr().out
    assert main(["admin", "--url", base, "configure", "--t1", "0.4",
                 "--policy", "no_telemetry=1"]) == 0
    assert p.settings.scoring.t1 == 0.4
    assert main(["admin", "--url", base, "configure", "--t1", "0.99"]) == 1
    assert main(["admin", "--url", base, "delete", "carol"]) == 0
    assert main(["admin", "--url", f"http://127.0.0.1:{free_port()}", "health"]) == 2
