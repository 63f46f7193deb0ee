"""`bioshard replay`: recorded raw events → collector windows → the sidecar's own scorer."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import numpy as np
import pytest

from sidecar.cli import main


def human_typing(rng: np.random.Generator, t0: float, n: int, hold: float, gap: float
                 ) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    t = t0
    for i in range(n):
        h = max(20.0, rng.normal(hold, hold * 0.2))
        code = f"Key{chr(65 + i % 26)}"
        out += [{"type": "keydown", "t": round(t, 1), "code": code},
                {"type": "keyup", "t": round(t + h, 1), "code": code}]
        t += max(30.0, rng.normal(gap, gap * 0.3))
    return out


def write_events(path: Path, events: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BIOSHARD_PSEUDONYM_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("BIOSHARD_ENCRYPTION_KEYS",
                       "k1:" + base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("BIOSHARD_STORE", f"sqlite:///{tmp_path / 'p.db'}")
    monkeypatch.setenv("BIOSHARD_LEARN_INTERVAL_S", "0")
    return tmp_path


def test_replay_enrols_then_scores(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--learn enrols a user from a recording; a later recording is scored per window."""
    rng = np.random.default_rng(0)
    train = [e for w in range(12) for e in human_typing(rng, w * 10_000.0, 40, 95, 180)]
    write_events(env / "train.jsonl", train)
    assert main(["replay", str(env / "train.jsonl"), "--user", "ana", "--window-ms", "10000",
                 "--learn", "--json"]) == 0
    first = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(first) == 12 and first[0]["reason"] == "enrolling"
    test = [e for w in range(4) for e in human_typing(rng, 500_000 + w * 10_000.0, 40, 95, 180)]
    write_events(env / "test.jsonl", test)
    assert main(["replay", str(env / "test.jsonl"), "--user", "ana", "--window-ms", "10000",
                 "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["reason"] for r in rows} == {"ok"}
    assert all(r["tier"] == 1 for r in rows), rows


def test_replay_bot_is_scripted(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Constant-interval typing replayed for an unknown user is scripted_input, tier 3."""
    bot = []
    for i in range(40):
        bot += [{"type": "keydown", "t": i * 100.0, "code": "KeyA"},
                {"type": "keyup", "t": i * 100.0 + 50, "code": "KeyA"}]
    write_events(env / "bot.jsonl", bot)
    assert main(["replay", str(env / "bot.jsonl"), "--user", "nobody", "--json"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (row["reason"], row["tier"]) == ("scripted_input", 3)


def test_replay_without_keys_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Without keys the command refuses with a message naming the setting."""
    for var in ("BIOSHARD_PSEUDONYM_KEY", "BIOSHARD_ENCRYPTION_KEYS"):
        monkeypatch.delenv(var, raising=False)
    write_events(tmp_path / "e.jsonl", human_typing(np.random.default_rng(1), 0, 40, 90, 200))
    assert main(["replay", str(tmp_path / "e.jsonl"), "--user", "x"]) == 2
    assert "BIOSHARD_PSEUDONYM_KEY" in capsys.readouterr().err
