"""``bioshard eval keystroke|mouse``: accuracy benchmarks on public datasets.

Registered into the main command line by :func:`add_parser`; also runnable alone
as ``python -m sidecar.eval keystroke|mouse ...``.  Handlers return the exit code:
0 on success, 2 for a usage or dataset problem (a message on stderr, never a
traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sidecar.eval.errors import EvalError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from sidecar.scoring import ScoringParams

__all__ = ["add_parser", "main", "parse_scoring_params"]

_PROG = "bioshard eval"


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, type=Path, metavar="PATH",
                   help="folder of the dataset (read only; never copied)")
    p.add_argument("--json", action="store_true",
                   help="write the results as JSON to stdout instead of the table")
    p.add_argument("--plot", type=Path, metavar="FILE.png",
                   help="also draw DET curves (matplotlib, Agg) into this PNG file")
    p.add_argument("--scoring-param", action="append", default=[], metavar="NAME=VALUE",
                   help="override one sidecar.scoring.ScoringParams field for the bioshard "
                        "scorer (repeatable), e.g. --scoring-param half_life_windows=inf")
    p.add_argument("--no-progress", action="store_true",
                   help="do not draw the progress bar on stderr")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
               ) -> argparse.ArgumentParser:
    """Register ``eval`` with the sub-commands ``keystroke`` and ``mouse``."""
    p = subparsers.add_parser(
        "eval", help="accuracy benchmarks on public datasets (MOBIKEY, Balabit)",
        description="Measure how well bioshard's production scorer (and the classic "
                    "one-class detectors) separate users from impostors.")
    sub = p.add_subparsers(dest="eval_command", metavar="{keystroke,mouse}", required=True)

    k = sub.add_parser(
        "keystroke", help="MOBIKEY passwords, Killourhy & Maxion protocol",
        description="Per password and subject: train on the first half of the clean "
                    "repetitions, test on the second half and on the first 5 repetitions "
                    "of every other subject; per-subject EER and zero-miss false-alarm "
                    "rate, mean (std) over subjects.")
    _common(k)
    k.add_argument("--detectors", type=_csv, metavar="LIST",
                   help="comma-separated detectors (default: all): euclidean, manhattan, "
                        "scaled-manhattan, mahalanobis, nn-mahalanobis, outlier-count, "
                        "kmeans, bioshard, bioshard-adaptive (the production scorer learning the "
                        "genuine tests it finds learnable, as the sidecar does)")
    k.add_argument("--feature-sets", type=_csv, default=["timing", "first", "second", "all"],
                   metavar="LIST",
                   help="comma-separated feature sets: timing, first, second, all "
                        "(default: all four)")
    k.add_argument("--passwords", type=_csv, metavar="LIST",
                   help="comma-separated passwords: easy, strong, logical-strong "
                        "(default: all)")
    k.add_argument("--subjects", type=int, metavar="N",
                   help="evaluate only the first N subjects (ordered by id) of each password")
    k.add_argument("--clip", type=float, default=3.0, metavar="Z",
                   help="bioshard scorer: clip the robust z-scores of the normalised vectors "
                        "to [-Z, Z] before learning/scoring (default 3; 0 = off)")
    k.add_argument("--per-subject", action="store_true",
                   help="include per-subject results in the JSON output")
    k.set_defaults(func=keystroke_command)

    m = sub.add_parser(
        "mouse", help="Balabit training sessions through the collector's extraction",
        description="Replay each session's raw events through sidecar.extract, learn each "
                    "user's first sessions through sidecar.scoring (the production "
                    "score_window/learn_window path), score the user's later sessions "
                    "and other users' later sessions; EER and AUC per user and pooled, "
                    "and EER against the number of training windows.")
    _common(m)
    m.add_argument("--window-ms", type=int, default=30_000, metavar="MS",
                   help="tumbling window length in ms (default 30000, the collector's)")
    m.add_argument("--users", type=_csv, metavar="LIST",
                   help="comma-separated users, e.g. user7,user9 (default: all)")
    m.add_argument("--train-fraction", type=float, default=0.5, metavar="F",
                   help="share of each user's sessions (in file-name order) used for "
                        "training (default 0.5, at least one session each side)")
    m.add_argument("--max-windows-per-session", type=int, metavar="N",
                   help="keep at most N windows per session, evenly spaced (speed)")
    m.add_argument("--max-impostor-windows", type=int, default=200, metavar="N",
                   help="impostor windows taken from each other user, evenly spaced "
                        "(default 200)")
    m.add_argument("--curve", type=_csv, default=["5", "10", "20", "50", "100", "200", "all"],
                   metavar="LIST",
                   help="training-window counts at which the learning curve is measured "
                        "(default 5,10,20,50,100,200,all)")
    m.add_argument("--learn", choices=("gated", "all"), default="gated",
                   help="gated: learn a training window only when the production scorer "
                        "says it is learnable (as the sidecar does); all: learn every one")
    m.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="processes for the feature extraction (default 1)")
    m.set_defaults(func=mouse_command)
    return p


def parse_scoring_params(pairs: Sequence[str]) -> ScoringParams:
    """``["half_life_windows=inf", ...]`` → a validated :class:`ScoringParams`."""
    from sidecar.scoring import ScoringParams

    fields = {f.name: f for f in dataclasses.fields(ScoringParams)}
    values: dict[str, Any] = {}
    defaults = ScoringParams()
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or name not in fields:
            known = ", ".join(sorted(fields))
            raise UsageError(f"--scoring-param {pair!r}: want NAME=VALUE with NAME one of "
                             f"{known}")
        current = getattr(defaults, name)
        try:
            if isinstance(current, bool):
                if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(raw)
                values[name] = raw.lower() in ("true", "1", "yes")
            elif isinstance(current, int):
                values[name] = int(raw)
            elif isinstance(current, float):
                values[name] = float(raw)
            else:
                values[name] = raw
        except ValueError as exc:
            raise UsageError(f"--scoring-param {name}: cannot parse {raw!r}") from exc
    try:
        return ScoringParams(**values)
    except ValueError as exc:
        raise UsageError(f"--scoring-param: {exc}") from exc


def _fail(message: str) -> int:
    print(f"{_PROG}: error: {message}", file=sys.stderr)
    return 2


def _finite(value: Any) -> Any:
    """NaN/inf → None, recursively, so that the JSON output is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _emit(doc: dict[str, Any], table: str, args: argparse.Namespace) -> None:
    if args.json:
        json.dump(_finite(doc), sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        print(table)
    sys.stdout.flush()


def keystroke_command(args: argparse.Namespace) -> int:
    """Handler of ``bioshard eval keystroke``."""
    from sidecar.eval.keystroke_cmd import run_keystroke_command

    try:
        return run_keystroke_command(args, _emit)
    except EvalError as exc:
        return _fail(str(exc))


def mouse_command(args: argparse.Namespace) -> int:
    """Handler of ``bioshard eval mouse``."""
    from sidecar.eval.mouse_cmd import run_mouse_command

    try:
        return run_mouse_command(args, _emit)
    except EvalError as exc:
        return _fail(str(exc))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sidecar.eval ...``: the same commands without the main CLI."""
    parser = argparse.ArgumentParser(prog="bioshard")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["eval", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.func(args)
    return code
