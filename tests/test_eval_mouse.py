"""Tests for sidecar.eval.mouse: the Balabit protocol through extraction and scoring."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from sidecar.eval.balabit import list_sessions
from sidecar.eval.errors import UsageError
from sidecar.eval.mouse import SessionWindows, extract_sessions, run_mouse, spaced, split_sessions
from sidecar.eval.synthetic import write_balabit
from sidecar.scoring import ScoringParams


@pytest.mark.parametrize(
    ("n", "limit", "expected"),
    [(5, None, [0, 1, 2, 3, 4]), (5, 9, [0, 1, 2, 3, 4]), (9, 3, [0, 4, 8]), (5, 1, [0]),
     (5, 0, [])],
    ids=["no-limit", "under-limit", "evenly-spaced", "one", "zero"],
)
def test_spaced(n: int, limit: int | None, expected: list[int]) -> None:
    """At most `limit` items, evenly spaced, ends included."""
    assert spaced(list(range(n)), limit) == expected


@pytest.mark.parametrize(("n", "fraction", "train"), [(7, 0.5, 3), (2, 0.5, 1), (5, 0.01, 1),
                                                     (5, 0.99, 4)],
                         ids=["half-of-7", "two-sessions", "at-least-one", "at-most-n-1"])
def test_split_sessions(n: int, fraction: float, train: int) -> None:
    """floor(fraction·n) sessions train, with at least one on each side."""
    assert split_sessions(n, fraction) == train


def test_a_single_session_cannot_be_split() -> None:
    """A user with one session is a usage error."""
    with pytest.raises(UsageError):
        split_sessions(1, 0.5)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[SessionWindows]]:
    root = write_balabit(tmp_path_factory.mktemp("bb"), users=3, sessions=2, seconds=60)
    flat = [s for v in list_sessions(root).values() for s in v]
    by_user: dict[str, list[SessionWindows]] = defaultdict(list)
    for sw in extract_sessions(flat, 10_000):
        by_user[sw.user].append(sw)
    return dict(by_user)


def test_extraction_gives_v1_windows(extracted: dict[str, list[SessionWindows]]) -> None:
    """Each 60 s synthetic session yields about six 10 s windows with mouse features."""
    for sessions in extracted.values():
        for sw in sessions:
            assert 4 <= len(sw.windows) <= 7
            assert all("mouse" in d["m"] for d in sw.windows)


def test_learn_all_learns_every_training_window(
        extracted: dict[str, list[SessionWindows]]) -> None:
    """learn='all' applies every training window; curve points are the requested ones."""
    run = run_mouse(extracted, params=ScoringParams(), learn="all", checkpoints=(3, "all"))
    assert all(u.learned_windows == u.train_windows for u in run.users)
    assert [p.windows for p in run.curve] == [3, "all"]
    assert run.curve[-1].mean_eer == pytest.approx(run.mean_eer_auc()[0])


def test_impostor_windows_are_capped_per_other_user(
        extracted: dict[str, list[SessionWindows]]) -> None:
    """max_impostor_windows limits how many test windows each other user contributes."""
    run = run_mouse(extracted, params=ScoringParams(), max_impostor_windows=2)
    assert all(u.impostor == 2 * 2 for u in run.users)


def test_json_of_a_run(extracted: dict[str, list[SessionWindows]], tmp_path: Path) -> None:
    """The run serialises its users, pooled numbers and session-level numbers."""
    doc = run_mouse(extracted, params=ScoringParams()).to_json()
    assert {"users", "pooled_eer", "pooled_auc", "curve", "session_level"} <= set(doc)
