"""Admin HTTP API (same process, separate port): profiles, feedback, tuning, health, metrics.

Every endpoint except ``/health/anomalydetection``, ``/metrics`` and the OpenAPI
document needs ``Authorization: Bearer <BIOSHARD_ADMIN_TOKEN>``; without a configured
token those endpoints answer 503 with a message saying so.  Errors are JSON
``{"error": "..."}`` with a status that says what happened.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sidecar.config import ConfigError, Settings, _parse_action, _reason, validate
from sidecar.pipeline import Pipeline
from sidecar.scoring import Profile
from sidecar.store.base import StoreUnavailable

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "bioshard admin API", "version": "1"},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "paths": {
        "/health/anomalydetection": {"get": {
            "summary": "Liveness and store reachability", "security": [],
            "responses": {"200": {"description": "healthy"},
                          "503": {"description": "store unreachable"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "security": [],
                             "responses": {"200": {"description": "text format"}}}},
        "/profiles/{user_id}": {
            "parameters": [{"name": "user_id", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "get": {"summary": "Profile summary (no feature values)", "security": [{"bearer": []}],
                    "responses": {"200": {"description": "summary"},
                                  "404": {"description": "no profile"}}},
            "delete": {"summary": "Delete the profile and everything derived from it",
                       "security": [{"bearer": []}],
                       "responses": {"200": {"description": "deleted"},
                                     "404": {"description": "no profile"}}}},
        "/feedback": {"post": {
            "summary": "Label a decision genuine (learn it) or impostor (never learn it)",
            "security": [{"bearer": []}],
            "requestBody": {"content": {"application/json": {"schema": {
                "type": "object", "required": ["decision", "label"],
                "properties": {"decision": {"type": "string"},
                               "label": {"enum": ["genuine", "impostor"]}}}}}},
            "responses": {"200": {"description": "applied"},
                          "404": {"description": "unknown or expired decision"}}}},
        "/anomalydetection/configure": {
            "get": {"summary": "Current thresholds and policy", "security": [{"bearer": []}],
                    "responses": {"200": {"description": "settings"}}},
            "post": {"summary": "Change thresholds (scoring.*), policy and tier3_action",
                     "security": [{"bearer": []}],
                     "requestBody": {"content": {"application/json": {"schema": {
                         "type": "object", "properties": {
                             "scoring": {"type": "object"}, "policy": {"type": "object"},
                             "tier3_action": {"enum": ["route", "deny"]}}}}}},
                     "responses": {"200": {"description": "applied"},
                                   "400": {"description": "invalid; message names the field"}}}},
    },
}


class _HTTPError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def public_settings(s: Settings) -> dict[str, Any]:
    return {
        "scoring": dataclasses.asdict(s.scoring),
        "policy": {r.value: a for r, a in s.policy.items()},
        "tier3_action": s.tier3_action,
        "deadline_ms": s.deadline_ms,
        "learn_delay_s": s.learn_delay_s,
        "identity_header": s.identity_header,
    }


def apply_configuration(s: Settings, body: dict[str, Any]) -> Settings:
    """Return new validated settings with ``body``'s changes; ConfigError names the field."""
    unknown = set(body) - {"scoring", "policy", "tier3_action"}
    if unknown:
        raise ConfigError(f"{sorted(unknown)[0]}: not tunable at run time")
    scoring = s.scoring
    if "scoring" in body:
        if not isinstance(body["scoring"], dict):
            raise ConfigError("scoring: expected an object")
        names = {f.name for f in dataclasses.fields(scoring)}
        for k in body["scoring"]:
            if k not in names:
                raise ConfigError(f"scoring.{k}: unknown setting")
        try:
            scoring = dataclasses.replace(scoring, **body["scoring"])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"scoring: {exc}") from None
    policy = dict(s.policy)
    if "policy" in body:
        if not isinstance(body["policy"], dict):
            raise ConfigError("policy: expected an object")
        for k, v in body["policy"].items():
            policy[_reason(f"policy.{k}", k)] = _parse_action(f"policy.{k}", v)
    new = dataclasses.replace(s, scoring=scoring, policy=policy,
                              tier3_action=body.get("tier3_action", s.tier3_action))
    validate(new)
    return new


def profile_summary(p: Profile, enroll_windows: int) -> dict[str, Any]:
    """What an operator may see: counts and states, never feature values."""
    return {
        "modalities": {
            name: {"windows_learned": m.n_seen_, "components": len(m.components_),
                   "enrolled": m.n_seen_ >= enroll_windows}
            for name, m in p.models.items()},
        "score_history": len(p.history),
        "created_ms": p.created_ms,
        "updated_ms": p.updated_ms,
    }


class _Handler(BaseHTTPRequestHandler):
    server_version = "bioshard-admin"
    pipeline: Pipeline
    token: str | None

    def log_message(self, format: str, *args: Any) -> None:  # paths hold user ids: debug only
        log.debug("admin %s", format % args)

    # -- plumbing -------------------------------------------------------------------
    def _send(self, status: HTTPStatus, body: Any, ctype: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        self.send_header("cache-control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _auth(self) -> None:
        if self.token is None:
            raise _HTTPError(HTTPStatus.SERVICE_UNAVAILABLE,
                             "admin API disabled: set BIOSHARD_ADMIN_TOKEN")
        got = self.headers.get("authorization", "")
        if not got.startswith("Bearer ") or not hmac.compare_digest(
                got[len("Bearer "):].encode(), self.token.encode()):
            raise _HTTPError(HTTPStatus.UNAUTHORIZED, "missing or wrong admin token")

    def _json_body(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("content-length", "0"))
        except ValueError:
            raise _HTTPError(HTTPStatus.BAD_REQUEST, "bad content-length") from None
        if length > MAX_BODY:
            raise _HTTPError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body over 64 KiB")
        try:
            doc = json.loads(self.rfile.read(length) or b"null")
        except (ValueError, UnicodeDecodeError):
            raise _HTTPError(HTTPStatus.BAD_REQUEST, "body is not valid JSON") from None
        if not isinstance(doc, dict):
            raise _HTTPError(HTTPStatus.BAD_REQUEST, "body must be a JSON object")
        return doc

    def _route(self, method: str) -> None:
        path = urllib.parse.urlsplit(self.path).path
        try:
            if method == "GET" and path == "/health/anomalydetection":
                return self._health()
            if method == "GET" and path == "/metrics":
                return self._send(HTTPStatus.OK, self.pipeline.metrics.render(),
                                  "text/plain; version=0.0.4")
            if method == "GET" and path in ("/openapi.json", "/docs"):
                return self._send(HTTPStatus.OK, OPENAPI)
            if path.startswith("/profiles/") and method in ("GET", "DELETE"):
                self._auth()
                user = urllib.parse.unquote(path[len("/profiles/"):])
                if not user or len(user) > 512:
                    raise _HTTPError(HTTPStatus.BAD_REQUEST, "user id missing or too long")
                return self._profile_get(user) if method == "GET" else self._profile_delete(user)
            if path == "/feedback" and method == "POST":
                self._auth()
                return self._feedback(self._json_body())
            if path == "/anomalydetection/configure" and method in ("GET", "POST"):
                self._auth()
                if method == "GET":
                    return self._send(HTTPStatus.OK, public_settings(self.pipeline.settings))
                return self._configure(self._json_body())
            known = path in ("/feedback", "/anomalydetection/configure") or \
                path.startswith("/profiles/")
            raise _HTTPError(HTTPStatus.METHOD_NOT_ALLOWED if known else HTTPStatus.NOT_FOUND,
                             f"{method} {'not allowed here' if known else 'unknown path'}")
        except _HTTPError as exc:
            self._send(exc.status, {"error": exc.message})
        except StoreUnavailable:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "profile store unavailable"})
        except Exception:
            log.exception("admin handler failed")
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"})

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def do_PUT(self) -> None:
        self._route("PUT")

    # -- endpoints ------------------------------------------------------------------
    def _health(self) -> None:
        p = self.pipeline
        try:
            store_ok = p.store.ping()
        except Exception:
            store_ok = False
        body = {"status": "ok" if store_ok else "degraded", "store": store_ok,
                "learner_pending": p.learner.pending, "profiles_cached": len(p.cache),
                "learner": {"applied": p.learner.applied, "failures": p.learner.failures,
                            "worker_pid": p.learner.worker_pid,
                            "worker_restarts": p.learner.worker_restarts}}
        self._send(HTTPStatus.OK if store_ok else HTTPStatus.SERVICE_UNAVAILABLE, body)

    def _profile_get(self, user: str) -> None:
        p = self.pipeline
        raw = p.store.get(p.pseudonym(user))
        if raw is None:
            raise _HTTPError(HTTPStatus.NOT_FOUND, "no profile for this user")
        s = p.settings.scoring
        self._send(HTTPStatus.OK, profile_summary(Profile.from_bytes(raw, s), s.enroll_windows))

    def _profile_delete(self, user: str) -> None:
        p = self.pipeline
        pseudonym = p.pseudonym(user)
        pending = p.learner.forget_user(pseudonym)
        sessions = p.replay.forget_owner(pseudonym)
        existed = p.store.delete(pseudonym)
        p.cache.invalidate(pseudonym)
        log.info("profile deleted by admin request")
        if not existed and not pending:
            raise _HTTPError(HTTPStatus.NOT_FOUND, "no profile for this user")
        self._send(HTTPStatus.OK, {"deleted": existed, "pending_windows_dropped": pending,
                                   "sessions_forgotten": sessions})

    def _feedback(self, body: dict[str, Any]) -> None:
        decision, label = body.get("decision"), body.get("label")
        if not isinstance(decision, str) or not decision:
            raise _HTTPError(HTTPStatus.BAD_REQUEST, "decision: a decision id string is required")
        if label not in ("genuine", "impostor"):
            raise _HTTPError(HTTPStatus.BAD_REQUEST, "label: expected 'genuine' or 'impostor'")
        learner = self.pipeline.learner
        if learner.lookup(decision) is None:
            raise _HTTPError(HTTPStatus.NOT_FOUND, "decision unknown or too old for feedback")
        if label == "impostor":
            self._send(HTTPStatus.OK, {"decision": decision, "label": label,
                                       "withdrawn": learner.withdraw(decision)})
        else:
            self._send(HTTPStatus.OK, {"decision": decision, "label": label,
                                       "queued": learner.confirm(decision)})

    def _configure(self, body: dict[str, Any]) -> None:
        try:
            new = apply_configuration(self.pipeline.settings, body)
        except ConfigError as exc:
            raise _HTTPError(HTTPStatus.BAD_REQUEST, str(exc)) from None
        self.pipeline.reconfigure(new)
        log.info("configuration changed through the admin API")
        self._send(HTTPStatus.OK, public_settings(new))


class AdminServer:
    def __init__(self, settings: Settings, pipeline: Pipeline) -> None:
        host, _, port = settings.admin_listen.rpartition(":")
        handler = type("Handler", (_Handler,), {"pipeline": pipeline,
                                                "token": settings.admin_token})
        self.httpd = ThreadingHTTPServer((host.strip("[]"), int(port)), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="bioshard-admin",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
