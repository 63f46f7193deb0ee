"""The mouse benchmark: Balabit sessions through the production extraction and scorer.

1. Every session's raw rows become collector events (:mod:`sidecar.eval.balabit`),
   then v1 windows through the collector's Python twin
   (:func:`sidecar.extract.windows_from_events`, tumbling windows of
   ``window_ms``), then :class:`~sidecar.telemetry.Telemetry` through the wire
   format itself (``decode(encode_json(doc))``: the same clipping and
   minimum-event rules as the sidecar).  Windows left with no modality are dropped.
2. Each user's sessions, in file-name order, are split: the first
   ``floor(train_fraction · n)`` sessions (at least one, at most ``n − 1``) train,
   the rest test.
3. Per user, a fresh :class:`~sidecar.scoring.Profile` learns the training windows
   in order through the production path: ``score_window`` then, when the result is
   ``learnable`` (``learn="gated"``, what the sidecar does) or always
   (``learn="all"``), ``learn_window``.
4. Genuine tests: the user's test windows; impostor tests: up to
   ``max_impostor_windows`` test windows of every other user (evenly spaced).
   The score is ``ScoreResult.score`` (modalities combined as in production).
5. Per user EER and AUC; pooled EER and AUC over all users' scores (one global
   threshold, as the sidecar's t1/t2 are global); and a learning curve: the same
   measures after the first N training windows, for each N in ``checkpoints``.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np

from sidecar.eval.balabit import Session, read_session
from sidecar.eval.errors import UsageError
from sidecar.eval.metrics import ErrorCurve, auc, eer, error_curve
from sidecar.telemetry import Telemetry, TelemetryError, decode, encode_json

if TYPE_CHECKING:  # pragma: no cover
    from sidecar.scoring import PopulationModel, ScoringParams

LearnMode = Literal["gated", "all"]
T = TypeVar("T")
_Tagged = tuple[str, Telemetry]
"""A test window with the ``user/session`` it came from."""

__all__ = [
    "CurvePoint",
    "MouseRun",
    "SessionLevel",
    "SessionWindows",
    "UserResult",
    "extract_sessions",
    "run_mouse",
    "spaced",
    "split_sessions",
]


def spaced(items: Sequence[T], limit: int | None) -> list[T]:
    """At most ``limit`` items of ``items``, evenly spaced, first and last included."""
    if limit is None or len(items) <= limit:
        return list(items)
    if limit <= 0:
        return []
    idx = np.unique(np.linspace(0, len(items) - 1, limit).round().astype(int))
    return [items[i] for i in idx]


@dataclass(frozen=True, slots=True)
class SessionWindows:
    """One session's usable windows (JSON documents of the v1 wire format)."""

    user: str
    name: str
    events: int
    skipped_rows: int
    windows: tuple[dict[str, Any], ...]
    empty_windows: int


def _windows_of(session: Session, window_ms: int) -> SessionWindows:
    from sidecar.extract import windows_from_events

    events, skipped = read_session(session)
    docs = windows_from_events(events, window_ms)
    usable = tuple(d for d in docs if _telemetry(d) is not None)
    return SessionWindows(session.user, session.name, len(events), skipped, usable,
                          len(docs) - len(usable))


def _telemetry(doc: Mapping[str, Any]) -> Telemetry | None:
    try:
        window = decode(encode_json(doc))
    except TelemetryError:
        return None
    return window if window.modalities else None


def extract_sessions(sessions: Sequence[Session], window_ms: int, *, jobs: int = 1,
                     progress: Callable[[int], None] | None = None) -> list[SessionWindows]:
    """Windows of every session (in the order given), ``jobs`` processes in parallel."""
    if jobs <= 1:
        out = []
        for s in sessions:
            out.append(_windows_of(s, window_ms))
            if progress is not None:
                progress(1)
        return out
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_windows_of, s, window_ms) for s in sessions]
        results = []
        for f in futures:
            results.append(f.result())
            if progress is not None:
                progress(1)
        return results


@dataclass(frozen=True, slots=True)
class UserResult:
    """One user's outcome after learning all of their training windows."""

    user: str
    train_sessions: int
    test_sessions: int
    train_windows: int
    learned_windows: int
    genuine: int
    impostor: int
    eer: float
    auc: float
    genuine_tiers: tuple[float, float, float]
    impostor_tiers: tuple[float, float, float]
    curve: ErrorCurve = field(repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user, "train_sessions": self.train_sessions,
            "test_sessions": self.test_sessions, "train_windows": self.train_windows,
            "learned_windows": self.learned_windows, "genuine": self.genuine,
            "impostor": self.impostor, "eer": self.eer, "auc": self.auc,
            "genuine_tiers": list(self.genuine_tiers),
            "impostor_tiers": list(self.impostor_tiers),
        }


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """EER/AUC after the first ``windows`` training windows (over users that had them)."""

    windows: int | str
    users: int
    mean_eer: float
    mean_auc: float
    pooled_eer: float

    def to_json(self) -> dict[str, Any]:
        return {"windows": self.windows, "users": self.users, "mean_eer": self.mean_eer,
                "mean_auc": self.mean_auc, "pooled_eer": self.pooled_eer}


@dataclass(frozen=True, slots=True)
class SessionLevel:
    """Whole test sessions instead of windows: each session's mean window score.

    This is how the Balabit challenge was judged (one score per session); it is an
    aggregation for comparison, not something the sidecar decides on.
    """

    genuine: int
    impostor: int
    mean_auc: float
    pooled_eer: float
    pooled_auc: float

    def to_json(self) -> dict[str, Any]:
        return {"genuine_sessions": self.genuine, "impostor_sessions": self.impostor,
                "mean_auc": self.mean_auc, "pooled_eer": self.pooled_eer,
                "pooled_auc": self.pooled_auc}


@dataclass(frozen=True, slots=True)
class MouseRun:
    """Everything one ``bioshard eval mouse`` produced."""

    users: tuple[UserResult, ...]
    curve: tuple[CurvePoint, ...]
    pooled_eer: float
    pooled_auc: float
    pooled_curve: ErrorCurve = field(repr=False, compare=False)
    sessions: SessionLevel
    protocol: Mapping[str, Any] = field(default_factory=dict)

    def mean_eer_auc(self) -> tuple[float, float]:
        """Mean per-user EER and AUC."""
        if not self.users:
            return (float("nan"), float("nan"))
        return (statistics.fmean(u.eer for u in self.users),
                statistics.fmean(u.auc for u in self.users))

    def to_json(self) -> dict[str, Any]:
        mean_eer, mean_auc = self.mean_eer_auc()
        return {
            "benchmark": "mouse",
            "protocol": dict(self.protocol),
            "users": [u.to_json() for u in self.users],
            "mean_eer": mean_eer, "mean_auc": mean_auc,
            "pooled_eer": self.pooled_eer, "pooled_auc": self.pooled_auc,
            "curve": [p.to_json() for p in self.curve],
            "session_level": self.sessions.to_json(),
        }


def split_sessions(n: int, train_fraction: float) -> int:
    """How many of a user's ``n`` sessions train (at least 1, at most ``n − 1``)."""
    if n < 2:
        raise UsageError("each user needs at least two sessions (train and test)")
    return min(max(int(train_fraction * n), 1), n - 1)


def _tiers(tiers: Sequence[int]) -> tuple[float, float, float]:
    if not tiers:
        return (float("nan"), float("nan"), float("nan"))
    arr = np.asarray(tiers)
    return (float(np.mean(arr == 1)), float(np.mean(arr == 2)), float(np.mean(arr == 3)))


def _score_all(profile: Any, windows: Sequence[Telemetry], population: PopulationModel,
               params: ScoringParams) -> tuple[list[float], list[int]]:
    """Production scores and tiers of ``windows`` under ``profile`` (not learned)."""
    from sidecar.scoring import score_window

    scores, tiers = [], []
    for w in windows:
        r = score_window(profile, w, population, params)
        scores.append(r.score)
        tiers.append(r.tier)
    return scores, tiers


def run_mouse(
    by_user: Mapping[str, Sequence[SessionWindows]],
    *,
    params: ScoringParams,
    population: PopulationModel | None = None,
    train_fraction: float = 0.5,
    max_impostor_windows: int | None = 200,
    checkpoints: Sequence[int | str] = (5, 10, 20, 50, 100, 200, "all"),
    learn: LearnMode = "gated",
    progress: Callable[[int], None] | None = None,
) -> MouseRun:
    """Run the protocol on already extracted sessions (user → sessions in order).

    ``progress(1)`` is called once per user.
    """
    from sidecar.scoring import PopulationModel, Profile, learn_window, score_window

    pop = population or PopulationModel.default()
    split: dict[str, tuple[list[Telemetry], list[_Tagged], int, int]] = {}
    for user, sessions in by_user.items():
        k = split_sessions(len(sessions), train_fraction)
        train = [w for s in sessions[:k] for d in s.windows if (w := _telemetry(d))]
        test = [(f"{user}/{s.name}", w) for s in sessions[k:] for d in s.windows
                if (w := _telemetry(d))]
        split[user] = (train, test, k, len(sessions) - k)
    users: list[UserResult] = []
    per_point: dict[int | str, list[tuple[list[float], list[float]]]] = {}
    finals: list[tuple[list[float], list[float]]] = []
    session_pairs: list[tuple[list[float], list[float]]] = []
    for user, (train, genuine, n_train_s, n_test_s) in split.items():
        impostor = [t for other, (_, test, _, _) in split.items() if other != user
                    for t in spaced(test, max_impostor_windows)]
        if not train or not genuine or not impostor:
            if progress is not None:
                progress(1)
            continue
        marks: dict[int, list[int | str]] = {}
        for c in checkpoints:
            n = len(train) if c == "all" else int(c)
            if n <= len(train):
                marks.setdefault(n, []).append(c)
        profile = Profile(params=params)
        learned = 0
        gen: list[float] = []
        imp: list[float] = []
        gen_t: list[int] = []
        imp_t: list[int] = []
        for i, w in enumerate(train, start=1):
            r = score_window(profile, w, pop, params)
            if learn == "all" or r.learnable:
                learn_window(profile, w, r.score, params, population=pop)
                learned += 1
            if i in marks or i == len(train):
                gen, gen_t = _score_all(profile, [w for _, w in genuine], pop, params)
                imp, imp_t = _score_all(profile, [w for _, w in impostor], pop, params)
                for label in marks.get(i, []):
                    per_point.setdefault(label, []).append((gen, imp))
        finals.append((gen, imp))
        session_pairs.append((_session_means(genuine, gen), _session_means(impostor, imp)))
        users.append(UserResult(
            user=user, train_sessions=n_train_s, test_sessions=n_test_s,
            train_windows=len(train), learned_windows=learned, genuine=len(gen),
            impostor=len(imp), eer=eer(gen, imp), auc=auc(gen, imp),
            genuine_tiers=_tiers(gen_t), impostor_tiers=_tiers(imp_t),
            curve=error_curve(gen, imp)))
        if progress is not None:
            progress(1)
    if not users:
        raise UsageError("no user had training, genuine and impostor windows")
    pooled_gen = np.concatenate([g for g, _ in finals])
    pooled_imp = np.concatenate([i for _, i in finals])
    curve = tuple(_point(c, per_point[c]) for c in checkpoints if c in per_point)
    sess_gen = np.concatenate([g for g, _ in session_pairs])
    sess_imp = np.concatenate([i for _, i in session_pairs])
    session_level = SessionLevel(
        genuine=int(sess_gen.size), impostor=int(sess_imp.size),
        mean_auc=statistics.fmean(auc(g, i) for g, i in session_pairs),
        pooled_eer=eer(sess_gen, sess_imp), pooled_auc=auc(sess_gen, sess_imp))
    protocol = {
        "split": f"first floor({train_fraction}·n) sessions per user (file-name order) train",
        "learn": learn, "max_impostor_windows": max_impostor_windows,
        "score": "ScoreResult.score of sidecar.scoring.score_window",
        "session_level": "mean window score per test session (not a production decision)",
    }
    return MouseRun(tuple(users), curve, eer(pooled_gen, pooled_imp),
                    auc(pooled_gen, pooled_imp), error_curve(pooled_gen, pooled_imp),
                    session_level, protocol)


def _session_means(tagged: Sequence[_Tagged], scores: Sequence[float]) -> list[float]:
    groups: dict[str, list[float]] = {}
    for (session, _), score in zip(tagged, scores, strict=True):
        groups.setdefault(session, []).append(score)
    return [statistics.fmean(v) for v in groups.values()]


def _point(label: int | str, pairs: Sequence[tuple[list[float], list[float]]]) -> CurvePoint:
    eers = [eer(g, i) for g, i in pairs]
    aucs = [auc(g, i) for g, i in pairs]
    gen = np.concatenate([g for g, _ in pairs])
    imp = np.concatenate([i for _, i in pairs])
    return CurvePoint(label, len(pairs), statistics.fmean(eers), statistics.fmean(aucs),
                      eer(gen, imp))
