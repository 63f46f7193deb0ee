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

from collections.abc import Mapping
from typing import Final

import numpy as np
from scipy.special import gammaincc

from sidecar.scoring.calibration import GenuineSketch, calibrated_tail, chi2_scale, chi2_tail
from sidecar.scoring.estimator import FloatArray
from sidecar.scoring.modality_model import ModalityModel
from sidecar.scoring.params import ScoringParams
from sidecar.scoring.population import SIGNATURE_BITS, PopulationModel

MAX_CACHED_PLANS: Final = 32
_FIELD: Final = (1 << SIGNATURE_BITS) - 1


class ScoringPlan:
    """Block whitening for one signature: ``A`` (R, C), ``b`` (R,), row/component offsets."""

    __slots__ = ("_checks", "_entries", "_half_df", "_half_inv_scale", "a", "b",
                 "comp_starts", "enrolled", "method", "mod_starts", "names", "params",
                 "population", "sig")

    def __init__(self, sig: int, models: Mapping[str, ModalityModel],
                 population: PopulationModel, params: ScoringParams) -> None:
        if sig <= 0:
            raise ValueError("empty signature")
        self.sig = sig
        self.params = params
        self.population = population
        self.method = params.calibration
        names: list[str] = []
        entries: list[tuple[int, GenuineSketch | None]] = []
        checks: list[tuple[str, ModalityModel | None, int]] = []
        blocks: list[tuple[FloatArray, FloatArray]] = []
        comp_starts: list[int] = []
        mod_starts: list[int] = []
        row = 0
        for i, (name, prior) in enumerate(population.modalities.items()):
            bits = (sig >> (SIGNATURE_BITS * i)) & _FIELD
            if not bits:
                continue
            d = prior.spec.dim
            if bits >> d:
                raise ValueError("signature has bits beyond the modality's features")
            mask = np.array([(bits >> j) & 1 for j in range(d)], dtype=bool)
            df = int(mask.sum())
            model = models.get(name)
            checks.append((name, model, -1 if model is None else model.n_seen_))
            mod_starts.append(len(comp_starts))
            if model is not None and model.n_seen_ >= params.enroll_windows:
                st = model.stack(mask)
                a, b, starts = st.a, st.b, st.starts
                entries.append((df, model.sketch_))
            else:
                _, a, _ = prior.whitening(mask)
                b, starts = np.zeros(a.shape[0]), [0]
                entries.append((df, None))
            # Fold the robust scaling z = (t − loc)·inv into the block: A·z − b = A'·t − b'.
            inv = 1.0 / prior.scale[mask]
            a_t = a * inv
            b_t = b + a_t @ prior.location[mask]
            names.append(name)
            comp_starts.extend(row + s for s in starts)
            blocks.append((a_t, b_t))
            row += a.shape[0]
        cols = sum(a.shape[1] for a, _ in blocks)
        big_a = np.zeros((row, cols))
        big_b = np.zeros(row)
        r = c = 0
        for a, b in blocks:
            big_a[r:r + a.shape[0], c:c + a.shape[1]] = a
            big_b[r:r + a.shape[0]] = b
            r += a.shape[0]
            c += a.shape[1]
        self.a = big_a
        self.b = big_b
        self.comp_starts = comp_starts
        self.mod_starts = mod_starts if len(comp_starts) > len(mod_starts) else None
        self.names = tuple(names)
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
        y = self.a @ np.array(values)
        y -= self.b
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
