"""Serving-cost benchmark: what does bioshard add to a request through Envoy?

Method after OPA-Envoy's benchmark: the same Envoy config and the same upstream (a
second Envoy answering ``direct_response``) in four scenarios run back to back —
(1) no ext_authz, (2) a no-op Python grpcio ext_authz, (3) bioshard on SQLite,
(4) bioshard on Redis (see ``_scenarios.py``).  Per scenario, after a short warm-up:

* latency at a fixed rate (open loop, ``_openloop.py``; default 1,000 req/s, then
  200 req/s for a shorter time, so that a scenario that cannot sustain 1,000 still
  shows its latency below saturation);
* maximum throughput with a fixed number of connections (``wrk``, ``_load.py``);
* the ext_authz server's CPU µs per Check (``/proc`` utime+stime over Envoy's count
  of answered Checks, including the learning that follows) and its memory (VmRSS);
* for bioshard, the decision reasons from its ``/metrics`` (they should be ``ok``).

10,000 users are enrolled by writing profiles through the store API with the
sidecar's keys; every request carries its own fresh telemetry window from that user's
persona (``_workload.py``).  Results: a table on stdout, JSON and a PNG under
``bench/out/``.  ``--smoke`` runs scenarios 1–3 for a few seconds with 200 users.

Run: ``python bench/serving.py [--smoke] [--out DIR] [--scenarios envoy,noop,...]``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import _observe
import _report
import _scenarios
import _workload
from _load import REQUEST_PATH, WrkResult, run_wrk, write_requests
from _openloop import OpenLoopResult, http_get, run_open_loop
from _scenarios import AuthzServer, Proxy, Scenario, Tuning

from sidecar.crypto import Keys, Pseudonymizer, load_keys
from sidecar.stack import generate_key_env
from sidecar.store import open_store

DEFAULT_OUT: Final = Path(__file__).with_name("out")


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """Everything one run depends on (written into the JSON)."""

    users: int = 10_000
    personas: int = 500
    """Distinct behaviours (enrolled profiles) the users are spread over."""
    warmup_s: float = 3.0
    latency_s: float = 15.0
    rate: float = 1000.0
    extra_rates: tuple[float, ...] = (200.0,)
    """Further fixed rates, each measured for ``min(latency_s, EXTRA_LATENCY_S)``."""
    throughput_s: float = 15.0
    connections: int = 32
    threads: int = 2
    pool_rps: float = 4000.0
    """Distinct requests prepared per second of throughput run (wrk must not run out)."""
    envoy_concurrency: int = 1
    sidecar_workers: int = 4  # bioshard's default `workers`
    learn_delay_s: float = 1.0
    settle_s: float = 2.0
    scenarios: tuple[str, ...] = tuple(s.name for s in _scenarios.SCENARIOS)
    smoke: bool = False


SMOKE: Final = BenchConfig(users=200, personas=50, warmup_s=1.0, latency_s=1.0, rate=200.0,
                           extra_rates=(), throughput_s=1.0, connections=8, threads=1,
                           pool_rps=4000.0,
                           learn_delay_s=0.2, settle_s=0.3,
                           scenarios=("envoy", "noop", "bioshard-sqlite"), smoke=True)


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float
    authz_cpu_us: float | None
    proxy_cpu_us: float
    upstream_cpu_us: float
    outcomes: dict[str, int]
    metrics: _observe.SidecarMetrics | None


@dataclass(frozen=True, slots=True)
class PhaseResult:
    """One measured phase (latency at a fixed rate, or maximum throughput)."""

    kind: str
    requests: int
    errors: int
    rps: float
    p50_us: float
    p99_us: float
    p999_us: float
    checks: int
    """Checks the ext_authz server handled (0 without one)."""
    undecided: int
    """Requests Envoy let through without an answer (ext_authz error / failure mode)."""
    authz_cpu_us_per_check: float | None
    proxy_cpu_us_per_request: float
    upstream_cpu_us_per_request: float
    reasons: dict[str, int] = field(default_factory=dict)
    pipeline_mean_us: float | None = None
    rss_kib: int | None = None
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    name: str
    label: str
    skipped: str | None = None
    latency: PhaseResult | None = None
    latency_extra: list[PhaseResult] = field(default_factory=list)
    throughput: PhaseResult | None = None
    peak_rss_kib: int | None = None
    loadavg_before: tuple[float, float, float] | None = None


@dataclass
class Run:
    """Shared state of one benchmark run."""

    cfg: BenchConfig
    workdir: Path
    upstream_pid: int
    upstream_port: int
    key_env: dict[str, str]
    enrolled: _workload.EnrolledPersonas
    pools: dict[str, Path]
    latency_pairs: dict[float, list[tuple[str, str]]]
    """Requests of each fixed rate's run (their own sessions)."""
    sqlite_url: str
    redis_url: str | None = None
    redis_skip: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    scoring: dict[str, float] = field(default_factory=dict)
    """In-process ``score_window`` CPU µs (:class:`_workload.ScoringCost`)."""


# ---------------------------------------------------------------- measurement


def snapshot(run: Run, proxy: Proxy, authz: AuthzServer | None) -> Snapshot:
    metrics = None
    if authz is not None and authz.admin_port is not None:
        metrics = _observe.sidecar_metrics(authz.admin_port)
    outcomes = _observe.ext_authz_outcomes(proxy.admin_port)
    return Snapshot(at=time.monotonic(),
                    authz_cpu_us=_observe.cpu_us(authz.process.pid) if authz else None,
                    proxy_cpu_us=_observe.cpu_us(proxy.process.pid),
                    upstream_cpu_us=_observe.cpu_us(run.upstream_pid),
                    outcomes=outcomes, metrics=metrics)


def phase_result(kind: str, before: Snapshot, after: Snapshot, *, requests: int, errors: int,
                 rps: float, percentiles: tuple[float, float, float],
                 authz: AuthzServer | None, extra: dict[str, float]) -> PhaseResult:
    outcomes = {k: after.outcomes[k] - before.outcomes[k] for k in after.outcomes}
    # Checks the server worked on: bioshard counts its own (including those Envoy gave up
    # on while they queued); for the no-op server, what Envoy sent (answered or not).
    checks = _observe.checks_answered(outcomes) + outcomes["error"]
    reasons: dict[str, int] = {}
    pipeline_us = None
    if before.metrics is not None and after.metrics is not None:
        delta = after.metrics.minus(before.metrics)
        reasons, pipeline_us, checks = delta.reasons, delta.mean_check_us, delta.check_count
        extra = {**extra, "learned": float(delta.learned), "gc_full": float(delta.gc_full),
                 "gc_pause_max_ms": delta.gc_pause_max_s * 1e3}
    cpu_per_check = None
    if before.authz_cpu_us is not None and after.authz_cpu_us is not None and checks:
        cpu_per_check = (after.authz_cpu_us - before.authz_cpu_us) / checks
    n = max(requests, 1)
    return PhaseResult(
        kind=kind, requests=requests, errors=errors, rps=rps,
        p50_us=percentiles[0], p99_us=percentiles[1], p999_us=percentiles[2],
        # Envoy counts a Check that failed in "error" and, when it then lets the request
        # through, in "failure_mode_allowed" as well: "error" alone counts each once.
        checks=checks, undecided=outcomes["error"],
        authz_cpu_us_per_check=cpu_per_check,
        proxy_cpu_us_per_request=(after.proxy_cpu_us - before.proxy_cpu_us) / n,
        upstream_cpu_us_per_request=(after.upstream_cpu_us - before.upstream_cpu_us) / n,
        reasons=reasons, pipeline_mean_us=pipeline_us,
        rss_kib=_observe.memory_kib(authz.process.pid)[0] if authz else None, extra=extra)


def latency_phase(run: Run, proxy: Proxy, authz: AuthzServer | None, rate: float
                  ) -> PhaseResult:
    cfg = run.cfg
    requests = [http_get("127.0.0.1", proxy.http_port, REQUEST_PATH,
                         [("x-user-id", user), ("x-bioshard-telemetry", tel)])
                for user, tel in run.latency_pairs[rate]]
    before = snapshot(run, proxy, authz)
    result: OpenLoopResult = run_open_loop("127.0.0.1", proxy.http_port, requests,
                                           rate=rate, duration_s=_latency_s(cfg, rate))
    time.sleep(cfg.settle_s)  # let the learning of these windows land in this phase
    after = snapshot(run, proxy, authz)
    lag_p99 = float(_percentile(result.lag_s, 99) * 1e6)
    return phase_result(
        "latency", before, after, requests=result.completed, errors=result.errors,
        rps=result.achieved_rps,
        percentiles=(result.percentile_us(50), result.percentile_us(99),
                     result.percentile_us(99.9)),
        authz=authz,
        extra={"rate": rate, "duration_s": _latency_s(cfg, rate),
               "connections": result.connections,
               "send_lag_p99_us": lag_p99,
               "p99_from_schedule_us": result.percentile_us(99, from_schedule=True)})


def throughput_phase(run: Run, proxy: Proxy, authz: AuthzServer | None) -> PhaseResult:
    cfg = run.cfg
    before = snapshot(run, proxy, authz)
    w: WrkResult = run_wrk(f"http://127.0.0.1:{proxy.http_port}{REQUEST_PATH}",
                           run.pools["throughput"], connections=cfg.connections,
                           threads=cfg.threads, duration_s=cfg.throughput_s)
    time.sleep(cfg.settle_s)
    after = snapshot(run, proxy, authz)
    undecided = after.outcomes["error"] - before.outcomes["error"]
    # Throughput counts requests that got through *with* a decision: under overload Envoy
    # lets timed-out Checks pass (failure_mode_allow), which must not count as served.
    decided = max(0, w.requests - w.errors - undecided)
    return phase_result(
        "throughput", before, after, requests=w.requests, errors=w.errors,
        rps=decided / w.duration_s if w.duration_s else 0.0,
        percentiles=(w.p50_us, w.p99_us, w.p999_us), authz=authz,
        extra={"connections": cfg.connections, "threads": cfg.threads,
               "wrapped": w.wrapped, "duration_s": w.duration_s})


def _percentile(values: Any, q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if len(values) else float("nan")


# ---------------------------------------------------------------- scenarios


def run_scenario(run: Run, scenario: Scenario) -> ScenarioResult:
    cfg = run.cfg
    tuning = Tuning(envoy_concurrency=cfg.envoy_concurrency,
                    sidecar_workers=cfg.sidecar_workers, learn_delay_s=cfg.learn_delay_s,
                    max_telemetry_age_s=_MAX_AGE_S)
    if scenario.store == "redis" and run.redis_url is None:
        return ScenarioResult(scenario.name, scenario.label, skipped=run.redis_skip)
    loadavg = os.getloadavg()
    with contextlib.ExitStack() as stack:
        authz: AuthzServer | None = None
        if scenario.authz == "noop":
            authz = _scenarios.start_noop(run.workdir, cfg.sidecar_workers)
        elif scenario.authz == "bioshard":
            url = run.redis_url if scenario.store == "redis" else run.sqlite_url
            assert url is not None
            authz = _scenarios.start_bioshard(run.workdir, scenario, store_url=url,
                                              key_env=run.key_env, tuning=tuning)
        if authz is not None:
            stack.callback(authz.process.stop)
        proxy = _scenarios.start_proxy(
            run.workdir, scenario, upstream_port=run.upstream_port,
            authz_port=authz.grpc_port if authz else None,
            concurrency=cfg.envoy_concurrency)
        stack.callback(proxy.process.stop)
        # bioshard's warm-up touches every user once (a steady-state sidecar has them in
        # its profile cache); cold-start cost is reported separately (scoring cost).
        warmup_s = cfg.warmup_s
        if scenario.authz == "bioshard" and not cfg.smoke:
            warmup_s = max(warmup_s, cfg.users / WARMUP_USERS_PER_S)
        run_wrk(f"http://127.0.0.1:{proxy.http_port}{REQUEST_PATH}", run.pools["warmup"],
                connections=cfg.connections, threads=cfg.threads, duration_s=warmup_s)
        time.sleep(cfg.settle_s)
        latency = latency_phase(run, proxy, authz, cfg.rate)
        extra = [latency_phase(run, proxy, authz, rate) for rate in cfg.extra_rates]
        throughput = throughput_phase(run, proxy, authz)
        peak = _observe.memory_kib(authz.process.pid)[1] if authz else None
    return ScenarioResult(scenario.name, scenario.label, latency=latency,
                          latency_extra=extra,
                          throughput=throughput, peak_rss_kib=peak,
                          loadavg_before=loadavg)


def _latency_s(cfg: BenchConfig, rate: float) -> float:
    return cfg.latency_s if rate == cfg.rate else min(cfg.latency_s, EXTRA_LATENCY_S)


EXTRA_LATENCY_S: Final = 8.0
WARMUP_USERS_PER_S: Final = 250.0
"""bioshard warm-up length: users / this (the warm-up pool holds every user at least once)."""
_MAX_AGE_S: Final = 3600.0
"""The sidecar's telemetry max age in the benchmark: the request pools are generated once,
before the first scenario, so that every scenario sends the very same bytes."""


# ---------------------------------------------------------------- set-up


def prepare(cfg: BenchConfig, workdir: Path, stack: contextlib.ExitStack) -> Run:
    """Start the upstream (and Redis), enrol the users, write the request pools."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    upstream, upstream_port = _scenarios.start_upstream(workdir, cfg.envoy_concurrency)
    stack.callback(upstream.stop)
    key_env = generate_key_env()
    keys = load_keys(key_env)
    pseudonymizer = keys.pseudonymizer()
    needs_profiles = any(_scenarios.BY_NAME[n].authz == "bioshard" for n in cfg.scenarios)
    n_personas = max(1, min(cfg.personas, cfg.users))
    enrolled = _workload.build_profiles(n_personas if needs_profiles else 0)
    timings["enrol_s"] = enrolled.build_s

    sqlite_url = f"sqlite:///{workdir / 'profiles.db'}"
    if "bioshard-sqlite" in cfg.scenarios:
        store = open_store(sqlite_url, keys)
        try:
            timings["seed_sqlite_s"] = _workload.seed_store(store, pseudonymizer, cfg.users,
                                                            enrolled)
        finally:
            store.close()
    redis_url: str | None = None
    redis_skip: str | None = None
    if "bioshard-redis" in cfg.scenarios:
        redis_url, redis_skip = _start_and_seed_redis(workdir, stack, keys, pseudonymizer,
                                                      cfg.users, enrolled, timings)

    t1 = time.perf_counter()
    n = max(cfg.users, 1)
    bank = _workload.window_bank(n_personas)
    cost = _workload.scoring_cost(enrolled, bank) if len(enrolled) else None
    pools: dict[str, Path] = {}
    sizes = {"warmup": max(round(cfg.warmup_s * cfg.pool_rps), cfg.users),
             "throughput": round(cfg.throughput_s * cfg.pool_rps)}
    for seed, (name, count) in enumerate(sizes.items(), start=1):
        pools[name] = workdir / f"requests-{name}.tsv"
        write_requests(pools[name], _workload.telemetry_pool(n, count, bank, seed=seed))
    latency_pairs = {
        rate: list(_workload.telemetry_pool(n, round(rate * _latency_s(cfg, rate)), bank,
                                            seed=len(sizes) + 1 + i))
        for i, rate in enumerate((cfg.rate, *cfg.extra_rates))}
    timings["telemetry_pools_s"] = time.perf_counter() - t1
    scoring = dataclasses.asdict(cost) if cost is not None else {}
    timings["prepare_s"] = time.perf_counter() - t0
    return Run(cfg=cfg, workdir=workdir, upstream_pid=upstream.pid,
               upstream_port=upstream_port, key_env=key_env, enrolled=enrolled, pools=pools,
               latency_pairs=latency_pairs, sqlite_url=sqlite_url, redis_url=redis_url,
               redis_skip=redis_skip, timings=timings, scoring=scoring)


def _start_and_seed_redis(workdir: Path, stack: contextlib.ExitStack, keys: Keys,
                          pseudonymizer: Pseudonymizer, n_users: int,
                          enrolled: _workload.EnrolledPersonas,
                          timings: dict[str, float]) -> tuple[str | None, str | None]:
    """Start redis-server and seed it; ``(url, None)`` or ``(None, why it is skipped)``."""
    if _scenarios.redis_binary() is None:
        return None, "redis-server is not installed (apt-get install -y redis-server)"
    proc, url = _scenarios.start_redis(workdir)
    stack.callback(proc.stop)
    try:
        store = open_store(url, keys)
    except (ImportError, ValueError) as exc:
        return None, f"the Redis store is not available yet ({exc})"
    try:
        timings["seed_redis_s"] = _workload.seed_store(store, pseudonymizer, n_users, enrolled)
    finally:
        store.close()
    return url, None


# ---------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None) -> tuple[BenchConfig, Path, bool, bool]:
    d = BenchConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true",
                   help="a few seconds: scenarios 1-3, 200 users, no targets (CI)")
    p.add_argument("--scenarios", help="comma-separated subset of "
                   + ",".join(s.name for s in _scenarios.SCENARIOS))
    p.add_argument("--users", type=int, help=f"enrolled users ({d.users})")
    p.add_argument("--personas", type=int,
                   help=f"distinct enrolled behaviours the users share ({d.personas})")
    p.add_argument("--rate", type=float, help=f"open-loop rate, req/s ({d.rate:g})")
    p.add_argument("--extra-rates", type=_rates,
                   help="further open-loop rates, comma-separated ("
                        f"{','.join(f'{r:g}' for r in d.extra_rates)}; '' for none)")
    p.add_argument("--latency-s", type=float, help=f"open-loop duration ({d.latency_s:g})")
    p.add_argument("--throughput-s", type=float, help=f"wrk duration ({d.throughput_s:g})")
    p.add_argument("--warmup-s", type=float, help=f"wrk warm-up ({d.warmup_s:g})")
    p.add_argument("--connections", type=int, help=f"wrk connections ({d.connections})")
    p.add_argument("--threads", type=int, help=f"wrk threads ({d.threads})")
    p.add_argument("--envoy-concurrency", type=int,
                   help=f"Envoy worker threads, proxy and upstream ({d.envoy_concurrency})")
    p.add_argument("--sidecar-workers", type=int,
                   help=f"gRPC thread pool of bioshard and the no-op server "
                        f"({d.sidecar_workers})")
    p.add_argument("--learn-delay-s", type=float,
                   help=f"bioshard's learning delay ({d.learn_delay_s:g}; a value longer "
                        "than the run keeps learning out of the measurement)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="directory for the JSON and the PNG (bench/out)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument("--keep-workdir", action="store_true",
                   help="keep configs, logs and request files (path printed)")
    args = p.parse_args(argv)
    cfg = SMOKE if args.smoke else d
    changes: dict[str, Any] = {}
    for name in ("users", "personas", "rate", "latency_s", "throughput_s", "warmup_s",
                 "connections", "threads", "envoy_concurrency", "sidecar_workers",
                 "learn_delay_s", "extra_rates"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    if args.scenarios:
        names = tuple(s.strip() for s in args.scenarios.split(",") if s.strip())
        unknown = [n for n in names if n not in _scenarios.BY_NAME]
        if unknown:
            p.error(f"unknown scenario(s): {', '.join(unknown)}")
        changes["scenarios"] = names
    return dataclasses.replace(cfg, **changes), args.out, not args.no_plot, args.keep_workdir


def _rates(text: str) -> tuple[float, ...]:
    try:
        rates = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers, got {text!r}") from None
    if any(r <= 0 for r in rates):
        raise argparse.ArgumentTypeError("rates must be > 0")
    return rates


def machine_info() -> dict[str, Any]:
    from _load import wrk_binary

    from sidecar.procs import envoy_binary

    cpu = platform.processor()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import grpc

    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "grpcio": grpc.__version__, "kernel": platform.release(),
            "envoy": _version([envoy_binary(), "--version"]),
            "wrk": _version([wrk_binary(), "--version"]),
            "redis": _version(["redis-server", "--version"])}


def _version(argv: list[str]) -> str:
    import subprocess

    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except OSError:
        return "not installed"
    text = (proc.stdout or proc.stderr).strip().splitlines()
    return text[0].strip() if text else "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    cfg, out_dir, plot, keep = parse_args(argv)
    started = time.strftime("%Y%m%d-%H%M%S")
    workdir = Path(tempfile.mkdtemp(prefix="bioshard-bench-"))
    results: list[ScenarioResult] = []
    with contextlib.ExitStack() as stack:
        print(f"bioshard serving benchmark ({'smoke' if cfg.smoke else 'full'}): "
              f"{cfg.users} users, scenarios {', '.join(cfg.scenarios)}", flush=True)
        run = prepare(cfg, workdir, stack)
        print(f"  prepared in {run.timings['prepare_s']:.1f} s "
              f"({', '.join(f'{k} {v:.1f}' for k, v in run.timings.items())})", flush=True)
        for name in cfg.scenarios:
            scenario = _scenarios.BY_NAME[name]
            print(f"  running {scenario.label} ...", flush=True)
            result = run_scenario(run, scenario)
            results.append(result)
            print("    " + _report.one_line(result), flush=True)
    report = _report.build(cfg=dataclasses.asdict(cfg), machine=machine_info(),
                           timings=run.timings, scoring=run.scoring,
                           results=[dataclasses.asdict(r) for r in results],
                           started=started, command=" ".join([Path(sys.argv[0]).name,
                                                              *sys.argv[1:]]))
    print(_report.render_text(report))
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"serving-{started}.json"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {json_path}")
    if plot:
        png = _report.plot(report, out_dir / f"serving-{started}.png")
        print(f"wrote {png}")
    if keep:
        print(f"work directory kept: {workdir}")
    else:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
