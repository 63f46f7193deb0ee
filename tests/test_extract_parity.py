"""The Python twin (sidecar.extract) gives the collector's features on the same streams.

Runs ``node collector_js/bin/extract.mjs`` on generated event streams (several
personas, with outliers, non-monotonic timestamps and junk events) and compares its
windows with :func:`sidecar.extract.windows_from_events`, feature by feature, to the
wire rounding.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sidecar.extract import windows_from_events
from sidecar.features import MODALITIES

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / "collector_js" / "bin" / "extract.mjs"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

Events = list[dict[str, Any]]


def _typing(rng: np.random.Generator, t0: float, n: int, dd: float, hold: float) -> Events:
    """Keystrokes with log-normal gaps, rollover, Backspace, pauses, repeats, uncoded keys."""
    ev: Events = []
    t = t0
    for i in range(n):
        t += float(rng.lognormal(math.log(dd), 0.35)) + (1500.0 if rng.random() < 0.05 else 0.0)
        h = float(rng.lognormal(math.log(hold), 0.25))
        if rng.random() < 0.02:
            h = float(rng.uniform(600, 1900))  # an outlier hold
        code = "" if rng.random() < 0.05 else f"Key{i % 23}"
        down: dict[str, Any] = {"type": "keydown", "t": t, "code": code}
        if rng.random() < 0.06:
            down["bs"] = True
        ev.append(down)
        if code and rng.random() < 0.03:
            ev.append({"type": "keydown", "t": t + 30.0, "code": code})  # auto-repeat
        ev.append({"type": "keyup", "t": t + h, "code": code})
    return sorted(ev, key=lambda e: e["t"])


def _mouse(rng: np.random.Generator, t0: float, strokes: int) -> Events:
    """Curved strokes sampled every ~16 ms, clicks after a pause, a teleport now and then."""
    ev: Events = []
    t, x, y = t0, float(rng.uniform(0, 800)), float(rng.uniform(0, 600))
    for _ in range(strokes):
        heading = float(rng.uniform(-math.pi, math.pi))
        for _ in range(int(rng.integers(5, 40))):
            t += float(rng.uniform(8, 24))
            heading += float(rng.normal(0, 0.15))
            step = float(rng.lognormal(math.log(6), 0.5))
            if rng.random() < 0.01:
                step = 3000.0  # impossible jump
            x += step * math.cos(heading)
            y += step * math.sin(heading)
            ev.append({"type": "mousemove", "t": t, "x": round(x, 2), "y": round(y, 2)})
        if rng.random() < 0.6:
            t += float(rng.lognormal(math.log(250), 0.5))
            ev.append({"type": "mousedown", "t": t, "button": 0, "x": x, "y": y})
            t += float(rng.lognormal(math.log(90), 0.3))
            ev.append({"type": "mouseup", "t": t, "button": 0})
        t += float(rng.uniform(100, 1200))
    return ev


def _scroll(rng: np.random.Generator, t0: float, bursts: int, kind: str) -> Events:
    ev: Events = []
    t = t0
    sign = 1.0
    for _ in range(bursts):
        if rng.random() < 0.3:
            sign = -sign
        for _ in range(int(rng.integers(1, 12))):
            t += float(rng.uniform(15, 80))
            dy = sign * float(rng.choice([100.0, 53.0, 120.0])) * float(rng.uniform(0.5, 1.5))
            dx = float(rng.normal(0, 3)) if rng.random() < 0.2 else 0
            ev.append({"type": kind, "t": t, "dx": dx, "dy": dy})
        t += float(rng.uniform(350, 2000))
    return ev


def _touch(rng: np.random.Generator, t0: float, gestures: int) -> Events:
    """Swipes and taps with pressure and contact size; some two-finger ones."""
    ev: Events = []
    t = t0
    for g in range(gestures):
        nt = 2 if rng.random() < 0.15 else 1
        length = float(rng.uniform(2, 400))
        dur = float(rng.uniform(40, 600))
        angle = float(rng.uniform(-math.pi, math.pi))
        p = float(rng.uniform(0.1, 0.9))
        w, h = float(rng.uniform(5, 40)), float(rng.uniform(5, 40))
        for f in range(nt):
            tid = g * 2 + f
            x0, y0 = float(rng.uniform(0, 400)), float(rng.uniform(0, 800))
            ev.append({"type": "touchstart", "t": t, "id": tid, "x": x0, "y": y0,
                       "pressure": p, "w": w, "h": h, "nt": nt})
            for k in range(1, 6):
                bend = float(rng.normal(0, 4))
                ev.append({"type": "touchmove", "t": t + dur * k / 6, "id": tid,
                           "x": x0 + length * k / 6 * math.cos(angle) + bend,
                           "y": y0 + length * k / 6 * math.sin(angle), "pressure": p,
                           "w": w, "h": h, "nt": nt})
            ev.append({"type": "touchend", "t": t + dur, "id": tid,
                       "x": x0 + length * math.cos(angle), "y": y0 + length * math.sin(angle),
                       "nt": nt - 1 - f})
        t += dur + float(rng.uniform(200, 1500))
    return sorted(ev, key=lambda e: e["t"])


def _noise(rng: np.random.Generator, ev: Events) -> Events:
    """Non-monotonic timestamps (a few events moved back) and impossible events mixed in."""
    out = list(ev)
    for _ in range(len(out) // 50):
        i = int(rng.integers(1, len(out)))
        e = dict(out[i])
        e["t"] = e["t"] - float(rng.uniform(50, 5000))
        out.insert(i, e)
    junk: Events = [
        {"type": "mousemove", "t": 10.0, "x": None, "y": 3},
        {"type": "touchmove", "t": 10.0, "x": 1, "y": 2, "pressure": 1.5},
        {"type": "touchstart", "t": 10.0, "x": 1, "y": 2, "w": -1},
        {"type": "wheel", "t": 10.0, "dy": "down"},
        {"type": "keydown", "t": -5},
        {"type": "keydown", "t": True},
        {"type": "paste", "t": 10.0},
        {"type": ["keydown"], "t": 10.0},
        {"t": 10.0},
    ]
    for e in junk:
        out.insert(int(rng.integers(0, len(out))), e)
    return out


def _desktop_typist(rng: np.random.Generator) -> Events:
    ev = _typing(rng, 0.0, 400, 140.0, 85.0) + _mouse(rng, 0.0, 60)
    return sorted(ev, key=lambda e: e["t"])


def _hunt_and_peck(rng: np.random.Generator) -> Events:
    return _typing(rng, 1000.0, 150, 420.0, 120.0) + _scroll(rng, 500.0, 40, "wheel")


def _phone(rng: np.random.Generator) -> Events:
    return _touch(rng, 0.0, 80) + _scroll(rng, 0.0, 30, "scroll") + _typing(rng, 0.0, 80, 250, 60)


def _noisy_everything(rng: np.random.Generator) -> Events:
    ev = (_typing(rng, 0.0, 300, 110.0, 70.0) + _mouse(rng, 0.0, 50)
          + _scroll(rng, 0.0, 30, "wheel") + _scroll(rng, 0.0, 10, "scroll") + _touch(rng, 0.0, 20))
    return _noise(rng, sorted(ev, key=lambda e: e["t"]))


def _integer_times(rng: np.random.Generator) -> Events:
    ev = _desktop_typist(rng)
    return [{**e, "t": int(e["t"])} for e in ev]


PERSONAS: dict[str, Callable[[np.random.Generator], Events]] = {
    "desktop_typist": _desktop_typist,
    "hunt_and_peck": _hunt_and_peck,
    "phone": _phone,
    "noisy_everything": _noisy_everything,
    "integer_times": _integer_times,
}


def _node_windows(events: Events, window_ms: int, tmp_path: Path) -> list[dict[str, Any]]:
    src = tmp_path / "events.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in events))
    with src.open() as stdin:
        out = subprocess.run([str(NODE), str(BIN), "--window-ms", str(window_ms)], stdin=stdin,
                             capture_output=True, text=True, check=True, timeout=60)
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.parametrize("window_ms", [10_000, 30_000], ids=["10s", "30s"])
@pytest.mark.parametrize("persona", list(PERSONAS), ids=list(PERSONAS))
def test_python_twin_matches_node(persona: str, window_ms: int, tmp_path: Path) -> None:
    """Every window, modality, event count and feature agrees to the wire rounding."""
    events = PERSONAS[persona](np.random.default_rng(0))
    js = _node_windows(events, window_ms, tmp_path)
    py = windows_from_events(events, window_ms)
    assert len(js) == len(py) > 1
    for a, b in zip(js, py, strict=True):
        assert {k: a[k] for k in ("sid", "seq", "ts", "dev")} == {
            k: b[k] for k in ("sid", "seq", "ts", "dev")}
        assert list(a["m"]) == list(b["m"])
        for mod, wa in a["m"].items():
            wb = b["m"][mod]
            assert wa["n"] == wb["n"], (b["seq"], mod)
            assert list(wa["f"]) == list(wb["f"]), (b["seq"], mod)
            for spec in MODALITIES[mod].features:
                if spec.name in wa["f"]:
                    assert wa["f"][spec.name] == pytest.approx(
                        wb["f"][spec.name], abs=1.01 * 10.0**-spec.decimals, rel=0
                    ), (b["seq"], mod, spec.name)


def test_feature_tables_agree() -> None:
    """collector_js/src/features.js lists the same names, ranges, decimals and minimums."""
    script = ("import(process.argv[1]).then(m => "
              "process.stdout.write(JSON.stringify(m.FEATURES)))")
    url = (ROOT / "collector_js" / "src" / "features.js").as_uri()
    out = subprocess.run([str(NODE), "-e", script, url], capture_output=True, text=True,
                         check=True, timeout=60)
    js = json.loads(out.stdout)
    py: dict[str, dict[str, Any]] = {
        name: {"min": m.min_events, "f": {f.name: [f.lo, f.hi, f.decimals] for f in m.features}}
        for name, m in MODALITIES.items()}
    assert js == py
    assert [list(v["f"]) for v in js.values()] == [list(v["f"]) for v in py.values()]
