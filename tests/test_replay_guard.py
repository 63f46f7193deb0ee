"""Replay guard: repeated (sid, seq), stale or future windows, and stolen sessions."""

from __future__ import annotations

import pytest

from sidecar.replay_guard import ANONYMOUS, REORDER_WINDOW, ReplayGuard, ReplayKind

NOW = 1_764_086_400_000


def guard() -> ReplayGuard:
    return ReplayGuard(max_sessions=100, max_age_s=300, max_skew_s=60)


@pytest.mark.parametrize(("steps", "expected"), [
    ([("s1", 1, "u")], ReplayKind.FRESH),
    ([("s1", 1, "u"), ("s1", 1, "u")], ReplayKind.SEEN),
    ([("s1", 1, "u"), ("s1", 2, "u")], ReplayKind.FRESH),
    ([("s1", 5, "u"), ("s1", 3, "u")], ReplayKind.FRESH),
    ([("s1", 5, "u"), ("s1", 3, "u"), ("s1", 3, "u")], ReplayKind.SEEN),
    ([("s1", 200, "u"), ("s1", 200 - REORDER_WINDOW, "u")], ReplayKind.SEEN),
    ([("s1", 1, "u"), ("s1", 2, "v")], ReplayKind.OTHER_USER),
    ([("s1", 1, ANONYMOUS), ("s1", 2, "u")], ReplayKind.FRESH),
    ([("s1", 1, ANONYMOUS), ("s1", 2, "u"), ("s1", 3, "v")], ReplayKind.OTHER_USER),
    ([("s1", 1, "u"), ("s1", 2, ANONYMOUS)], ReplayKind.OTHER_USER),
], ids=["first", "repeat", "next", "reordered", "reordered-repeat", "far-behind",
        "other-user", "sign-in-adopts", "adopted-once", "user-to-anonymous"])
def test_sequences(steps: list[tuple[str, int, str]], expected: ReplayKind) -> None:
    """The last step of each sequence is classified as expected."""
    g = guard()
    result = None
    for sid, seq, owner in steps:
        result = g.check(sid=sid, seq=seq, ts_ms=NOW, owner=owner, now_ms=NOW)
    assert result is expected


@pytest.mark.parametrize(("ts", "expected"), [
    (NOW - 301_000, ReplayKind.STALE),
    (NOW - 299_000, ReplayKind.FRESH),
    (NOW + 61_000, ReplayKind.FUTURE),
], ids=["too-old", "just-fresh", "future"])
def test_age(ts: int, expected: ReplayKind) -> None:
    """Windows older than max age, or from the future beyond skew, are not fresh."""
    assert guard().check(sid="s", seq=1, ts_ms=ts, owner="u", now_ms=NOW) is expected


def test_bounded_and_forget() -> None:
    """The session table is an LRU of bounded size; forgetting a user drops its sessions."""
    g = ReplayGuard(max_sessions=3, max_age_s=300, max_skew_s=60)
    for i in range(5):
        g.check(sid=f"s{i}", seq=1, ts_ms=NOW, owner="u" if i % 2 else "v", now_ms=NOW)
    assert len(g) == 3
    assert g.forget_owner("v") == 2
    assert len(g) == 1
