"""Stable reason codes.

The same string labels the decision (dynamic metadata ``reason``), the log line and
the metric.  Never rename one: dashboards and policies depend on them.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    OK = "ok"
    """Scored against the user's own profile."""
    ENROLLING = "enrolling"
    """The user has too few learned windows; the population model scored the request."""
    SCRIPTED_INPUT = "scripted_input"
    """The behaviour is machine-like (constant key timings, straight constant-speed mouse)."""
    NO_IDENTITY = "no_identity"
    """No user id in the configured header nor in the JWT metadata (anonymous traffic)."""
    NO_TELEMETRY = "no_telemetry"
    """Neither the telemetry header nor the cookie was present."""
    INSUFFICIENT_TELEMETRY = "insufficient_telemetry"
    """Telemetry was valid but no modality had enough events to score."""
    BAD_TELEMETRY = "bad_telemetry"
    """Telemetry was malformed, oversized, a deflate bomb, non-finite, or of an unknown version."""
    REPLAYED_TELEMETRY = "replayed_telemetry"
    """A (sid, seq) seen before, a window too old, or a session's window on another user."""
    STORE_UNAVAILABLE = "store_unavailable"
    """The profile store could not be read."""
    DEADLINE = "deadline"
    """The sidecar's own deadline expired before the profile could be loaded."""
    INTERNAL_ERROR = "internal_error"
    """A bug: logged with a traceback, answered with the configured tier."""


ALL_REASONS: tuple[str, ...] = tuple(r.value for r in Reason)
