"""Glue for ``bioshard eval mouse``: options → extraction → protocol → table, JSON, plot."""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sidecar.eval.balabit import list_sessions
from sidecar.eval.errors import UsageError
from sidecar.eval.mouse import SessionWindows, extract_sessions, run_mouse, spaced
from sidecar.eval.progress import Progress
from sidecar.eval.report import format_table, mouse_tables, plot_mouse

Emit = Callable[[dict[str, Any], str, argparse.Namespace], None]

__all__ = ["run_mouse_command"]


def _checkpoints(items: list[str]) -> list[int | str]:
    out: list[int | str] = []
    for item in items:
        if item == "all":
            out.append("all")
            continue
        try:
            n = int(item)
        except ValueError:
            n = 0
        if n < 1:
            raise UsageError(f"--curve: {item!r} is not a positive count or 'all'")
        out.append(n)
    return out


def _check(args: argparse.Namespace) -> None:
    if args.window_ms < 1000:
        raise UsageError("--window-ms must be at least 1000")
    if not 0.0 < args.train_fraction < 1.0:
        raise UsageError("--train-fraction must be in (0, 1)")
    for name in ("max_windows_per_session", "max_impostor_windows"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")


def run_mouse_command(args: argparse.Namespace, emit: Emit) -> int:
    """Run the benchmark the options describe; returns the exit code."""
    from sidecar.eval.cli import parse_scoring_params

    _check(args)
    checkpoints = _checkpoints(args.curve)
    params = parse_scoring_params(args.scoring_param)
    sessions = list_sessions(args.dataset)
    if args.users:
        missing = [u for u in args.users if u not in sessions]
        if missing:
            raise UsageError(f"--users: {', '.join(missing)} not in the dataset "
                             f"(found {', '.join(sessions)})")
        sessions = {u: sessions[u] for u in args.users}
    flat = [s for user_sessions in sessions.values() for s in user_sessions]
    bar = Progress(len(flat) + len(sessions), "mouse: extracting windows",
                   enabled=not args.no_progress)
    t0 = time.monotonic()
    try:
        extracted = extract_sessions(flat, args.window_ms, jobs=args.jobs, progress=bar)
        t_extract = time.monotonic() - t0
        by_user: dict[str, list[SessionWindows]] = defaultdict(list)
        for sw in extracted:
            kept = tuple(spaced(sw.windows, args.max_windows_per_session))
            by_user[sw.user].append(dataclasses.replace(sw, windows=kept))
        bar.set_label("mouse: learning and scoring")
        run = run_mouse(by_user, params=params, train_fraction=args.train_fraction,
                        max_impostor_windows=args.max_impostor_windows,
                        checkpoints=checkpoints, learn=args.learn, progress=bar)
    finally:
        bar.close()
    runtime = time.monotonic() - t0
    stats = [{"user": u, "sessions": len(v), "events": sum(s.events for s in v),
              "skipped_rows": sum(s.skipped_rows for s in v),
              "windows": sum(len(s.windows) for s in v),
              "empty_windows": sum(s.empty_windows for s in v)} for u, v in by_user.items()]
    doc = run.to_json()
    doc.update(dataset=str(args.dataset), window_ms=args.window_ms,
               max_windows_per_session=args.max_windows_per_session, extraction=stats,
               runtime_s=round(runtime, 1), extraction_s=round(t_extract, 1),
               scoring_params=dataclasses.asdict(params))
    extraction = format_table(
        ["user", "sessions", "events", "skipped rows", "windows kept", "windows w/o features"],
        [[s["user"], s["sessions"], s["events"], s["skipped_rows"], s["windows"],
          s["empty_windows"]] for s in stats])
    table = (extraction + "\n\n" + mouse_tables(run)
             + f"\n\nextraction {t_extract:.0f} s, total {runtime:.0f} s")
    if args.plot is not None:
        plot_mouse(args.plot, run)
    emit(doc, table, args)
    return 0
