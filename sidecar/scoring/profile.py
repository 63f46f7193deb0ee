"""A user's behavioural profile and its compact, versioned binary form.

State: one :class:`ModalityModel` per modality seen, the user's recent genuine scores
(for the dynamic threshold), created/updated timestamps.  Windows learned per
modality are the models' ``n_seen_``.

Binary layout (little-endian; no pickle, nothing executable)::

    header   "BSHP" | u8 format version | u8 models | u16 history
             | i64 created_ms | i64 updated_ms
    history  f32 × history
    model    u8 modality index (keys, mouse, scroll, touch) | u8 components K
             | u16 sketch | u32 n_seen
             K × (u32 n_seen | f64 W | f64 W₂)
             f64 × d prior variances | f32 × sketch ratios
             f64 × K × (d mean, then d(d+1)/2 scatter: upper triangle, row-major)

Anything that does not parse exactly (wrong magic or version, truncated, trailing
bytes, non-finite numbers, inconsistent counts) raises :class:`ProfileFormatError`.
Hyper-parameters are *not* stored: they come from the :class:`ScoringParams` given to
:meth:`Profile.from_bytes`, so a configuration change applies to every profile.
"""

from __future__ import annotations

import math
import struct
from collections import deque
from functools import cache
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from sidecar.features import MODALITIES
from sidecar.scoring.calibration import to_float32
from sidecar.scoring.estimator import FloatArray, OnlineShrunkGaussian
from sidecar.scoring.modality_model import ModalityModel
from sidecar.scoring.params import ScoringParams
from sidecar.scoring.plan import ScoringPlan
from sidecar.scoring.population import PopulationModel

FORMAT_VERSION: Final = 1
MAGIC: Final = b"BSHP"
_HEADER: Final = struct.Struct("<4sBBHqq")
_MODEL: Final = struct.Struct("<BBHI")
_COMPONENT: Final = struct.Struct("<Idd")
_MODALITY_ORDER: Final = tuple(MODALITIES)
IntArray = NDArray[np.intp]


class ProfileFormatError(ValueError):
    """The bytes are not a profile this version can read."""


class Profile:
    """One user's state.

    Scoring only fills caches, so concurrent :func:`score_window` calls on one profile
    are fine; learning mutates the models — learn on a profile no other thread is
    scoring (e.g. a fresh ``from_bytes`` copy) and swap it in.
    """

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, *, created_ms: int = 0, updated_ms: int | None = None,
                 params: ScoringParams | None = None) -> None:
        self.params = ScoringParams() if params is None else params
        self.created_ms = int(created_ms)
        self.updated_ms = self.created_ms if updated_ms is None else int(updated_ms)
        self.models: dict[str, ModalityModel] = {}
        self.history: deque[float] = deque(maxlen=self.params.history_size)
        self._t1: tuple[tuple[object, ...], float] | None = None
        self.plans: dict[int, ScoringPlan] = {}
        """Compiled scoring plans (a cache; see :mod:`.plan`), never serialised."""

    # -- state ----------------------------------------------------------------------
    def windows_learned(self, modality: str) -> int:
        """Windows learned for ``modality`` (0 if never seen)."""
        m = self.models.get(modality)
        return 0 if m is None else m.n_seen_

    def model_for(self, modality: str, population: PopulationModel) -> ModalityModel:
        """The user's model of ``modality``, created (empty) on first use.

        A new model's prior variances are the population's within-user variances.
        """
        m = self.models.get(modality)
        if m is None:
            spec = MODALITIES[modality]
            m = ModalityModel(spec.dim, self.params,
                              prior_variance=population.prior(modality).within_variance)
            self.models[modality] = m
        return m

    def record_score(self, score: float, ts_ms: int | None = None) -> None:
        """Append a genuine score to the bounded history (stored as float32)."""
        if not (math.isfinite(score) and 0.0 <= score <= 1.0):
            raise ValueError("score must be in [0, 1]")
        self.history.append(to_float32(score))
        self._t1 = None
        if ts_ms is not None:
            self.updated_ms = max(self.updated_ms, int(ts_ms))

    def user_t1(self, params: ScoringParams) -> float:
        """The user's tier-1 threshold: ``t1`` raised to a quantile of their own scores.

        ``clip(quantile(history, dynamic_quantile), t1, t1_cap)`` once the history holds
        ``history_min`` scores, else ``t1``.  Never lowers t1, never reaches t2.
        """
        if not params.dynamic_thresholds or len(self.history) < params.history_min:
            return params.t1
        key = (params.t1, params.t1_cap, params.dynamic_quantile)
        if self._t1 is None or self._t1[0] != key:
            srt = sorted(self.history)
            pos = params.dynamic_quantile * (len(srt) - 1)
            lo = int(pos)
            hi = min(lo + 1, len(srt) - 1)
            q = srt[lo] + (srt[hi] - srt[lo]) * (pos - lo)
            self._t1 = (key, min(max(params.t1, q), params.t1_cap))
        return self._t1[1]

    # -- equality (round-trip tests) ------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Profile):
            return NotImplemented
        if (self.created_ms, self.updated_ms, list(self.history)) != (
                other.created_ms, other.updated_ms, list(other.history)):
            return False
        if self.models.keys() != other.models.keys():
            return False
        return all(_models_equal(self.models[k], other.models[k]) for k in self.models)

    # -- bytes ----------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Serialise (see the module docstring for the layout)."""
        if len(self.models) > 255:
            raise ValueError("too many models")
        parts: list[bytes] = [
            _HEADER.pack(MAGIC, FORMAT_VERSION, len(self.models), len(self.history),
                         self.created_ms, self.updated_ms),
            np.asarray(self.history, dtype="<f4").tobytes(),
        ]
        for name, model in self.models.items():
            comps = model.components_
            parts.append(_MODEL.pack(_MODALITY_ORDER.index(name), len(comps),
                                     len(model.sketch_), model.n_seen_))
            for c in comps:
                parts.append(_COMPONENT.pack(c.n_seen_, c.weight_sum_, c.weight_sq_sum_))
            parts.append(model.prior_variance_.astype("<f8").tobytes())
            parts.append(np.asarray(model.sketch_.ratios, dtype="<f4").tobytes())
            iu = _triu(model.dim)
            for c in comps:
                parts.append(c.location_.astype("<f8").tobytes())
                parts.append(c.scatter_[iu].astype("<f8").tobytes())
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes, params: ScoringParams | None = None) -> Profile:
        """Parse :meth:`to_bytes` output; raises :class:`ProfileFormatError` on anything else."""
        try:
            return _parse(bytes(data), ScoringParams() if params is None else params)
        except ProfileFormatError:
            raise
        except (ValueError, struct.error, IndexError, TypeError, OverflowError) as exc:
            raise ProfileFormatError(f"corrupt profile: {type(exc).__name__}") from exc


@cache
def _triu(d: int) -> tuple[IntArray, IntArray]:
    rows, cols = np.triu_indices(d)
    return rows, cols


@cache
def _symmetric_gather(d: int) -> IntArray:
    """(d, d) index into the upper-triangle vector that rebuilds the symmetric matrix."""
    rows, cols = _triu(d)
    g = np.zeros((d, d), dtype=np.intp)
    g[rows, cols] = np.arange(rows.size)
    g[cols, rows] = np.arange(rows.size)
    return g


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def unpack(self, st: struct.Struct) -> tuple[Any, ...]:
        end = self.pos + st.size
        if end > len(self.data):
            raise ProfileFormatError("truncated profile")
        out = st.unpack_from(self.data, self.pos)
        self.pos = end
        return out

    def array(self, n: int, dtype: str) -> FloatArray:
        size = np.dtype(dtype).itemsize * n
        end = self.pos + size
        if end > len(self.data):
            raise ProfileFormatError("truncated profile")
        arr = np.frombuffer(self.data, dtype=dtype, count=n, offset=self.pos).astype(np.float64)
        self.pos = end
        if not np.isfinite(arr).all():
            raise ProfileFormatError("non-finite number in profile")
        return arr


def _parse(data: bytes, params: ScoringParams) -> Profile:
    r = _Reader(data)
    if len(data) < _HEADER.size or data[:4] != MAGIC:
        raise ProfileFormatError("not a bioshard profile")
    _, version, n_models, n_hist, created, updated = r.unpack(_HEADER)
    if version != FORMAT_VERSION:
        raise ProfileFormatError(f"unsupported profile format version {version}")
    profile = Profile(created_ms=created, updated_ms=updated, params=params)
    hist = r.array(n_hist, "<f4")
    if n_hist and (hist.min() < 0 or hist.max() > 1):
        raise ProfileFormatError("history score out of range")
    profile.history.extend(hist.tolist())
    for _ in range(n_models):
        idx, n_comp, n_sketch, n_seen = r.unpack(_MODEL)
        if idx >= len(_MODALITY_ORDER):
            raise ProfileFormatError("unknown modality")
        name = _MODALITY_ORDER[idx]
        if name in profile.models:
            raise ProfileFormatError("duplicate modality")
        if n_comp == 0:
            raise ProfileFormatError("model without components")
        heads = [r.unpack(_COMPONENT) for _ in range(n_comp)]
        if sum(h[0] for h in heads) != n_seen:
            raise ProfileFormatError("window counts do not add up")
        d = MODALITIES[name].dim
        prior = r.array(d, "<f8")
        if prior.min() <= 0:
            raise ProfileFormatError("prior variance must be > 0")
        model = ModalityModel(d, params, prior_variance=prior)
        model.sketch_.extend_ratios(r.array(n_sketch, "<f4"))
        per = d + d * (d + 1) // 2
        state = r.array(n_comp * per, "<f8").reshape(n_comp, per)
        gather = _symmetric_gather(d)
        for (c_seen, w_sum, w_sq), row in zip(heads, state, strict=True):
            model.components_.append(OnlineShrunkGaussian.from_state(
                model.prior_variance_, half_life=params.half_life_windows,
                prior_strength=params.prior_strength, location=row[:d],
                scatter=row[d:][gather], weight_sum=w_sum, weight_sq_sum=w_sq,
                n_seen=c_seen))
        model.n_seen_ = n_seen
        profile.models[name] = model
    if r.pos != len(data):
        raise ProfileFormatError("trailing bytes after profile")
    return profile


def _models_equal(a: ModalityModel, b: ModalityModel) -> bool:
    if (a.dim, a.n_seen_, a.sketch_.ratios, len(a.components_)) != (
            b.dim, b.n_seen_, b.sketch_.ratios, len(b.components_)):
        return False
    if not np.array_equal(a.prior_variance_, b.prior_variance_):
        return False
    return all(
        (ca.n_seen_, ca.weight_sum_, ca.weight_sq_sum_) == (cb.n_seen_, cb.weight_sum_,
                                                          cb.weight_sq_sum_)
        and np.array_equal(ca.location_, cb.location_)
        and np.array_equal(ca.scatter_, cb.scatter_)
        for ca, cb in zip(a.components_, b.components_, strict=True)
    )
