"""``bioshard`` command line: serve, demo, envoy-config, replay, eval, keys, admin."""

from __future__ import annotations

import os

# One BLAS thread: the scorer's matrices are tiny, and a threaded BLAS on a busy 2-core
# box measured up to 22 ms for a 31x31 operation.  Must be set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import dataclasses
import logging
import sys
import tempfile
from collections.abc import Callable, Sequence

from sidecar import __version__

log = logging.getLogger("sidecar")

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve", help="run the ext_authz gRPC server (and the admin HTTP API)",
        description="Run the ext_authz gRPC server. Settings come from --config (TOML), then "
                    "BIOSHARD_* environment variables, then these flags. Keys come from "
                    "BIOSHARD_PSEUDONYM_KEY(_FILE) and BIOSHARD_ENCRYPTION_KEYS(_FILE).")
    p.add_argument("--config", metavar="FILE", help="TOML settings file (or BIOSHARD_CONFIG)")
    p.add_argument("--listen", metavar="HOST:PORT", help="gRPC address (default 127.0.0.1:9001)")
    p.add_argument("--admin-listen", metavar="HOST:PORT",
                   help="admin HTTP address (default 127.0.0.1:9002)")
    p.add_argument("--store", metavar="URL",
                   help="profile store: sqlite:///path (default), redis://host:port/db, "
                        "redis+cluster://host:port,...")
    p.add_argument("--identity-header", metavar="NAME",
                   help="request header carrying the user id (default x-user-id; '' disables)")
    p.add_argument("--deadline-ms", type=int, metavar="MS",
                   help="the sidecar's own deadline per Check, below Envoy's timeout (150)")
    p.add_argument("--learn-delay-s", type=float, metavar="S",
                   help="delay before a normal window is learned, so feedback can withdraw it (30)")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="log level (INFO never logs user ids, features or telemetry)")
    p.add_argument("--dev", action="store_true",
                   help="generate throwaway keys and a temporary store (NEVER in production)")
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from sidecar.config import ConfigError, load_settings
    from sidecar.crypto import WeakKeyError, generate_dev_keys, load_keys
    from sidecar.pipeline import Pipeline
    from sidecar.server import Sidecar
    from sidecar.store import open_store

    overrides = {"listen": args.listen, "admin_listen": args.admin_listen, "store": args.store,
                 "identity_header": args.identity_header, "deadline_ms": args.deadline_ms,
                 "learn_delay_s": args.learn_delay_s, "log_level": args.log_level,
                 "dev": True if args.dev else None}
    try:
        settings = load_settings(env=os.environ, config_file=args.config, overrides=overrides)
    except ConfigError as exc:
        print(f"bioshard serve: invalid setting: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.dev:
        keys = generate_dev_keys()
        store = settings.store
        if args.store is None and "BIOSHARD_STORE" not in os.environ:
            store = f"sqlite:///{tempfile.mkdtemp(prefix='bioshard-dev-')}/profiles.db"
        settings = dataclasses.replace(settings, store=store)
        banner = "!" * 72
        log.warning("%s", banner)
        log.warning("DEV MODE: throwaway keys were generated; profiles in %s are unreadable "
                    "after this process ends. Never use --dev in production.",
                    store.removeprefix("sqlite:///"))
        log.warning("%s", banner)
    else:
        try:
            keys = load_keys(os.environ)
        except WeakKeyError as exc:
            print(f"bioshard serve: refusing to start: {exc}\n"
                  "  generate keys with `bioshard keys generate`, or use --dev for throwaway "
                  "ones", file=sys.stderr)
            return 2
    try:
        store_obj = open_store(settings.store, keys.keyring)
    except Exception as exc:
        print(f"bioshard serve: store: {exc}", file=sys.stderr)
        return 2
    from sidecar.crypto import Pseudonymizer
    pipeline = Pipeline(settings, pseudonymizer=Pseudonymizer(keys.pseudonym_key), store=store_obj)
    try:
        sidecar = Sidecar(settings, pipeline)
    except OSError as exc:
        print(f"bioshard serve: {exc}", file=sys.stderr)
        return 2
    sidecar.serve_forever()
    return 0


#: Commands contributed by other modules: each has ``add_parser(subparsers)``.
_COMMAND_MODULES = (
    "sidecar.demo.cli",
    "sidecar.envoy_config",
    "sidecar.replay_cmd",
    "sidecar.eval.cli",
    "sidecar.crypto",
    "sidecar.admin_cli",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="bioshard",
        description="Envoy ext_authz sidecar that routes each request to a tier pool by how "
                    "its user behaves.")
    parser.add_argument("--version", action="version", version=f"bioshard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_serve(sub)
    for module in _COMMAND_MODULES:
        register: Register = importlib.import_module(module).add_parser
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
