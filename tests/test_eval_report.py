"""Tests for sidecar.eval.report and sidecar.eval.progress: tables and the progress bar."""

from __future__ import annotations

import io

from sidecar.eval.progress import Progress
from sidecar.eval.report import format_table


def test_table_aligns_text_left_and_numbers_right() -> None:
    """Columns line up; numbers are right-aligned with 3 decimals; None prints as -."""
    out = format_table(["name", "eer"], [["a", 0.5], ["longer", 0.123456], ["c", None]])
    assert out.splitlines() == [
        "name      eer",
        "------  -----",
        "a       0.500",
        "longer  0.123",
        "c           -",
    ]


def test_progress_without_a_terminal_prints_start_and_end_only() -> None:
    """On a non-tty stream the bar is drawn at 0 % and 100 %, one line each."""
    stream = io.StringIO()
    bar = Progress(4, "work", stream=stream)
    for _ in range(4):
        bar(1)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[" + "." * 30 + "] 0/4  work")
    assert lines[1].startswith("[" + "#" * 30 + "] 4/4  work")


def test_disabled_progress_writes_nothing() -> None:
    """enabled=False is silent."""
    stream = io.StringIO()
    bar = Progress(3, "x", stream=stream, enabled=False)
    bar(3)
    bar.close()
    assert stream.getvalue() == ""
