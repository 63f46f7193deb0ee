"""Synthetic v1 telemetry windows for named personas (pure, seeded).

Used by tests, the benchmark, the demo's traffic simulator and end-to-end tests.  A
human persona is drawn from the population table (:mod:`sidecar.scoring.population`):
its personal mean per modality is ``N(0, R)`` in normalised space scaled by the
between-human share ``sqrt(1 − within²)``; each window adds the user's own
window-to-window variation — multivariate Student-t, by default with 8 degrees of
freedom (heavier tails than the Gaussian the models assume, as real windows have),
scaled by ``within · spread``.
Features are mapped back to their units, clipped to the documented range and rounded
like the collector rounds them.  Mouse windows without a click lack the click
features.

Different seeds give clearly different but human-plausible users; the same seed
always gives the same persona, and the same ``rng`` state the same window.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Final, Literal

import numpy as np

from sidecar.features import DEVICES, MODALITIES
from sidecar.scoring.population import PopulationModel

Kind = Literal["human", "bot_constant_keys", "bot_straight_mouse"]

DEFAULT_TAIL_DOF: Final = 8.0
_EVENTS: Final = {"keys": (15, 80), "mouse": (40, 300), "scroll": (6, 40), "touch": (6, 30)}
_DESKTOP_RATES: Final = {"keys": 0.6, "mouse": 0.95, "scroll": 0.5, "touch": 0.0}
_TOUCH_RATES: Final = {"keys": 0.5, "mouse": 0.0, "scroll": 0.6, "touch": 0.95}
_NO_CLICK_P: Final = 0.15
_CLICK_FEATURES: Final = ("hesitation_mean", "click_hold_mean")

# Shifts (normalised units) from a desktop mouse to a touchpad, and from a physical to
# an on-screen keyboard — the second behaviour mode of `Persona.two_mode`/`touch_user`.
_TOUCHPAD_SHIFT: Final = {"speed_mean": -1.4, "speed_std": -1.4, "accel_mean": -1.2,
                          "accel_std": -1.2, "straightness": -1.0, "curvature_mean": 1.0,
                          "hesitation_mean": 0.8, "click_hold_mean": -1.5}
_ONSCREEN_KEYS_SHIFT: Final = {"hold_mean": -1.1, "dd_mean": 1.4, "dd_std": 0.8,
                               "ud_mean": 2.2, "ud_std": 0.8, "rate": -1.4,
                               "backspace_ratio": 1.0}

# Constant-timing bot: every key held 60 ms, one key every 120 ms, no pauses.
_BOT_KEYS: Final = {"hold_mean": 60.0, "hold_std": 0.0, "dd_mean": 120.0, "dd_std": 0.0,
                    "ud_mean": 60.0, "ud_std": 0.0, "rate": 8.33, "pause_ratio": 0.0,
                    "backspace_ratio": 0.0}
# Straight constant-speed mouse: linear moves at 1.2 px/ms, instant clicks.
_BOT_MOUSE: Final = {"speed_mean": 1.2, "speed_std": 0.0, "accel_mean": 0.0,
                     "accel_std": 0.0, "straightness": 1.0, "curvature_mean": 0.0,
                     "hesitation_mean": 0.0, "click_hold_mean": 0.0}


@dataclass(frozen=True, slots=True)
class Persona:
    """A synthetic user (or bot).  Build one with the class-method constructors.

    ``modes`` holds one or more behaviour modes, each a mapping modality → personal
    mean (d,) in normalised space; a window picks a mode with ``mode_weights``.
    ``spread`` multiplies the population's within-user variation (1 = typical,
    2 = a noisy user).  ``rates`` is the chance a modality appears in a window.
    ``tail_dof`` is the Student-t degrees of freedom of the window-to-window variation
    (``inf``: Gaussian; smaller: heavier tails).
    """

    name: str
    kind: Kind
    device: str
    modes: tuple[Mapping[str, tuple[float, ...]], ...]
    mode_weights: tuple[float, ...]
    spread: float = 1.0
    rates: Mapping[str, float] = field(default_factory=lambda: dict(_DESKTOP_RATES))
    tail_dof: float = DEFAULT_TAIL_DOF

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError("device must be 'desktop' or 'touch'")
        if len(self.modes) != len(self.mode_weights):
            raise ValueError("modes and mode_weights must have the same length")
        if not self.spread > 0:
            raise ValueError("spread must be > 0")
        if not self.tail_dof > 2:
            raise ValueError("tail_dof must be > 2 (inf for Gaussian)")

    @classmethod
    def human(cls, seed: int, *, name: str | None = None, device: str = "desktop",
              spread: float = 1.0, style: Mapping[str, Mapping[str, float]] | None = None
              ) -> Persona:
        """A human drawn from the population with ``seed``.

        ``style`` pins features in their units, e.g. ``{"keys": {"hold_mean": 95.0}}``.
        """
        mode = _draw_mode(np.random.default_rng(seed), style or {})
        rates = _TOUCH_RATES if device == "touch" else _DESKTOP_RATES
        return cls(name=name or f"human-{seed}", kind="human", device=device, modes=(mode,),
                   mode_weights=(1.0,), spread=spread, rates=dict(rates))

    @classmethod
    def impostor(cls, seed: int) -> Persona:
        """Another human (a different draw) presenting someone else's identity."""
        p = cls.human(seed + 1_000_003)
        return replace(p, name=f"impostor-{seed}")

    @classmethod
    def touch_user(cls, seed: int) -> Persona:
        """A human on a phone or tablet: on-screen keyboard, swipes and touch scrolling."""
        base = _draw_mode(np.random.default_rng(seed), {})
        mode = _shifted(base, "keys", _ONSCREEN_KEYS_SHIFT)
        return cls(name=f"touch-{seed}", kind="human", device="touch", modes=(mode,),
                   mode_weights=(1.0,), rates=dict(_TOUCH_RATES))

    @classmethod
    def two_mode(cls, seed: int) -> Persona:
        """A desktop human who alternates between a mouse and a laptop touchpad."""
        base = _draw_mode(np.random.default_rng(seed), {})
        pad = _shifted(base, "mouse", _TOUCHPAD_SHIFT)
        return cls(name=f"two-mode-{seed}", kind="human", device="desktop",
                   modes=(base, pad), mode_weights=(0.5, 0.5), rates=dict(_DESKTOP_RATES))

    @classmethod
    def bot_constant_keys(cls, seed: int = 0) -> Persona:
        """A script typing with constant key timings (keys only)."""
        return cls(name=f"bot-keys-{seed}", kind="bot_constant_keys", device="desktop",
                   modes=(), mode_weights=(), rates={"keys": 1.0})

    @classmethod
    def bot_straight_mouse(cls, seed: int = 0) -> Persona:
        """A script moving the mouse in straight lines at constant speed (mouse only)."""
        return cls(name=f"bot-mouse-{seed}", kind="bot_straight_mouse", device="desktop",
                   modes=(), mode_weights=(), rates={"mouse": 1.0})


def _draw_mode(rng: np.random.Generator, style: Mapping[str, Mapping[str, float]]
               ) -> dict[str, tuple[float, ...]]:
    pop = PopulationModel.default()
    mode: dict[str, tuple[float, ...]] = {}
    for name, prior in pop.modalities.items():
        between = np.sqrt(1.0 - prior.within_variance)
        chol = np.linalg.cholesky(prior.covariance)
        mean = (chol @ rng.standard_normal(prior.spec.dim)) * between
        for feat, value in style.get(name, {}).items():
            i = prior.spec.names.index(feat)
            _, is_log, eps, loc, inv_scale = prior.rows[i]
            mean[i] = ((math.log(value + eps) if is_log else value) - loc) * inv_scale
        mode[name] = tuple(float(v) for v in mean)
    return mode


def _shifted(mode: Mapping[str, tuple[float, ...]], modality: str,
             shift: Mapping[str, float]) -> dict[str, tuple[float, ...]]:
    names = MODALITIES[modality].names
    out = dict(mode)
    out[modality] = tuple(v + shift.get(n, 0.0) for n, v in zip(names, mode[modality],
                                                                 strict=True))
    return out


def synthetic_sid(rng: np.random.Generator) -> str:
    """A random 128-bit session id, base64url without padding (22 characters)."""
    return base64.urlsafe_b64encode(rng.bytes(16)).rstrip(b"=").decode()


def synthetic_window(persona: Persona, rng: np.random.Generator, *, sid: str, seq: int,
                     ts_ms: int, modalities: Collection[str] | None = None) -> dict[str, object]:
    """One v1 wire document (the dict ``telemetry.encode_deflate`` takes).

    ``modalities`` forces exactly these modalities; by default each appears with the
    persona's rate (at least one always does).
    """
    if modalities is None:
        names = [m for m, p in persona.rates.items() if p > 0 and rng.random() < p]
        if not names:
            names = [max(persona.rates, key=lambda m: persona.rates[m])]
    else:
        names = [m for m in MODALITIES if m in modalities]
    mode = None
    if persona.modes:
        mode = persona.modes[int(rng.choice(len(persona.modes), p=persona.mode_weights))]
    m: dict[str, object] = {}
    for name in names:
        lo, hi = _EVENTS[name]
        feats = _features(persona, mode, name, rng)
        m[name] = {"n": int(rng.integers(lo, hi + 1)), "f": feats}
    return {"sid": sid, "seq": seq, "ts": ts_ms, "dev": persona.device, "m": m}


def _features(persona: Persona, mode: Mapping[str, tuple[float, ...]] | None, name: str,
              rng: np.random.Generator) -> dict[str, float]:
    spec = MODALITIES[name]
    if persona.kind == "bot_constant_keys" and name == "keys":
        raw = dict(_BOT_KEYS)
    elif persona.kind == "bot_straight_mouse" and name == "mouse":
        raw = dict(_BOT_MOUSE)
    else:
        raw = _human_features(persona, mode, name, rng)
    out: dict[str, float] = {}
    for fs in spec.features:
        if fs.name in raw:
            out[fs.name] = round(min(max(raw[fs.name], fs.lo), fs.hi), fs.decimals)
    return out


def _human_features(persona: Persona, mode: Mapping[str, tuple[float, ...]] | None,
                    name: str, rng: np.random.Generator) -> dict[str, float]:
    prior = PopulationModel.default().prior(name)
    d = prior.spec.dim
    mean = np.zeros(d) if mode is None else np.asarray(mode[name])
    chol = np.linalg.cholesky(prior.covariance)
    # Multivariate Student-t with unit variance, correlated like the population.
    t = chol @ rng.standard_normal(d)
    nu = persona.tail_dof
    if math.isfinite(nu):
        t *= math.sqrt((nu - 2.0) / rng.chisquare(nu))
    z = mean + np.sqrt(prior.within_variance) * persona.spread * t
    raw: dict[str, float] = {}
    for (fname, is_log, eps, loc, inv_scale), zi in zip(prior.rows, z, strict=True):
        v = zi / inv_scale + loc
        raw[fname] = math.exp(v) - eps if is_log else v
    if name == "mouse" and rng.random() < _NO_CLICK_P:
        for fname in _CLICK_FEATURES:
            raw.pop(fname)
    return raw
