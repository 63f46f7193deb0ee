"""v1 feature window → normalised vector and mask of observed features.

Per feature: the ``sidecar.features`` transform (``log(x + eps)`` or linear), then
robust scaling by the population's location and scale
(:mod:`sidecar.scoring.population`).  Missing features are masked and set to 0
(the population median), so a masked vector is still finite.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Final

import numpy as np

from sidecar.scoring.estimator import BoolArray, FloatArray
from sidecar.scoring.population import PopulationModel
from sidecar.telemetry import Telemetry

_TINY: Final = 1e-12


def normalise(modality: str, features: Mapping[str, float],
              population: PopulationModel) -> tuple[FloatArray, BoolArray]:
    """Return ``(x, mask)``: ``x`` (d,) normalised features, ``mask`` (d,) observed.

    ``features`` are raw v1 values (as in ``ModalityWindow.features``); unknown names
    are ignored.  ``KeyError`` for an unknown modality.
    """
    values: list[float] = []
    observed: list[bool] = []
    log = math.log
    for name, is_log, eps, loc, inv_scale in population.modalities[modality].rows:
        v = features.get(name)
        if v is None:
            values.append(0.0)
            observed.append(False)
        else:
            t = log(max(v + eps, _TINY)) if is_log else v
            values.append((t - loc) * inv_scale)
            observed.append(True)
    return np.array(values), np.array(observed)


def transform_window(window: Telemetry, population: PopulationModel
                     ) -> tuple[list[float], int]:
    """Transform every modality of a window at once (the scorer's hot path).

    Returns the *observed* transformed values ``log(x + eps)`` or ``x`` — not yet
    scaled: the compiled plan (:mod:`.plan`) folds the robust scaling into its
    matrix — modalities in ``MODALITIES`` order and features in spec order, plus the
    window's feature-presence signature: an int with one bit per observed feature
    (see ``population.SIGNATURE_BITS``) that names the plan scoring these values.
    """
    try:
        return _transform_window(window, population, math.log)
    except ValueError:  # log of a value <= 0: only from a hand-built, out-of-range window
        return _transform_window(window, population, _safe_log)


def _safe_log(v: float) -> float:
    return math.log(max(v, _TINY))


def _transform_window(window: Telemetry, population: PopulationModel,
                      log: Callable[[float], float]) -> tuple[list[float], int]:
    values: list[float] = []
    sig = 0
    mods = window.modalities
    for name, prior in population.modalities.items():
        mw = mods.get(name)
        if mw is None:
            continue
        f = mw.features
        for bit, fname, is_log, eps in prior.signature_rows:
            v = f.get(fname)
            if v is not None:
                values.append(log(v + eps) if is_log else v)
                sig |= bit
    return values, sig
