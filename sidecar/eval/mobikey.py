"""MOBIKEY raw key events → one feature vector per password repetition.

The dataset (Antal & Nemes 2016) has one ``Keystrokes.csv`` per collection group,
one row per key press::

    UserId, DeviceId, SessionId, Key, DownTime, UpTime, Pressure, FingerArea,
    RawX, RawY, gravityX, gravityY, gravityZ, Hands, PasswordType, Repetition

with stray spaces after the commas and times in ms.  Rows of one
(UserId, PasswordType, SessionId, Repetition) form a repetition, in file order
(their DownTimes are increasing).

**Corrections.** The password a ``PasswordType`` code stands for is taken from
the data — the most common key sequence of that code over all subjects — not from
the README (whose codes 1 and 2 are swapped with respect to the files).  A
repetition whose key sequence differs from that canonical sequence (a Del, an
arrow, an extra Shift or 123?/abc toggle, a typo, two entries run together) is
dropped: its vector would not line up key by key with the others.  The number
dropped is reported.

**Feature sets** (``n`` keys in the canonical sequence, modifier keys such as
``Shift↑`` or ``123?`` included because they are real taps):

* ``timing`` — Killourhy & Maxion's first-order timing: hold time of every key,
  down-down and up-down latency of every consecutive pair (``3n − 2``);
* ``first`` — ``timing`` plus pressure and finger area of every key (``5n − 2``);
* ``second`` — MOBIKEY's second-order set (9): finger path length over the key
  centres (px), total time (first down → last up, ms), mean velocity (px/ms),
  mean gravity x/y/z (m/s²), mean hold (ms), mean finger area, mean pressure;
* ``all`` — ``first`` plus ``second`` (``5n + 7``), MOBIKEY's "all".
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

from sidecar.eval.errors import DatasetError

FloatArray = NDArray[np.float64]
FeatureSet = Literal["timing", "first", "second", "all"]
FEATURE_SETS: Final[tuple[FeatureSet, ...]] = ("timing", "first", "second", "all")

HEADER: Final = (
    "UserId", "DeviceId", "SessionId", "Key", "DownTime", "UpTime", "Pressure",
    "FingerArea", "RawX", "RawY", "gravityX", "gravityY", "gravityZ", "Hands",
    "PasswordType", "Repetition",
)

KNOWN_PASSWORDS: Final[dict[str, str]] = {
    "kicsikutyatarka": "easy",
    "Kktsf2!2014": "logical-strong",
    ".tie5Roanl": "strong",
}
"""Typed text of each MOBIKEY password → the label the published table uses."""

__all__ = [
    "FEATURE_SETS",
    "Column",
    "Password",
    "Repetition",
    "feature_columns",
    "feature_matrix",
    "find_passwords",
    "read_mobikey",
]


@dataclass(frozen=True, slots=True)
class Repetition:
    """One typing of a password; every array has shape ``(n,)`` (one entry per key)
    except ``gravity``, shape ``(n, 3)``."""

    subject: str
    password_type: int
    session: int
    index: int
    keys: tuple[str, ...]
    down: FloatArray
    up: FloatArray
    pressure: FloatArray
    area: FloatArray
    x: FloatArray
    y: FloatArray
    gravity: FloatArray

    @property
    def order(self) -> tuple[int, int]:
        """Chronological sort key: (SessionId, Repetition)."""
        return (self.session, self.index)


@dataclass(frozen=True, slots=True)
class Password:
    """A password type as found in the data."""

    password_type: int
    label: str
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Column:
    """One feature of a vector: its name and how the production normaliser treats
    it (``"log"`` → ``log(x + eps)``, ``"linear"`` → ``x``)."""

    name: str
    transform: Literal["log", "linear"]
    eps: float = 0.0


def _csv_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DatasetError(f"MOBIKEY dataset not found: {root} (expected a folder with "
                           "*/Keystrokes.csv or one such CSV file)")
    files = sorted(root.rglob("Keystrokes.csv"))
    if not files:
        raise DatasetError(f"no Keystrokes.csv under {root}")
    return files


def _read_rows(path: Path) -> Iterable[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, skipinitialspace=True)
        header = tuple(h.strip() for h in next(reader, []))
        if header != HEADER:
            raise DatasetError(f"{path}: unexpected header (want {', '.join(HEADER)})")
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(HEADER):
                raise DatasetError(f"{path}:{lineno}: expected {len(HEADER)} fields, "
                                   f"got {len(row)}")
            yield [v.strip() for v in row]


def read_mobikey(root: str | Path) -> list[Repetition]:
    """Read every ``Keystrokes.csv`` under ``root`` (or the one file ``root``).

    Returns all repetitions, corrections included, sorted by subject (numerically
    where possible), password type, then chronologically.
    """
    groups: dict[tuple[str, int, int, int], list[list[str]]] = defaultdict(list)
    for path in _csv_files(Path(root)):
        try:
            for row in _read_rows(path):
                key = (row[0], int(row[14]), int(row[2]), int(row[15]))
                groups[key].append(row)
        except DatasetError:
            raise
        except ValueError as exc:  # int() of a field, or UnicodeDecodeError
            raise DatasetError(f"{path}: {exc}") from exc
    reps = []
    for (subject, ptype, session, index), rows in groups.items():
        try:
            num = np.asarray([[float(r[i]) for i in (4, 5, 6, 7, 8, 9, 10, 11, 12)]
                              for r in rows], dtype=np.float64)
        except ValueError as exc:
            raise DatasetError(f"subject {subject}: non-numeric field ({exc})") from exc
        reps.append(Repetition(
            subject=subject, password_type=ptype, session=session, index=index,
            keys=tuple(r[3] for r in rows), down=num[:, 0], up=num[:, 1],
            pressure=num[:, 2], area=num[:, 3], x=num[:, 4], y=num[:, 5],
            gravity=num[:, 6:9],
        ))
    reps.sort(key=lambda r: (_subject_key(r.subject), r.password_type, r.order))
    return reps


def _subject_key(subject: str) -> tuple[int, str]:
    return (int(subject), "") if subject.isdigit() else (1 << 62, subject)


def find_passwords(reps: Sequence[Repetition]) -> dict[int, Password]:
    """The canonical key sequence of each password type: its most common sequence."""
    counts: dict[int, Counter[tuple[str, ...]]] = defaultdict(Counter)
    for rep in reps:
        counts[rep.password_type][rep.keys] += 1
    out = {}
    for ptype in sorted(counts):
        keys = counts[ptype].most_common(1)[0][0]
        text = "".join(k for k in keys if len(k) == 1)
        out[ptype] = Password(ptype, KNOWN_PASSWORDS.get(text, f"type{ptype}"), keys)
    return out


def feature_columns(password: Password, feature_set: FeatureSet) -> tuple[Column, ...]:
    """Names and transforms of the vector :func:`feature_matrix` builds."""
    n = len(password.keys)
    hold = [Column(f"H.{i}", "log", 1.0) for i in range(n)]
    dd = [Column(f"DD.{i}.{i + 1}", "log", 1.0) for i in range(n - 1)]
    ud = [Column(f"UD.{i}.{i + 1}", "linear") for i in range(n - 1)]
    timing = hold + dd + ud
    touch = ([Column(f"P.{i}", "linear") for i in range(n)]
             + [Column(f"A.{i}", "linear") for i in range(n)])
    second = [
        Column("path_px", "log", 1.0), Column("total_ms", "log", 1.0),
        Column("velocity", "log", 1e-3), Column("gravity_x", "linear"),
        Column("gravity_y", "linear"), Column("gravity_z", "linear"),
        Column("hold_mean", "log", 1.0), Column("area_mean", "linear"),
        Column("pressure_mean", "linear"),
    ]
    sets: dict[str, list[Column]] = {
        "timing": timing, "first": timing + touch, "second": second,
        "all": timing + touch + second,
    }
    if feature_set not in sets:
        raise ValueError(f"feature_set: unknown {feature_set!r} (want one of {FEATURE_SETS})")
    return tuple(sets[feature_set])


def _vector(rep: Repetition, feature_set: FeatureSet) -> FloatArray:
    hold = rep.up - rep.down
    dd = np.diff(rep.down)
    ud = rep.down[1:] - rep.up[:-1]
    timing = [hold, dd, ud]
    touch = [rep.pressure, rep.area]
    path = float(np.hypot(np.diff(rep.x), np.diff(rep.y)).sum())
    total = float(rep.up[-1] - rep.down[0])
    second = np.array([
        path, total, path / total if total > 0 else 0.0,
        *rep.gravity.mean(axis=0), float(hold.mean()), float(rep.area.mean()),
        float(rep.pressure.mean()),
    ])
    parts = {"timing": timing, "first": timing + touch, "second": [second],
             "all": [*timing, *touch, second]}[feature_set]
    return np.concatenate(parts)


def feature_matrix(reps: Sequence[Repetition], feature_set: FeatureSet) -> FloatArray:
    """Stack the vectors of ``reps`` (all of the same password, without
    corrections) into shape ``(len(reps), d)``, ``d = len(feature_columns(...))``."""
    if not reps:
        raise ValueError("no repetitions")
    n = len(reps[0].keys)
    if any(len(r.keys) != n for r in reps):
        raise ValueError("repetitions of different lengths: drop corrections first")
    return np.vstack([_vector(r, feature_set) for r in reps])
