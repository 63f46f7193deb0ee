"""Scripted / bot input: feature patterns no human hand produces.

Each rule looks at one modality's raw v1 features and has a stable name that becomes
the ``scripted`` field of the score (and can label logs and metrics).  A rule whose
features are absent does not fire.  Human baselines the thresholds sit far from:
key hold and inter-key times vary with a coefficient of variation of 0.2–0.6 (a
window has at least 10 keys), sustained typing stays under ~15 keys/s, a mouse
click is held 50–150 ms, human cursor paths curve and change speed (straightness
0.7–0.95 per window), and wheel / swipe speeds vary from event to event.

Known blind spot: a bot that adds human-like random jitter passes these rules; it is
then scored like any other input (and an impostor bot still fails the user's model).
Browsers that coarsen timers (Tor, ``privacy.resistFingerprinting``: 100 ms) quantise
key timings; a whole window of identical quantised timings would fire
``constant_key_timing``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from sidecar.telemetry import Telemetry

Features = Mapping[str, float]


def _constant(f: Features, std: str, mean: str, rel: float, floor: float) -> bool:
    s, m = f.get(std), f.get(mean)
    return s is not None and m is not None and s < max(rel * abs(m), floor)


def _constant_keys(f: Features) -> bool:
    ud_std = f.get("ud_std")
    return (_constant(f, "hold_std", "hold_mean", 0.03, 1.0)
            or _constant(f, "dd_std", "dd_mean", 0.03, 1.0)
            or (ud_std is not None and ud_std < 1.0))


def _impossible_keys(f: Features) -> bool:
    return (f.get("rate", 0.0) > 25.0
            or f.get("dd_mean", 1e9) < 30.0
            or f.get("hold_mean", 1e9) < 15.0)


def _straight_constant_mouse(f: Features) -> bool:
    straight = f.get("straightness")
    if straight is None or straight < 0.99 or f.get("curvature_mean", 0.0) > 0.002:
        return False
    return (_constant(f, "speed_std", "speed_mean", 0.05, 1e-3)
            or f.get("accel_mean", 1.0) < 1e-4)


def _instant_click(f: Features) -> bool:
    return f.get("click_hold_mean", 1e9) < 5.0


def _impossible_mouse(f: Features) -> bool:
    return f.get("speed_mean", 0.0) > 15.0


def _constant_scroll(f: Features) -> bool:
    return _constant(f, "speed_std", "speed_mean", 0.02, 1e-4)


def _constant_touch(f: Features) -> bool:
    return (f.get("swipe_straightness", 0.0) >= 0.995
            and _constant(f, "swipe_speed_std", "swipe_speed_mean", 0.02, 1e-4))


@dataclass(frozen=True, slots=True)
class ScriptedRule:
    """One rule: a stable name, the modality it reads, and its predicate."""

    name: str
    modality: str
    fires: Callable[[Features], bool]


RULES: Final[tuple[ScriptedRule, ...]] = (
    ScriptedRule("constant_key_timing", "keys", _constant_keys),
    ScriptedRule("impossible_key_rate", "keys", _impossible_keys),
    ScriptedRule("straight_constant_mouse", "mouse", _straight_constant_mouse),
    ScriptedRule("instant_click", "mouse", _instant_click),
    ScriptedRule("impossible_mouse_speed", "mouse", _impossible_mouse),
    ScriptedRule("constant_scroll", "scroll", _constant_scroll),
    ScriptedRule("constant_touch", "touch", _constant_touch),
)
RULE_NAMES: Final = frozenset(r.name for r in RULES)


def detect_scripted_features(modality: str, features: Features) -> str | None:
    """Name of the first rule that fires on one modality's raw features, else None."""
    for rule in RULES:
        if rule.modality == modality and rule.fires(features):
            return rule.name
    return None


def detect_scripted(window: Telemetry) -> str | None:
    """Name of the first rule that fires on any modality of the window, else None."""
    mods = window.modalities
    for rule in RULES:
        mw = mods.get(rule.modality)
        if mw is not None and rule.fires(mw.features):
            return rule.name
    return None
