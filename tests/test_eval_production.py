"""Tests for sidecar.eval.production: the production scorer as a benchmark detector."""

from __future__ import annotations

import numpy as np
import pytest

from sidecar.eval.metrics import eer
from sidecar.eval.mobikey import Column
from sidecar.eval.production import (
    AdaptiveProductionDetector,
    ProductionDetector,
    RobustScaler,
    production_factory,
)
from sidecar.scoring import ScoringParams

COLUMNS = (Column("hold", "log", 1.0), Column("ud", "linear"))


def test_scaler_logs_then_centres_on_the_median_and_scales_by_mad() -> None:
    """log(x + eps) for log columns, then (x − median) / (1.4826 · MAD)."""
    train = np.array([[9.0, -10.0], [99.0, 0.0], [999.0, 30.0]])
    scaler = RobustScaler(COLUMNS, clip=0).fit(train)
    assert scaler.center_.tolist() == pytest.approx([np.log(100.0), 0.0])
    assert scaler.scale_.tolist() == pytest.approx([1.4826 * np.log(10.0), 1.4826 * 10.0])
    assert scaler.transform(np.array([[99.0, 0.0]])).tolist() == [[0.0, 0.0]]


@pytest.mark.parametrize(("clip", "expected"), [(3.0, 3.0), (0.0, 1000.0 / 1.4826 / 10.0)],
                         ids=["winsorised", "clip-off"])
def test_scaler_clip(clip: float, expected: float) -> None:
    """Robust z-scores are clipped to [−clip, clip]; clip=0 leaves them alone."""
    train = np.array([[9.0, -10.0], [99.0, 0.0], [999.0, 10.0]])
    z = RobustScaler(COLUMNS, clip=clip).fit(train).transform(np.array([[99.0, 1000.0]]))
    assert z[0, 1] == pytest.approx(expected)


def test_scaler_zero_mad_falls_back_to_std_then_one() -> None:
    """A constant-median column uses the std; a constant column uses 1."""
    train = np.array([[5.0, 1.0], [5.0, 1.0], [5.0, 1.0], [5.0, 4.0]])
    scaler = RobustScaler((Column("a", "linear"), Column("b", "linear"))).fit(train)
    assert scaler.scale_.tolist() == pytest.approx([1.0, 1.5])


def test_production_detector_separates_two_synthetic_typists() -> None:
    """Genuine vectors score lower than another typist's through ModalityModel."""
    rng = np.random.default_rng(0)
    cols = tuple(Column(f"H.{i}", "log", 1.0) for i in range(8))
    user = rng.uniform(80, 160, 8)
    other = user * rng.uniform(0.7, 1.3, 8)
    train = user * rng.lognormal(0, 0.1, (30, 8))
    genuine = user * rng.lognormal(0, 0.1, (30, 8))
    impostor = other * rng.lognormal(0, 0.1, (30, 8))
    det = ProductionDetector(cols, ScoringParams()).fit(train)
    g, i = det.score(genuine), det.score(impostor)
    assert np.all((g >= 0) & (g <= 1)) and np.all((i >= 0) & (i <= 1))
    assert eer(g, i) < 0.1


def test_production_detector_must_be_fitted() -> None:
    """Scoring before fit is an error."""
    with pytest.raises(RuntimeError):
        ProductionDetector(COLUMNS, ScoringParams()).score(np.zeros((1, 2)))


def test_adaptive_detector_learns_learnable_genuine_tests_and_never_impostors() -> None:
    """score_stream: genuine tests learned when learnable; every impostor scored once,
    against the model states of the genuine stream, and never learned."""
    rng = np.random.default_rng(1)
    cols = tuple(Column(f"H.{i}", "log", 1.0) for i in range(6))
    user = rng.uniform(80, 160, 6)
    train = user * rng.lognormal(0, 0.1, (20, 6))
    genuine = user * rng.lognormal(0, 0.1, (15, 6))
    impostor = user * rng.uniform(0.6, 1.4, 6) * rng.lognormal(0, 0.1, (40, 6))
    det = production_factory(ScoringParams(), adaptive=True)(cols).fit(train)
    assert isinstance(det, AdaptiveProductionDetector)
    assert det.model_ is not None
    g, i = det.score_stream(genuine, impostor)
    assert g.shape == (15,) and i.shape == (40,)
    assert det.model_.n_seen_ == 20 + det.learned_
    assert det.learned_ == int(np.sum(g < ScoringParams().learn_max_score)) > 10
    # The first genuine test and the impostors scored before it see the trained model.
    static = ProductionDetector(cols, ScoringParams()).fit(train)
    assert g[0] == pytest.approx(static.score(genuine[:1])[0])
    assert i[0] == pytest.approx(static.score(impostor[:1])[0])
    assert i[15] == pytest.approx(static.score(impostor[15:16])[0])
