"""Online, exponentially weighted Gaussian with covariance shrinkage.

Notation: ``d`` = dimension, ``W = Σ wᵢ`` and ``W₂ = Σ wᵢ²`` over learned windows where
the newest window has weight 1 and every older one is multiplied by
``λ = 2^(-1/half_life)`` per learned window.  The effective sample size is Kish's
``n_eff = W² / W₂`` (``= n`` without forgetting, ``≈ 2.9·half_life`` in steady state).

The covariance blends three things, so that two or three windows already give an
invertible, sensible matrix::

    C      = S / W                                 weighted (biased) sample covariance
    C_ρ    = (1 − ρ)·C + ρ·diag(C)                 shrinkage toward the diagonal
    Σ      = (n_eff·C_ρ + ν₀·diag(prior)) / (n_eff + ν₀)   blend with the prior variances

``ρ`` is given or, by default, ``d / (d + n_eff)`` (strong while data is short, fading
as it grows); ``ν₀`` is ``prior_strength`` in pseudo-windows.  With ``half_life = inf``,
``ρ = 0`` and ``ν₀ = 0`` the estimator is exactly the batch ``np.mean`` /
``np.cov(bias=True)``.

Missing features (``mask``) are handled as a marginal Gaussian when scoring and by
conditional-mean imputation plus the conditional covariance when learning (one EM
step), so that a feature that is often absent keeps an honest variance.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.linalg.lapack import dtrtri

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


def whitening_matrix(cov: FloatArray) -> FloatArray:
    """Return ``A`` (r, d) with ``AᵀA = pinv(cov)``, i.e. ``‖A·v‖² = vᵀ·pinv(cov)·v``.

    ``cov`` (d, d) symmetric positive semi-definite.  Positive definite (the normal
    case: the prior keeps it so): ``A = L⁻¹`` from the Cholesky factor, a few µs.
    Otherwise the eigen-decomposition with ``pinvh``'s cut-off: eigenvalues below it
    are dropped, so a singular covariance gives the pseudo-inverse distance.
    """
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return _pinv_whitening(cov)
    inv, info = dtrtri(chol, lower=1)
    if info != 0 or not np.isfinite(inv).all():
        return _pinv_whitening(cov)
    return np.ascontiguousarray(inv)


def _pinv_whitening(cov: FloatArray) -> FloatArray:
    vals, vecs = np.linalg.eigh(cov)
    cutoff = max(cov.shape) * np.finfo(np.float64).eps * max(float(np.max(np.abs(vals))), 0.0)
    keep = vals > cutoff
    return np.ascontiguousarray((vecs[:, keep] / np.sqrt(vals[keep])).T)


class OnlineShrunkGaussian:
    """Exponentially weighted online mean and shrunk covariance of ``dim``-vectors.

    Constructor arguments are stored as given (scikit-learn style); learned values end
    in ``_``: ``location_`` (d,), ``covariance_`` (d, d), ``precision_`` (d, d),
    ``n_seen_`` (windows learned), ``weight_sum_`` (W), ``weight_sq_sum_`` (W₂),
    ``scatter_`` (d, d, the weighted scatter ``S``).  Covariance, precision and
    whitening matrices are cached and recomputed lazily after learning.
    """

    def __init__(self, dim: int, *, half_life: float = 50.0, prior_strength: float = 4.0,
                 prior_variance: float | ArrayLike = 1.0,
                 shrinkage: float | None = None) -> None:
        if dim < 1:
            raise ValueError("dim must be >= 1")
        if not half_life > 0:
            raise ValueError("half_life must be > 0 (inf allowed)")
        if not (math.isfinite(prior_strength) and prior_strength >= 0):
            raise ValueError("prior_strength must be finite and >= 0")
        if shrinkage is not None and not 0.0 <= shrinkage <= 1.0:
            raise ValueError("shrinkage must be in [0, 1] or None")
        self.dim = dim
        self.half_life = half_life
        self.prior_strength = prior_strength
        self.prior_variance = prior_variance
        self.shrinkage = shrinkage
        prior = np.broadcast_to(np.asarray(prior_variance, dtype=np.float64), (dim,)).copy()
        if not (np.all(np.isfinite(prior)) and np.all(prior > 0)):
            raise ValueError("prior_variance must be finite and > 0")
        self._prior: FloatArray = prior
        self._decay = 1.0 if math.isinf(half_life) else 0.5 ** (1.0 / half_life)
        self.location_: FloatArray = np.zeros(dim)
        self.scatter_: FloatArray = np.zeros((dim, dim))
        self.weight_sum_ = 0.0
        self.weight_sq_sum_ = 0.0
        self.n_seen_ = 0
        self._invalidate()

    # -- learned state --------------------------------------------------------------
    def _invalidate(self) -> None:
        self._cov: FloatArray | None = None
        self._prec: FloatArray | None = None
        self._whiten: dict[bytes, tuple[FloatArray, FloatArray]] = {}

    @property
    def n_effective_(self) -> float:
        """Kish's effective sample size ``W² / W₂`` (0 before any window)."""
        return self.weight_sum_ ** 2 / self.weight_sq_sum_ if self.weight_sq_sum_ > 0 else 0.0

    @property
    def covariance_(self) -> FloatArray:
        """Shrunk covariance (d, d); the prior diagonal before any window."""
        if self._cov is None:
            self._cov = self._compute_covariance()
        return self._cov

    @property
    def precision_(self) -> FloatArray:
        """Pseudo-inverse of :attr:`covariance_` (d, d)."""
        if self._prec is None:
            w = self.whitening()[0]
            self._prec = w.T @ w
        return self._prec

    def _compute_covariance(self) -> FloatArray:
        n_eff = self.n_effective_
        if n_eff == 0.0:
            return np.diag(self._prior)
        rho = self.dim / (self.dim + n_eff) if self.shrinkage is None else self.shrinkage
        nu = self.prior_strength
        data_share = n_eff / (n_eff + nu)
        # Off-diagonal: (1 − ρ)·C scaled by the data's share; diagonal: C_ii (shrinking
        # toward the diagonal leaves it alone) plus the prior's share.
        cov = self.scatter_ * (data_share * (1.0 - rho) / self.weight_sum_)
        diag = np.diagonal(self.scatter_) * (data_share / self.weight_sum_)
        np.fill_diagonal(cov, diag + self._prior * (nu / (n_eff + nu)))
        return cov

    # -- learning -------------------------------------------------------------------
    def learn_one(self, x: ArrayLike, mask: ArrayLike | None = None) -> None:
        """Learn one window ``x`` (d,); ``mask`` (d,) bool marks observed features."""
        xf = np.array(x, dtype=np.float64).reshape(self.dim)
        extra: tuple[BoolArray, FloatArray] | None = None
        if mask is not None:
            obs = np.asarray(mask, dtype=bool).reshape(self.dim)
            if not obs.any():
                raise ValueError("cannot learn a window with no observed feature")
            if not obs.all():
                extra = self._impute(xf, obs)
        if not np.all(np.isfinite(xf)):
            raise ValueError("x must be finite at observed features")
        lam = self._decay
        w_sum = lam * self.weight_sum_ + 1.0
        delta = xf - self.location_
        factor = 1.0 - 1.0 / w_sum
        self.location_ = self.location_ + delta / w_sum
        scatter = lam * self.scatter_ + factor * np.outer(delta, delta)
        if extra is not None:
            miss, cond_cov = extra
            scatter[np.ix_(miss, miss)] += factor * cond_cov
        self.scatter_ = scatter
        self.weight_sum_ = w_sum
        self.weight_sq_sum_ = lam * lam * self.weight_sq_sum_ + 1.0
        self.n_seen_ += 1
        self._invalidate()

    def _impute(self, xf: FloatArray, obs: BoolArray) -> tuple[BoolArray, FloatArray]:
        """Fill missing entries of ``xf`` in place with their conditional mean.

        Returns the missing mask and the conditional covariance (m, m) of the missing
        block given the observed one under the current model.
        """
        miss = ~obs
        cov = self.covariance_
        mu = self.location_
        s_oo = cov[np.ix_(obs, obs)]
        s_mo = cov[np.ix_(miss, obs)]
        gain = np.linalg.solve(s_oo, s_mo.T).T
        xf[miss] = mu[miss] + gain @ (xf[obs] - mu[obs])
        cond = cov[np.ix_(miss, miss)] - gain @ s_mo.T
        return miss, (cond + cond.T) * 0.5

    # -- distances ------------------------------------------------------------------
    def whitening(self, mask: ArrayLike | None = None) -> tuple[FloatArray, FloatArray]:
        """Return ``(A, b)`` with ``d² = ‖A·x_o − b‖²`` for the observed features ``x_o``.

        ``A`` (r, k) whitens the marginal covariance of the ``k`` observed features
        (all ``d`` when ``mask`` is None); ``b = A·μ_o`` (r,).  Cached per mask.
        """
        obs = None if mask is None else np.asarray(mask, dtype=bool).reshape(self.dim)
        key = b"" if obs is None or obs.all() else obs.tobytes()
        hit = self._whiten.get(key)
        if hit is None:
            cov, mu = self.covariance_, self.location_
            if key:
                assert obs is not None
                cov, mu = cov[np.ix_(obs, obs)], mu[obs]
            a = whitening_matrix(cov)
            hit = (a, a @ mu)
            self._whiten[key] = hit
        return hit

    def squared_mahalanobis(self, x: ArrayLike, mask: ArrayLike | None = None) -> float:
        """Squared Mahalanobis distance of ``x`` (d,) to the location.

        With ``mask`` (d,) bool, only observed features count: the distance under the
        marginal Gaussian (sub-mean, sub-covariance), chi-square with ``mask.sum()`` df.
        """
        xf = np.asarray(x, dtype=np.float64).reshape(self.dim)
        a, b = self.whitening(mask)
        if mask is not None and a.shape[1] != self.dim:
            xf = xf[np.asarray(mask, dtype=bool).reshape(self.dim)]
        y = a @ xf - b
        return float(y @ y)

    # -- state ----------------------------------------------------------------------
    @property
    def prior_variance_(self) -> FloatArray:
        """The prior variances (d,) as an array."""
        return self._prior

    @classmethod
    def from_state(cls, prior_variance: FloatArray, *, half_life: float,
                   prior_strength: float, location: FloatArray, scatter: FloatArray,
                   weight_sum: float, weight_sq_sum: float,
                   n_seen: int) -> OnlineShrunkGaussian:
        """Rebuild a learned estimator (profile deserialisation; the fast path).

        Arrays must be finite float64: ``prior_variance`` (d,) > 0, ``location`` (d,),
        ``scatter`` (d, d) symmetric.  Counts and weights are checked for consistency.
        """
        dim = prior_variance.shape[0]
        if location.shape != (dim,) or scatter.shape != (dim, dim):
            raise ValueError("state shape does not match dim")
        if not (math.isfinite(weight_sum) and math.isfinite(weight_sq_sum)):
            raise ValueError("weights must be finite")
        if n_seen < 1 or weight_sum <= 0 or weight_sq_sum <= 0:
            raise ValueError("a learned estimator needs n_seen >= 1 and positive weights")
        if weight_sq_sum > weight_sum ** 2 * (1 + 1e-9) or weight_sum > n_seen * (1 + 1e-9):
            raise ValueError("inconsistent weights")
        self = cls.__new__(cls)
        self.dim = dim
        self.half_life = half_life
        self.prior_strength = prior_strength
        self.prior_variance = prior_variance
        self.shrinkage = None
        self._prior = prior_variance
        self._decay = 1.0 if math.isinf(half_life) else 0.5 ** (1.0 / half_life)
        self.location_ = location
        self.scatter_ = scatter
        self.weight_sum_ = float(weight_sum)
        self.weight_sq_sum_ = float(weight_sq_sum)
        self.n_seen_ = int(n_seen)
        self._invalidate()
        return self
