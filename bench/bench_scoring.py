"""Benchmark the scoring package: speed of the hot path and accuracy on synthetic users.

    python bench/bench_scoring.py                 # both sections
    python bench/bench_scoring.py speed
    python bench/bench_scoring.py accuracy --users 40

``speed``: µs per ``score_window`` for a profile with keys + mouse + scroll enrolled
and K = 3 components per modality (plan cached; with ``winsor_z = 3``; and a plan miss:
a signature not seen yet, the models' whitening already built), per
``Profile.from_bytes`` / ``to_bytes``, per ``learn_window`` and for the first score
after a load (every covariance, whitening and the plan built).  Wall time
(``perf_counter``) and this thread's CPU time (``thread_time``, immune to other
processes on a shared machine) are both printed.

``accuracy``: an online protocol per synthetic user — score every genuine window,
learn it at once when it is learnable (the pipeline learns with a delay; same model),
and at checkpoints score impostor windows from other personas without learning them.
Compares the calibrations (``chi2``, ``scaled_chi2``, ``empirical``) and the
modality combinations (Fisher, min with Bonferroni) with otherwise default params.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from sidecar.scoring import (
    Persona,
    PopulationModel,
    Profile,
    ScoringParams,
    learn_window,
    score_window,
    synthetic_sid,
    synthetic_window,
)
from sidecar.scoring.calibration import bonferroni_combine, score_from_tail, tail_from_score
from sidecar.scoring.scorer import tier_for
from sidecar.scoring.synthetic import DEFAULT_TAIL_DOF
from sidecar.telemetry import Telemetry, decode, encode_json

DESKTOP = ("keys", "mouse", "scroll")


def _window(persona: Persona, rng: np.random.Generator, seq: int,
            modalities: Sequence[str] | None = None) -> Telemetry:
    doc = synthetic_window(persona, rng, sid=synthetic_sid(rng), seq=seq,
                           ts_ms=1_764_000_000_000 + 1000 * seq, modalities=modalities)
    return decode(encode_json(doc))


# -- speed --------------------------------------------------------------------------
def _per_call_us(fn: Callable[[], object], number: int, timer: Callable[[], float]
                 ) -> tuple[float, float]:
    runs = timeit.Timer(fn, timer=timer).repeat(number=number, repeat=9)
    per = [r / number * 1e6 for r in runs]
    return statistics.median(per), min(per)


def speed() -> None:
    params = ScoringParams()
    pop = PopulationModel.default()
    rng = np.random.default_rng(0)
    profile = Profile(params=params)
    # Three clearly different styles, interleaved, give K = 3 components per modality.
    styles = [
        Persona.human(1, style={"scroll": {"delta_mean": 100.0, "speed_mean": 2.0}}),
        Persona.human(2, style={"scroll": {"delta_mean": 8.0, "speed_mean": 0.4}}),
        Persona.human(3, style={"scroll": {"delta_mean": 30.0, "speed_mean": 8.0}}),
    ]
    for i in range(100):
        for p in styles:
            learn_window(profile, _window(p, rng, i, DESKTOP), 0.1, params)
    comps = {m: len(model.components_) for m, model in profile.models.items()}
    window = next(w for w in (_window(styles[0], rng, 10_000 + i, DESKTOP) for i in range(50))
                  if len(w.modalities["mouse"].features) == 8)
    score_window(profile, window, pop, params)
    blob = profile.to_bytes()

    def first_score() -> None:
        score_window(Profile.from_bytes(blob, params), window, pop, params)

    learn_target = Profile.from_bytes(blob, params)

    def learn() -> None:
        learn_window(learn_target, window, 0.1, params)

    def plan_miss() -> None:
        # A signature this profile has not scored yet, its models' blocks already built.
        profile.plans.clear()
        score_window(profile, window, pop, params)

    winsor = replace(params, winsor_z=3.0)
    winsor_profile = Profile.from_bytes(blob, winsor)
    score_window(winsor_profile, window, pop, winsor)

    rows = [
        ("score_window (keys+mouse+scroll, K=3)", lambda: score_window(profile, window, pop,
                                                                       params), 3000),
        ("score_window, winsor_z=3", lambda: score_window(winsor_profile, window, pop,
                                                          winsor), 3000),
        ("score_window, plan miss (new signature)", plan_miss, 1000),
        ("Profile.from_bytes", lambda: Profile.from_bytes(blob, params), 1000),
        ("Profile.to_bytes", profile.to_bytes, 1000),
        ("from_bytes + first score_window", first_score, 300),
        ("learn_window (3 modalities)", learn, 300),
    ]
    print(f"components per modality: {comps}; profile size: {len(blob)} bytes")
    print(f"{'operation':40} {'wall med':>9} {'wall min':>9} {'cpu med':>9} {'cpu min':>9}  µs")
    for name, fn, n in rows:
        wall = _per_call_us(fn, n, time.perf_counter)
        cpu = _per_call_us(fn, n, time.thread_time)
        print(f"{name:40} {wall[0]:9.1f} {wall[1]:9.1f} {cpu[0]:9.1f} {cpu[1]:9.1f}")


# -- accuracy -----------------------------------------------------------------------
@dataclass
class _Scores:
    genuine: list[float] = field(default_factory=list)
    genuine_tiers: list[int] = field(default_factory=list)
    impostor: list[float] = field(default_factory=list)
    impostor_tiers: list[int] = field(default_factory=list)


PHASES = {"early": (10, 30), "steady": (30, 10**9)}
"""Genuine windows by how many the user had sent before (the first ones enrol)."""


def _score(params: ScoringParams, profile: Profile, window: Telemetry, pop: PopulationModel,
           combine: str) -> tuple[int, float, bool]:
    r = score_window(profile, window, pop, params)
    if combine == "bonferroni" and r.scripted is None:
        tails = [tail_from_score(s) for s in r.modality_scores.values()]
        score = score_from_tail(bonferroni_combine(tails))
        t1 = profile.user_t1(params) if not r.enrolling else params.t1
        return tier_for(score, t1, params.t2), score, score < params.learn_max_score
    return r.tier, r.score, r.learnable


def accuracy_run(params: ScoringParams, users: int, windows: int, combine: str = "fisher",
                 tail_dof: float = DEFAULT_TAIL_DOF) -> dict[str, _Scores]:
    """Online protocol over ``users`` synthetic humans; scores per phase.

    Impostor windows (3 other humans × 10 windows) are scored after the user's 10th
    window (early) and last window (steady), never learned.
    """
    pop = PopulationModel.default()
    out = {phase: _Scores() for phase in PHASES}
    for u in range(users):
        rng = np.random.default_rng(1000 + u)
        me = replace(Persona.human(u), tail_dof=tail_dof)
        others = [replace(Persona.impostor(u * 7 + k), tail_dof=tail_dof) for k in range(3)]
        profile = Profile(params=params)
        for i in range(windows):
            w = _window(me, rng, i)
            tier, score, learnable = _score(params, profile, w, pop, combine)
            for phase, (lo, hi) in PHASES.items():
                if lo <= i < hi:
                    out[phase].genuine.append(score)
                    out[phase].genuine_tiers.append(tier)
            if learnable:
                learn_window(profile, w, score, params, population=pop)
            if i + 1 in (PHASES["early"][0], windows):
                phase = "early" if i + 1 == PHASES["early"][0] else "steady"
                for k, other in enumerate(others):
                    for j in range(10):
                        iw = _window(other, rng, 100_000 + 100 * k + j)
                        itier, iscore, _ = _score(params, profile, iw, pop, combine)
                        out[phase].impostor.append(iscore)
                        out[phase].impostor_tiers.append(itier)
    return out


def _auc(genuine: Sequence[float], impostor: Sequence[float]) -> float:
    """P(impostor score > genuine score), ties count half."""
    g = np.sort(np.asarray(genuine))
    imp = np.asarray(impostor)
    below = np.searchsorted(g, imp, side="left")
    equal = np.searchsorted(g, imp, side="right") - below
    return float((below + 0.5 * equal).sum() / (len(g) * len(imp)))


def _pct(tiers: Sequence[int], at_least: int) -> str:
    return f"{100 * np.mean(np.asarray(tiers) >= at_least):6.2f}"


def _tpr_at(genuine: Sequence[float], impostor: Sequence[float], fpr: float) -> str:
    """Share of impostor windows above the score that only ``fpr`` of genuine ones reach."""
    threshold = float(np.quantile(np.asarray(genuine), 1.0 - fpr))
    return f"{100 * np.mean(np.asarray(impostor) > threshold):6.1f}"


def accuracy(users: int, windows: int, tail_dof: float) -> None:
    base = ScoringParams()
    variants: list[tuple[str, ScoringParams, str]] = [
        ("chi2 + fisher", replace(base, calibration="chi2"), "fisher"),
        ("scaled_chi2 + fisher (default)", base, "fisher"),
        ("empirical + fisher", replace(base, calibration="empirical"), "fisher"),
        ("scaled_chi2 + bonferroni", base, "bonferroni"),
    ]
    print(f"{users} users × {windows} genuine windows (synthetic desktop humans, window "
          f"variation Student-t dof={tail_dof:g}); t1={base.t1} t2={base.t2}; "
          f"impostors: 3 other humans × 10 windows after window 10 and at the end")
    print("rates in %: g = genuine, i = impostor; ≥2 = tier 2 or 3; TPR@1% = impostors "
          "caught at the threshold 1 % of genuine windows reach")
    for phase in PHASES:
        lo, hi = PHASES[phase]
        print(f"\n{phase} (genuine windows {lo}-{min(hi, windows)}):")
        print(f"{'variant':32} {'g≥2':>6} {'g t3':>6} {'i≥2':>6} {'i t3':>6} "
              f"{'AUC':>7} {'TPR@1%':>7} {'TPR@.1%':>7}")
        for name, params, combine in variants:
            sc = accuracy_run(params, users, windows, combine, tail_dof)[phase]
            print(f"{name:32} {_pct(sc.genuine_tiers, 2)} {_pct(sc.genuine_tiers, 3)} "
                  f"{_pct(sc.impostor_tiers, 2)} {_pct(sc.impostor_tiers, 3)} "
                  f"{_auc(sc.genuine, sc.impostor):7.4f} "
                  f"{_tpr_at(sc.genuine, sc.impostor, 0.01):>7} "
                  f"{_tpr_at(sc.genuine, sc.impostor, 0.001):>7}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("section", nargs="?", choices=("speed", "accuracy", "all"), default="all",
                    help="what to run")
    ap.add_argument("--users", type=int, default=30, help="synthetic users (accuracy)")
    ap.add_argument("--windows", type=int, default=150, help="genuine windows per user")
    ap.add_argument("--tail-dof", type=float, default=DEFAULT_TAIL_DOF,
                    help="Student-t dof of synthetic window variation (inf: Gaussian)")
    args = ap.parse_args(argv)
    if args.section in ("speed", "all"):
        speed()
    if args.section in ("accuracy", "all"):
        accuracy(args.users, args.windows, args.tail_dof)
    return 0


if __name__ == "__main__":
    sys.exit(main())
