"""Squared distance → calibrated tail probability → anomaly score.

Three calibrations turn a squared Mahalanobis distance ``d²`` with ``df`` observed
features into a tail probability ``q`` (small = unusual for this model):

``chi2``
    ``q = Q(df/2, d²/2)``, the chi-square survival function (``scipy.special.gammaincc``,
    a fast ufunc).  Exact for a known Gaussian; too strict for a model estimated from
    few, heavy-tailed windows.
``scaled_chi2``
    ``d² ~ s·χ²(df)``: the scale ``s`` is read from the user's own genuine distances
    (their 90th percentile against the chi-square 90th percentile), blended with a
    prior scale while they are few.  Default: measured best, see ``docs/scoring.md``.
``empirical``
    The empirical distribution of the genuine distances, with a chi-square-shaped tail
    beyond the largest one (a pure ECDF cannot go below ``1/(N+1)``).

Genuine distances are kept in a :class:`GenuineSketch` as ratios ``d² / χ²₀.₉(df)`` so
windows with different numbers of observed features share one sketch.

The score is ``1 − q^0.1`` (:func:`score_from_tail`): monotone in ``q``, in [0, 1],
high = anomalous, and readable with three decimals — 0.5 is a 1-in-1 000 window,
0.75 a 1-in-a-million one.  Modalities combine by Fisher's method (:func:`fisher_combine`).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import gammainc, gammaincc, gammaincinv

SCORE_EXPONENT: Final = 0.1
"""score = 1 − q^SCORE_EXPONENT."""
MIN_TAIL: Final = 1e-300
"""Tails are floored here before taking logs."""
SKETCH_LEVEL: Final = 0.9
"""Quantile at which the scaled chi-square is matched to the genuine distances."""
PRIOR_SCALE: Final = 1.5
"""Scale assumed before genuine distances exist (a model from few windows is too tight)."""
PRIOR_SCALE_WEIGHT: Final = 8.0
"""Pseudo-distances the prior scale counts for."""
SCALE_BOUNDS: Final = (1.0, 50.0)
"""The scale never makes a model stricter than its chi-square, nor absurdly lenient."""
EMPIRICAL_MIN: Final = 16
"""Genuine distances needed before ``empirical`` uses them (else ``scaled_chi2``)."""

_MAX_TABLE_DF: Final = 64
_Q90_TABLE: Final = gammaincinv(np.arange(1, _MAX_TABLE_DF + 1) / 2.0, SKETCH_LEVEL) * 2.0


def chi2_cdf(d2: ArrayLike, df: ArrayLike) -> NDArray[np.float64]:
    """Chi-square CDF of ``d2`` with ``df`` degrees of freedom (element-wise)."""
    return np.asarray(gammainc(np.asarray(df) / 2.0, np.asarray(d2) / 2.0), dtype=np.float64)


def chi2_tail(d2: float, df: int) -> float:
    """Chi-square survival function ``P(χ²(df) > d2)`` for one value."""
    return float(gammaincc(df * 0.5, d2 * 0.5))


def chi2_quantile90(df: int) -> float:
    """The 0.9 quantile of χ²(df)."""
    if 1 <= df <= _MAX_TABLE_DF:
        return float(_Q90_TABLE[df - 1])
    return float(gammaincinv(df / 2.0, SKETCH_LEVEL) * 2.0)


def score_from_tail(q: float) -> float:
    """Map a tail probability to the anomaly score ``1 − q^0.1`` in [0, 1]."""
    return 1.0 - math.pow(max(q, 0.0), SCORE_EXPONENT)


def tail_from_score(score: float) -> float:
    """Inverse of :func:`score_from_tail`."""
    return math.pow(1.0 - score, 1.0 / SCORE_EXPONENT)


def fisher_combine(tails: Iterable[float]) -> float:
    """Fisher's method: combine independent tails into one.

    ``X = −2·Σ ln qᵢ ~ χ²(2M)``; returns its survival probability.  One modality
    returns its own tail unchanged.  Chosen over min-with-Bonferroni because an
    impostor shifts every modality a little and Fisher adds that evidence, while a
    single extreme modality still dominates (measured in ``docs/scoring.md``).
    """
    total = 0.0
    m = 0
    for q in tails:
        total += math.log(max(q, MIN_TAIL))
        m += 1
    if m == 0:
        raise ValueError("no tails to combine")
    if m == 1:
        return max(math.exp(total), 0.0)
    return float(gammaincc(float(m), -total))


def bonferroni_combine(tails: Sequence[float]) -> float:
    """Alternative combination: ``min(1, M·min qᵢ)`` (kept for the benchmark)."""
    if not tails:
        raise ValueError("no tails to combine")
    return min(1.0, len(tails) * min(tails))


def to_float32(value: float) -> float:
    """Round to float32 (what profiles store), so a round trip is exact."""
    return float(np.float32(value))


class GenuineSketch:
    """The last ``size`` genuine distance ratios ``d²/χ²₀.₉(df)`` of one model (float32).

    ``scale()`` and the sorted view are cached and recomputed only after ``add``.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self.size = size
        self._ratios: deque[float] = deque(maxlen=size)
        self._sorted: list[float] | None = None
        self._scale: float | None = None

    def __len__(self) -> int:
        return len(self._ratios)

    @property
    def ratios(self) -> tuple[float, ...]:
        """Stored ratios, oldest first."""
        return tuple(self._ratios)

    def add(self, d2: float, df: int) -> None:
        """Record the distance of a window that is about to be learned as genuine."""
        if df < 1 or not math.isfinite(d2) or d2 < 0:
            raise ValueError("need a finite d2 >= 0 and df >= 1")
        self._ratios.append(to_float32(min(d2 / chi2_quantile90(df), 1e30)))
        self._sorted = None
        self._scale = None

    def extend_ratios(self, ratios: ArrayLike) -> None:
        """Restore stored ratios (profile deserialisation): finite, >= 0, float32 values."""
        arr = np.asarray(ratios, dtype=np.float64).reshape(-1)
        if arr.size and not (np.isfinite(arr).all() and arr.min() >= 0):
            raise ValueError("ratios must be finite and >= 0")
        self._ratios.extend(arr.tolist())
        self._sorted = None
        self._scale = None

    def sorted_ratios(self) -> list[float]:
        if self._sorted is None:
            self._sorted = sorted(self._ratios)
        return self._sorted

    def scale(self) -> float:
        """Scale ``s`` of ``d² ~ s·χ²(df)``, blended with :data:`PRIOR_SCALE`, bounded."""
        if self._scale is None:
            srt = self.sorted_ratios()
            n = len(srt)
            s = PRIOR_SCALE
            if n:
                s_hat = _quantile(srt, SKETCH_LEVEL)
                s = (n * s_hat + PRIOR_SCALE_WEIGHT * PRIOR_SCALE) / (n + PRIOR_SCALE_WEIGHT)
            self._scale = min(max(s, SCALE_BOUNDS[0]), SCALE_BOUNDS[1])
        return self._scale


def _quantile(srt: Sequence[float], level: float) -> float:
    """Linear-interpolated quantile of a sorted non-empty sequence (numpy's default)."""
    pos = level * (len(srt) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(srt) - 1)
    return srt[lo] + (srt[hi] - srt[lo]) * (pos - lo)


def chi2_scale(method: str, sketch: GenuineSketch) -> float | None:
    """``s`` such that the calibrated tail is ``Q(df/2, d²/(2s))``; None if empirical applies."""
    if method == "chi2":
        return 1.0
    if method == "empirical" and len(sketch) >= EMPIRICAL_MIN:
        return None
    return sketch.scale()


def calibrated_tail(d2: float, df: int, method: str, sketch: GenuineSketch) -> float:
    """Tail probability of ``d2`` (df observed features) under the chosen calibration."""
    s = chi2_scale(method, sketch)
    if s is None:
        return _empirical_tail(d2, df, sketch)
    return chi2_tail(d2 / s, df)


def _empirical_tail(d2: float, df: int, sketch: GenuineSketch) -> float:
    srt = sketch.sorted_ratios()
    n = len(srt)
    q90 = chi2_quantile90(df)
    r = d2 / q90
    r_max = srt[-1]
    if r <= r_max:
        above = n - bisect.bisect_left(srt, r)
        return (above + 1) / (n + 1)
    s = sketch.scale()
    base = chi2_tail(r_max * q90 / s, df)
    if base <= 0.0:
        return 0.0
    return chi2_tail(d2 / s, df) / base / (n + 1)
