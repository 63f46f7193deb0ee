"""``bioshard admin …``: the operator's command line over the admin HTTP API.

The token comes from ``BIOSHARD_ADMIN_TOKEN`` (never a flag: flags end up in shell
history and ``ps``).  Every answer is printed as JSON; the exit code is 0 on 2xx, 1 on
a refusal from the API (4xx/5xx, with its message on stderr) and 2 when the API cannot
be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

DEFAULT_URL = "http://127.0.0.1:9002"


def request(base_url: str, method: str, path: str, *, body: Any = None,
            raw: bytes | None = None, token: str | None = None,
            timeout: float = 10.0) -> tuple[int, Any]:
    """One admin API call: ``(HTTP status, decoded JSON or text)``.

    ``body`` is sent as JSON, or ``raw`` as is.  An HTTP error status is returned, not
    raised; an unreachable API raises ``urllib.error.URLError`` / ``OSError``.
    """
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base_url.rstrip("/") + path, data=data, method=method)
    if token:
        req.add_header("authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, payload = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    text = payload.decode(errors="replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def _call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> int:
    try:
        status, answer = request(args.url, method, path, body=body,
                                 token=os.environ.get("BIOSHARD_ADMIN_TOKEN"),
                                 timeout=args.timeout)
    except (urllib.error.URLError, OSError) as exc:
        print(f"bioshard admin: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 2
    ok = 200 <= status < 300
    text = answer if isinstance(answer, str) else json.dumps(answer, indent=2)
    print(text, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def _quote(user: str) -> str:
    return urllib.parse.quote(user, safe="")


def _configure(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    scoring = {k: v for k, v in (("t1", args.t1), ("t2", args.t2)) if v is not None}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"bioshard admin configure: --set {item!r}: expected NAME=VALUE",
                  file=sys.stderr)
            return 2
        try:
            scoring[key] = json.loads(value)
        except ValueError:
            scoring[key] = value
    if scoring:
        body["scoring"] = scoring
    policy: dict[str, str] = {}
    for item in args.policy or []:
        reason, sep, action = item.partition("=")
        if not sep:
            print(f"bioshard admin configure: --policy {item!r}: expected REASON=ACTION",
                  file=sys.stderr)
            return 2
        policy[reason] = action
    if policy:
        body["policy"] = policy
    if args.tier3_action:
        body["tier3_action"] = args.tier3_action
    if not body:
        return _call(args, "GET", "/anomalydetection/configure")
    return _call(args, "POST", "/anomalydetection/configure", body)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("admin", help="operate a running sidecar through its admin API",
                       description="Talk to a running sidecar's admin API. The token is read "
                                   "from BIOSHARD_ADMIN_TOKEN.")
    p.add_argument("--url", default=os.environ.get("BIOSHARD_ADMIN_URL", DEFAULT_URL),
                   help=f"admin API base URL (default $BIOSHARD_ADMIN_URL or {DEFAULT_URL})")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer")
    a = p.add_subparsers(dest="admin_command", metavar="ACTION", required=True)

    h = a.add_parser("health", help="liveness and store reachability")
    h.set_defaults(func=lambda args: _call(args, "GET", "/health/anomalydetection"))

    show = a.add_parser("profile", help="show a user's profile summary (no feature values)")
    show.add_argument("user", help="the user id (pseudonymised by the sidecar)")
    show.set_defaults(func=lambda args: _call(args, "GET", f"/profiles/{_quote(args.user)}"))

    delete = a.add_parser("delete", help="delete a user's profile and everything derived")
    delete.add_argument("user", help="the user id")
    delete.set_defaults(func=lambda args: _call(args, "DELETE",
                                                f"/profiles/{_quote(args.user)}"))

    fb = a.add_parser("feedback", help="label a decision genuine (learn) or impostor (withdraw)")
    fb.add_argument("decision", help="decision id (x-bioshard-decision)")
    fb.add_argument("label", choices=["genuine", "impostor"], help="what the analyst found")
    fb.set_defaults(func=lambda args: _call(args, "POST", "/feedback",
                                            {"decision": args.decision, "label": args.label}))

    c = a.add_parser("configure", help="show (no options) or change thresholds and policy")
    c.add_argument("--t1", type=float, help="score threshold between tier 1 and tier 2")
    c.add_argument("--t2", type=float, help="score threshold between tier 2 and tier 3")
    c.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="any other scoring parameter (repeatable)")
    c.add_argument("--policy", action="append", metavar="REASON=ACTION",
                   help="tier for a reason code: 1, 2, 3, deny or score (repeatable)")
    c.add_argument("--tier3-action", choices=["route", "deny"],
                   help="route tier 3 to the sandbox, or deny with 403")
    c.set_defaults(func=_configure)

    m = a.add_parser("metrics", help="print the Prometheus metrics")
    m.set_defaults(func=lambda args: _call(args, "GET", "/metrics"))
