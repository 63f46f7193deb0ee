"""Compiled scoring plans: one matrix product scores every modality of a window.

Scoring a window modality by modality costs a dozen small numpy calls per modality;
on the hot path that overhead dominates the arithmetic.  A plan concatenates, for one
feature-presence signature (which modalities and features the window has), the
whitening matrices of every component of every modality into one block matrix::

    y   = A·t − b            t: the window's observed transformed values (C,), with
                             the robust scaling folded into A and b
    d²  = Σ y² per component  (np.add.reduceat)
    d²ₘ = min per modality    (np.minimum.reduceat)

then calibrates each modality's ``d²ₘ`` exactly as :meth:`ModalityModel.tail` (user
model, enrolled modalities) or :meth:`PopulationModel.tail` (the rest) would.

A plan is valid for the user's models at their current window counts, one population
and one params object; it is rebuilt when any of them changes.  Plans live in a small
cache on the profile (or on the population for users without a profile) and are never
serialised.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Final

import numpy as np
from scipy.special import gammaincc

from sidecar.scoring.calibration import GenuineSketch, calibrated_tail, chi2_scale, chi2_tail
from sidecar.scoring.estimator import BoolArray, FloatArray
from sidecar.scoring.modality_model import ModalityModel
from sidecar.scoring.params import ScoringParams
from sidecar.scoring.population import SIGNATURE_BITS, ModalityPrior, PopulationModel

if TYPE_CHECKING:  # pragma: no cover
    from numpy.typing import NDArray

    IntArray = NDArray[np.intp]

MAX_CACHED_PLANS: Final = 32
_FIELD: Final = (1 << SIGNATURE_BITS) - 1


@cache
def _mask(bits: int, d: int) -> BoolArray:
    """The feature mask (d,) of one modality's signature bits (shared, read only)."""
    mask = np.array([(bits >> j) & 1 for j in range(d)], dtype=bool)
    mask.flags.writeable = False
    return mask


@dataclass(frozen=True, slots=True)
class Winsorised:
    """A block's winsorised form: ``u = clip(t[gather]·g − h, ±bound)``, ``y = w·u``.

    ``u`` is each component's standardised deviation, the window's values tiled once per
    component (``gather``), the robust scaling folded into ``g`` and ``h``.
    """

    gather: IntArray  # (U,) index into the modality's df observed values
    g: FloatArray  # (U,)
    h: FloatArray  # (U,)
    bound: float
    w: FloatArray  # (R, U) block diagonal


@dataclass(frozen=True, slots=True)
class PlanBlock:
    """One modality's part of a plan, for one model state and one feature mask.

    ``y = a·t − b`` (R,) are the whitened residuals of the modality's observed,
    transformed values ``t`` (df,), the robust scaling folded in; component ``k``'s
    rows start at ``starts[k]``.  ``winsorised``: the clipped form (user models with
    ``winsor_z > 0``), which replaces ``a`` and ``b``.
    """

    df: int
    a: FloatArray  # (R, df)
    b: FloatArray  # (R,)
    starts: tuple[int, ...]  # (K,)
    sketch: GenuineSketch | None  # None: population (plain chi-square)
    winsorised: Winsorised | None = None


def user_block(model: ModalityModel, mask: BoolArray, prior: ModalityPrior) -> PlanBlock:
    """The block of a user's (enrolled) model for ``mask`` (cached on the model)."""
    key = mask.tobytes()
    hit = model.plan_blocks.get(key)
    if hit is not None and hit[0] is prior:
        cached = hit[1]
        assert isinstance(cached, PlanBlock)
        return cached
    st = model.stack(mask)
    inv = 1.0 / prior.scale[mask]
    loc = prior.location[mask]
    # Fold the robust scaling z = (t − loc)·inv into the block: A·z − b = A'·t − b'.
    a = st.a * inv
    b = st.b + a @ loc
    win = None
    if st.w is not None:
        assert st.center is not None and st.sd is not None
        k = len(st.starts)
        inv_k = np.tile(inv, k)
        # u = (z − center) / sd = t·(inv/sd) − (loc·inv + center)/sd
        win = Winsorised(np.tile(np.arange(st.df), k), inv_k / st.sd,
                         (np.tile(loc, k) * inv_k + st.center) / st.sd,
                         model.params.winsor_z, st.w)
    block = PlanBlock(st.df, a, b, tuple(st.starts), model.sketch_, win)
    model.plan_blocks[key] = (prior, block)
    return block


def population_block(prior: ModalityPrior, mask: BoolArray) -> PlanBlock:
    """The population's block for ``mask`` (cached on the prior; never winsorised)."""
    key = mask.tobytes()
    block = prior.plan_blocks.get(key)
    if block is None:
        _, w, df = prior.whitening(mask)
        a = w * (1.0 / prior.scale[mask])
        block = PlanBlock(df, a, a @ prior.location[mask], (0,), None)
        prior.plan_blocks[key] = block
    assert isinstance(block, PlanBlock)
    return block


def _as_winsorised(block: PlanBlock) -> tuple[Winsorised, FloatArray | None]:
    """The block in winsorised form, and the offset to subtract from ``y`` (or None)."""
    if block.winsorised is not None:
        return block.winsorised, None
    ones = np.ones(block.df)
    return Winsorised(np.arange(block.df), ones, np.zeros(block.df), math.inf, block.a), block.b


class ScoringPlan:
    """The modalities' :class:`PlanBlock` side by side, for one signature.

    Without winsorising the blocks make one ``A`` (R, C) and ``b`` (R,):
    ``y = A·t − b``.  With it, ``u`` (U,) is gathered, scaled, shifted and clipped
    first, then ``y = W·u − offset`` with ``W`` (R, U) block diagonal.
    """

    __slots__ = ("_checks", "_entries", "_half_df", "_half_inv_scale", "a", "b", "bound",
                 "comp_starts", "enrolled", "g", "gather", "h", "method", "mod_starts",
                 "names", "neg_bound", "offset", "params", "population", "sig", "w")

    def __init__(self, sig: int, models: Mapping[str, ModalityModel],
                 population: PopulationModel, params: ScoringParams) -> None:
        if sig <= 0:
            raise ValueError("empty signature")
        self.sig = sig
        self.params = params
        self.population = population
        self.method = params.calibration
        names: list[str] = []
        checks: list[tuple[str, ModalityModel | None, int]] = []
        blocks: list[PlanBlock] = []
        for i, (name, prior) in enumerate(population.modalities.items()):
            bits = (sig >> (SIGNATURE_BITS * i)) & _FIELD
            if not bits:
                continue
            d = prior.spec.dim
            if bits >> d:
                raise ValueError("signature has bits beyond the modality's features")
            mask = _mask(bits, d)
            model = models.get(name)
            checks.append((name, model, -1 if model is None else model.n_seen_))
            if model is not None and model.n_seen_ >= params.enroll_windows:
                blocks.append(user_block(model, mask, prior))
            else:
                blocks.append(population_block(prior, mask))
            names.append(name)
        comp_starts: list[int] = []
        mod_starts: list[int] = []
        r = 0
        for bl in blocks:
            mod_starts.append(len(comp_starts))
            comp_starts.extend(r + s for s in bl.starts)
            r += bl.a.shape[0]
        self.w: FloatArray | None = None
        self.offset: FloatArray | None = None
        if all(bl.winsorised is None for bl in blocks):
            big_a = np.zeros((r, sum(bl.df for bl in blocks)))
            r = c = 0
            for bl in blocks:
                big_a[r:r + bl.a.shape[0], c:c + bl.df] = bl.a
                r += bl.a.shape[0]
                c += bl.df
            self.a: FloatArray | None = big_a
            self.b = np.concatenate([bl.b for bl in blocks])
            gather = g = h = self.bound = self.neg_bound = np.zeros(0)
        else:
            forms = [_as_winsorised(bl) for bl in blocks]
            w = np.zeros((r, sum(f.w.shape[1] for f, _ in forms)))
            r = c = col = 0
            gathers = []
            for bl, (f, _) in zip(blocks, forms, strict=True):
                w[r:r + f.w.shape[0], c:c + f.w.shape[1]] = f.w
                gathers.append(f.gather + col)
                r += f.w.shape[0]
                c += f.w.shape[1]
                col += bl.df
            self.a = None
            self.b = np.zeros(0)
            self.w = w
            gather = np.concatenate(gathers)
            g = np.concatenate([f.g for f, _ in forms])
            h = np.concatenate([f.h for f, _ in forms])
            self.bound = np.concatenate([np.full(f.g.shape[0], f.bound) for f, _ in forms])
            self.neg_bound = -self.bound
            if any(off is not None for _, off in forms):
                self.offset = np.concatenate([np.zeros(f.w.shape[0]) if off is None else off
                                              for f, off in forms])
        self.gather = gather
        self.g = g
        self.h = h
        self.comp_starts = comp_starts
        self.mod_starts = mod_starts if len(comp_starts) > len(mod_starts) else None
        self.names = tuple(names)
        entries = [(bl.df, bl.sketch) for bl in blocks]
        self.enrolled = any(sk is not None for _, sk in entries)
        self._entries = tuple(entries)
        self._checks = tuple(checks)
        scales = [1.0 if sk is None else chi2_scale(self.method, sk) for _, sk in entries]
        if all(sc is not None for sc in scales):
            # Every modality is chi-square shaped: one vectorised gammaincc call.
            self._half_df: FloatArray | None = np.array([df * 0.5 for df, _ in entries])
            self._half_inv_scale = np.array([0.5 / sc for sc in scales if sc is not None])
        else:
            self._half_df = None
            self._half_inv_scale = np.zeros(0)

    def is_current(self, models: Mapping[str, ModalityModel], population: PopulationModel,
                   params: ScoringParams) -> bool:
        """True while the models, population and params it was built from are unchanged."""
        if params is not self.params or population is not self.population:
            return False
        for name, model, seen in self._checks:
            cur = models.get(name)
            if cur is not model or (cur is not None and cur.n_seen_ != seen):
                return False
        return True

    def tails(self, values: list[float]) -> list[float]:
        """Calibrated tail per modality (``names`` order) for the observed, transformed
        ``values`` (C,) from :func:`~sidecar.scoring.normalise.transform_window`."""
        if self.a is not None:
            y = self.a @ np.array(values)
            y -= self.b
        else:
            assert self.w is not None
            u = np.array(values)[self.gather]
            u *= self.g
            u -= self.h
            np.minimum(u, self.bound, out=u)
            np.maximum(u, self.neg_bound, out=u)
            y = self.w @ u
            if self.offset is not None:
                y -= self.offset
        y *= y
        d2 = np.add.reduceat(y, self.comp_starts)
        if self.mod_starts is not None:
            d2 = np.minimum.reduceat(d2, self.mod_starts)
        if self._half_df is not None:
            q: list[float] = gammaincc(self._half_df, d2 * self._half_inv_scale).tolist()
            return q
        out: list[float] = []
        method = self.method
        for (df, sketch), d in zip(self._entries, d2.tolist(), strict=True):
            out.append(chi2_tail(d, df) if sketch is None
                       else calibrated_tail(d, df, method, sketch))
        return out


def plan_for(cache: dict[int, ScoringPlan], models: Mapping[str, ModalityModel], sig: int,
             population: PopulationModel, params: ScoringParams) -> ScoringPlan:
    """The cached plan for ``sig``, rebuilt if stale; the cache is bounded."""
    plan = cache.get(sig)
    if plan is None or not plan.is_current(models, population, params):
        if len(cache) >= MAX_CACHED_PLANS:
            cache.clear()
        plan = ScoringPlan(sig, models, population, params)
        cache[sig] = plan
    return plan
