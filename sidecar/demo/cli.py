"""The ``bioshard demo`` sub-command (``make demo``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sidecar.demo.site import DEFAULT_DEMO_DIR, DEFAULT_DIST_DIR


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``demo`` on the ``bioshard`` command line."""
    p = subparsers.add_parser(
        "demo", help="start Envoy, the sidecar, three tier pools and simulated traffic",
        description="Start the whole stack on free local ports (tier pools serving the "
                    "collector's demo page, a real `bioshard serve`, the real Envoy with a "
                    "plain and a TLS 1.3 listener), simulate genuine users, impostors, bots "
                    "and anonymous visitors through Envoy, and show live where each kind of "
                    "traffic is routed.  Stops on Ctrl-C, SIGTERM or --duration and prints "
                    "a summary.")
    p.add_argument("--duration", type=_positive_float, metavar="S", default=None,
                   help="stop after S seconds of traffic, enrolment included "
                        "(default: run until Ctrl-C)")
    p.add_argument("--users", type=_count, default=8, metavar="N",
                   help="genuine users, each enrolled first (default 8)")
    p.add_argument("--impostors", type=_count, default=3, metavar="N",
                   help="impostors on stolen sessions of genuine users; every other one "
                        "also replays captured windows (default 3)")
    p.add_argument("--bots", type=_count, default=2, metavar="N",
                   help="scripted clients (constant keys / straight mouse), on new or "
                        "stolen accounts (default 2)")
    p.add_argument("--anonymous", type=_count, default=2, metavar="N",
                   help="anonymous human visitors without a user id (default 2)")
    p.add_argument("--rate", type=_positive_float, default=20.0, metavar="R",
                   help="requests per second overall in the mixed phase (default 20)")
    p.add_argument("--enrol-windows", type=_count, default=30, metavar="N",
                   help="windows each genuine user sends to enrol (default 30)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the personas and the traffic mix (default 0)")
    p.add_argument("--workers", type=_at_least_one, default=8, metavar="N",
                   help="client threads, also the bound on requests in flight (default 8)")
    p.add_argument("--learn-delay", type=_non_negative_float, default=1.0, metavar="S",
                   help="the sidecar's learn delay for the demo (default 1; production 30)")
    p.add_argument("--no-traffic", action="store_true",
                   help="no simulated traffic: only serve the page for a human to try")
    p.add_argument("--workdir", type=Path, default=None, metavar="DIR",
                   help="work directory: profile store, Envoy config, TLS certificate, logs "
                        "(default: a new temporary directory, kept afterwards)")
    p.add_argument("--site-dir", type=Path, default=DEFAULT_DEMO_DIR, metavar="DIR",
                   help=f"demo page directory (default {DEFAULT_DEMO_DIR})")
    p.add_argument("--collector-dir", type=Path, default=DEFAULT_DIST_DIR, metavar="DIR",
                   help=f"built collector bundle served under /collector/ "
                        f"(default {DEFAULT_DIST_DIR})")
    p.add_argument("--no-live", action="store_true",
                   help="no live table: a plain progress line every 5 s (for CI and logs)")
    p.add_argument("--quiet", action="store_true",
                   help="no live table and no progress lines; only the URLs and the summary")
    p.add_argument("--json", action="store_true",
                   help="print the summary as JSON on stdout (everything else goes to stderr)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from sidecar.demo.run import DemoOptions, run_demo
    from sidecar.demo.site import SiteFiles

    opts = DemoOptions(
        duration_s=args.duration, users=args.users, impostors=args.impostors, bots=args.bots,
        anonymous=args.anonymous, rate_rps=args.rate, enrol_windows=args.enrol_windows,
        seed=args.seed, traffic=not args.no_traffic, workdir=args.workdir,
        live=not args.no_live, quiet=args.quiet, json=args.json,
        learn_delay_s=args.learn_delay, workers=args.workers,
        files=SiteFiles(demo_dir=args.site_dir, dist_dir=args.collector_dir))
    return run_demo(opts)
