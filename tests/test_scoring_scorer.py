"""score_window / learn_window end to end on synthetic users."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from sidecar.scoring.params import ScoringParams
from sidecar.scoring.population import PopulationModel
from sidecar.scoring.profile import Profile
from sidecar.scoring.scorer import EmptyWindowError, learn_window, score_window, tier_for
from sidecar.scoring.synthetic import Persona, synthetic_sid, synthetic_window
from sidecar.telemetry import Telemetry, decode, encode_deflate

POP = PopulationModel.default()
PARAMS = ScoringParams()
DESKTOP = ("keys", "mouse", "scroll")

USER_A = Persona.human(11, name="A", style={"keys": {"hold_mean": 95.0, "dd_mean": 180.0}})
USER_B = Persona.human(12, name="B", style={"keys": {"hold_mean": 140.0, "dd_mean": 260.0}})


def _window(persona: Persona, rng: np.random.Generator, seq: int,
            modalities: tuple[str, ...] | None = None) -> Telemetry:
    doc = synthetic_window(persona, rng, sid=synthetic_sid(rng), seq=seq,
                           ts_ms=1_700_000_000_000 + 1000 * seq, modalities=modalities)
    return decode(encode_deflate(doc))


def _enrol(persona: Persona, rng: np.random.Generator, windows: int,
           modalities: tuple[str, ...] | None = DESKTOP) -> Profile:
    """Learn ``windows`` windows the way the pipeline does (learnable ones only)."""
    profile = Profile(created_ms=1_700_000_000_000, params=PARAMS)
    for i in range(windows):
        w = _window(persona, rng, i, modalities)
        r = score_window(profile, w, POP, PARAMS)
        if r.learnable:
            learn_window(profile, w, r.score, PARAMS)
    return profile


def _tiers(profile: Profile, persona: Persona, rng: np.random.Generator, n: int,
           modalities: tuple[str, ...] | None = DESKTOP) -> np.ndarray:
    tiers = [score_window(profile, _window(persona, rng, 10_000 + i, modalities), POP,
                          PARAMS).tier for i in range(n)]
    return np.bincount(tiers, minlength=4)[1:] / n


PAIRS = {
    "A-owner-B-impostor": (USER_A, USER_B, DESKTOP),
    "B-owner-A-impostor": (USER_B, USER_A, DESKTOP),
    "random-humans": (Persona.human(21), Persona.impostor(21), DESKTOP),
    "touch-users": (Persona.touch_user(31), Persona.touch_user(32), ("keys", "touch")),
    "mouse-only": (Persona.human(41), Persona.impostor(41), ("mouse",)),
}


@pytest.mark.parametrize("pair", list(PAIRS), ids=list(PAIRS))
def test_genuine_mostly_tier1_and_impostor_mostly_tier3(pair: str) -> None:
    """After 10 learned windows: ≥ 90 % of genuine windows tier 1, ≥ 80 % of impostor
    windows tier 3 and ≥ 95 % outside tier 1."""
    owner, impostor, mods = PAIRS[pair]
    rng = np.random.default_rng(0)
    profile = _enrol(owner, rng, 10, mods)
    genuine = _tiers(profile, owner, rng, 150, mods)
    other = _tiers(profile, impostor, rng, 150, mods)
    assert genuine[0] >= 0.90, genuine
    assert other[2] >= 0.80 and other[0] <= 0.05, other


def test_user_with_two_modes_scores_both_as_normal() -> None:
    """A mouse-and-touchpad user enrolled on both gets both modes mostly tier 1."""
    persona = Persona.two_mode(5)
    rng = np.random.default_rng(1)
    profile = _enrol(persona, rng, 30)
    assert len(profile.models["mouse"].components_) >= 2
    for mode in persona.modes:
        only = replace(persona, modes=(mode,), mode_weights=(1.0,))
        assert _tiers(profile, only, rng, 100)[0] >= 0.9


@pytest.mark.parametrize("bot", ["keys", "mouse"], ids=["constant-keys", "straight-mouse"])
@pytest.mark.parametrize("enrolled", [False, True], ids=["no-profile", "enrolled-profile"])
def test_scripted_input_is_tier3_with_or_without_profile(bot: str, enrolled: bool) -> None:
    """Bot windows score 1.0, tier 3, not learnable, naming the rule that fired."""
    persona = Persona.bot_constant_keys() if bot == "keys" else Persona.bot_straight_mouse()
    rng = np.random.default_rng(2)
    profile = _enrol(USER_A, rng, 10) if enrolled else None
    for i in range(20):
        r = score_window(profile, _window(persona, rng, i), POP, PARAMS)
        assert (r.tier, r.score, r.learnable) == (3, 1.0, False)
        assert r.scripted == ("constant_key_timing" if bot == "keys"
                              else "straight_constant_mouse")
        assert r.enrolling is not enrolled


def test_window_without_modalities_raises() -> None:
    """No modality at all is the caller's no_telemetry case: EmptyWindowError."""
    w = Telemetry(version=1, sid="s" * 22, seq=0, ts_ms=0, device="desktop", modalities={})
    with pytest.raises(EmptyWindowError):
        score_window(None, w, POP, PARAMS)


def test_enrolling_flag_and_population_scoring() -> None:
    """No enrolled modality in the window → enrolling and population-scored."""
    rng = np.random.default_rng(3)
    anonymous = score_window(None, _window(USER_A, rng, 0, DESKTOP), POP, PARAMS)
    assert anonymous.enrolling and anonymous.tier == 1
    assert set(anonymous.modality_scores) == set(DESKTOP)
    profile = _enrol(USER_A, rng, 8, ("keys",))
    assert profile.windows_learned("keys") >= PARAMS.enroll_windows
    mouse_only = score_window(profile, _window(USER_A, rng, 50, ("mouse",)), POP, PARAMS)
    both = score_window(profile, _window(USER_A, rng, 51, ("keys", "mouse")), POP, PARAMS)
    assert mouse_only.enrolling and not both.enrolling


def test_learn_window_counts_windows_and_records_only_user_model_scores() -> None:
    """Enrolment windows are learned but not put in the genuine-score history."""
    rng = np.random.default_rng(4)
    profile = Profile(params=PARAMS)
    for i in range(PARAMS.enroll_windows + 3):
        learn_window(profile, _window(USER_A, rng, i, ("keys",)), 0.2, PARAMS)
    assert profile.windows_learned("keys") == PARAMS.enroll_windows + 3
    assert list(profile.history) == pytest.approx([0.2] * 3)
    assert profile.updated_ms == 1_700_000_000_000 + 1000 * (PARAMS.enroll_windows + 2)


def test_windows_above_learn_max_score_are_not_learnable() -> None:
    """learnable is score < learn_max_score (impostor windows are not learnable)."""
    rng = np.random.default_rng(5)
    profile = _enrol(USER_A, rng, 10)
    results = [score_window(profile, _window(USER_B, rng, i), POP, PARAMS) for i in range(30)]
    assert all(r.learnable == (r.score < PARAMS.learn_max_score) for r in results)
    assert sum(r.learnable for r in results) <= 1


def test_noisy_user_gets_a_higher_tier1_threshold() -> None:
    """A user whose genuine scores run high gets t1 raised, which lowers their tier."""
    rng = np.random.default_rng(6)
    profile = _enrol(USER_A, rng, 10)
    for _ in range(PARAMS.history_min):
        profile.record_score(0.58)
    assert PARAMS.t1 < profile.user_t1(PARAMS) <= PARAMS.t1_cap
    w = _window(USER_A, rng, 999)
    r = score_window(profile, w, POP, PARAMS)
    assert r.tier == tier_for(r.score, profile.user_t1(PARAMS), PARAMS.t2)


@pytest.mark.parametrize(("score", "tier"), [(0.0, 1), (0.4999, 1), (0.5, 2), (0.7499, 2),
                                             (0.75, 3), (1.0, 3)],
                         ids=["zero", "below-t1", "at-t1", "below-t2", "at-t2", "one"])
def test_tier_boundaries(score: float, tier: int) -> None:
    """Tier 1 below t1, 2 below t2, else 3."""
    assert tier_for(score, PARAMS.t1, PARAMS.t2) == tier
