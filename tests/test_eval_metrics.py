"""Tests for sidecar.eval.metrics: EER, zero-miss false-alarm rate, ROC/AUC."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sidecar.eval.metrics import (
    auc,
    average_miss_at,
    eer,
    error_curve,
    zero_miss_false_alarm,
)


def _naive_points(genuine: list[float], impostor: list[float]) -> list[tuple[float, float]]:
    """(false alarm, miss) at every threshold, by loops: flagged when score >= t."""
    thresholds = [*sorted(set(genuine) | set(impostor)), float("inf")]
    pts = []
    for t in thresholds:
        fa = sum(1 for g in genuine if g >= t) / len(genuine)
        miss = sum(1 for i in impostor if i < t) / len(impostor)
        pts.append((fa, miss))
    return pts


def _naive_eer(genuine: list[float], impostor: list[float]) -> float:
    """Walk the polyline of operating points until it crosses false_alarm == miss."""
    pts = _naive_points(genuine, impostor)
    for (fa0, m0), (fa1, m1) in itertools.pairwise(pts):
        if fa0 == m0:
            return fa0
        if (fa0 - m0) > 0 >= (fa1 - m1):
            # solve fa0 + a (fa1 - fa0) == m0 + a (m1 - m0)
            a = (fa0 - m0) / ((fa0 - m0) - (fa1 - m1))
            return fa0 + a * (fa1 - fa0)
    raise AssertionError("no crossing")


def _naive_auc(genuine: list[float], impostor: list[float]) -> float:
    wins = 0.0
    for g in genuine:
        for i in impostor:
            wins += 1.0 if i > g else 0.5 if i == g else 0.0
    return wins / (len(genuine) * len(impostor))


@pytest.mark.parametrize(
    ("genuine", "impostor", "expected"),
    [
        ([0, 1], [2, 3], 0.0),
        ([0, 1, 2, 3], [2.5, 4, 5, 6], 0.25),
        ([1], [1], 0.5),
        ([0, 1, 2], [1.5, 2.5], 1 / 3),
        ([2, 3], [0, 1], 1.0),
    ],
    ids=["separated", "one-overlap", "identical", "interpolated", "reversed"],
)
def test_eer_hand_computed(genuine: list[float], impostor: list[float], expected: float) -> None:
    """The EER of small hand-worked cases."""
    assert eer(genuine, impostor) == pytest.approx(expected)


@pytest.mark.parametrize("seed", [0, 1, 2, 3], ids=["seed0", "seed1", "seed2", "seed3"])
def test_eer_and_auc_match_naive_reference(seed: int) -> None:
    """EER and AUC agree with loop-based references on tied integer scores."""
    rng = np.random.default_rng(seed)
    genuine = rng.integers(0, 12, size=37).astype(float).tolist()
    impostor = rng.integers(4, 20, size=53).astype(float).tolist()
    assert eer(genuine, impostor) == pytest.approx(_naive_eer(genuine, impostor))
    assert auc(genuine, impostor) == pytest.approx(_naive_auc(genuine, impostor))


def test_error_curve_matches_naive_points() -> None:
    """Every operating point equals the loop computation, from (1, 0) to (0, 1)."""
    rng = np.random.default_rng(0)
    genuine = rng.normal(0, 1, 25).round(1).tolist()
    impostor = rng.normal(1, 1, 30).round(1).tolist()
    curve = error_curve(genuine, impostor)
    got = np.column_stack([curve.false_alarm, curve.miss])
    np.testing.assert_allclose(got, np.array(_naive_points(genuine, impostor)))
    assert got[0].tolist() == [1.0, 0.0] and got[-1].tolist() == [0.0, 1.0]
    assert np.all(np.diff(curve.false_alarm) <= 0) and np.all(np.diff(curve.miss) >= 0)


@pytest.mark.parametrize(
    ("genuine", "impostor", "expected"),
    [
        ([0, 1], [2, 3], 0.0),
        ([0, 1, 2, 3], [2.5, 4], 0.25),
        ([0, 1, 2, 3], [2, 4], 0.5),
        ([5, 6], [0, 9], 1.0),
    ],
    ids=["separated", "one-above", "tie-is-flagged", "impostor-lowest"],
)
def test_zero_miss_false_alarm(genuine: list[float], impostor: list[float],
                               expected: float) -> None:
    """Share of genuine scores at or above the lowest impostor score."""
    assert zero_miss_false_alarm(genuine, impostor) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("genuine", "impostor", "expected"),
    [([0, 1], [2, 3], 1.0), ([2, 3], [0, 1], 0.0), ([1, 1], [1], 0.5), ([0, 2], [1], 0.5)],
    ids=["perfect", "reversed", "all-tied", "interleaved"],
)
def test_auc_hand_computed(genuine: list[float], impostor: list[float], expected: float) -> None:
    """AUC is P(impostor > genuine) + half the ties."""
    assert auc(genuine, impostor) == pytest.approx(expected)


def test_average_miss_at_is_the_mean_of_step_functions() -> None:
    """Vertical averaging takes each curve's best miss rate at or below each false alarm."""
    perfect = error_curve([0, 1], [2, 3])  # miss 0 from false alarm 0
    useless = error_curve([1], [1])  # (1,0) and (0,1) only
    grid = np.array([0.0, 0.5, 1.0])
    assert average_miss_at([perfect], grid).tolist() == [0.0, 0.0, 0.0]
    assert average_miss_at([useless], grid).tolist() == [1.0, 1.0, 0.0]
    assert average_miss_at([perfect, useless], grid).tolist() == [0.5, 0.5, 0.0]


@pytest.mark.parametrize(
    ("genuine", "impostor"),
    [([], [1.0]), ([1.0], []), ([float("nan")], [1.0]), ([1.0], [float("inf")])],
    ids=["no-genuine", "no-impostor", "nan", "inf"],
)
def test_bad_scores_are_rejected(genuine: list[float], impostor: list[float]) -> None:
    """Empty or non-finite score arrays raise ValueError."""
    with pytest.raises(ValueError):
        eer(genuine, impostor)
