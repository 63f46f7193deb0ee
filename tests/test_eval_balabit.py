"""Tests for sidecar.eval.balabit: Balabit rows → collector events."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.eval.balabit import list_sessions, read_session
from sidecar.eval.errors import DatasetError
from sidecar.eval.synthetic import write_balabit

HEADER = "record timestamp,client timestamp,button,state,x,y"


def _session(tmp_path: Path, rows: list[str], user: str = "user7",
             name: str = "session_1") -> Path:
    d = tmp_path / "training_files" / user
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("row", "event"),
    [
        ("0.1,0.05,NoButton,Move,10,20", {"type": "mousemove", "t": 50.0, "x": 10, "y": 20}),
        ("0.1,0.05,NoButton,Drag,10,20", {"type": "mousemove", "t": 50.0, "x": 10, "y": 20}),
        ("0.1,0.25,Left,Pressed,1,2",
         {"type": "mousedown", "t": 250.0, "x": 1, "y": 2, "button": 0}),
        ("0.1,0.25,Right,Released,1,2",
         {"type": "mouseup", "t": 250.0, "x": 1, "y": 2, "button": 2}),
        ("0.1,1.5,XButton,Pressed,1,2",
         {"type": "mousedown", "t": 1500.0, "x": 1, "y": 2, "button": 3}),
        ("0.1,2,Scroll,Down,5,6",
         {"type": "wheel", "t": 2000.0, "x": 5, "y": 6, "dx": 0, "dy": 100}),
        ("0.1,2,Scroll,Up,5,6",
         {"type": "wheel", "t": 2000.0, "x": 5, "y": 6, "dx": 0, "dy": -100}),
    ],
    ids=["move", "drag-is-move", "left-press", "right-release", "xbutton", "wheel-down",
         "wheel-up"],
)
def test_row_mapping(tmp_path: Path, row: str, event: dict[str, object]) -> None:
    """Each Balabit row kind becomes the documented collector event (client time in ms)."""
    root = _session(tmp_path, [row])
    (session,) = list_sessions(root)["user7"]
    events, skipped = read_session(session)
    assert events == [event] and skipped == 0


def test_unknown_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    """Unknown button/state pairs and short rows are skipped, not fatal."""
    rows = ["0,0,Middle,Pressed,1,1", "0,0,NoButton", "0,0.001,NoButton,Move,1,1"]
    root = _session(tmp_path, rows)
    events, skipped = read_session(list_sessions(root)["user7"][0])
    assert len(events) == 1 and skipped == 2


def test_sessions_are_listed_per_user_in_name_order(tmp_path: Path) -> None:
    """Users sort numerically, sessions by file name; both root forms are accepted."""
    for user, name in [("user12", "session_9"), ("user7", "session_5"), ("user7", "session_1")]:
        _session(tmp_path, ["0,0,NoButton,Move,1,1"], user=user, name=name)
    for root in (tmp_path, tmp_path / "training_files"):
        listing = list_sessions(root)
        assert list(listing) == ["user7", "user12"]
        assert [s.name for s in listing["user7"]] == ["session_1", "session_5"]


def test_synthetic_sessions_parse(tmp_path: Path) -> None:
    """The synthetic writer's sessions parse into time-ordered events."""
    sessions = list_sessions(write_balabit(tmp_path, users=2, sessions=1, seconds=20))
    events, skipped = read_session(sessions["user1"][0])
    assert skipped == 0 and len(events) > 100
    assert {e["type"] for e in events} >= {"mousemove", "mousedown", "mouseup"}


@pytest.mark.parametrize(
    ("setup", "match"),
    [("missing", "not found"), ("empty", "no user"), ("header", "unexpected header")],
    ids=["missing-path", "no-sessions", "bad-header"],
)
def test_dataset_errors(tmp_path: Path, setup: str, match: str) -> None:
    """Missing folders, empty folders and wrong headers raise DatasetError."""
    root = tmp_path / "data"
    if setup == "empty":
        root.mkdir()
    if setup == "header":
        d = root / "user1"
        d.mkdir(parents=True)
        (d / "session_1").write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=match):
        sessions = list_sessions(root)
        read_session(sessions["user1"][0])
