"""Synthetic personas: deterministic, human-plausible, valid v1 documents."""

from __future__ import annotations

import numpy as np
import pytest

from sidecar.features import MODALITIES
from sidecar.scoring.synthetic import Persona, synthetic_sid, synthetic_window
from sidecar.telemetry import decode, encode_deflate

PERSONAS = {
    "human": Persona.human(1),
    "impostor": Persona.impostor(1),
    "touch": Persona.touch_user(1),
    "two-mode": Persona.two_mode(1),
    "bot-keys": Persona.bot_constant_keys(),
    "bot-mouse": Persona.bot_straight_mouse(),
}


@pytest.mark.parametrize("name", list(PERSONAS), ids=list(PERSONAS))
def test_windows_are_valid_v1_documents_within_range(name: str) -> None:
    """Every window encodes under the size cap, decodes, and stays in documented ranges."""
    persona = PERSONAS[name]
    rng = np.random.default_rng(0)
    for seq in range(50):
        doc = synthetic_window(persona, rng, sid=synthetic_sid(rng), seq=seq, ts_ms=seq)
        value = encode_deflate(doc)
        assert len(value) <= 4096
        t = decode(value)
        assert t.modalities and t.device == persona.device
        m = doc["m"]
        assert isinstance(m, dict)
        for mod, entry in m.items():
            for fs in MODALITIES[mod].features:
                if fs.name in entry["f"]:
                    assert fs.lo <= entry["f"][fs.name] <= fs.hi


def test_same_seed_same_persona_and_window() -> None:
    """Personas and windows are reproducible from their seeds."""
    assert Persona.human(7) == Persona.human(7)
    a = synthetic_window(Persona.human(7), np.random.default_rng(3), sid="s" * 22, seq=1,
                         ts_ms=2)
    b = synthetic_window(Persona.human(7), np.random.default_rng(3), sid="s" * 22, seq=1,
                         ts_ms=2)
    assert a == b


def test_different_seeds_give_different_but_human_typing() -> None:
    """Typical hold times differ between seeds and stay in a human range (40–250 ms)."""
    holds = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        doc = synthetic_window(Persona.human(seed), rng, sid="s" * 22, seq=0, ts_ms=0,
                               modalities=("keys",))
        holds.append(doc["m"]["keys"]["f"]["hold_mean"])  # type: ignore[index]
    assert len({Persona.human(seed).modes[0]["keys"] for seed in range(40)}) == 40
    assert np.std(holds) > 10.0
    assert min(holds) > 40 and max(holds) < 250


def test_style_pins_features() -> None:
    """A style in feature units sets the persona's typical value."""
    p = Persona.human(0, style={"keys": {"hold_mean": 140.0}})
    rng = np.random.default_rng(0)
    holds = [synthetic_window(p, rng, sid="s" * 22, seq=i, ts_ms=i, modalities=("keys",))
             ["m"]["keys"]["f"]["hold_mean"] for i in range(200)]  # type: ignore[index]
    assert np.median(holds) == pytest.approx(140.0, rel=0.05)


def test_forced_modalities_and_bot_features() -> None:
    """``modalities`` forces exactly those; bots emit their constant features."""
    rng = np.random.default_rng(0)
    doc = synthetic_window(Persona.human(1), rng, sid="s" * 22, seq=0, ts_ms=0,
                           modalities=("scroll", "keys"))
    m = doc["m"]
    assert isinstance(m, dict) and set(m) == {"keys", "scroll"}
    bot = synthetic_window(Persona.bot_constant_keys(), rng, sid="s" * 22, seq=0, ts_ms=0)
    assert bot["m"]["keys"]["f"]["hold_std"] == 0.0  # type: ignore[index]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"device": "fridge"}, "device"),
    ({"spread": 0.0}, "spread"),
    ({"tail_dof": 2.0}, "tail_dof"),
], ids=["device", "spread", "tail-dof"])
def test_persona_validates(kwargs: dict[str, object], match: str) -> None:
    """Invalid persona settings are rejected."""
    from dataclasses import replace
    with pytest.raises(ValueError, match=match):
        replace(Persona.human(0), **kwargs)  # type: ignore[arg-type]


def test_sid_is_a_valid_session_id() -> None:
    """synthetic_sid gives 22 base64url characters."""
    sid = synthetic_sid(np.random.default_rng(0))
    assert len(sid) == 22 and sid.replace("-", "").replace("_", "").isalnum()
