"""v1 features → normalised vectors (and the hot path's transformed values)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sidecar.features import MODALITIES
from sidecar.scoring.normalise import normalise, transform_window
from sidecar.scoring.population import SIGNATURE_BITS, PopulationModel
from sidecar.telemetry import ModalityWindow, Telemetry

POP = PopulationModel.default()


def _window(modalities: dict[str, dict[str, float]]) -> Telemetry:
    return Telemetry(version=1, sid="s" * 22, seq=0, ts_ms=0, device="desktop",
                     modalities={m: ModalityWindow(n=50, features=f)
                                 for m, f in modalities.items()})


@pytest.mark.parametrize(("feature", "value"), [("hold_mean", 120.0), ("ud_mean", -40.0),
                                                ("rate", 0.0), ("pause_ratio", 0.3)],
                         ids=["log", "linear-negative", "log-at-zero", "linear-ratio"])
def test_each_feature_is_transformed_then_scaled(feature: str, value: float) -> None:
    """x = (log(v + eps) or v − location) / scale, per the feature's spec."""
    spec = next(f for f in MODALITIES["keys"].features if f.name == feature)
    prior = POP.prior("keys")
    i = MODALITIES["keys"].names.index(feature)
    t = math.log(value + spec.eps) if spec.transform == "log" else value
    x, mask = normalise("keys", {feature: value}, POP)
    assert x[i] == pytest.approx((t - prior.location[i]) / prior.scale[i])
    assert mask.sum() == 1 and mask[i]


def test_missing_and_unknown_features_are_masked_and_ignored() -> None:
    """Missing features are masked and zero; unknown names are ignored."""
    x, mask = normalise("mouse", {"speed_mean": 0.6, "bogus": 3.0}, POP)
    assert x.shape == mask.shape == (MODALITIES["mouse"].dim,)
    assert mask.tolist() == [True] + [False] * 7
    assert np.all(x[~mask] == 0.0)


def test_transform_window_matches_normalise_and_signature() -> None:
    """The hot path's values, once scaled, equal normalise(); the signature has one bit
    per observed feature at 16·modality + feature."""
    w = _window({"keys": {"hold_mean": 90.0, "rate": 6.0},
                 "scroll": {"speed_mean": 1.0, "dir_change_ratio": 0.2}})
    values, sig = transform_window(w, POP)
    expected_sig = 0
    scaled = []
    for mi, name in enumerate(MODALITIES):
        if name not in w.modalities:
            continue
        x, mask = normalise(name, w.modalities[name].features, POP)
        prior = POP.prior(name)
        for j in np.flatnonzero(mask):
            expected_sig |= 1 << (SIGNATURE_BITS * mi + int(j))
            scaled.append(x[j] * prior.scale[j] + prior.location[j])
    assert sig == expected_sig
    np.testing.assert_allclose(values, scaled, rtol=1e-12)


def test_out_of_range_hand_built_values_do_not_crash() -> None:
    """A hand-built window with values a decoder would clip still transforms (finite)."""
    w = _window({"scroll": {"burst_len_mean": 0.0, "speed_mean": -5.0}})
    values, sig = transform_window(w, POP)
    assert sig != 0 and all(math.isfinite(v) for v in values)
    x, _ = normalise("scroll", w.modalities["scroll"].features, POP)
    assert np.all(np.isfinite(x))
