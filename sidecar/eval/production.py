"""bioshard's production scorer behind the benchmark's detector interface.

The sidecar scores every modality with :class:`sidecar.scoring.ModalityModel`;
the keystroke benchmark feeds it MOBIKEY repetition vectors as one modality, with
the same kind of normalisation the sidecar applies to v1 features:

1. per column, the transform :mod:`sidecar.eval.mobikey` declares: ``log(x + eps)``
   for durations, lengths and speeds (hold and down-down in ms with ``eps = 1``;
   values below ``-eps / 2`` cannot occur and are clipped), the identity for
   up-down latencies (they can be negative), pressure, finger area and gravity;
2. robust scaling fitted on the training half only: ``(x - median) / s`` with
   ``s = 1.4826 · MAD`` (the normal-consistent MAD); where the MAD is 0 the sample
   standard deviation is used instead, and where that is 0 too, 1;
3. winsorising: each robust z-score is clipped to ``[-clip, clip]`` (default 3;
   ``clip = 0`` turns it off).  Single key latencies are heavy-tailed (one hesitation
   makes a down-down time 10 MADs long) and a Gaussian model lets one such feature
   dominate the distance; see docs/eval.md for what it changes.

Then every training vector goes through ``learn_one`` (all features observed) in
chronological order, and every test vector through ``score_one``
(:class:`AdaptiveProductionDetector`: the adaptive variant, which also learns the
genuine tests it finds learnable, as the sidecar would).  Nothing in
:mod:`sidecar.scoring` is re-implemented or changed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import numpy as np

from sidecar.eval.detectors import FloatArray
from sidecar.eval.keystroke import DetectorFactory
from sidecar.eval.mobikey import Column

if TYPE_CHECKING:  # pragma: no cover
    from sidecar.scoring import ModalityModel, ScoringParams

MAD_TO_SIGMA: Final = 1.4826
DEFAULT_CLIP: Final = 3.0

__all__ = ["AdaptiveProductionDetector", "ProductionDetector", "RobustScaler",
           "production_factory"]


class RobustScaler:
    """Column transforms, median/MAD scaling fitted on training rows, winsorising.

    ``columns`` has one entry per feature (``d``); ``fit`` takes ``(n, d)``;
    ``transform`` maps ``(m, d)`` → ``(m, d)``; ``clip = 0`` disables winsorising.
    """

    def __init__(self, columns: Sequence[Column], *, clip: float = DEFAULT_CLIP) -> None:
        if not clip >= 0:
            raise ValueError("clip must be >= 0")
        self.columns = tuple(columns)
        self.clip = clip
        self._log = np.array([c.transform == "log" for c in self.columns])
        self._eps = np.array([c.eps for c in self.columns], dtype=np.float64)
        self.center_: FloatArray = np.zeros(len(self.columns))
        self.scale_: FloatArray = np.ones(len(self.columns))

    def _warp(self, x: FloatArray) -> FloatArray:
        arr = np.array(x, dtype=np.float64, copy=True)
        if arr.ndim != 2 or arr.shape[1] != len(self.columns):
            raise ValueError(f"expected shape (n, {len(self.columns)}), got {arr.shape}")
        logged = np.maximum(arr[:, self._log] + self._eps[self._log], self._eps[self._log] / 2)
        arr[:, self._log] = np.log(logged)
        return arr

    def fit(self, train: FloatArray) -> RobustScaler:
        warped = self._warp(train)
        self.center_ = np.median(warped, axis=0)
        scale = MAD_TO_SIGMA * np.median(np.abs(warped - self.center_), axis=0)
        if warped.shape[0] > 1:
            std = warped.std(axis=0, ddof=1)
            scale = np.where(scale > 1e-12, scale, std)
        self.scale_ = np.where(scale > 1e-12, scale, 1.0)
        return self

    def transform(self, x: FloatArray) -> FloatArray:
        z = (self._warp(x) - self.center_) / self.scale_
        return np.clip(z, -self.clip, self.clip) if self.clip > 0 else z


class ProductionDetector:
    """``ModalityModel(dim, params)`` fed with :class:`RobustScaler`-normalised vectors."""

    def __init__(self, columns: Sequence[Column], params: ScoringParams, *,
                 clip: float = DEFAULT_CLIP) -> None:
        self.params = params
        self.scaler = RobustScaler(columns, clip=clip)
        self.model_: ModalityModel | None = None

    def fit(self, train: FloatArray) -> ProductionDetector:
        from sidecar.scoring import ModalityModel

        z = self.scaler.fit(train).transform(train)
        mask = np.ones(z.shape[1], dtype=bool)
        model = ModalityModel(z.shape[1], self.params)
        for row in z:
            model.learn_one(row, mask)
        self.model_ = model
        return self

    def score(self, test: FloatArray) -> FloatArray:
        if self.model_ is None:
            raise RuntimeError("fit() first")
        z = self.scaler.transform(test)
        mask = np.ones(z.shape[1], dtype=bool)
        return np.array([self.model_.score_one(row, mask) for row in z], dtype=np.float64)


class AdaptiveProductionDetector(ProductionDetector):
    """The production scorer that keeps learning, as the sidecar does.

    :meth:`score_stream` scores the genuine tests in chronological order and learns
    each one right after scoring it when it is learnable (``score <
    params.learn_max_score``, the sidecar's rule).  The impostor attempts are spread
    evenly over the same model states — attempt ``j`` is scored just before genuine
    test ``j mod n_genuine`` — and are never learned.
    """

    def score_stream(self, genuine: FloatArray, impostor: FloatArray,
                     ) -> tuple[FloatArray, FloatArray]:
        model = self.model_
        if model is None:
            raise RuntimeError("fit() first")
        zg = self.scaler.transform(genuine)
        zi = self.scaler.transform(impostor)
        mask = np.ones(zg.shape[1], dtype=bool)
        n = zg.shape[0]
        g_scores = np.zeros(n)
        i_scores = np.zeros(zi.shape[0])
        limit = self.params.learn_max_score
        self.learned_ = 0
        for i in range(n):
            for j in range(i, zi.shape[0], n):
                i_scores[j] = model.score_one(zi[j], mask)
            g_scores[i] = model.score_one(zg[i], mask)
            if g_scores[i] < limit:
                model.learn_one(zg[i], mask)
                self.learned_ += 1
        return g_scores, i_scores


def production_factory(params: ScoringParams, *, clip: float = DEFAULT_CLIP,
                       adaptive: bool = False) -> DetectorFactory:
    """A keystroke :data:`~sidecar.eval.keystroke.DetectorFactory` for the production scorer
    (``adaptive``: :class:`AdaptiveProductionDetector`)."""
    cls = AdaptiveProductionDetector if adaptive else ProductionDetector

    def factory(columns: Sequence[Column]) -> ProductionDetector:
        return cls(columns, params, clip=clip)

    return factory
