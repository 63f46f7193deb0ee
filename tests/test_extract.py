"""Features known by construction, cleaning, outlier removal, clipping and windows."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sidecar.extract import (
    device_of,
    extract_window,
    read_events_jsonl,
    robust,
    round_to,
    windows_from_events,
)
from sidecar.features import MODALITIES
from sidecar.telemetry import decode, encode_deflate

Events = list[dict[str, Any]]


def typing(n: int, *, hold: float = 100, dd: float = 200, t0: float = 0, bs_every: int = 0,
           holds: list[float] | None = None) -> Events:
    """n keystrokes: a keydown every ``dd`` ms held ``hold`` ms; every bs_every-th is Backspace."""
    ev: Events = []
    for i in range(n):
        t = t0 + i * dd
        down: dict[str, Any] = {"type": "keydown", "t": t, "code": f"K{i}"}
        if bs_every and i % bs_every == 0:
            down["bs"] = True
        ev += [down, {"type": "keyup", "t": t + (holds[i] if holds else hold), "code": f"K{i}"}]
    return sorted(ev, key=lambda e: e["t"])


def line(n: int, *, sx: float = 3, sy: float = 4, dt: float = 10, t0: float = 0) -> Events:
    """Mouse samples every ``dt`` ms along a straight line, (sx, sy) px apart."""
    return [{"type": "mousemove", "t": t0 + i * dt, "x": i * sx, "y": i * sy} for i in range(n)]


def arc(n: int, r: float, step: float = 0.1, dt: float = 10) -> Events:
    """Mouse samples on a circle of radius r, ``step`` radians apart."""
    return [{"type": "mousemove", "t": i * dt, "x": r * math.cos(i * step),
             "y": r * math.sin(i * step)} for i in range(n)]


def wheel(bursts: int, per: int, *, dy: float = 100, gap: float = 50, flip: bool = False) -> Events:
    """Wheel bursts of ``per`` notches ``gap`` ms apart, bursts 1 s apart; flip alternates sign."""
    return [{"type": "wheel", "t": b * 1000 + i * gap, "dx": 0,
             "dy": -dy if flip and b % 2 else dy} for b in range(bursts) for i in range(per)]


def swipe(t0: float, tid: int, *, length: float = 200, dur: float = 100, p: float = 0.5,
          w: float = 10, h: float = 20, nt: int = 1) -> Events:
    """One straight swipe of ``length`` px over ``dur`` ms, pressure p, contact w x h."""
    ev: Events = [{"type": "touchstart", "t": t0, "id": tid, "x": 0, "y": 0, "pressure": p,
                   "w": w, "h": h, "nt": nt}]
    ev += [{"type": "touchmove", "t": t0 + i * dur / 4, "id": tid, "x": i * length / 4, "y": 0,
            "pressure": p, "w": w, "h": h, "nt": nt} for i in range(1, 4)]
    ev.append({"type": "touchend", "t": t0 + dur, "id": tid, "x": length, "y": 0, "nt": nt - 1})
    return ev


def feat(events: Events, mod: str) -> dict[str, float]:
    f: dict[str, float] = extract_window(events)[mod]["f"]
    return f


KNOWN: list[tuple[str, Callable[[], Events], str, str, float]] = [
    ("hold_100ms", lambda: typing(20), "keys", "hold_mean", 100),
    ("hold_constant_std_0", lambda: typing(20), "keys", "hold_std", 0),
    ("dd_200ms", lambda: typing(20), "keys", "dd_mean", 200),
    ("ud_is_dd_minus_hold", lambda: typing(20, hold=80), "keys", "ud_mean", 120),
    ("ud_negative_on_rollover", lambda: typing(20, hold=150, dd=100), "keys", "ud_mean", -50),
    ("rate_5_keys_per_s", lambda: typing(20), "keys", "rate", 5),
    ("no_pauses", lambda: typing(20), "keys", "pause_ratio", 0),
    ("all_pauses", lambda: typing(20, dd=600), "keys", "pause_ratio", 1),
    ("backspace_quarter", lambda: typing(20, bs_every=4), "keys", "backspace_ratio", 0.25),
    ("straight_line_straightness_1", lambda: line(30), "mouse", "straightness", 1),
    ("straight_line_curvature_0", lambda: line(30), "mouse", "curvature_mean", 0),
    ("speed_half_px_per_ms", lambda: line(30), "mouse", "speed_mean", 0.5),
    ("constant_speed_accel_0", lambda: line(30), "mouse", "accel_mean", 0),
    # 30 samples 0.1 rad apart: 28 turns of 0.1 rad over 29 chords of 2r sin(0.05)
    ("circle_curvature", lambda: arc(30, 100), "mouse", "curvature_mean",
     round_to(28 * 0.1 / (29 * 200 * math.sin(0.05)), 4)),
    ("wheel_delta_100", lambda: wheel(3, 5), "scroll", "delta_mean", 100),
    ("wheel_speed_2", lambda: wheel(3, 5), "scroll", "speed_mean", 2),
    ("wheel_burst_len_5", lambda: wheel(3, 5), "scroll", "burst_len_mean", 5),
    ("one_direction", lambda: wheel(3, 5), "scroll", "dir_change_ratio", 0),
    ("two_changes_in_14_steps", lambda: wheel(3, 5, flip=True), "scroll", "dir_change_ratio",
     0.143),
    ("swipe_speed_2", lambda: swipe(0, 1), "touch", "swipe_speed_mean", 2),
    ("swipe_duration_100", lambda: swipe(0, 1), "touch", "swipe_duration_mean", 100),
    ("swipe_straight", lambda: swipe(0, 1), "touch", "swipe_straightness", 1),
    ("pressure_half", lambda: swipe(0, 1), "touch", "pressure_mean", 0.5),
    ("contact_w_times_h", lambda: swipe(0, 1), "touch", "contact_mean", 200),
    ("two_fingers", lambda: swipe(0, 1, nt=2), "touch", "multi_touch_ratio", 1),
]


@pytest.mark.parametrize(("make", "mod", "name", "want"), [k[1:] for k in KNOWN],
                         ids=[k[0] for k in KNOWN])
def test_feature_known_by_construction(make: Callable[[], Events], mod: str, name: str,
                                       want: float) -> None:
    """A synthetic stream gives the feature value it was built to have."""
    assert feat(make(), mod)[name] == want


def test_hold_outlier_removed() -> None:
    """One hold with robust z > 5 does not move the mean."""
    holds = [100.0 + (i % 5) - 2 for i in range(30)]
    holds[7] = 1900
    assert feat(typing(30, holds=holds), "keys")["hold_mean"] == 100


@pytest.mark.parametrize(("values", "kept"), [
    ([5.0, 5, 5, 5], [5.0, 5, 5, 5]),
    ([1.0, 1, 1, 1, 1, 1, 2, 100], [1.0, 1, 1, 1, 1, 1, 2]),
    ([1.0, 1000], [1.0, 1000]),
], ids=["zero_spread_keeps_all", "mad_zero_uses_mean_abs_dev", "too_few_to_judge"])
def test_robust(values: list[float], kept: list[float]) -> None:
    """robust() drops only values with robust z above 5."""
    assert robust(values) == kept


def test_rate_clipped_to_documented_max() -> None:
    """Typing faster than 40 keys/s is clipped to the range's maximum."""
    hi = next(f.hi for f in MODALITIES["keys"].features if f.name == "rate")
    assert feat(typing(30, dd=10, hold=5), "keys")["rate"] == hi


def test_every_feature_in_range_and_rounded() -> None:
    """Extreme input still yields every feature inside its range at its decimals."""
    ev = typing(40, dd=7, hold=3) + line(40, sx=900, sy=0, dt=50) + wheel(2, 6) + swipe(0, 1)
    for mod, w in extract_window(ev).items():
        for spec in MODALITIES[mod].features:
            if spec.name in w["f"]:
                v = w["f"][spec.name]
                assert spec.lo <= v <= spec.hi
                assert round_to(v, spec.decimals) == v


def _shift_back(ev: Events) -> Events:
    return [*ev[:10], {"type": "keydown", "t": 5, "code": "X"},
            {"type": "keyup", "t": 6, "code": "X"}, *ev[10:]]


JUNK: Events = [
    {"type": "mousemove", "t": 5, "x": None, "y": 1},
    {"type": "mousemove", "t": -1, "x": 1, "y": 1},
    {"type": "touchstart", "t": 5, "x": 1, "y": 1, "pressure": 2},
    {"type": "touchmove", "t": 5, "x": 1, "y": 1, "w": -3},
    {"type": "wheel", "t": 5, "dy": "down"},
    {"type": "keydown", "t": True},
    {"type": "keydown", "t": 10**400},
    {"type": ["keydown"], "t": 5},
    {"type": "constructor", "t": 5},
]


@pytest.mark.parametrize("mangle", [
    _shift_back,
    lambda ev: [*JUNK, *ev],
    lambda ev: [*ev[:1], {"type": "keydown", "t": 30, "code": "K0"}, *ev[1:]],
], ids=["non_monotonic_dropped", "impossible_dropped", "auto_repeat_ignored"])
def test_cleaning(mangle: Callable[[Events], Events]) -> None:
    """Bad or repeated events leave the window exactly as without them."""
    assert extract_window(mangle(typing(20))) == extract_window(typing(20))


def test_click_hold_and_hesitation() -> None:
    """Hesitation is the still time before mousedown; click hold is down to up."""
    ev = [*line(10), {"type": "mousedown", "t": 290, "button": 0},
          {"type": "mouseup", "t": 370, "button": 0}]
    f = feat(ev, "mouse")
    assert (f["hesitation_mean"], f["click_hold_mean"]) == (200, 80)


def test_scroll_positions_when_few_wheel_events() -> None:
    """Fewer than 5 wheel events: the scroll position changes are the source."""
    ev = [{"type": "scroll", "t": i * 20, "dx": 0, "dy": 40} for i in range(6)]
    assert feat([{"type": "wheel", "t": 0, "dy": 999}, *ev], "scroll")["delta_mean"] == 40


def test_tap_is_not_a_swipe() -> None:
    """A 4 px touch is a tap: no swipe features, but pressure counts."""
    f = feat(swipe(0, 1, length=4, p=0.25), "touch")
    assert "swipe_speed_mean" not in f
    assert f["pressure_mean"] == 0.25


@pytest.mark.parametrize(("mouse_samples", "dev"), [(2, "touch"), (9, "desktop")],
                         ids=["touch_majority", "mouse_majority"])
def test_device(mouse_samples: int, dev: str) -> None:
    """The device is touch when touch events outnumber mouse events."""
    assert device_of(swipe(0, 1) + line(mouse_samples)) == dev


@pytest.mark.parametrize(("value", "decimals", "want"), [
    (0.125, 2, 0.13), (-0.125, 2, -0.13), (2.5, 0, 3.0), (-0.0001, 1, 0.0),
], ids=["half_up", "half_away_negative", "integer_half", "no_negative_zero"])
def test_round_to(value: float, decimals: int, want: float) -> None:
    """round_to rounds half away from zero and never returns -0.0."""
    got = round_to(value, decimals) + 0.0
    assert got == want
    assert math.copysign(1, got) == math.copysign(1, want)


def test_tumbling_windows() -> None:
    """Windows [kW, (k+1)W): seq from 1, ts at the end, empty windows skipped."""
    docs = windows_from_events(typing(20, t0=1000) + typing(20, t0=61000), 30_000)
    assert [(d["seq"], d["ts"], d["m"]["keys"]["n"]) for d in docs] == [
        (1, 30_000, 20), (2, 90_000, 20)]


def test_windows_decode_as_telemetry() -> None:
    """A replayed window is a valid v1 document for the sidecar's decoder."""
    ev = typing(30) + line(40) + wheel(2, 5) + swipe(0, 1)
    (doc,) = windows_from_events(ev, 30_000)
    t = decode(encode_deflate(doc))
    assert (t.seq, sorted(t.modalities)) == (1, ["keys", "mouse", "scroll", "touch"])
    assert dict(t.modalities["keys"].features) == doc["m"]["keys"]["f"]


@pytest.mark.parametrize(("text", "error"), [
    ('{"type":"keydown","t":1}\n\n{"type":"keyup","t":2}\n', None),
    ('{"type":"keydown"\n', "line 1: not JSON"),
    ("[1]\n", "line 1: not a JSON object"),
], ids=["blank_lines_skipped", "bad_json", "not_an_object"])
def test_read_events_jsonl(tmp_path: Path, text: str, error: str | None) -> None:
    """JSON lines are read one event per line; a bad line is named in the error."""
    path = tmp_path / "events.jsonl"
    path.write_text(text)
    if error is None:
        assert [e["type"] for e in read_events_jsonl(path)] == ["keydown", "keyup"]
    else:
        with pytest.raises(ValueError, match=error):
            read_events_jsonl(path)


def test_no_key_identity_in_output() -> None:
    """Codes used to pair keys never appear in the document."""
    ev = typing(20)
    text = json.dumps(windows_from_events(ev, 30_000))
    assert '"K1' not in text
    assert "code" not in text
