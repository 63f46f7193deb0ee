"""Compiled plans give exactly what per-modality scoring gives, and stay current."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from sidecar.scoring.normalise import normalise, transform_window
from sidecar.scoring.params import ScoringParams
from sidecar.scoring.plan import MAX_CACHED_PLANS, ScoringPlan, plan_for
from sidecar.scoring.population import PopulationModel
from sidecar.scoring.profile import Profile
from sidecar.scoring.scorer import learn_window
from sidecar.scoring.synthetic import Persona, synthetic_sid, synthetic_window
from sidecar.telemetry import Telemetry, decode, encode_json

POP = PopulationModel.default()


def _window(persona: Persona, rng: np.random.Generator, seq: int,
            modalities: tuple[str, ...] | None = None) -> Telemetry:
    doc = synthetic_window(persona, rng, sid=synthetic_sid(rng), seq=seq, ts_ms=seq,
                           modalities=modalities)
    return decode(encode_json(doc))


def _slow_tails(profile: Profile, window: Telemetry, params: ScoringParams) -> list[float]:
    out = []
    for name in POP.modalities:
        mw = window.modalities.get(name)
        if mw is None:
            continue
        x, mask = normalise(name, mw.features, POP)
        model = profile.models.get(name)
        if model is not None and model.n_seen_ >= params.enroll_windows:
            out.append(model.tail(x, mask))
        else:
            out.append(POP.tail(name, x, mask))
    return out


@pytest.mark.parametrize("winsor_z", [0.0, 3.0], ids=["plain", "winsorised"])
@pytest.mark.parametrize("calibration", ["chi2", "scaled_chi2", "empirical"])
def test_plan_tails_equal_per_modality_tails(calibration: str, winsor_z: float) -> None:
    """For mixed enrolment, missing features and K > 1, plan tails == slow path tails."""
    params = ScoringParams(calibration=calibration,  # type: ignore[arg-type]
                           winsor_z=winsor_z)
    rng = np.random.default_rng(0)
    profile = Profile(params=params)
    for i in range(30):
        for p in (Persona.two_mode(1), Persona.human(2)):
            learn_window(profile, _window(p, rng, i, ("keys", "mouse")), 0.1, params)
    for i in range(3):
        learn_window(profile, _window(Persona.human(1), rng, i, ("scroll",)), 0.1, params)
    for i in range(40):
        w = _window(Persona.human(3), rng, 100 + i, ("keys", "mouse", "scroll", "touch"))
        values, sig = transform_window(w, POP)
        plan = plan_for(profile.plans, profile.models, sig, POP, params)
        np.testing.assert_allclose(plan.tails(values), _slow_tails(profile, w, params),
                                   rtol=1e-8, atol=1e-300)
        assert plan.enrolled


def test_plan_is_rebuilt_after_learning_or_new_params() -> None:
    """A cached plan is reused until the models or params change."""
    params = ScoringParams()
    rng = np.random.default_rng(1)
    profile = Profile(params=params)
    for i in range(6):
        learn_window(profile, _window(Persona.human(1), rng, i, ("keys",)), 0.1, params)
    w = _window(Persona.human(1), rng, 99, ("keys",))
    _, sig = transform_window(w, POP)
    first = plan_for(profile.plans, profile.models, sig, POP, params)
    assert plan_for(profile.plans, profile.models, sig, POP, params) is first
    learn_window(profile, w, 0.1, params)
    second = plan_for(profile.plans, profile.models, sig, POP, params)
    assert second is not first
    other = replace(params, t1=0.4)
    assert plan_for(profile.plans, profile.models, sig, POP, other) is not second


def test_plan_cache_is_bounded() -> None:
    """The plan cache never holds more than MAX_CACHED_PLANS plans."""
    cache: dict[int, ScoringPlan] = {}
    params = ScoringParams()
    for bits in range(1, 2 * MAX_CACHED_PLANS):
        plan_for(cache, {}, bits, POP, params)
        assert len(cache) <= MAX_CACHED_PLANS


@pytest.mark.parametrize("sig", [0, 1 << 12], ids=["empty", "bit-beyond-keys"])
def test_invalid_signatures_are_refused(sig: int) -> None:
    """Empty signatures and bits past a modality's features are errors."""
    with pytest.raises(ValueError):
        ScoringPlan(sig, {}, POP, ScoringParams())
