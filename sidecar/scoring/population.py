"""Built-in population prior: what v1 features look like across humans.

One readable table per modality.  For every feature:

``median``
    a typical human's window value, in the feature's unit;
``scale``
    how much *different humans* spread, in the transformed space (standard deviation
    of ``log(x + eps)`` for log features, of ``x`` for linear ones);
``within``
    how much *one human* varies from window to window, as a fraction of ``scale``.

Normalised space is ``z = (transform(x) − transform(median)) / scale``: humans are
roughly ``N(0, R)`` there with ``R`` the correlation matrix built from
``CORRELATIONS``, and one user's windows spread by about ``within`` around their own
mean.  ``within²`` is therefore the prior variance of every user model.

Where the numbers come from (rounded; only their order of magnitude matters, the
scales are deliberately broad so that unusual humans are not flagged):

* keys — hold (dwell) ≈ 100 ms and inter-key ≈ 200–240 ms for average typists
  (Dhakal et al., "Observations on Typing from 136 Million Keystrokes", CHI 2018:
  mean inter-key interval 239 ms, 52 WPM, sd 20 WPM; Killourhy & Maxion, DSN 2009:
  hold times 80–120 ms); up-down = down-down − hold; backspace ≈ 5 % of keys; pauses
  over 500 ms in ≈ 10 % of gaps.  The dd/ud scales also cover on-screen keyboards
  (slower, ≈ 300–400 ms per key).
* mouse — cursor speeds of 0.2–2 px/ms with speed sd of the same order, path
  straightness (chord/path) ≈ 0.7–0.9 and click hold ≈ 80–130 ms are the typical
  ranges reported in mouse-dynamics studies (Ahmed & Traore, IEEE TDSC 2007; Shen et
  al., IEEE TIFS 2013; the Balabit challenge data); hesitation before a click of a
  few hundred ms.
* scroll — a wheel notch is 100 px (≈ 50–120 px per event), touchpads and touch
  screens send many small deltas (5–30 px), hence the wide log scale.
* touch — swipe duration ≈ 100–400 ms, speed ≈ 0.5–2 px/ms, straightness > 0.9
  (Frank et al., "Touchalytics", IEEE TIFS 2013); pressure and contact area are
  device-specific (many devices report a constant), hence broad.

These are engineering priors for scoring users who are still enrolling and anonymous
traffic — they answer "is this plausibly a human?", not "is this that human?".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Final

import numpy as np

from sidecar.features import MODALITIES, ModalitySpec
from sidecar.scoring.calibration import chi2_tail
from sidecar.scoring.estimator import BoolArray, FloatArray, whitening_matrix

if TYPE_CHECKING:
    from sidecar.scoring.plan import ScoringPlan

SIGNATURE_BITS: Final = 16
"""Bits per modality in a feature-presence signature (every v1 modality has fewer)."""

# modality → feature → (median [feature unit], scale [transformed], within [fraction])
POPULATION_TABLE: Final[Mapping[str, Mapping[str, tuple[float, float, float]]]] = {
    "keys": {
        "hold_mean":        (100.0, 0.20, 0.30),
        "hold_std":         (25.0, 0.35, 0.35),
        "dd_mean":          (200.0, 0.35, 0.25),
        "dd_std":           (110.0, 0.40, 0.35),
        "ud_mean":          (100.0, 60.0, 0.30),
        "ud_std":           (110.0, 0.40, 0.35),
        "rate":             (5.0, 0.35, 0.25),
        "pause_ratio":      (0.08, 0.06, 0.50),
        "backspace_ratio":  (0.05, 0.04, 0.60),
    },
    "mouse": {
        "speed_mean":       (0.6, 0.50, 0.30),
        "speed_std":        (0.6, 0.50, 0.35),
        "accel_mean":       (0.01, 0.60, 0.35),
        "accel_std":        (0.02, 0.60, 0.40),
        "straightness":     (0.80, 0.10, 0.45),
        "curvature_mean":   (0.03, 0.60, 0.40),
        "hesitation_mean":  (350.0, 0.50, 0.45),
        "click_hold_mean":  (105.0, 0.25, 0.30),
    },
    "scroll": {
        "speed_mean":       (1.5, 0.70, 0.40),
        "speed_std":        (1.5, 0.70, 0.45),
        "delta_mean":       (100.0, 0.90, 0.25),
        "burst_len_mean":   (6.0, 0.60, 0.40),
        "dir_change_ratio": (0.10, 0.08, 0.55),
    },
    "touch": {
        "swipe_speed_mean":    (1.0, 0.50, 0.30),
        "swipe_speed_std":     (0.6, 0.50, 0.40),
        "swipe_duration_mean": (250.0, 0.40, 0.30),
        "swipe_straightness":  (0.93, 0.05, 0.45),
        "pressure_mean":       (0.50, 0.20, 0.20),
        "pressure_std":        (0.05, 0.05, 0.45),
        "contact_mean":        (400.0, 0.50, 0.25),
        "multi_touch_ratio":   (0.03, 0.05, 0.55),
    },
}

# Correlations between humans in normalised space (the rest are 0).
CORRELATIONS: Final[Mapping[str, tuple[tuple[str, str, float], ...]]] = {
    "keys": (
        ("hold_mean", "hold_std", 0.4),
        ("hold_mean", "dd_mean", 0.3),
        ("dd_mean", "dd_std", 0.5),
        ("dd_mean", "ud_mean", 0.6),
        ("dd_mean", "rate", -0.6),
        ("ud_mean", "rate", -0.4),
        ("dd_std", "ud_std", 0.6),
        ("dd_std", "rate", -0.3),
        ("dd_std", "ud_mean", 0.3),
        ("dd_mean", "ud_std", 0.3),
    ),
    "mouse": (
        ("speed_mean", "speed_std", 0.7),
        ("accel_mean", "accel_std", 0.7),
        ("speed_mean", "accel_mean", 0.5),
        ("speed_std", "accel_std", 0.5),
        ("speed_mean", "accel_std", 0.35),
        ("speed_std", "accel_mean", 0.35),
        ("straightness", "curvature_mean", -0.4),
    ),
    "scroll": (
        ("speed_mean", "speed_std", 0.8),
        ("speed_mean", "delta_mean", 0.5),
    ),
    "touch": (
        ("swipe_speed_mean", "swipe_speed_std", 0.7),
        ("swipe_speed_mean", "swipe_duration_mean", -0.4),
        ("pressure_mean", "contact_mean", 0.3),
    ),
}


@dataclass(frozen=True, slots=True)
class ModalityPrior:
    """Population numbers for one modality, aligned with ``spec.features`` (d,)."""

    spec: ModalitySpec
    rows: tuple[tuple[str, bool, float, float, float], ...]
    """Per feature ``(name, is_log, eps, location, 1/scale)`` for normalisation."""
    signature_rows: tuple[tuple[int, str, bool, float], ...]
    """Per feature ``(bit, name, is_log, eps)``: its bit in a window's feature-presence
    signature (:data:`SIGNATURE_BITS` per modality, in ``MODALITIES`` order)."""
    location: FloatArray  # (d,) transformed median
    scale: FloatArray  # (d,)
    within_variance: FloatArray  # (d,) prior variance of a user model, normalised space
    covariance: FloatArray  # (d, d) between-human covariance, normalised space
    _whiten: dict[bytes, tuple[BoolArray | None, FloatArray, int]] = field(default_factory=dict)
    plan_blocks: dict[bytes, object] = field(default_factory=dict)
    """Compiled plan blocks per mask (a cache for :mod:`.plan`)."""

    def whitening(self, mask: BoolArray) -> tuple[BoolArray | None, FloatArray, int]:
        """``(observed or None, A, df)`` with ``d² = ‖A·x_o‖²`` for ``mask`` (d,) (cached)."""
        key = mask.tobytes()
        hit = self._whiten.get(key)
        if hit is None:
            if mask.all():
                hit = (None, whitening_matrix(self.covariance), self.spec.dim)
            else:
                sub = self.covariance[np.ix_(mask, mask)]
                hit = (mask.copy(), whitening_matrix(sub), int(mask.sum()))
            self._whiten[key] = hit
        return hit

    def squared_mahalanobis(self, x: FloatArray, mask: BoolArray) -> tuple[float, int]:
        """Squared distance of normalised ``x`` (d,) to the population, and its df."""
        obs, a, df = self.whitening(mask)
        y = a @ (x if obs is None else x[obs])
        return float(y @ y), df


def _transform(is_log: bool, eps: float, value: float) -> float:
    return math.log(value + eps) if is_log else value


def _build(index: int, spec: ModalitySpec, table: Mapping[str, tuple[float, float, float]],
           correlations: tuple[tuple[str, str, float], ...]) -> ModalityPrior:
    rows = []
    loc, scale, within = [], [], []
    for fs in spec.features:
        median, sc, wi = table[fs.name]
        if not (sc > 0 and 0 < wi < 1):
            raise ValueError(f"population table: bad scale/within for {spec.name}.{fs.name}")
        is_log = fs.transform == "log"
        lo = _transform(is_log, fs.eps, median)
        rows.append((fs.name, is_log, fs.eps, lo, 1.0 / sc))
        loc.append(lo)
        scale.append(sc)
        within.append(wi)
    pos = {n: i for i, n in enumerate(spec.names)}
    corr = np.eye(spec.dim)
    for a, b, r in correlations:
        corr[pos[a], pos[b]] = corr[pos[b], pos[a]] = r
    if np.linalg.eigvalsh(corr).min() <= 0:
        raise ValueError(f"population correlations for {spec.name} are not positive definite")
    w = np.asarray(within)
    sig_rows = tuple((1 << (SIGNATURE_BITS * index + j), name, is_log, eps)
                     for j, (name, is_log, eps, _, _) in enumerate(rows))
    return ModalityPrior(spec=spec, rows=tuple(rows), signature_rows=sig_rows,
                         location=np.asarray(loc), scale=np.asarray(scale),
                         within_variance=w * w, covariance=corr)


class PopulationModel:
    """The population prior for every v1 modality; scores humans in general.

    Used to normalise features (:mod:`sidecar.scoring.normalise`), as the prior variance
    of new user models, and to score modalities a user has not enrolled yet.
    Immutable after construction (safe to share between threads).
    """

    def __init__(self, table: Mapping[str, Mapping[str, tuple[float, float, float]]]
                 = POPULATION_TABLE,
                 correlations: Mapping[str, tuple[tuple[str, str, float], ...]]
                 = CORRELATIONS) -> None:
        self.modalities: dict[str, ModalityPrior] = {
            name: _build(i, spec, table[name], correlations.get(name, ()))
            for i, (name, spec) in enumerate(MODALITIES.items())
        }
        self.plan_cache: dict[int, ScoringPlan] = {}
        """Compiled plans for users without a profile (see :mod:`.plan`)."""

    @staticmethod
    def default() -> PopulationModel:
        """The shared built-in model (built once)."""
        return _default_population()

    def prior(self, modality: str) -> ModalityPrior:
        """Numbers for one modality; ``KeyError`` for an unknown one."""
        return self.modalities[modality]

    def tail(self, modality: str, x: FloatArray, mask: BoolArray) -> float:
        """Chi-square tail of normalised ``x`` (d,) under the population.

        Small means "not like a human": ``mask`` (d,) marks the observed features.
        """
        d2, df = self.modalities[modality].squared_mahalanobis(x, mask)
        return chi2_tail(d2, df)


@cache
def _default_population() -> PopulationModel:
    return PopulationModel()
