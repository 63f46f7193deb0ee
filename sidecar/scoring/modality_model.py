"""One modality's behaviour model: up to K Gaussian components (behaviour modes).

A user who types on a laptop and on a tablet, or holds the phone in two postures, has
well-separated clusters; one Gaussian would cover both and the space between them.
The distance is to the *nearest* component.  A learned window that is far from every
component (its scaled chi-square tail below ``params.spawn_tail``) starts a new one
while fewer than ``params.max_components`` exist; otherwise it updates the nearest.

Distances are *predictive*: each component's covariance is inflated by
``1 + 1/n_eff`` for the uncertainty of its estimated mean, which matters while a
component has few windows.

Distances can be *winsorised* (``params.winsor_z``, e.g. 3): each observed feature's
deviation from a component's mean is clipped to ``±winsor_z`` of that component's
predictive standard deviation before the Mahalanobis distance, ``r_c = σ·clip(r/σ)``,
``d² = r_cᵀ Σ⁻¹ r_c``.  One heavy-tailed feature (a single hesitation in a key
latency) then adds at most about ``winsor_z²`` instead of dominating the distance.
A learned window is clipped the same way toward the component it updates (a robust
online update); a window that spawns a new component is learned as it is, and
whether a window is far enough to spawn one is judged on its unclipped distance.
Off by default (``winsor_z = 0``; see :class:`~sidecar.scoring.params.ScoringParams`).

Works on any vector, not only v1 features: the keystroke benchmark feeds its
repetition vectors (37–82 dimensions) into this same class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.linalg.lapack import dpotrf, dtrtri

from sidecar.scoring.calibration import (
    GenuineSketch,
    calibrated_tail,
    chi2_tail,
    score_from_tail,
)
from sidecar.scoring.estimator import BoolArray, FloatArray, OnlineShrunkGaussian
from sidecar.scoring.params import ScoringParams


def _clip(u: FloatArray, bound: float) -> FloatArray:
    """Clip ``u`` to ``[-bound, bound]`` in place (winsorising); returns it."""
    np.clip(u, -bound, bound, out=u)
    return u


def _batched_whitening(covs: FloatArray) -> FloatArray | None:
    """``L⁻¹`` (K, m, m) from the Cholesky factors of ``covs`` (K, m, m) (LAPACK
    ``dpotrf`` + ``dtrtri``, the cheapest calls for these small matrices), or None when
    one of them is not positive definite: the caller then falls back to
    :func:`~sidecar.scoring.estimator.whitening_matrix` per component."""
    out = np.empty_like(covs)
    for k in range(covs.shape[0]):
        chol, info = dpotrf(covs[k], lower=1, clean=1)
        if info != 0:
            return None
        inv, info = dtrtri(chol, lower=1)
        if info != 0:
            return None
        out[k] = inv
    return out if np.isfinite(out).all() else None


class NotFittedError(ValueError):
    """The model has not learned any window yet, so it cannot score."""


@dataclass(frozen=True, slots=True)
class WhiteningStack:
    """All components' whitening for one mask: ``d²_k = ‖(A·x_o − b)[rows of k]‖²``.

    ``x_o`` are the ``df`` observed features; component ``k``'s rows start at
    ``starts[k]``.
    """

    observed: BoolArray | None  # (d,) or None: every feature observed
    a: FloatArray  # (Σ r_k, df)
    b: FloatArray  # (Σ r_k,)
    starts: list[int]  # (K,) row offset of each component
    df: int
    # Winsorised form (only when params.winsor_z > 0, else None):
    # u = clip((tile(x_o, K) − center) / sd, ±z), y = w·u; unclipped, w·u = A·x_o − b.
    center: FloatArray | None  # (K·df,) component means at the observed features
    sd: FloatArray | None  # (K·df,) predictive standard deviations, same order
    w: FloatArray | None  # (Σ r_k, K·df) block diagonal: component k's rows A_k·diag(sd_k)


class ModalityModel:
    """Up to ``params.max_components`` :class:`OnlineShrunkGaussian` over ``dim``-vectors.

    ``prior_variance`` (scalar or (d,)) defaults to ``params.prior_variance``.  Learned
    values: ``components_``, ``sketch_`` (genuine distances for calibration),
    ``n_seen_`` (windows learned).  ``learn_one(x, mask)`` / ``score_one(x, mask)``
    take ``x`` (d,) float and an optional ``mask`` (d,) bool of observed features.
    """

    def __init__(self, dim: int, params: ScoringParams | None = None, *,
                 prior_variance: float | ArrayLike | None = None) -> None:
        if dim < 1:
            raise ValueError("dim must be >= 1")
        self.dim = dim
        self.params = ScoringParams() if params is None else params
        self.prior_variance = prior_variance
        prior = self.params.prior_variance if prior_variance is None else prior_variance
        self._prior: FloatArray = np.array(np.broadcast_to(
            np.asarray(prior, dtype=np.float64), (dim,)))
        low = self._prior.min()
        if not (low > 0 and np.isfinite(self._prior).all()):
            raise ValueError("prior_variance must be finite and > 0")
        self.components_: list[OnlineShrunkGaussian] = []
        self.sketch_ = GenuineSketch(self.params.sketch_size)
        self.n_seen_ = 0
        self._winsor = float(self.params.winsor_z)
        self._stacks: dict[bytes, WhiteningStack] = {}
        self.plan_blocks: dict[bytes, tuple[object, object]] = {}
        """Compiled plan blocks per mask (a cache for :mod:`.plan`), dropped with the stacks."""

    @property
    def prior_variance_(self) -> FloatArray:
        """The prior variances (d,)."""
        return self._prior

    def new_component(self) -> OnlineShrunkGaussian:
        """A fresh, unlearned component with this model's hyper-parameters."""
        p = self.params
        return OnlineShrunkGaussian(self.dim, half_life=p.half_life_windows,
                                    prior_strength=p.prior_strength,
                                    prior_variance=self._prior)

    def invalidate(self) -> None:
        """Drop cached whitening stacks (after any change to the components)."""
        self._stacks = {}
        self.plan_blocks = {}

    # -- distances ------------------------------------------------------------------
    def _observed(self, mask: ArrayLike | None) -> BoolArray | None:
        if mask is None:
            return None
        obs = np.asarray(mask, dtype=bool).reshape(self.dim)
        if not obs.any():
            raise ValueError("mask has no observed feature")
        return None if obs.all() else obs

    def stack(self, mask: ArrayLike | None = None) -> WhiteningStack:
        """Stacked predictive whitening of every component for ``mask`` (cached).

        Raises :class:`NotFittedError` before the first learned window.
        """
        return self._stack(self._observed(mask))

    def _stack(self, obs: BoolArray | None) -> WhiteningStack:
        key = b"" if obs is None else obs.tobytes()
        st = self._stacks.get(key)
        if st is None:
            if not self.components_:
                raise NotFittedError("the model has not learned any window")
            st = self._build_stack(obs)
            self._stacks[key] = st
        return st

    def _build_stack(self, obs: BoolArray | None) -> WhiteningStack:
        comps = self.components_
        k = len(comps)
        df = self.dim if obs is None else int(obs.sum())
        # Predictive inflation: each component's mean is itself estimated.
        f = np.array([1.0 / math.sqrt(1.0 + 1.0 / max(c.n_effective_, 1.0)) for c in comps])
        covs = np.array([c.covariance_ for c in comps])  # (K, d, d)
        mus = np.array([c.location_ for c in comps])  # (K, d)
        if obs is not None:
            covs = covs[:, obs][:, :, obs]
            mus = mus[:, obs]
        inv = _batched_whitening(covs)
        blocks_a: list[FloatArray]
        if inv is not None:  # the normal case: every component positive definite
            inv *= f[:, None, None]
            blocks_a = list(inv)
            a = inv.reshape(k * df, df)
            b = np.matmul(inv, mus[:, :, None]).reshape(k * df)
            starts = list(range(0, k * df, df))
        else:
            blocks_a, blocks_b, starts = [], [], []
            row = 0
            for comp, fk in zip(comps, f.tolist(), strict=True):
                ak, bk = comp.whitening(obs)
                blocks_a.append(ak * fk)
                blocks_b.append(bk * fk)
                starts.append(row)
                row += ak.shape[0]
            a = np.ascontiguousarray(np.vstack(blocks_a))
            b = np.concatenate(blocks_b)
        center = sd = w = None
        if self._winsor > 0:
            sds = np.sqrt(np.diagonal(covs, axis1=1, axis2=2)) / f[:, None]  # (K, df)
            w = np.zeros((a.shape[0], k * df))
            for j, (aj, sdj) in enumerate(zip(blocks_a, sds, strict=True)):
                w[starts[j]:starts[j] + aj.shape[0], j * df:(j + 1) * df] = aj * sdj
            center = mus.reshape(k * df)
            sd = sds.reshape(k * df)
        return WhiteningStack(observed=obs, a=a, b=b, starts=starts, df=df,
                              center=center, sd=sd, w=w)

    def _distances(self, x: FloatArray, st: WhiteningStack) -> FloatArray:
        """Squared predictive (winsorised) distances (K,) of ``x`` (d,) to every component."""
        xo = x if st.observed is None else x[st.observed]
        if st.w is not None:
            assert st.center is not None and st.sd is not None
            u = np.tile(xo, len(st.starts))
            u -= st.center
            u /= st.sd
            _clip(u, self._winsor)
            y = st.w @ u
        else:
            y = st.a @ xo
            y -= st.b
        y *= y
        if len(st.starts) == 1:
            return np.array([y.sum()])
        return np.add.reduceat(y, st.starts)

    def _full_distances(self, x: FloatArray, st: WhiteningStack) -> FloatArray:
        """Squared predictive distances (K,) without winsorising."""
        xo = x if st.observed is None else x[st.observed]
        y = st.a @ xo
        y -= st.b
        y *= y
        return np.add.reduceat(y, st.starts)

    def squared_mahalanobis(self, x: ArrayLike, mask: ArrayLike | None = None) -> float:
        """Squared predictive Mahalanobis distance of ``x`` (d,) to the nearest component.

        With ``mask``, the marginal over observed features (df = ``mask.sum()``).
        """
        xf = np.asarray(x, dtype=np.float64).reshape(self.dim)
        return float(self._distances(xf, self._stack(self._observed(mask))).min())

    def tail(self, x: ArrayLike, mask: ArrayLike | None = None) -> float:
        """Calibrated tail probability of ``x`` (small = unusual for this user)."""
        xf = np.asarray(x, dtype=np.float64).reshape(self.dim)
        st = self._stack(self._observed(mask))
        d2 = float(self._distances(xf, st).min())
        return calibrated_tail(d2, st.df, self.params.calibration, self.sketch_)

    def score_one(self, x: ArrayLike, mask: ArrayLike | None = None) -> float:
        """Anomaly score in [0, 1] (high = anomalous).  Raises :class:`NotFittedError`."""
        return score_from_tail(self.tail(x, mask))

    # -- learning -------------------------------------------------------------------
    def _winsorised(self, xf: FloatArray, st: WhiteningStack, k: int) -> FloatArray:
        """``xf`` with its observed features clipped toward component ``k`` (a copy)."""
        assert st.center is not None and st.sd is not None
        sl = slice(k * st.df, (k + 1) * st.df)
        center, sd = st.center[sl], st.sd[sl]
        lim = self._winsor
        if st.observed is None:
            return center + _clip((xf - center) / sd, lim) * sd
        out = xf.copy()
        out[st.observed] = center + _clip((xf[st.observed] - center) / sd, lim) * sd
        return out

    def learn_one(self, x: ArrayLike, mask: ArrayLike | None = None) -> None:
        """Learn a trusted window: update the nearest component, or spawn a new one."""
        xf = np.asarray(x, dtype=np.float64).reshape(self.dim)
        obs = self._observed(mask)
        if not self.components_:
            comp = self.new_component()
            self.components_.append(comp)
        else:
            st = self._stack(obs)
            d2s = self._distances(xf, st)
            j = int(d2s.argmin())
            d2 = float(d2s[j])
            # Is this another behaviour mode?  Judged on the full (unclipped) distance:
            # a mode shows in every feature, which winsorising would hide.
            full = d2 if self._winsor == 0 else float(self._full_distances(xf, st).min())
            far = chi2_tail(full / self.sketch_.scale(), st.df) < self.params.spawn_tail
            if far and len(self.components_) < self.params.max_components:
                comp = self.new_component()
                self.components_.append(comp)
            else:
                comp = self.components_[j]
                self.sketch_.add(d2, st.df)
                if self._winsor > 0:
                    xf = self._winsorised(xf, st, j)
        comp.learn_one(xf, obs)
        self.n_seen_ += 1
        self.invalidate()
