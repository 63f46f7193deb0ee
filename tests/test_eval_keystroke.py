"""Tests for sidecar.eval.keystroke: Killourhy & Maxion's protocol on MOBIKEY data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from sidecar.eval.detectors import ManhattanDetector
from sidecar.eval.keystroke import count_units, run_keystroke
from sidecar.eval.mobikey import Column, read_mobikey
from sidecar.eval.synthetic import write_mobikey


def _manhattan(columns: Sequence[Column]) -> ManhattanDetector:
    return ManhattanDetector()


@pytest.fixture(scope="module")
def reps(tmp_path_factory: pytest.TempPathFactory) -> list:  # type: ignore[type-arg]
    root = tmp_path_factory.mktemp("mk")
    write_mobikey(root, subjects=5, repetitions=13, password_types=(0, 2), corrections=1)
    return read_mobikey(root)


def test_split_sizes_follow_the_protocol(reps: list) -> None:  # type: ignore[type-arg]
    """Train on floor(n/2) clean repetitions, test on the rest and 5 per other subject."""
    run = run_keystroke(reps, detectors={"manhattan": _manhattan}, feature_sets=["timing"])
    assert [(p.label, p.dropped_corrections, p.subjects) for p in run.passwords] == [
        ("easy", 5, 5), ("logical-strong", 5, 5)]
    for result in run.results:
        for s in result.subjects:
            assert (s.n_train, s.n_genuine, s.n_impostor) == (6, 6, 4 * 5)


def test_max_subjects_limits_both_sides(reps: list) -> None:  # type: ignore[type-arg]
    """--subjects N keeps the first N subjects as users and as impostors."""
    run = run_keystroke(reps, detectors={"m": _manhattan}, feature_sets=["timing"],
                        passwords=["easy"], max_subjects=3)
    (result,) = run.results
    assert [s.subject for s in result.subjects] == ["600", "601", "602"]
    assert all(s.n_impostor == 2 * 5 for s in result.subjects)


def test_subjects_with_too_few_repetitions_are_skipped(reps: list) -> None:  # type: ignore[type-arg]
    """A subject below min_repetitions clean repetitions is counted as skipped."""
    run = run_keystroke(reps, detectors={"m": _manhattan}, feature_sets=["timing"],
                        min_repetitions=13)
    assert all(p.skipped_subjects == 5 and p.subjects == 0 for p in run.passwords)
    assert run.results == ()


def test_progress_units_match_the_work(reps: list) -> None:  # type: ignore[type-arg]
    """The progress callback is called exactly count_units() times."""
    calls: list[int] = []
    run_keystroke(reps, detectors={"m": _manhattan}, feature_sets=["timing", "all"],
                  progress=calls.append)
    assert len(calls) == count_units(reps, ["timing", "all"], None, None) == 2 * 2 * 5


def test_separable_synthetic_subjects_have_low_eer(reps: list) -> None:  # type: ignore[type-arg]
    """Synthetic subjects with distinct styles are told apart."""
    run = run_keystroke(reps, detectors={"m": _manhattan}, feature_sets=["all"])
    assert all(r.eer[0] < 0.1 for r in run.results)
    assert set(run.results[0].to_json()) >= {"eer_mean", "eer_std", "per_subject"}


def test_run_json_has_protocol(tmp_path: Path) -> None:
    """The run's JSON names the protocol and its parameters."""
    write_mobikey(tmp_path, subjects=2, repetitions=12, password_types=(1,))
    run = run_keystroke(read_mobikey(tmp_path), detectors={"m": _manhattan},
                        feature_sets=["timing"])
    doc = run.to_json(per_subject=False)
    assert doc["protocol"]["reference"].startswith("Killourhy & Maxion")
    assert "per_subject" not in doc["results"][0]
