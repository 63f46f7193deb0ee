"""Telemetry feature set v1: names, units, documented ranges and transforms.

This module is the single Python source of truth for the v1 wire contract's
feature names (see DESIGN.md, "Telemetry wire format v1").  The collector
(`collector_js/src/features.js`) mirrors the same table; `tests/test_features_parity.py`
checks that the two agree.

Each feature has:

* ``lo``/``hi`` – the documented range; the collector clips to it, the sidecar
  rejects nothing for being out of range but clips again on decode (values are
  untrusted).
* ``transform`` – how the scorer normalises it before robust scaling:
  ``"log"`` → ``log(x + eps)`` (durations, speeds, counts), ``"linear"`` → ``x``.
* ``eps`` – the offset for ``"log"`` (about one unit of resolution).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Transform = Literal["log", "linear"]

TELEMETRY_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    name: str
    unit: str
    lo: float
    hi: float
    transform: Transform
    eps: float = 0.0
    decimals: int = 3


@dataclass(frozen=True, slots=True)
class ModalitySpec:
    name: str
    min_events: int
    features: tuple[FeatureSpec, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def dim(self) -> int:
        return len(self.features)


def _f(name: str, unit: str, lo: float, hi: float, transform: Transform,
       eps: float = 0.0, decimals: int = 3) -> FeatureSpec:
    return FeatureSpec(name, unit, lo, hi, transform, eps, decimals)


KEYS: Final = ModalitySpec("keys", 10, (
    _f("hold_mean", "ms", 0.0, 2000.0, "log", 1.0, 1),
    _f("hold_std", "ms", 0.0, 1000.0, "log", 1.0, 1),
    _f("dd_mean", "ms", 0.0, 5000.0, "log", 1.0, 1),
    _f("dd_std", "ms", 0.0, 5000.0, "log", 1.0, 1),
    _f("ud_mean", "ms", -2000.0, 5000.0, "linear", 0.0, 1),
    _f("ud_std", "ms", 0.0, 5000.0, "log", 1.0, 1),
    _f("rate", "keys/s", 0.0, 40.0, "log", 0.1, 2),
    _f("pause_ratio", "ratio", 0.0, 1.0, "linear", 0.0, 3),
    _f("backspace_ratio", "ratio", 0.0, 1.0, "linear", 0.0, 3),
))

MOUSE: Final = ModalitySpec("mouse", 20, (
    _f("speed_mean", "px/ms", 0.0, 20.0, "log", 0.01, 4),
    _f("speed_std", "px/ms", 0.0, 20.0, "log", 0.01, 4),
    _f("accel_mean", "px/ms²", 0.0, 10.0, "log", 0.0001, 5),
    _f("accel_std", "px/ms²", 0.0, 10.0, "log", 0.0001, 5),
    _f("straightness", "ratio", 0.0, 1.0, "linear", 0.0, 3),
    _f("curvature_mean", "rad/px", 0.0, 10.0, "log", 0.001, 4),
    _f("hesitation_mean", "ms", 0.0, 10000.0, "log", 1.0, 1),
    _f("click_hold_mean", "ms", 0.0, 5000.0, "log", 1.0, 1),
))

SCROLL: Final = ModalitySpec("scroll", 5, (
    _f("speed_mean", "px/ms", 0.0, 50.0, "log", 0.01, 4),
    _f("speed_std", "px/ms", 0.0, 50.0, "log", 0.01, 4),
    _f("delta_mean", "px/event", 0.0, 5000.0, "log", 1.0, 1),
    _f("burst_len_mean", "events/burst", 1.0, 1000.0, "log", 0.0, 2),
    _f("dir_change_ratio", "ratio", 0.0, 1.0, "linear", 0.0, 3),
))

TOUCH: Final = ModalitySpec("touch", 5, (
    _f("swipe_speed_mean", "px/ms", 0.0, 20.0, "log", 0.01, 4),
    _f("swipe_speed_std", "px/ms", 0.0, 20.0, "log", 0.01, 4),
    _f("swipe_duration_mean", "ms", 0.0, 5000.0, "log", 1.0, 1),
    _f("swipe_straightness", "ratio", 0.0, 1.0, "linear", 0.0, 3),
    _f("pressure_mean", "ratio", 0.0, 1.0, "linear", 0.0, 3),
    _f("pressure_std", "ratio", 0.0, 1.0, "linear", 0.0, 3),
    _f("contact_mean", "px²", 0.0, 10000.0, "log", 1.0, 1),
    _f("multi_touch_ratio", "ratio", 0.0, 1.0, "linear", 0.0, 3),
))

MODALITIES: Final[dict[str, ModalitySpec]] = {m.name: m for m in (KEYS, MOUSE, SCROLL, TOUCH)}

DEVICES: Final = frozenset({"desktop", "touch"})
