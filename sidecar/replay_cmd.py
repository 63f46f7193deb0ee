"""``bioshard replay EVENTS.jsonl --user U``: recorded raw events → windows → scores.

The events are the collector's raw events as JSON lines (``docs/collector.md``); the
windows are built with :mod:`sidecar.extract` exactly as the browser would, then
scored for the user by :func:`sidecar.replay_scoring.score_windows`.  Output is one
line per window: a table by default, JSON lines with ``--json``.  The user id is
only passed to the scorer, never printed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable
from typing import Any

from sidecar.extract import read_events_jsonl, windows_from_events

DEFAULT_WINDOW_MS = 30_000
_COLUMNS = ("seq", "ts", "dev", "tier", "score", "reason")

ScoreWindows = Callable[[str, list[dict[str, Any]], argparse.Namespace], list[dict[str, Any]]]
"""``sidecar.replay_scoring.score_windows(user, docs, args)``: one result dict per window."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``replay`` on the ``bioshard`` command line."""
    p = sub.add_parser(
        "replay", help="score recorded collector events for a user, window by window",
        description="Read raw collector events (JSON lines), build v1 feature windows the way "
                    "the browser collector does (tumbling windows of --window-ms), and score "
                    "each window against the user's profile.")
    p.add_argument("events", metavar="EVENTS.jsonl", help="raw events, one JSON object a line")
    p.add_argument("--user", required=True, metavar="U", help="user id whose profile scores them")
    p.add_argument("--window-ms", type=int, default=DEFAULT_WINDOW_MS, metavar="N",
                   help=f"tumbling window length in ms (default {DEFAULT_WINDOW_MS})")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    p.add_argument("--store", metavar="URL",
                   help="profile store (default: BIOSHARD_STORE or the settings file); keys "
                        "come from BIOSHARD_PSEUDONYM_KEY / BIOSHARD_ENCRYPTION_KEYS as for serve")
    p.add_argument("--config", metavar="FILE", help="TOML settings file (or BIOSHARD_CONFIG)")
    p.add_argument("--learn", action="store_true",
                   help="learn the windows that score as normal into the profile (enrol a user "
                        "from recordings)")
    p.set_defaults(func=run_replay)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "-" if value is None else str(value)


def run_replay(args: argparse.Namespace) -> int:
    """Handler of ``bioshard replay``; returns the exit code."""
    if args.window_ms <= 0:
        print("bioshard replay: --window-ms must be positive", file=sys.stderr)
        return 2
    try:
        events = read_events_jsonl(args.events)
    except (OSError, ValueError) as exc:
        print(f"bioshard replay: {args.events}: {exc}", file=sys.stderr)
        return 2
    docs = windows_from_events(events, args.window_ms)
    if not docs:
        print("bioshard replay: no window with usable events", file=sys.stderr)
        return 1
    try:  # the scorer is heavy (and lives with the scoring code): load it on use
        scoring = importlib.import_module("sidecar.replay_scoring")
    except ModuleNotFoundError as exc:
        if exc.name != "sidecar.replay_scoring":
            raise
        print("bioshard replay: scoring is not available in this build", file=sys.stderr)
        return 2
    score_windows: ScoreWindows = scoring.score_windows
    try:
        results = score_windows(args.user, docs, args)
    except (ValueError, KeyError, OSError) as exc:  # settings, keys, store
        print(f"bioshard replay: {exc}", file=sys.stderr)
        return 2
    if args.json:
        for row in results:
            print(json.dumps(row, separators=(",", ":"), default=str))
        return 0
    print("  ".join(f"{c:>13}" for c in _COLUMNS))
    for row, doc in zip(results, docs, strict=False):
        merged = {**{k: doc.get(k) for k in ("seq", "ts", "dev")}, **row}
        print("  ".join(f"{_cell(merged.get(c)):>13}" for c in _COLUMNS))
    return 0
