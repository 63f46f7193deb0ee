"""Small synthetic datasets in the exact on-disk formats of MOBIKEY and Balabit.

For tests and for trying the commands without the real data: every subject or
user gets a seeded personal style, so a working detector separates them.  The
files follow the real formats, quirks included (MOBIKEY's stray spaces after
commas, a few repetitions with a correction; Balabit's two timestamps and
``NoButton, Drag`` rows).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np

from sidecar.eval.mobikey import HEADER as MOBIKEY_HEADER

PASSWORD_KEYS: Final[dict[int, tuple[str, ...]]] = {
    0: tuple("kicsikutyatarka"),
    1: (".", "t", "i", "e", "123?", "5", "abc", "Shift↑", "R", "o", "a", "n", "l"),
    2: ("Shift↑", "K", "k", "t", "s", "f", "123?", "2", "!", "2", "0", "1", "4"),
}
"""Key sequences as MOBIKEY records them (type codes as in the files)."""

__all__ = ["PASSWORD_KEYS", "write_balabit", "write_mobikey"]


def write_mobikey(root: str | Path, *, subjects: int = 4, repetitions: int = 12,
                  password_types: Sequence[int] = (1,), corrections: int = 1,
                  seed: int = 0) -> Path:
    """Write ``root/group1/Keystrokes.csv``; returns the file's path.

    Each subject types each password ``repetitions`` times over sessions of 5; the
    first ``corrections`` repetitions of every subject start with a ``Del`` tap
    (a correction, to be dropped by the reader).
    """
    rng = np.random.default_rng(seed)
    path = Path(root) / "group1" / "Keystrokes.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [", ".join(MOBIKEY_HEADER)]
    for s in range(subjects):
        user = 600 + s
        style_hold = rng.uniform(70, 160)
        style_gap = rng.uniform(150, 400)
        style_press = rng.uniform(0.08, 0.4)
        style_area = rng.uniform(0.15, 0.45)
        gravity = rng.normal([0.3, 4.8, 8.5], 0.5)
        for ptype in password_types:
            keys = PASSWORD_KEYS[ptype]
            holds = rng.normal(style_hold, 15, len(keys)).clip(30)
            gaps = rng.normal(style_gap, 60, len(keys)).clip(60)
            pos = rng.uniform(50, 700, size=(len(keys), 2))
            clock = float(rng.integers(1_000_000, 9_000_000))
            for rep in range(repetitions):
                session, index = divmod(rep, 5)
                typed = (("Del", *keys) if rep < corrections else keys)
                for k, key in enumerate(typed):
                    j = min(max(k - (len(typed) - len(keys)), 0), len(keys) - 1)
                    clock += max(gaps[j] + rng.normal(0, 25), 40.0)
                    down = round(clock)
                    up = down + round(max(holds[j] + rng.normal(0, 8), 20.0))
                    x, y = pos[j] + rng.normal(0, 4, 2)
                    gx, gy, gz = gravity + rng.normal(0, 0.05, 3)
                    lines.append(", ".join(str(v) for v in (
                        user, "KTU84P", session, key, down, up,
                        round(style_press + rng.normal(0, 0.02), 4),
                        round(style_area + rng.normal(0, 0.02), 4),
                        round(x, 3), round(y, 3), round(gx, 5), round(gy, 5), round(gz, 5),
                        2, ptype, index)))
                clock += 3000.0
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_balabit(root: str | Path, *, users: int = 3, sessions: int = 2,
                  seconds: float = 120.0, seed: int = 0) -> Path:
    """Write ``root/training_files/userN/session_*`` files; returns ``training_files``.

    Each user moves with a personal speed, curvature, pause length and click
    hold; events every ~30 ms while moving, a click after most strokes, a wheel
    burst now and then, and an occasional drag.
    """
    rng = np.random.default_rng(seed)
    base = Path(root) / "training_files"
    for u in range(users):
        speed = rng.uniform(0.4, 1.5)  # px/ms, peak of a stroke
        bend = rng.uniform(0.05, 0.25)  # rad per sample
        pause = rng.uniform(300, 1500)  # ms between strokes
        wait = rng.uniform(150, 600)  # ms still before a click
        hold = rng.uniform(70, 160)  # ms
        user_dir = base / f"user{u + 1}"
        user_dir.mkdir(parents=True, exist_ok=True)
        for s in range(sessions):
            rows = ["record timestamp,client timestamp,button,state,x,y"]
            t, x, y = 0.0, 800.0, 500.0
            while t < seconds * 1000:
                heading = rng.uniform(0, 2 * math.pi)
                drag = rng.random() < 0.1
                if drag:
                    rows.append(_row(t, "Left", "Pressed", x, y, rng))
                n = int(rng.integers(10, 30))
                turn = bend * (1 if rng.random() < 0.5 else -1)
                for k in range(n):
                    dt = rng.uniform(20, 40)
                    t += dt
                    heading += turn * rng.normal(1, 0.5)
                    step = speed * math.sin(math.pi * (k + 0.5) / n) * rng.normal(1, 0.1) * dt
                    x = float(np.clip(x + step * math.cos(heading), 0, 1919))
                    y = float(np.clip(y + step * math.sin(heading), 0, 1079))
                    rows.append(_row(t, "NoButton", "Drag" if drag else "Move", x, y, rng))
                if drag or rng.random() < 0.7:
                    if not drag:
                        t += max(wait + rng.normal(0, wait / 5), 30)
                        rows.append(_row(t, "Left", "Pressed", x, y, rng))
                    t += max(hold + rng.normal(0, 20), 20)
                    rows.append(_row(t, "Left", "Released", x, y, rng))
                if rng.random() < 0.15:
                    state = "Down" if rng.random() < 0.6 else "Up"
                    for _ in range(int(rng.integers(3, 8))):
                        t += rng.uniform(30, 90)
                        rows.append(_row(t, "Scroll", state, x, y, rng))
                t += max(pause + rng.normal(0, pause / 4), 50)
            name = f"session_{s:010d}"
            (user_dir / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
    return base


def _row(t_ms: float, button: str, state: str, x: float, y: float,
         rng: np.random.Generator) -> str:
    client = float(t_ms) / 1000.0
    record = client + abs(float(rng.normal(0.005, 0.003)))
    return f"{record:.6f},{client:.6f},{button},{state},{round(x)},{round(y)}"
