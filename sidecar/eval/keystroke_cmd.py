"""Glue for ``bioshard eval keystroke``: options → protocol run → table, JSON, plot."""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

from sidecar.eval.detectors import CLASSIC_DETECTORS
from sidecar.eval.errors import UsageError
from sidecar.eval.keystroke import DetectorFactory, KeystrokeRun, count_units, run_keystroke
from sidecar.eval.metrics import average_miss_at
from sidecar.eval.mobikey import FEATURE_SETS, Column, FeatureSet, find_passwords, read_mobikey
from sidecar.eval.progress import Progress
from sidecar.eval.report import DET_GRID, keystroke_table, plot_det_grid

Emit = Callable[[dict[str, Any], str, argparse.Namespace], None]

PRODUCTION: str = "bioshard"
ADAPTIVE: str = "bioshard-adaptive"
ALL_DETECTORS: tuple[str, ...] = (*CLASSIC_DETECTORS, PRODUCTION, ADAPTIVE)

__all__ = ["ALL_DETECTORS", "run_keystroke_command"]


def _classic(name: str) -> DetectorFactory:
    make = CLASSIC_DETECTORS[name]

    def factory(columns: Sequence[Column]) -> Any:
        return make()

    return factory


def _feature_sets(names: Sequence[str]) -> list[FeatureSet]:
    out: list[FeatureSet] = []
    for name in names:
        if name not in FEATURE_SETS:
            raise UsageError(f"--feature-sets: unknown {name!r} (want {', '.join(FEATURE_SETS)})")
        out.append(FEATURE_SETS[FEATURE_SETS.index(name)])
    return out


def run_keystroke_command(args: argparse.Namespace, emit: Emit) -> int:
    """Run the benchmark the options describe; returns the exit code."""
    names = list(args.detectors or ALL_DETECTORS)
    unknown = [n for n in names if n not in ALL_DETECTORS]
    if unknown:
        raise UsageError(f"--detectors: unknown {', '.join(unknown)} "
                         f"(want {', '.join(ALL_DETECTORS)})")
    fsets = _feature_sets(args.feature_sets)
    if args.subjects is not None and args.subjects < 2:
        raise UsageError("--subjects must be at least 2 (impostors are the other subjects)")
    detectors: dict[str, DetectorFactory] = {
        n: _classic(n) for n in names if n not in (PRODUCTION, ADAPTIVE)}
    params_doc: dict[str, Any] | None = None
    if PRODUCTION in names or ADAPTIVE in names:
        from sidecar.eval.cli import parse_scoring_params
        from sidecar.eval.production import production_factory

        params = parse_scoring_params(args.scoring_param)
        if not args.clip >= 0:
            raise UsageError("--clip must be >= 0")
        for name in names:
            if name in (PRODUCTION, ADAPTIVE):
                detectors[name] = production_factory(params, clip=args.clip,
                                                     adaptive=name == ADAPTIVE)
        params_doc = {**dataclasses.asdict(params), "clip": args.clip}
    elif args.scoring_param:
        raise UsageError("--scoring-param only applies to the bioshard detectors")

    reps = read_mobikey(args.dataset)
    labels = {p.label for p in find_passwords(reps).values()}
    if args.passwords:
        missing = [p for p in args.passwords if p not in labels]
        if missing:
            raise UsageError(f"--passwords: {', '.join(missing)} not in the dataset "
                             f"(found {', '.join(sorted(labels))})")
    units = count_units(reps, fsets, args.passwords, args.subjects)
    bar = Progress(units, "keystroke", enabled=not args.no_progress)
    t0 = time.monotonic()
    try:
        run = run_keystroke(reps, detectors=detectors, feature_sets=fsets,
                            passwords=args.passwords, max_subjects=args.subjects, progress=bar)
    finally:
        bar.close()
    runtime = time.monotonic() - t0
    doc = run.to_json(per_subject=args.per_subject)
    doc.update(dataset=str(args.dataset), runtime_s=round(runtime, 1), scoring_params=params_doc)
    table = keystroke_table(run) + f"\n\n{len(run.results)} rows in {runtime:.0f} s"
    if args.plot is not None:
        _plot(run, args.plot)
    emit(doc, table, args)
    return 0


def _plot(run: KeystrokeRun, path: Any) -> None:
    panels: dict[str, dict[str, Any]] = {}
    for r in run.results:
        miss = average_miss_at([s.curve for s in r.subjects], DET_GRID)
        eer_mean = r.eer[0]
        panels.setdefault(f"{r.password} / {r.feature_set}", {})[
            f"{r.detector} ({eer_mean:.3f})"] = (DET_GRID, miss)
    plot_det_grid(path, panels, title="MOBIKEY: DET curves averaged over subjects "
                                      "(legend: mean per-subject EER)",
                  ncols=max(1, len({r.feature_set for r in run.results})))
