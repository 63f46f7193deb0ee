"""Scripted-input rules: each fires on its pattern and never on synthetic humans."""

from __future__ import annotations

import numpy as np
import pytest

from sidecar.scoring.scripted import RULE_NAMES, RULES, detect_scripted, detect_scripted_features
from sidecar.scoring.synthetic import Persona, synthetic_sid, synthetic_window
from sidecar.telemetry import ModalityWindow, Telemetry, decode, encode_json

HUMAN_KEYS = {"hold_mean": 98.0, "hold_std": 22.0, "dd_mean": 210.0, "dd_std": 95.0,
              "ud_mean": 110.0, "ud_std": 90.0, "rate": 5.2, "pause_ratio": 0.1,
              "backspace_ratio": 0.04}
HUMAN_MOUSE = {"speed_mean": 0.7, "speed_std": 0.6, "accel_mean": 0.01, "accel_std": 0.02,
               "straightness": 0.82, "curvature_mean": 0.03, "hesitation_mean": 300.0,
               "click_hold_mean": 105.0}
HUMAN_SCROLL = {"speed_mean": 1.4, "speed_std": 1.1, "delta_mean": 100.0,
                "burst_len_mean": 6.0, "dir_change_ratio": 0.1}
HUMAN_TOUCH = {"swipe_speed_mean": 1.0, "swipe_speed_std": 0.5, "swipe_duration_mean": 240.0,
               "swipe_straightness": 0.93, "pressure_mean": 0.5, "pressure_std": 0.05,
               "contact_mean": 400.0, "multi_touch_ratio": 0.02}
HUMAN = {"keys": HUMAN_KEYS, "mouse": HUMAN_MOUSE, "scroll": HUMAN_SCROLL,
         "touch": HUMAN_TOUCH}

CASES = {
    "constant_key_timing": ("keys", {"hold_std": 0.0}),
    "impossible_key_rate": ("keys", {"rate": 32.0}),
    "straight_constant_mouse": ("mouse", {"straightness": 1.0, "curvature_mean": 0.0,
                                          "speed_std": 0.0, "accel_mean": 0.0}),
    "instant_click": ("mouse", {"click_hold_mean": 0.0}),
    "impossible_mouse_speed": ("mouse", {"speed_mean": 18.0, "speed_std": 9.0}),
    "constant_scroll": ("scroll", {"speed_std": 0.0}),
    "constant_touch": ("touch", {"swipe_straightness": 1.0, "swipe_speed_std": 0.0}),
}


def test_every_rule_has_a_case() -> None:
    """The cases below cover every rule."""
    assert set(CASES) == RULE_NAMES == {r.name for r in RULES}


@pytest.mark.parametrize("rule", sorted(CASES), ids=sorted(CASES))
def test_rule_fires_on_its_pattern(rule: str) -> None:
    """A human window with the rule's pattern patched in is flagged by that rule."""
    modality, patch = CASES[rule]
    assert detect_scripted_features(modality, HUMAN[modality]) is None
    assert detect_scripted_features(modality, {**HUMAN[modality], **patch}) == rule


def test_rules_need_their_features() -> None:
    """A rule whose features are absent does not fire."""
    for modality in HUMAN:
        assert detect_scripted_features(modality, {}) is None


def test_detect_scripted_reads_every_modality_of_a_window() -> None:
    """detect_scripted names the rule that fired, whichever modality it is in."""
    mods = {m: ModalityWindow(n=50, features=f) for m, f in HUMAN.items()}
    mods["scroll"] = ModalityWindow(n=50, features={**HUMAN_SCROLL, "speed_std": 0.0})
    w = Telemetry(version=1, sid="s" * 22, seq=0, ts_ms=0, device="desktop", modalities=mods)
    assert detect_scripted(w) == "constant_scroll"


def test_no_rule_fires_on_synthetic_humans() -> None:
    """3 000 windows of varied synthetic humans (noisy, touch, two modes) never fire."""
    rng = np.random.default_rng(0)
    personas = [Persona.human(s, spread=2.0 if s % 4 == 0 else 1.0) for s in range(40)]
    personas += [Persona.touch_user(s) for s in range(20)] + [Persona.two_mode(s)
                                                              for s in range(15)]
    fired = []
    for p in personas:
        for i in range(40):
            doc = synthetic_window(p, rng, sid=synthetic_sid(rng), seq=i, ts_ms=i)
            rule = detect_scripted(decode(encode_json(doc)))
            if rule is not None:
                fired.append((p.name, rule))
    assert fired == []
