"""Behavioural scoring: pure maths, no I/O, no grpc.

Layers, bottom up: :mod:`.estimator` (online shrunk Gaussian) → :mod:`.calibration`
(distance → tail → score) → :mod:`.modality_model` (K components, generic vectors) →
:mod:`.population` / :mod:`.normalise` (v1 features) → :mod:`.profile` (a user's state
and its bytes) → :mod:`.scorer` (what the pipeline calls).  See ``docs/scoring.md``.
"""

from sidecar.scoring.calibration import (
    chi2_cdf,
    chi2_tail,
    fisher_combine,
    score_from_tail,
    tail_from_score,
)
from sidecar.scoring.estimator import OnlineShrunkGaussian
from sidecar.scoring.modality_model import ModalityModel, NotFittedError
from sidecar.scoring.normalise import normalise
from sidecar.scoring.params import ScoringParams
from sidecar.scoring.population import PopulationModel
from sidecar.scoring.profile import Profile, ProfileFormatError
from sidecar.scoring.scorer import (
    EmptyWindowError,
    ScoreResult,
    learn_window,
    score_window,
    tier_for,
)
from sidecar.scoring.scripted import RULE_NAMES, detect_scripted
from sidecar.scoring.synthetic import Persona, synthetic_sid, synthetic_window

__all__ = [
    "RULE_NAMES",
    "EmptyWindowError",
    "ModalityModel",
    "NotFittedError",
    "OnlineShrunkGaussian",
    "Persona",
    "PopulationModel",
    "Profile",
    "ProfileFormatError",
    "ScoreResult",
    "ScoringParams",
    "chi2_cdf",
    "chi2_tail",
    "detect_scripted",
    "fisher_combine",
    "learn_window",
    "normalise",
    "score_from_tail",
    "score_window",
    "synthetic_sid",
    "synthetic_window",
    "tail_from_score",
    "tier_for",
]
