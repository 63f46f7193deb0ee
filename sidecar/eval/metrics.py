"""Verification error rates from anomaly scores (high score = more anomalous).

Vocabulary after Killourhy & Maxion (DSN 2009):

* *genuine* scores come from the enrolled user's own test samples, *impostor*
  scores from other people's samples;
* a threshold ``t`` **flags** every sample whose score is ``>= t``;
* the **false-alarm rate** is the share of genuine samples flagged (FRR in other
  papers), the **miss rate** the share of impostor samples not flagged (FAR in
  other papers);
* the **equal-error rate** (EER) is where the two rates meet, the **zero-miss
  false-alarm rate** the false-alarm rate of the lowest threshold that still flags
  every impostor.

Everything works on 1-D float arrays of any length ``>= 1`` per class; nothing
here depends on the rest of bioshard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

__all__ = [
    "ErrorCurve",
    "auc",
    "average_miss_at",
    "eer",
    "error_curve",
    "zero_miss_false_alarm",
]


@dataclass(frozen=True, slots=True)
class ErrorCurve:
    """Every operating point of a score-threshold detector.

    ``thresholds`` has shape ``(p,)``: the distinct scores in increasing order,
    then ``+inf`` (flag nothing).  ``false_alarm`` and ``miss`` have shape
    ``(p,)``; ``false_alarm`` is non-increasing and ``miss`` non-decreasing, from
    ``(1, 0)`` at the lowest threshold to ``(0, 1)`` at ``+inf``.
    """

    thresholds: FloatArray
    false_alarm: FloatArray
    miss: FloatArray


def _as_scores(values: ArrayLike, name: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError(f"{name}: need at least one score")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: scores must be finite")
    return arr


def error_curve(genuine: ArrayLike, impostor: ArrayLike) -> ErrorCurve:
    """Return the false-alarm and miss rate at every distinct threshold."""
    gen = np.sort(_as_scores(genuine, "genuine"))
    imp = np.sort(_as_scores(impostor, "impostor"))
    thresholds = np.append(np.unique(np.concatenate([gen, imp])), np.inf)
    # flagged when score >= t: count of scores below t via searchsorted(left)
    false_alarm = 1.0 - np.searchsorted(gen, thresholds, side="left") / gen.size
    miss = np.searchsorted(imp, thresholds, side="left") / imp.size
    return ErrorCurve(thresholds, false_alarm.astype(np.float64), miss.astype(np.float64))


def eer(genuine: ArrayLike, impostor: ArrayLike) -> float:
    """Equal-error rate.

    The curve's operating points are joined by straight lines; the EER is the
    rate where that polyline crosses ``false_alarm == miss`` (exact when an
    operating point lies on the diagonal).
    """
    curve = error_curve(genuine, impostor)
    diff = curve.false_alarm - curve.miss  # non-increasing, from +1 to -1
    i = int(np.argmax(diff <= 0.0))
    if diff[i] == 0.0 or i == 0:
        return float(curve.false_alarm[i])
    d0, d1 = diff[i - 1], diff[i]
    alpha = d0 / (d0 - d1)
    fa0, fa1 = curve.false_alarm[i - 1], curve.false_alarm[i]
    return float(fa0 + alpha * (fa1 - fa0))


def zero_miss_false_alarm(genuine: ArrayLike, impostor: ArrayLike) -> float:
    """False-alarm rate at the highest threshold that flags every impostor."""
    gen = _as_scores(genuine, "genuine")
    imp = _as_scores(impostor, "impostor")
    return float(np.mean(gen >= imp.min()))


def auc(genuine: ArrayLike, impostor: ArrayLike) -> float:
    """Area under the ROC curve: P(impostor score > genuine score) + ½ P(tie).

    Computed from mid-ranks (Mann-Whitney U), O((n+m) log(n+m)).
    """
    gen = _as_scores(genuine, "genuine")
    imp = _as_scores(impostor, "impostor")
    both = np.concatenate([gen, imp])
    order = np.argsort(both, kind="mergesort")
    sorted_both = both[order]
    # mid-ranks (1-based) for ties
    _, first, counts = np.unique(sorted_both, return_index=True, return_counts=True)
    mid = first + (counts + 1) / 2.0
    ranks = np.empty_like(both)
    ranks[order] = np.repeat(mid, counts)
    u_imp = ranks[gen.size:].sum() - imp.size * (imp.size + 1) / 2.0
    return float(u_imp / (gen.size * imp.size))


def average_miss_at(curves: Sequence[ErrorCurve], false_alarm_grid: ArrayLike) -> FloatArray:
    """Vertically averaged miss rate of several curves (e.g. one per subject).

    For each false-alarm rate in ``false_alarm_grid`` (shape ``(g,)``) each curve
    gives the lowest miss rate it reaches at or below that false-alarm rate; the
    result (shape ``(g,)``) is the mean over curves — Fawcett's vertical averaging,
    so that the DET plot matches the per-subject mean EER of the tables.
    """
    grid = np.asarray(false_alarm_grid, dtype=np.float64)
    if not curves:
        raise ValueError("need at least one curve")
    out = np.zeros_like(grid)
    for curve in curves:
        # false_alarm is non-increasing; reverse to increasing for searchsorted
        fa = curve.false_alarm[::-1]
        miss = curve.miss[::-1]
        idx = np.searchsorted(fa, grid, side="right") - 1
        out += miss[np.clip(idx, 0, None)]
    return out / len(curves)
