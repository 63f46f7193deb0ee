"""``bioshard demo``: start the stack with the demo site, simulate traffic, show where it goes.

Order of events: start :class:`~sidecar.stack.Stack` (tier pools serving the demo site,
a real ``bioshard serve`` process, the real Envoy) → print the URLs → run the
:class:`~sidecar.demo.simulator.Simulator` while refreshing the live table (or a progress
line) → on Ctrl-C, SIGTERM or ``--duration``: stop the traffic, read the sidecar's
``/metrics`` and the IDS count, close the stack (no process left behind), read Envoy's
flushed access log, print the summary.  Nothing here picks a tier: every route comes from
the sidecar's decision through Envoy.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import signal
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Final, TextIO

from sidecar.demo.accesslog import AccessLogTail
from sidecar.demo.actors import Cast, build_cast
from sidecar.demo.client import EnvoyClient
from sidecar.demo.prom import Histogram, parse_check_histogram, parse_decisions
from sidecar.demo.simulator import Simulator, TrafficPlan
from sidecar.demo.site import SiteFiles, site_pool_factory
from sidecar.demo.summary import DemoSummary, Latency
from sidecar.demo.table import LiveScreen, LiveView, live_lines, progress_line, summary_lines
from sidecar.demo.tally import Tally
from sidecar.procs import ProcessError
from sidecar.stack import Stack, StackOptions
from sidecar.upstream import IDS_POOL

_PROGRESS_EVERY_S: Final = 5.0
_DEFAULT_LEARN_DELAY_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """The demo's knobs (the ``bioshard demo`` flags)."""

    duration_s: float | None = None
    users: int = 8
    impostors: int = 3
    bots: int = 2
    anonymous: int = 2
    rate_rps: float = 20.0
    enrol_windows: int = 30
    seed: int = 0
    traffic: bool = True
    workdir: Path | None = None
    live: bool = True
    quiet: bool = False
    json: bool = False
    learn_delay_s: float = _DEFAULT_LEARN_DELAY_S
    workers: int = 8
    refresh_s: float = 1.0
    files: SiteFiles = field(default_factory=SiteFiles)


class _Interrupted(BaseException):
    """A stop signal arrived while the stack was still starting."""


class _Stopper:
    """SIGINT/SIGTERM set an event; during start-up they abort it instead."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.by = "duration"
        self.starting = True

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if not self.event.is_set():
            self.by = signal.Signals(signum).name
        self.event.set()
        if self.starting:
            self.starting = False
            raise _Interrupted

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Install the handlers (main thread only) and restore the previous ones."""
        previous = {sig: signal.signal(sig, self) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run_demo(opts: DemoOptions, stdout: TextIO | None = None,
             stderr: TextIO | None = None) -> int:
    """Run the demo until a signal or ``duration_s``; returns the exit code.

    0 once the demo ran and stopped (signal or duration), 1 if the stack did not start,
    130 if a signal arrived while it was starting.  Human-readable output goes to
    ``stdout``, or to ``stderr`` with ``--json`` (then ``stdout`` holds only the JSON).
    """
    out = stdout or sys.stdout
    info = (stderr or sys.stderr) if opts.json else out
    workdir = opts.workdir or Path(tempfile.mkdtemp(prefix="bioshard-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = {"BIOSHARD_LEARN_DELAY_S": f"{opts.learn_delay_s:g}", "BIOSHARD_LEARN_INTERVAL_S": "0",
           "BIOSHARD_LOG_LEVEL": "INFO"}
    stack = Stack(StackOptions(workdir=workdir, sidecar_env=env,
                               admin_token=secrets.token_urlsafe(18),
                               pool_factory=site_pool_factory(opts.files)))
    stopper = _Stopper()
    with stopper.installed():
        try:
            _say(info, f"bioshard demo: starting Envoy, the sidecar and the pools in {workdir}")
            t_start = time.monotonic()
            stack.start()  # closes whatever it started if it fails or is interrupted
            stopper.starting = False
            startup_s = time.monotonic() - t_start
        except _Interrupted:
            stack.close()  # idempotent: the signal may have come just after start() returned
            _say(info, "bioshard demo: interrupted while starting; stopped")
            return 130
        except (ProcessError, TimeoutError, OSError) as exc:
            stack.close()
            _say(info, f"bioshard demo: the stack did not start: {exc}\n  logs in {workdir}")
            return 1
        finally:
            stopper.starting = False
        try:
            _say(info, "\n".join(_banner(stack, opts)))
            partial = _run(stack, opts, stopper, info)
        finally:
            stack.close()
        summary = _after_close(partial, stack, startup_s=startup_s,
                               stop_s=time.monotonic() - partial.stopping_at)
    _say(info, "\n".join(summary_lines(summary)))
    if opts.json:
        out.write(json.dumps(summary.to_json(), indent=2) + "\n")
        out.flush()
    return 0


def _say(stream: TextIO, text: str) -> None:
    stream.write(text + "\n")
    stream.flush()


def _banner(stack: Stack, opts: DemoOptions) -> list[str]:
    lines = [
        "",
        f"  site, plain       {stack.url('/')}",
        f"  site, TLS 1.3     {stack.url('/', tls=True)}   (self-signed: {stack.cert_path})",
        f"  sidecar admin     http://127.0.0.1:{stack.admin_port}/metrics   "
        f"/health/anomalydetection   /profiles/<user>",
        f"                    admin token (this run only): {stack.opts.admin_token}",
        f"  envoy admin       http://127.0.0.1:{stack.envoy_admin_port}/",
        f"  logs              {stack.workdir}/sidecar.log, {stack.workdir}/envoy.log "
        "(JSON access log: tier, reason, decision per request)",
        "",
        "  Try it: open the site, log in with any user name (e.g. alice) and type, move and",
        "  scroll; each /api/ping answer names the pool that served it.  Your first windows",
        "  are scored by the population model; once 5 windows per modality are learned, your",
        "  own profile scores you.  Learning waits "
        f"{opts.learn_delay_s:g} s after a window (BIOSHARD_LEARN_DELAY_S,",
        "  shortened for the demo; the production default is 30 s).",
    ]
    for note in opts.files.missing():
        lines.append(f"  NOTE: {note}")
    if opts.traffic:
        lines += ["", f"  Simulated traffic: {opts.users} genuine users (enrolling with "
                      f"{opts.enrol_windows} windows each), {opts.impostors} impostors on "
                      f"stolen sessions, {opts.bots} bots, {opts.anonymous} anonymous "
                      f"visitors at ~{opts.rate_rps:g} req/s, through Envoy."]
    stop = (f"after {opts.duration_s:g} s or on Ctrl-C" if opts.duration_s is not None
            else "on Ctrl-C")
    lines += [f"  Stops {stop}.", ""]
    return lines


@dataclass
class _Scrape:
    """The last good read of the sidecar's /metrics."""

    decisions: Counter[tuple[str, int]] = field(default_factory=Counter)
    check: Histogram = field(default_factory=lambda: Histogram((), ()))

    def refresh(self, stack: Stack) -> None:
        try:
            status, text = stack.admin("GET", "/metrics", token=None)
        except OSError:
            return
        if status == 200 and isinstance(text, str):
            self.decisions = parse_decisions(text)
            self.check = parse_check_histogram(text)


@dataclass
class _Partial:
    """What must be read before the stack closes; the summary is finished after."""

    opts: DemoOptions
    elapsed_s: float
    stopped_by: str
    tally: Tally
    tail: AccessLogTail
    scrape: _Scrape
    cast: Cast
    enrolled: int
    mixed_s: float
    skipped: int
    ids: int | None
    urls: dict[str, str]
    ports: list[int]
    stopping_at: float


def _run(stack: Stack, opts: DemoOptions, stopper: _Stopper, info: TextIO) -> _Partial:
    tally = Tally()
    tail = AccessLogTail(stack.workdir / "envoy.log")
    scrape = _Scrape()
    cast = build_cast(users=opts.users if opts.traffic else 0,
                      impostors=opts.impostors if opts.traffic else 0,
                      bots=opts.bots if opts.traffic else 0,
                      anonymous=opts.anonymous if opts.traffic else 0, seed=opts.seed)
    sim: Simulator | None = None
    if opts.traffic:
        client = EnvoyClient("127.0.0.1", stack.http_port, stack.https_port, stack.cert_path)
        plan = TrafficPlan(rate_rps=opts.rate_rps, enrol_windows=opts.enrol_windows,
                           workers=opts.workers)
        sim = Simulator(cast, client, tally, plan, seed=opts.seed,
                        learner_idle=lambda: _learner_idle(stack),
                        learn_delay_s=opts.learn_delay_s)
    screen = LiveScreen(info) if opts.live and not opts.quiet and info.isatty() else None
    t0 = time.monotonic()
    next_progress = _PROGRESS_EVERY_S
    announced_mixed = False
    if sim is not None:
        sim.start()
    try:
        while True:
            elapsed = time.monotonic() - t0
            wait = opts.refresh_s
            if opts.duration_s is not None:
                if elapsed >= opts.duration_s:
                    break
                wait = min(wait, opts.duration_s - elapsed)
            if stopper.event.wait(wait):
                break
            elapsed = time.monotonic() - t0
            scrape.refresh(stack)
            tally.attribute(tail.read())
            phase = sim.phase if sim is not None else "serving"
            if sim is not None and phase == "mixed" and not announced_mixed:
                announced_mixed = True
                if screen is None and not opts.quiet:
                    n = _enrolled_users(stack, cast)
                    _say(info, f"[{elapsed:6.1f}s] enrolment done: {n}/{len(cast.genuine)} "
                               "users enrolled; mixed traffic starts")
            view = LiveView(elapsed, phase, tally.snapshot(), scrape.decisions, scrape.check,
                            sim.skipped if sim is not None else 0)
            if screen is not None:
                screen.draw(live_lines(view))
            elif not opts.quiet and elapsed >= next_progress:
                next_progress += _PROGRESS_EVERY_S
                _say(info, progress_line(view))
    finally:
        stopping_at = time.monotonic()
        elapsed = stopping_at - t0
        if sim is not None:
            sim.stop()
    mixed_at = sim.phase_started.get("mixed") if sim is not None else None
    stopped_at = sim.phase_started.get("stopped", time.monotonic()) if sim else time.monotonic()
    scrape.refresh(stack)
    ids = stack.pools.get(IDS_POOL)
    return _Partial(
        opts=opts, elapsed_s=elapsed, stopped_by=stopper.by, tally=tally, tail=tail,
        scrape=scrape, cast=cast, enrolled=_enrolled_users(stack, cast),
        mixed_s=(stopped_at - mixed_at) if mixed_at is not None else 0.0,
        skipped=sim.skipped if sim is not None else 0,
        ids=ids.ids_summary()["count"] if ids is not None else None,
        urls={"plain": stack.url("/"), "tls": stack.url("/", tls=True),
              "sidecar_admin": f"http://127.0.0.1:{stack.admin_port}/",
              "envoy_admin": f"http://127.0.0.1:{stack.envoy_admin_port}/"},
        ports=_ports(stack), stopping_at=stopping_at)


def _after_close(p: _Partial, stack: Stack, *, startup_s: float, stop_s: float
                 ) -> DemoSummary:
    p.tally.attribute(p.tail.read())  # Envoy flushed its access log when it stopped
    snap = p.tally.snapshot()
    return DemoSummary(
        elapsed_s=p.elapsed_s, stopped_by=p.stopped_by, traffic=p.opts.traffic, tally=snap,
        decisions=p.scrape.decisions, check_latency=Latency.from_histogram(p.scrape.check),
        client_latency=Latency.from_samples(snap.latencies_s), enrolled_users=p.enrolled,
        genuine_users=len(p.cast.genuine), enrol_windows=p.opts.enrol_windows,
        learn_delay_s=p.opts.learn_delay_s, mixed_s=p.mixed_s, skipped=p.skipped,
        ids_mirrored=p.ids, workdir=str(stack.workdir),
        logs={"sidecar": str(stack.workdir / "sidecar.log"),
              "envoy": str(stack.workdir / "envoy.log")},
        urls=p.urls, ports=p.ports, startup_s=startup_s, stop_s=stop_s,
        accounts={a.name: a.user_id or "-" for a in p.cast.all()})


def _ports(stack: Stack) -> list[int]:
    ports = [stack.http_port, stack.envoy_admin_port, stack.grpc_port, stack.admin_port,
             *stack.pool_ports.values()]
    if stack.https_port is not None:
        ports.append(stack.https_port)
    return ports


def _learner_idle(stack: Stack) -> bool:
    try:
        status, health = stack.admin("GET", "/health/anomalydetection", token=None)
    except OSError:
        return False
    return status == 200 and isinstance(health, dict) and health.get("learner_pending") == 0


def _enrolled_users(stack: Stack, cast: Cast) -> int:
    """Genuine users whose every modality has its own (enrolled) model."""
    n = 0
    for actor in cast.genuine:
        if actor.user_id is None:
            continue
        try:
            path = "/profiles/" + urllib.parse.quote(actor.user_id, safe="")
            status, body = stack.admin("GET", path)
        except OSError:
            continue
        mods: Any = body.get("modalities") if isinstance(body, dict) else None
        if status == 200 and isinstance(mods, dict) and mods and all(
                isinstance(m, dict) and m.get("enrolled") for m in mods.values()):
            n += 1
    return n
