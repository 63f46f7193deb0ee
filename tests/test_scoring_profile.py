"""Profile state, dynamic threshold and the versioned binary format."""

from __future__ import annotations

import contextlib
import struct

import numpy as np
import pytest

from sidecar.scoring.params import ScoringParams
from sidecar.scoring.population import PopulationModel
from sidecar.scoring.profile import FORMAT_VERSION, MAGIC, Profile, ProfileFormatError
from sidecar.scoring.scorer import learn_window, score_window
from sidecar.scoring.synthetic import Persona, synthetic_sid, synthetic_window
from sidecar.telemetry import Telemetry, decode, encode_json

POP = PopulationModel.default()
PARAMS = ScoringParams()


def _window(persona: Persona, rng: np.random.Generator, seq: int,
            modalities: tuple[str, ...] | None = None) -> Telemetry:
    doc = synthetic_window(persona, rng, sid=synthetic_sid(rng), seq=seq,
                           ts_ms=1_700_000_000_000 + seq, modalities=modalities)
    return decode(encode_json(doc))


def _profile(kind: str) -> Profile:
    rng = np.random.default_rng(0)
    profile = Profile(created_ms=1_700_000_000_000, params=PARAMS)
    if kind == "empty":
        return profile
    if kind == "keys-only":
        for i in range(3):
            learn_window(profile, _window(Persona.human(1), rng, i, ("keys",)), 0.1, PARAMS)
        return profile
    styles = [Persona.human(1), Persona.human(2), Persona.two_mode(3)]
    for i in range(40):
        for p in styles:
            w = _window(p, rng, i)
            learn_window(profile, w, score_window(profile, w, POP, PARAMS).score, PARAMS)
    return profile


KINDS = ["empty", "keys-only", "three-styles"]


@pytest.mark.parametrize("kind", KINDS, ids=KINDS)
def test_round_trip_is_equal(kind: str) -> None:
    """from_bytes(to_bytes(p)) == p, and re-serialising gives the same bytes."""
    profile = _profile(kind)
    blob = profile.to_bytes()
    back = Profile.from_bytes(blob, PARAMS)
    assert back == profile
    assert back.to_bytes() == blob


def test_round_trip_scores_identically() -> None:
    """A reloaded profile scores a window exactly like the original."""
    profile = _profile("three-styles")
    assert max(len(m.components_) for m in profile.models.values()) > 1
    back = Profile.from_bytes(profile.to_bytes(), PARAMS)
    rng = np.random.default_rng(9)
    for i in range(20):
        w = _window(Persona.human(2), rng, i)
        assert score_window(back, w, POP, PARAMS) == score_window(profile, w, POP, PARAMS)


def test_profiles_that_differ_are_not_equal() -> None:
    """Equality looks at the learned state, not identity."""
    a, b = _profile("keys-only"), _profile("keys-only")
    assert a == b
    b.record_score(0.2)
    assert a != b


def _corruptions() -> dict[str, bytes]:
    good = _profile("three-styles").to_bytes()
    nan_at = len(good) - 8
    bad_version = bytearray(good)
    bad_version[4] = FORMAT_VERSION + 1
    bad_modality = bytearray(good)
    hist = struct.unpack_from("<H", good, 6)[0]
    bad_modality[24 + 4 * hist] = 9
    return {
        "empty": b"",
        "random": np.random.default_rng(0).bytes(300),
        "wrong-magic": b"XXXX" + good[4:],
        "future-version": bytes(bad_version),
        "truncated-header": good[:10],
        "truncated-body": good[:-3],
        "trailing-byte": good + b"\0",
        "nan-in-state": good[:nan_at] + struct.pack("<d", float("nan")),
        "unknown-modality": bytes(bad_modality),
        "magic-only": MAGIC,
        "pickle": b"\x80\x04\x95\x00",
    }


CORRUPTIONS = _corruptions()


@pytest.mark.parametrize("name", list(CORRUPTIONS), ids=list(CORRUPTIONS))
def test_garbage_raises_profile_format_error(name: str) -> None:
    """Anything that is not an exact profile raises ProfileFormatError."""
    with pytest.raises(ProfileFormatError):
        Profile.from_bytes(CORRUPTIONS[name], PARAMS)


def test_fuzzed_bytes_never_raise_anything_else() -> None:
    """Random single-byte flips give a profile or ProfileFormatError, never another error."""
    good = _profile("three-styles").to_bytes()
    rng = np.random.default_rng(1)
    for _ in range(300):
        data = bytearray(good)
        data[int(rng.integers(len(data)))] = int(rng.integers(256))
        with contextlib.suppress(ProfileFormatError):
            Profile.from_bytes(bytes(data), PARAMS)


def test_history_is_bounded_and_validated() -> None:
    """The score history keeps history_size scores in [0, 1]."""
    profile = Profile(params=ScoringParams(history_size=5, history_min=2))
    for i in range(9):
        profile.record_score(i / 10)
    assert len(profile.history) == 5
    with pytest.raises(ValueError):
        profile.record_score(1.5)


@pytest.mark.parametrize(("scores", "expected"), [
    ([0.1] * 10, 0.5),
    ([0.1] * 30, 0.5),
    ([0.55] * 30, 0.55),
    ([0.9] * 30, 0.65),
], ids=["too-few", "calm-user", "noisy-user", "capped"])
def test_user_t1_rises_to_the_users_quantile_within_bounds(scores: list[float],
                                                          expected: float) -> None:
    """t1 becomes clip(95th percentile of the user's genuine scores, t1, t1_cap)."""
    params = ScoringParams()
    profile = Profile(params=params)
    for s in scores:
        profile.record_score(s)
    assert profile.user_t1(params) == pytest.approx(expected, abs=1e-6)
    assert profile.user_t1(ScoringParams(dynamic_thresholds=False)) == params.t1
