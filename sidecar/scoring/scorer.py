"""Entry points of the sidecar pipeline: score a window, learn a window.

Per modality in the window: normalise → distance to the user's model when that
modality is enrolled (``params.enroll_windows`` learned), else to the population →
calibrated tail ``q``.  The tails combine by Fisher's method into one tail, mapped to
the score ``1 − q^0.1``.  Scripted input overrides everything: score 1, tier 3.

Tier: ``1`` below the user's t1 (``Profile.user_t1``: the global t1, raised toward the
user's own 95th-percentile genuine score for naturally noisy users, capped),
``2`` below ``t2``, else ``3``.  While *enrolling* (no modality of the window had an
enrolled model) the tier comes from the population score with the global
thresholds; the pipeline's enrolment policy may override it.

A window with no modality at all (every modality below its minimum event count) is
the caller's ``no_telemetry`` case: :func:`score_window` raises
:class:`EmptyWindowError` rather than invent a score.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sidecar.scoring.calibration import fisher_combine, score_from_tail
from sidecar.scoring.modality_model import ModalityModel
from sidecar.scoring.normalise import normalise, transform_window
from sidecar.scoring.params import ScoringParams
from sidecar.scoring.plan import plan_for
from sidecar.scoring.population import PopulationModel
from sidecar.scoring.profile import Profile
from sidecar.scoring.scripted import detect_scripted
from sidecar.telemetry import Telemetry

_NO_MODELS: Mapping[str, ModalityModel] = MappingProxyType({})


class EmptyWindowError(ValueError):
    """The window has no modality to score (the caller's ``no_telemetry`` case)."""


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """What the scorer says about one window."""

    score: float
    """Combined anomaly score in [0, 1], high = anomalous (``1 − q^0.1``)."""
    modality_scores: Mapping[str, float]
    """Per-modality scores on the same scale."""
    enrolling: bool
    """True when no modality in the window had an enrolled user model."""
    scripted: str | None
    """Name of the scripted-input rule that fired, else None."""
    learnable: bool
    """May be queued for (delayed) learning: not scripted and below ``learn_max_score``."""
    tier: int
    """1 | 2 | 3 after the global and per-user thresholds."""


def tier_for(score: float, t1: float, t2: float) -> int:
    """Map a score to tier 1 (``< t1``), 2 (``< t2``) or 3."""
    return 1 if score < t1 else 2 if score < t2 else 3


def score_window(profile: Profile | None, window: Telemetry, population: PopulationModel,
                 params: ScoringParams) -> ScoreResult:
    """Score one decoded window for a user (``profile`` None: unknown or anonymous user).

    Raises :class:`EmptyWindowError` if ``window.modalities`` is empty.
    """
    if not window.modalities:
        raise EmptyWindowError("window has no modality to score")
    values, sig = transform_window(window, population)
    if sig == 0:
        raise EmptyWindowError("window has no feature to score")
    if profile is None:
        plan = plan_for(population.plan_cache, _NO_MODELS, sig, population, params)
    else:
        plan = plan_for(profile.plans, profile.models, sig, population, params)
    tails = plan.tails(values)
    enrolled = plan.enrolled
    modality_scores = dict(zip(plan.names, map(score_from_tail, tails), strict=True))
    scripted = detect_scripted(window)
    if scripted is not None:
        # Fail closed: no human hand produced this, whatever the profile says.
        return ScoreResult(score=1.0, modality_scores=modality_scores, enrolling=not enrolled,
                           scripted=scripted, learnable=False, tier=3)
    score = score_from_tail(fisher_combine(tails))
    t1 = profile.user_t1(params) if profile is not None and enrolled else params.t1
    return ScoreResult(score=score, modality_scores=modality_scores, enrolling=not enrolled,
                       scripted=None, learnable=score < params.learn_max_score,
                       tier=tier_for(score, t1, params.t2))


def learn_window(profile: Profile, window: Telemetry, score: float, params: ScoringParams,
                 *, population: PopulationModel | None = None) -> None:
    """Apply a trusted window to the profile's models (enrolment included).

    The caller decides *when* (delayed, only windows whose result was ``learnable``, or
    confirmed by feedback); this only applies it.  ``score`` is recorded in the user's
    genuine-score history when the window was scored by the user's own model (at
    least one of its modalities already enrolled), so the dynamic threshold only sees
    user-model scores.  ``population`` defaults to the built-in one.
    """
    pop = PopulationModel.default() if population is None else population
    was_enrolled = any(profile.windows_learned(name) >= params.enroll_windows
                       for name in window.modalities)
    for name, mw in window.modalities.items():
        x, mask = normalise(name, mw.features, pop)
        profile.model_for(name, pop).learn_one(x, mask)
    if was_enrolled:
        profile.record_score(score, window.ts_ms)
    else:
        profile.updated_ms = max(profile.updated_ms, window.ts_ms)
