"""The keystroke benchmark: Killourhy & Maxion's protocol on MOBIKEY.

Per password and per subject (repetitions with corrections dropped, see
:mod:`sidecar.eval.mobikey`):

* train on the first half (``floor(n / 2)``) of the subject's repetitions in
  chronological order (SessionId, Repetition);
* genuine tests: the second half;
* impostor tests: the first 5 repetitions of every other subject (of the subjects
  evaluated: ``max_subjects`` limits both sides);
* per subject: EER and zero-miss false-alarm rate; then mean and standard
  deviation (n − 1) over subjects.

A detector with a ``score_stream(genuine, impostor)`` method (the adaptive variant of
the production scorer) gets both test sets at once, in order, and may learn between
scores; every other detector is frozen after ``fit``.

A subject with fewer than ``min_repetitions`` clean repetitions of a password is
left out of that password (and counted).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sidecar.eval.detectors import Detector, FloatArray
from sidecar.eval.metrics import ErrorCurve, eer, error_curve, zero_miss_false_alarm
from sidecar.eval.mobikey import (
    Column,
    FeatureSet,
    Password,
    Repetition,
    feature_columns,
    feature_matrix,
    find_passwords,
)

DetectorFactory = Callable[[Sequence[Column]], Detector]
"""Builds a fresh detector for vectors with the given columns (most ignore them)."""

__all__ = [
    "DetectorFactory",
    "KeystrokeResult",
    "KeystrokeRun",
    "PasswordInfo",
    "SubjectResult",
    "count_units",
    "run_keystroke",
]


@dataclass(frozen=True, slots=True)
class SubjectResult:
    """One subject's outcome for one (password, feature set, detector)."""

    subject: str
    n_train: int
    n_genuine: int
    n_impostor: int
    eer: float
    zero_miss_far: float
    curve: ErrorCurve = field(repr=False, compare=False)


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    if not values:
        return (float("nan"), float("nan"))
    mean = statistics.fmean(values)
    return (mean, statistics.stdev(values) if len(values) > 1 else 0.0)


@dataclass(frozen=True, slots=True)
class KeystrokeResult:
    """One table row: a detector on one password with one feature set."""

    password: str
    feature_set: str
    detector: str
    dim: int
    subjects: tuple[SubjectResult, ...]

    @property
    def eer(self) -> tuple[float, float]:
        """Mean and standard deviation of the per-subject EER."""
        return _mean_std([s.eer for s in self.subjects])

    @property
    def zero_miss_far(self) -> tuple[float, float]:
        """Mean and standard deviation of the per-subject zero-miss false-alarm rate."""
        return _mean_std([s.zero_miss_far for s in self.subjects])

    def to_json(self, *, per_subject: bool = True) -> dict[str, Any]:
        eer_m, eer_s = self.eer
        zm_m, zm_s = self.zero_miss_far
        out: dict[str, Any] = {
            "password": self.password, "feature_set": self.feature_set,
            "detector": self.detector, "dim": self.dim, "subjects": len(self.subjects),
            "eer_mean": eer_m, "eer_std": eer_s,
            "zero_miss_far_mean": zm_m, "zero_miss_far_std": zm_s,
        }
        if per_subject:
            out["per_subject"] = [
                {"subject": s.subject, "n_train": s.n_train, "n_genuine": s.n_genuine,
                 "n_impostor": s.n_impostor, "eer": s.eer, "zero_miss_far": s.zero_miss_far}
                for s in self.subjects
            ]
        return out


@dataclass(frozen=True, slots=True)
class PasswordInfo:
    """What the protocol used of one password."""

    password_type: int
    label: str
    keys: int
    repetitions: int
    dropped_corrections: int
    subjects: int
    skipped_subjects: int

    def to_json(self) -> dict[str, Any]:
        return {"password_type": self.password_type, "label": self.label, "keys": self.keys,
                "repetitions": self.repetitions,
                "dropped_corrections": self.dropped_corrections,
                "subjects": self.subjects, "skipped_subjects": self.skipped_subjects}


@dataclass(frozen=True, slots=True)
class KeystrokeRun:
    """Everything one ``bioshard eval keystroke`` produced."""

    passwords: tuple[PasswordInfo, ...]
    results: tuple[KeystrokeResult, ...]
    protocol: Mapping[str, Any]

    def to_json(self, *, per_subject: bool = True) -> dict[str, Any]:
        return {
            "benchmark": "keystroke",
            "protocol": dict(self.protocol),
            "passwords": [p.to_json() for p in self.passwords],
            "results": [r.to_json(per_subject=per_subject) for r in self.results],
        }


def _by_subject(reps: Sequence[Repetition], password: Password) -> dict[str, list[Repetition]]:
    out: dict[str, list[Repetition]] = defaultdict(list)
    for rep in reps:
        if rep.password_type == password.password_type and rep.keys == password.keys:
            out[rep.subject].append(rep)
    for lst in out.values():
        lst.sort(key=lambda r: r.order)
    return out


def _evaluate_subject(factory: DetectorFactory, columns: Sequence[Column], subject: str,
                      own: FloatArray, impostor: FloatArray) -> SubjectResult:
    n_train = own.shape[0] // 2
    detector = factory(columns).fit(own[:n_train])
    stream = getattr(detector, "score_stream", None)
    if stream is not None:  # adaptive: learns genuine tests between scores
        genuine, imp = stream(own[n_train:], impostor)
    else:
        genuine = detector.score(own[n_train:])
        imp = detector.score(impostor)
    return SubjectResult(subject, n_train, genuine.size, imp.size, eer(genuine, imp),
                         zero_miss_false_alarm(genuine, imp), error_curve(genuine, imp))


def run_keystroke(
    reps: Sequence[Repetition],
    *,
    detectors: Mapping[str, DetectorFactory],
    feature_sets: Sequence[FeatureSet],
    passwords: Sequence[str] | None = None,
    max_subjects: int | None = None,
    min_repetitions: int = 10,
    impostor_repetitions: int = 5,
    progress: Callable[[int], None] | None = None,
) -> KeystrokeRun:
    """Run the protocol; ``progress(k)`` is called after each subject's k-th unit of work.

    ``passwords`` selects labels (``easy``, ``logical-strong``, ``strong``); ``None``
    runs all.  Work units: one per (password, feature set, subject).
    """
    found = find_passwords(reps)
    chosen = [p for p in found.values() if passwords is None or p.label in passwords]
    infos: list[PasswordInfo] = []
    results: list[KeystrokeResult] = []
    for password in chosen:
        total = sum(1 for r in reps if r.password_type == password.password_type)
        groups = _by_subject(reps, password)
        clean = sum(len(v) for v in groups.values())
        subjects = [s for s, v in groups.items() if len(v) >= min_repetitions]
        skipped = len(groups) - len(subjects)
        if max_subjects is not None:
            subjects = subjects[:max_subjects]
        infos.append(PasswordInfo(password.password_type, password.label, len(password.keys),
                                  total, total - clean, len(subjects), skipped))
        if len(subjects) < 2:
            continue
        for fset in feature_sets:
            columns = feature_columns(password, fset)
            mats = {s: feature_matrix(groups[s], fset) for s in subjects}
            firsts = {s: m[:impostor_repetitions] for s, m in mats.items()}
            per_det: dict[str, list[SubjectResult]] = {name: [] for name in detectors}
            for subject in subjects:
                impostor = np.vstack([firsts[o] for o in subjects if o != subject])
                for name, factory in detectors.items():
                    per_det[name].append(_evaluate_subject(
                        factory, columns, subject, mats[subject], impostor))
                if progress is not None:
                    progress(1)
            results.extend(
                KeystrokeResult(password.label, fset, name, len(columns), tuple(rows))
                for name, rows in per_det.items()
            )
    protocol = {
        "reference": "Killourhy & Maxion, DSN 2009",
        "train": "first half of each subject's clean repetitions (SessionId, Repetition order)",
        "genuine": "second half",
        "impostor": f"first {impostor_repetitions} clean repetitions of every other subject",
        "corrections": "repetitions whose key sequence differs from the password's are dropped",
        "min_repetitions": min_repetitions,
        "max_subjects": max_subjects,
        "std": "sample standard deviation (n-1) over subjects",
    }
    return KeystrokeRun(tuple(infos), tuple(results), protocol)


def count_units(reps: Sequence[Repetition], feature_sets: Sequence[FeatureSet],
                passwords: Sequence[str] | None, max_subjects: int | None,
                min_repetitions: int = 10) -> int:
    """How many progress units :func:`run_keystroke` will report (for the bar)."""
    units = 0
    for password in find_passwords(reps).values():
        if passwords is not None and password.label not in passwords:
            continue
        n = sum(1 for v in _by_subject(reps, password).values() if len(v) >= min_repetitions)
        if max_subjects is not None:
            n = min(n, max_subjects)
        units += n * len(feature_sets) if n >= 2 else 0
    return units
