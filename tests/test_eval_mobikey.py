"""Tests for sidecar.eval.mobikey: the MOBIKEY reader and repetition vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sidecar.eval.errors import DatasetError
from sidecar.eval.mobikey import (
    HEADER,
    feature_columns,
    feature_matrix,
    find_passwords,
    read_mobikey,
)
from sidecar.eval.synthetic import PASSWORD_KEYS, write_mobikey

ROWS = [
    # user, session, key, down, up, pressure, area, x, y, ptype, rep
    ("7", 0, "a", 1000, 1100, 0.2, 0.3, 0.0, 0.0, 0, 0),
    ("7", 0, "b", 1300, 1380, 0.4, 0.5, 3.0, 4.0, 0, 0),
    ("7", 0, "c", 1500, 1700, 0.6, 0.1, 3.0, 0.0, 0, 0),
    ("7", 0, "a", 5000, 5050, 0.2, 0.3, 0.0, 0.0, 0, 1),
    ("7", 0, "Del", 5100, 5150, 0.2, 0.3, 0.0, 0.0, 0, 1),
    ("7", 0, "b", 5200, 5250, 0.2, 0.3, 0.0, 0.0, 0, 1),
    ("7", 0, "c", 5300, 5350, 0.2, 0.3, 0.0, 0.0, 0, 1),
    ("8", 1, "a", 10, 20, 0.2, 0.3, 0.0, 0.0, 0, 0),
    ("8", 1, "b", 30, 40, 0.2, 0.3, 0.0, 0.0, 0, 0),
    ("8", 1, "c", 50, 60, 0.2, 0.3, 0.0, 0.0, 0, 0),
    ("8", 0, "a", 10, 20, 0.2, 0.3, 0.0, 0.0, 0, 5),
    ("8", 0, "b", 30, 40, 0.2, 0.3, 0.0, 0.0, 0, 5),
    ("8", 0, "c", 50, 60, 0.2, 0.3, 0.0, 0.0, 0, 5),
]


def _write(path: Path, rows: list[tuple[object, ...]] = ROWS) -> Path:
    lines = [", ".join(HEADER)]
    for user, sess, key, down, up, p, a, x, y, ptype, rep in rows:
        lines.append(f"{user}, DEV, {sess}, {key}, {down}, {up}, {p}, {a}, {x}, {y}, "
                     f"0.1, 0.2, 9.7, 2, {ptype}, {rep}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_reader_groups_rows_into_repetitions(tmp_path: Path) -> None:
    """Rows of one (user, password, session, repetition) form one repetition, in order."""
    _write(tmp_path / "g" / "Keystrokes.csv")
    reps = read_mobikey(tmp_path)
    assert [(r.subject, r.session, r.index) for r in reps] == [
        ("7", 0, 0), ("7", 0, 1), ("8", 0, 5), ("8", 1, 0)]
    assert reps[0].keys == ("a", "b", "c")
    assert reps[1].keys == ("a", "Del", "b", "c")
    assert reps[0].down.tolist() == [1000.0, 1300.0, 1500.0]


def test_canonical_sequence_is_the_most_common(tmp_path: Path) -> None:
    """The password is the most frequent key sequence; unknown text gets a type label."""
    _write(tmp_path / "Keystrokes.csv")
    (pw,) = find_passwords(read_mobikey(tmp_path / "Keystrokes.csv")).values()
    assert pw.keys == ("a", "b", "c")
    assert pw.label == "type0"


def test_known_passwords_are_labelled_from_their_keys(tmp_path: Path) -> None:
    """Type codes are labelled by the typed text, not by the README's numbering."""
    write_mobikey(tmp_path, subjects=2, repetitions=4, password_types=(0, 1, 2))
    labels = {p.password_type: p.label for p in find_passwords(read_mobikey(tmp_path)).values()}
    assert labels == {0: "easy", 1: "strong", 2: "logical-strong"}


def test_timing_features_of_a_known_repetition(tmp_path: Path) -> None:
    """Hold, down-down and up-down times come out exactly, in column order."""
    _write(tmp_path / "Keystrokes.csv")
    reps = read_mobikey(tmp_path)
    (pw,) = find_passwords(reps).values()
    x = feature_matrix([reps[0]], "timing")[0]
    names = [c.name for c in feature_columns(pw, "timing")]
    assert dict(zip(names, x.tolist(), strict=True)) == {
        "H.0": 100, "H.1": 80, "H.2": 200, "DD.0.1": 300, "DD.1.2": 200,
        "UD.0.1": 200, "UD.1.2": 120}


def test_second_order_features_of_a_known_repetition(tmp_path: Path) -> None:
    """Path length, total time, velocity and means of the second-order set."""
    _write(tmp_path / "Keystrokes.csv")
    reps = read_mobikey(tmp_path)
    (pw,) = find_passwords(reps).values()
    x = feature_matrix([reps[0]], "second")[0]
    names = [c.name for c in feature_columns(pw, "second")]
    got = dict(zip(names, x.tolist(), strict=True))
    assert got["path_px"] == pytest.approx(5.0 + 4.0)
    assert got["total_ms"] == pytest.approx(700.0)
    assert got["velocity"] == pytest.approx(9.0 / 700.0)
    assert got["hold_mean"] == pytest.approx(380 / 3)
    assert got["pressure_mean"] == pytest.approx(0.4)
    assert got["gravity_z"] == pytest.approx(9.7)


@pytest.mark.parametrize(("fset", "dim"), [("timing", 7), ("first", 13), ("second", 9),
                                           ("all", 22)],
                         ids=["timing-3n-2", "first-5n-2", "second-9", "all-5n+7"])
def test_feature_set_dimensions(tmp_path: Path, fset: str, dim: int) -> None:
    """Each feature set has the documented length for a 3-key password."""
    _write(tmp_path / "Keystrokes.csv")
    reps = read_mobikey(tmp_path)
    (pw,) = find_passwords(reps).values()
    clean = [r for r in reps if r.keys == pw.keys]
    assert feature_matrix(clean, fset).shape == (3, dim)
    assert len(feature_columns(pw, fset)) == dim


def test_corrections_cannot_be_stacked(tmp_path: Path) -> None:
    """Mixing a corrected repetition with clean ones is refused."""
    _write(tmp_path / "Keystrokes.csv")
    reps = read_mobikey(tmp_path)
    with pytest.raises(ValueError, match="corrections"):
        feature_matrix(reps, "timing")


def test_synthetic_writer_round_trips(tmp_path: Path) -> None:
    """The synthetic writer's files parse, with one correction per subject."""
    write_mobikey(tmp_path, subjects=3, repetitions=6, password_types=(1,))
    reps = read_mobikey(tmp_path)
    assert len(reps) == 18
    assert sum(r.keys != PASSWORD_KEYS[1] for r in reps) == 3
    assert np.all(np.isfinite(feature_matrix(
        [r for r in reps if r.keys == PASSWORD_KEYS[1]], "all")))


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("a, b, c\n1, 2, 3\n", "unexpected header"),
        (", ".join(HEADER) + "\n7, D, 0, a, 1\n", "expected 16 fields"),
        (", ".join(HEADER) + "\n7, D, x, a, 1, 2, 0.1, 0.1, 0, 0, 0, 0, 0, 2, 0, 0\n",
         "invalid literal"),
    ],
    ids=["header", "short-row", "non-numeric-session"],
)
def test_malformed_files_raise_dataset_error(tmp_path: Path, content: str, match: str) -> None:
    """Format problems become DatasetError naming the file."""
    path = tmp_path / "Keystrokes.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError, match=match):
        read_mobikey(tmp_path)


@pytest.mark.parametrize("sub", ["missing", "empty"], ids=["missing-path", "no-csv"])
def test_missing_dataset_raises_dataset_error(tmp_path: Path, sub: str) -> None:
    """A path that is not there, or holds no Keystrokes.csv, is a DatasetError."""
    if sub == "empty":
        (tmp_path / sub).mkdir()
    with pytest.raises(DatasetError):
        read_mobikey(tmp_path / sub)
