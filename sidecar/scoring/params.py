"""Scoring parameters: every knob with a named default, validated once.

Scores live on one scale everywhere (see :mod:`sidecar.scoring.calibration`):
``score = 1 - q ** 0.1`` where ``q`` is the calibrated tail probability of the
window, so ``0.5`` is a 1-in-1 000 window and ``0.75`` a 1-in-1 000 000 one.  The
thresholds below are on that scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

Calibration = Literal["chi2", "scaled_chi2", "empirical"]
CALIBRATIONS: Final = ("chi2", "scaled_chi2", "empirical")

DEFAULT_HALF_LIFE_WINDOWS: Final = 50.0
DEFAULT_PRIOR_STRENGTH: Final = 4.0
DEFAULT_PRIOR_VARIANCE: Final = 1.0
DEFAULT_MAX_COMPONENTS: Final = 3
DEFAULT_SPAWN_TAIL: Final = 1e-4
DEFAULT_ENROLL_WINDOWS: Final = 5
DEFAULT_T1: Final = 0.5
DEFAULT_T2: Final = 0.75
DEFAULT_LEARN_MAX_SCORE: Final = 0.6
DEFAULT_HISTORY_SIZE: Final = 200
DEFAULT_HISTORY_MIN: Final = 20
DEFAULT_DYNAMIC_QUANTILE: Final = 0.95
DEFAULT_T1_CAP: Final = 0.65
DEFAULT_CALIBRATION: Final[Calibration] = "scaled_chi2"
DEFAULT_SKETCH_SIZE: Final = 64
DEFAULT_WINSOR_Z: Final = 0.0


@dataclass(frozen=True, slots=True)
class ScoringParams:
    """Hyper-parameters of the scorer.  Immutable; ``__post_init__`` rejects bad values.

    Model hyper-parameters (half-life, prior, components, calibration) are bound to a
    :class:`~sidecar.scoring.modality_model.ModalityModel` when it is created or loaded
    from bytes; the policy fields (enrolment, thresholds, history) are read per call.
    """

    half_life_windows: float = DEFAULT_HALF_LIFE_WINDOWS
    """Learned windows after which a window's weight has halved (``inf``: never forget)."""
    prior_strength: float = DEFAULT_PRIOR_STRENGTH
    """Pseudo-windows of the prior diagonal covariance blended into each component."""
    prior_variance: float = DEFAULT_PRIOR_VARIANCE
    """Prior per-dimension variance for generic vectors (v1 modalities use the
    population table's within-user variances instead)."""
    max_components: int = DEFAULT_MAX_COMPONENTS
    """K: behaviour modes (device, posture) one modality model may hold."""
    spawn_tail: float = DEFAULT_SPAWN_TAIL
    """A learned window whose chi-square tail under its nearest component is below this
    starts a new component (while fewer than ``max_components`` exist)."""
    enroll_windows: int = DEFAULT_ENROLL_WINDOWS
    """Windows learned per modality before the user's model (not the population) scores it."""
    t1: float = DEFAULT_T1
    """Score at or above which a window leaves tier 1."""
    t2: float = DEFAULT_T2
    """Score at or above which a window is tier 3."""
    learn_max_score: float = DEFAULT_LEARN_MAX_SCORE
    """Only windows scoring below this are learnable (and never scripted ones)."""
    dynamic_thresholds: bool = True
    """Raise the user's t1 to a quantile of their own genuine scores (bounded by t1_cap)."""
    history_size: int = DEFAULT_HISTORY_SIZE
    """Genuine scores kept per user for the dynamic threshold."""
    history_min: int = DEFAULT_HISTORY_MIN
    """Genuine scores needed before the dynamic threshold applies."""
    dynamic_quantile: float = DEFAULT_DYNAMIC_QUANTILE
    """Quantile of the user's genuine scores that t1 is raised to."""
    t1_cap: float = DEFAULT_T1_CAP
    """The dynamic t1 never exceeds this (and ``t1 <= t1_cap < t2``)."""
    calibration: Calibration = DEFAULT_CALIBRATION
    """Squared distance → tail probability: ``chi2``, ``scaled_chi2`` or ``empirical``."""
    sketch_size: int = DEFAULT_SKETCH_SIZE
    """Genuine distances kept per modality model for the calibration."""
    winsor_z: float = DEFAULT_WINSOR_Z
    """Winsorising of user models: each observed feature's deviation from a component's
    mean is clipped to ``±winsor_z`` of that component's predictive standard deviation
    before the Mahalanobis distance, when scoring and when learning (``0``: off, the
    default).  One feature far out (a single hesitation) then cannot dominate the
    distance: it helps on heavy-tailed, high-dimensional vectors (per-key latencies),
    but it caps the distance of the low-dimensional v1 modalities and moves their tiers
    (see docs/scoring.md), so it is off for the sidecar."""

    def __post_init__(self) -> None:
        if not (self.half_life_windows > 0 and not math.isnan(self.half_life_windows)):
            raise ValueError("half_life_windows must be > 0 (inf allowed)")
        if not (math.isfinite(self.prior_strength) and self.prior_strength > 0):
            raise ValueError("prior_strength must be finite and > 0 (keeps every "
                             "covariance invertible)")
        if not (math.isfinite(self.prior_variance) and self.prior_variance > 0):
            raise ValueError("prior_variance must be finite and > 0")
        _int_at_least("max_components", self.max_components, 1)
        if not 0.0 < self.spawn_tail < 1.0:
            raise ValueError("spawn_tail must be in (0, 1)")
        _int_at_least("enroll_windows", self.enroll_windows, 1)
        for name in ("t1", "t2", "learn_max_score", "t1_cap"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 < value < 1.0):
                raise ValueError(f"{name} must be in (0, 1)")
        if self.t1 >= self.t2:
            raise ValueError("t1 must be < t2")
        if not self.t1 <= self.t1_cap < self.t2:
            raise ValueError("t1_cap must satisfy t1 <= t1_cap < t2")
        if self.learn_max_score > self.t2:
            raise ValueError("learn_max_score must be <= t2 (tier-3 windows are never learned)")
        _int_at_least("history_size", self.history_size, 1)
        _int_at_least("history_min", self.history_min, 1)
        if self.history_min > self.history_size:
            raise ValueError("history_min must be <= history_size")
        if not 0.5 <= self.dynamic_quantile < 1.0:
            raise ValueError("dynamic_quantile must be in [0.5, 1)")
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {', '.join(CALIBRATIONS)}")
        _int_at_least("sketch_size", self.sketch_size, 4)
        if not (math.isfinite(self.winsor_z) and (self.winsor_z == 0 or self.winsor_z >= 1)):
            raise ValueError("winsor_z must be 0 (off) or a finite value >= 1")


def _int_at_least(name: str, value: int, lo: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}")
