"""ScoringParams validation: named defaults, bad values rejected by field name."""

from __future__ import annotations

import dataclasses
import math

import pytest

from sidecar.scoring.params import ScoringParams


def test_defaults_are_valid_and_frozen() -> None:
    """The defaults validate and the object is immutable."""
    params = ScoringParams()
    assert params.t1 < params.t1_cap < params.t2
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.t1 = 0.1  # type: ignore[misc]


BAD = {
    "t1-above-t2": ({"t1": 0.8, "t2": 0.7}, "t1"),
    "t1-equals-t2": ({"t1": 0.7, "t2": 0.7, "t1_cap": 0.7}, "t1"),
    "t2-above-1": ({"t2": 1.2}, "t2"),
    "cap-below-t1": ({"t1_cap": 0.4}, "t1_cap"),
    "cap-at-t2": ({"t1_cap": 0.75}, "t1_cap"),
    "learn-above-t2": ({"learn_max_score": 0.8}, "learn_max_score"),
    "half-life-zero": ({"half_life_windows": 0.0}, "half_life_windows"),
    "half-life-nan": ({"half_life_windows": math.nan}, "half_life_windows"),
    "prior-strength-zero": ({"prior_strength": 0.0}, "prior_strength"),
    "prior-variance-neg": ({"prior_variance": -1.0}, "prior_variance"),
    "components-zero": ({"max_components": 0}, "max_components"),
    "components-float": ({"max_components": 2.0}, "max_components"),
    "spawn-tail-one": ({"spawn_tail": 1.0}, "spawn_tail"),
    "enroll-zero": ({"enroll_windows": 0}, "enroll_windows"),
    "history-min-above-size": ({"history_size": 10, "history_min": 20}, "history_min"),
    "quantile-low": ({"dynamic_quantile": 0.2}, "dynamic_quantile"),
    "calibration-unknown": ({"calibration": "magic"}, "calibration"),
    "sketch-tiny": ({"sketch_size": 2}, "sketch_size"),
    "winsor-below-one": ({"winsor_z": 0.5}, "winsor_z"),
    "winsor-negative": ({"winsor_z": -3.0}, "winsor_z"),
    "winsor-inf": ({"winsor_z": math.inf}, "winsor_z"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_values_are_rejected_naming_the_field(case: str) -> None:
    """Each invalid setting raises ValueError whose message starts with the field name."""
    kwargs, field = BAD[case]
    with pytest.raises(ValueError, match=rf"^{field}\b"):
        ScoringParams(**kwargs)  # type: ignore[arg-type]


def test_infinite_half_life_means_never_forget() -> None:
    """half_life_windows may be inf."""
    assert ScoringParams(half_life_windows=math.inf).half_life_windows == math.inf
