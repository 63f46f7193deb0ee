"""Balabit Mouse Dynamics Challenge sessions → the collector's raw event schema.

Each ``training_files/userN/session_*`` file is CSV with a header::

    record timestamp,client timestamp,button,state,x,y

Mapping to the events :func:`sidecar.extract.windows_from_events` takes (the same
schema the browser collector records, see docs/collector.md):

* ``NoButton, Move`` → ``{"type": "mousemove", "t", "x", "y"}``;
* ``*, Drag`` → ``mousemove`` too (the button is down: a drag follows a
  ``Pressed`` and precedes its ``Released``);
* ``Left|Right|XButton, Pressed`` → ``{"type": "mousedown", "t", "x", "y",
  "button"}`` with button 0 / 2 / 3 (DOM ``MouseEvent.button``); ``Released`` →
  ``mouseup`` with the same buttons;
* ``Scroll, Down`` / ``Scroll, Up`` → ``{"type": "wheel", "t", "x", "y", "dx": 0,
  "dy": +100 / -100}`` (one notch = 100 px, what Chrome reports in pixel mode;
  down is positive as in the DOM).

``t`` is the *client* timestamp (when the remote-desktop client saw the event)
in ms since the session started: seconds × 1000.  Rows are kept in file order;
repeated or backwards timestamps are left for the extractor's own cleaning (the
collector drops non-monotonic events), exactly as a browser recording would be.
Unknown buttons or states are skipped and counted.

The sessions carry no absolute time, so "chronological" order of a user's
sessions is not knowable from the files; :func:`list_sessions` orders them by file
name (deterministic, unrelated to when they were recorded).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sidecar.eval.errors import DatasetError

Event = dict[str, float | int | str]

HEADER: Final = ("record timestamp", "client timestamp", "button", "state", "x", "y")
WHEEL_NOTCH_PX: Final = 100
_BUTTONS: Final = {"Left": 0, "Right": 2, "XButton": 3}

__all__ = ["Session", "list_sessions", "read_session"]


@dataclass(frozen=True, slots=True)
class Session:
    """One recorded session of one user (the events are read on demand)."""

    user: str
    name: str
    path: Path


def list_sessions(root: str | Path) -> dict[str, list[Session]]:
    """User → sessions (ordered by file name) under ``root`` (the folder holding
    ``training_files/`` or ``training_files/`` itself)."""
    base = Path(root)
    if not base.is_dir():
        raise DatasetError(f"Balabit dataset not found: {base} (expected a folder with "
                           "training_files/user*/session_*)")
    if (base / "training_files").is_dir():
        base = base / "training_files"
    users: dict[str, list[Session]] = {}
    for user_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        sessions = [Session(user_dir.name, f.name, f)
                    for f in sorted(user_dir.iterdir()) if f.name.startswith("session_")]
        if sessions:
            users[user_dir.name] = sessions
    if not users:
        raise DatasetError(f"no user*/session_* files under {base}")
    return dict(sorted(users.items(), key=lambda kv: _user_key(kv[0])))


def _user_key(name: str) -> tuple[int, str]:
    digits = "".join(c for c in name if c.isdigit())
    return (int(digits) if digits else 1 << 62, name)


def _rows(path: Path) -> Iterator[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = tuple(h.strip() for h in next(reader, []))
        if header != HEADER:
            raise DatasetError(f"{path}: unexpected header (want {','.join(HEADER)})")
        yield from reader


def read_session(session: Session) -> tuple[list[Event], int]:
    """The session's events in file order, and how many rows were skipped."""
    events: list[Event] = []
    skipped = 0
    for lineno, row in enumerate(_rows(session.path), start=2):
        if len(row) != len(HEADER):
            skipped += 1
            continue
        try:
            t = float(row[1]) * 1000.0
            x, y = int(float(row[4])), int(float(row[5]))
        except ValueError as exc:
            raise DatasetError(f"{session.path}:{lineno}: {exc}") from exc
        button, state = row[2], row[3]
        if state in ("Move", "Drag"):
            events.append({"type": "mousemove", "t": t, "x": x, "y": y})
        elif state in ("Pressed", "Released") and button in _BUTTONS:
            kind = "mousedown" if state == "Pressed" else "mouseup"
            events.append({"type": kind, "t": t, "x": x, "y": y, "button": _BUTTONS[button]})
        elif button == "Scroll" and state in ("Down", "Up"):
            dy = WHEEL_NOTCH_PX if state == "Down" else -WHEEL_NOTCH_PX
            events.append({"type": "wheel", "t": t, "x": x, "y": y, "dx": 0, "dy": dy})
        else:
            skipped += 1
    return events, skipped
