"""ModalityModel: K components, predictive distances, scores on generic vectors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sidecar.scoring.modality_model import ModalityModel, NotFittedError
from sidecar.scoring.params import ScoringParams


def _cluster(rng: np.random.Generator, centre: np.ndarray, n: int, sd: float = 1.0
             ) -> np.ndarray:
    return centre + rng.standard_normal((n, centre.size)) * sd


def test_scoring_before_learning_raises_not_fitted() -> None:
    """A model with no window refuses to score instead of calling everything normal."""
    model = ModalityModel(3)
    with pytest.raises(NotFittedError):
        model.score_one(np.zeros(3))


def test_single_component_distance_is_predictive() -> None:
    """K=1: distance = component distance / (1 + 1/n_eff) (mean uncertainty)."""
    rng = np.random.default_rng(0)
    model = ModalityModel(4, ScoringParams(max_components=1, winsor_z=0.0))
    for x in _cluster(rng, np.zeros(4), 6):
        model.learn_one(x)
    comp = model.components_[0]
    u = np.array([1.0, -2.0, 0.5, 3.0])
    expected = comp.squared_mahalanobis(u) / (1 + 1 / comp.n_effective_)
    assert model.squared_mahalanobis(u) == pytest.approx(expected, rel=1e-10)


def test_two_modes_spawn_two_components_and_both_score_normal() -> None:
    """Alternating well-separated modes become two components; both score low."""
    rng = np.random.default_rng(1)
    a, b = np.zeros(6), np.full(6, 8.0)
    model = ModalityModel(6)
    for xa, xb in zip(_cluster(rng, a, 40), _cluster(rng, b, 40), strict=True):
        model.learn_one(xa)
        model.learn_one(xb)
    assert len(model.components_) == 2
    scores_a = [model.score_one(x) for x in _cluster(rng, a, 200)]
    scores_b = [model.score_one(x) for x in _cluster(rng, b, 200)]
    between = model.score_one(np.full(6, 4.0))
    assert np.median(scores_a) < 0.2 and np.median(scores_b) < 0.2
    assert between > 0.75


def test_components_never_exceed_k() -> None:
    """Far windows update the nearest component once K components exist."""
    rng = np.random.default_rng(2)
    model = ModalityModel(3, ScoringParams(max_components=2))
    for k in range(5):
        for x in _cluster(rng, np.full(3, 10.0 * k), 5):
            model.learn_one(x)
    assert len(model.components_) == 2
    assert model.n_seen_ == 25
    assert sum(c.n_seen_ for c in model.components_) == 25


def test_genuine_noise_does_not_spawn_components() -> None:
    """A single Gaussian user stays one component."""
    rng = np.random.default_rng(3)
    model = ModalityModel(9)
    for x in _cluster(rng, np.ones(9), 300):
        model.learn_one(x)
    assert len(model.components_) == 1


@pytest.mark.parametrize("dim", [5, 31], ids=["d5", "d31-keystroke-vector"])
def test_generic_vectors_separate_users(dim: int) -> None:
    """On arbitrary vectors, another user's windows score far above the owner's."""
    rng = np.random.default_rng(4)
    own, other = rng.standard_normal(dim), rng.standard_normal(dim)
    model = ModalityModel(dim)
    for x in _cluster(rng, own, 60, sd=0.3):
        model.learn_one(x)
    genuine = [model.score_one(x) for x in _cluster(rng, own, 100, sd=0.3)]
    impostor = [model.score_one(x) for x in _cluster(rng, other, 100, sd=0.3)]
    assert np.quantile(genuine, 0.9) < 0.5 < np.quantile(impostor, 0.1)


def test_masked_scoring_uses_observed_features_only() -> None:
    """Masked features do not influence the distance (marginal over the observed)."""
    rng = np.random.default_rng(5)
    model = ModalityModel(4)
    for x in _cluster(rng, np.zeros(4), 30):
        model.learn_one(x)
    mask = np.array([True, True, False, True])
    u = np.array([0.5, -0.5, 0.0, 1.0])
    v = u.copy()
    v[2] = 1e9
    assert model.score_one(u, mask) == model.score_one(v, mask)
    assert model.tail(u, mask) != model.tail(u)


def test_learning_with_masks_and_scoring_stays_finite() -> None:
    """Windows with missing features learn and score without NaNs."""
    rng = np.random.default_rng(6)
    model = ModalityModel(5)
    for x in _cluster(rng, np.zeros(5), 50):
        mask = rng.random(5) > 0.3
        mask[0] = True
        model.learn_one(np.where(mask, x, np.nan), mask)
    assert all(math.isfinite(model.score_one(x)) for x in _cluster(rng, np.zeros(5), 20))


def test_calibrated_scores_rarely_flag_genuine_gaussian_windows() -> None:
    """After learning, under 2 % of fresh genuine Gaussian windows reach score 0.5."""
    rng = np.random.default_rng(7)
    cov = np.diag([1.0, 0.5, 2.0, 1.0, 0.2, 1.0, 3.0, 1.0, 0.7])
    model = ModalityModel(9)
    for x in rng.multivariate_normal(np.zeros(9), cov, size=200):
        model.learn_one(x)
    scores = np.array([model.score_one(x)
                       for x in rng.multivariate_normal(np.zeros(9), cov, size=2000)])
    assert np.mean(scores >= 0.5) < 0.02


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"dim": 0}, "dim"),
    ({"prior_variance": -1.0}, "prior_variance"),
], ids=["dim", "prior-variance"])
def test_constructor_validates(kwargs: dict[str, float], match: str) -> None:
    """Bad arguments are rejected with a message naming them."""
    dim = int(kwargs.pop("dim", 3))
    with pytest.raises(ValueError, match=match):
        ModalityModel(dim, prior_variance=kwargs.get("prior_variance"))


def _winsorised_reference(model: ModalityModel, x: np.ndarray, z: float) -> float:
    """d² by the definition: clip each deviation to ±z predictive sd, then Mahalanobis."""
    out = []
    for comp in model.components_:
        cov = comp.covariance_ * (1 + 1 / max(comp.n_effective_, 1.0))
        sd = np.sqrt(np.diag(cov))
        r = np.clip((x - comp.location_) / sd, -z, z) * sd
        out.append(float(r @ np.linalg.solve(cov, r)))
    return min(out)


@pytest.mark.parametrize("k", [1, 3])
def test_winsorised_distance_matches_its_definition(k: int) -> None:
    """winsor_z: each feature's deviation is clipped to ±z predictive sd before d²."""
    rng = np.random.default_rng(7)
    model = ModalityModel(5, ScoringParams(max_components=k, winsor_z=3.0))
    for i in range(60):
        model.learn_one(_cluster(rng, np.full(5, 10.0 * (i % k)), 1)[0])
    assert len(model.components_) == k
    for x in [np.zeros(5), np.array([0.0, 0.0, 25.0, 0.0, 0.0]), np.full(5, 4.0)]:
        assert model.squared_mahalanobis(x) == pytest.approx(
            _winsorised_reference(model, x, 3.0), rel=1e-9)


def test_one_far_feature_adds_a_bounded_amount_when_winsorised() -> None:
    """A single feature 50 sd out: unbounded without winsorising, bounded with it."""
    rng = np.random.default_rng(8)
    data = _cluster(rng, np.zeros(6), 40)
    models = {z: ModalityModel(6, ScoringParams(max_components=1, winsor_z=z))
              for z in (0.0, 3.0)}
    for m in models.values():
        for x in data:
            m.learn_one(x)
    far = np.array([50.0, 0, 0, 0, 0, 0])
    assert models[0.0].squared_mahalanobis(far) > 1000
    assert models[3.0].squared_mahalanobis(far) < 20


def test_winsorised_learning_clips_the_learned_window() -> None:
    """A learned outlier moves the mean by at most ±z sd / W, not by its full size."""
    rng = np.random.default_rng(9)
    base = _cluster(rng, np.zeros(3), 30)
    plain = ModalityModel(3, ScoringParams(max_components=1, winsor_z=0.0))
    robust = ModalityModel(3, ScoringParams(max_components=1, winsor_z=3.0))
    for m in (plain, robust):
        for x in base:
            m.learn_one(x)
    before = robust.components_[0].location_.copy()
    outlier = np.array([100.0, 0.0, 0.0])
    plain.learn_one(outlier)
    robust.learn_one(outlier)
    assert plain.components_[0].location_[0] > 2.0
    assert robust.components_[0].location_[0] - before[0] < 0.5


def test_winsorising_does_not_hide_a_second_mode() -> None:
    """Spawning is judged on the unclipped distance: two modes still give two components."""
    rng = np.random.default_rng(10)
    model = ModalityModel(6, ScoringParams(winsor_z=3.0))
    for xa, xb in zip(_cluster(rng, np.zeros(6), 40), _cluster(rng, np.full(6, 8.0), 40),
                      strict=True):
        model.learn_one(xa)
        model.learn_one(xb)
    assert len(model.components_) == 2
