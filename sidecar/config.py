"""Settings: defaults, then an optional TOML file, then ``BIOSHARD_*`` variables, then flags.

Validated once, at start, into a frozen :class:`Settings`; every message names the
setting that is wrong (``BIOSHARD_T1`` / ``scoring.t1``) and never echoes a secret.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from sidecar.reasons import Reason
from sidecar.scoring import ScoringParams
from sidecar.tiers import EXT_AUTHZ_TIMEOUT_MS, SIDECAR_DEADLINE_MS

# Named defaults (STYLE.md: "config validated once").
DEFAULT_LISTEN: Final = "127.0.0.1:9001"
DEFAULT_ADMIN_LISTEN: Final = "127.0.0.1:9002"
DEFAULT_STORE: Final = "sqlite:///bioshard-data/profiles.db"
DEFAULT_IDENTITY_HEADER: Final = "x-user-id"
DEFAULT_DEADLINE_MS: Final = SIDECAR_DEADLINE_MS
DEFAULT_ENVOY_TIMEOUT_MS: Final = EXT_AUTHZ_TIMEOUT_MS

Action = int | str  # 1 | 2 | 3 | "deny" | "score"

#: What each non-``ok`` reason does by default.  ``"score"`` = the tier the score
#: gives; 1–3 = that tier; ``"deny"`` = Envoy answers 403 (400 for bad telemetry).
DEFAULT_POLICY: Final[Mapping[Reason, Action]] = {
    Reason.OK: "score",
    Reason.ENROLLING: "score",
    Reason.SCRIPTED_INPUT: 3,
    Reason.NO_IDENTITY: "score",
    Reason.NO_TELEMETRY: 2,
    Reason.INSUFFICIENT_TELEMETRY: 2,
    Reason.BAD_TELEMETRY: 3,
    Reason.REPLAYED_TELEMETRY: 3,
    Reason.STORE_UNAVAILABLE: 2,
    Reason.DEADLINE: 2,
    Reason.INTERNAL_ERROR: 2,
}
#: Reasons that come with a score, so that ``"score"`` makes sense for them.
SCORED_REASONS: Final = frozenset(
    {Reason.OK, Reason.ENROLLING, Reason.SCRIPTED_INPUT, Reason.NO_IDENTITY})


class ConfigError(ValueError):
    """A setting is invalid; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    listen: str = DEFAULT_LISTEN
    admin_listen: str = DEFAULT_ADMIN_LISTEN
    store: str = DEFAULT_STORE
    identity_header: str = DEFAULT_IDENTITY_HEADER
    jwt_payload_key: str = "jwt_payload"
    jwt_claim: str = "sub"
    deadline_ms: int = DEFAULT_DEADLINE_MS
    envoy_timeout_ms: int = DEFAULT_ENVOY_TIMEOUT_MS
    max_telemetry_age_s: float = 300.0
    max_clock_skew_s: float = 60.0
    learn_delay_s: float = 30.0
    learn_interval_s: float = 60.0
    learn_strict_after: int = 20
    learn_worker: bool = True
    workers: int = 4
    cache_size: int = 100_000
    cache_ttl_s: float = 30.0
    gc_full_interval_s: float = 0.0
    replay_sessions: int = 200_000
    tier3_action: str = "route"
    log_level: str = "INFO"
    policy: Mapping[Reason, Action] = field(default_factory=lambda: dict(DEFAULT_POLICY))
    scoring: ScoringParams = field(default_factory=ScoringParams)
    admin_token: str | None = field(default=None, repr=False)
    dev: bool = False

    def action(self, reason: Reason) -> Action:
        return self.policy[reason]


_INT_FIELDS: Final = {"deadline_ms", "envoy_timeout_ms", "workers", "cache_size",
                      "replay_sessions", "learn_strict_after"}
_FLOAT_FIELDS: Final = {"max_telemetry_age_s", "max_clock_skew_s", "learn_delay_s",
                        "learn_interval_s", "cache_ttl_s", "gc_full_interval_s"}
_STR_FIELDS: Final = {"listen", "admin_listen", "store", "identity_header", "jwt_payload_key",
                      "jwt_claim", "tier3_action", "log_level", "admin_token"}
_BOOL_FIELDS: Final = {"dev", "learn_worker"}
_HOSTPORT: Final = re.compile(r"^(?:\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


def _parse_scalar(name: str, where: str, value: object, kind: type) -> Any:
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in {"1", "true", "yes", "on"}:
                return True
            if s in {"0", "false", "no", "off"}:
                return False
            raise ValueError
        if kind is int:
            if isinstance(value, bool):
                raise ValueError
            return int(str(value).strip())
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            return float(str(value).strip())
        return str(value)
    except ValueError:
        raise ConfigError(f"{where}: expected {kind.__name__}") from None


def _kind(name: str) -> type:
    if name in _INT_FIELDS:
        return int
    if name in _FLOAT_FIELDS:
        return float
    if name in _BOOL_FIELDS:
        return bool
    return str


def _parse_action(where: str, value: object) -> Action:
    s = str(value).strip().lower()
    if s in {"1", "2", "3"}:
        return int(s)
    if s in {"deny", "score"}:
        return s
    raise ConfigError(f"{where}: expected 1, 2, 3, 'deny' or 'score'")


def _scoring_value(where: str, current: object, value: object) -> object:
    if isinstance(current, bool):
        return _parse_scalar(where, where, value, bool)
    if isinstance(current, int):
        return _parse_scalar(where, where, value, int)
    if isinstance(current, float):
        return _parse_scalar(where, where, value, float)
    return value


def load_settings(
    *,
    env: Mapping[str, str],
    config_file: str | Path | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Settings:
    """Build and validate :class:`Settings` from a TOML file, the environment and flags."""
    values: dict[str, Any] = {}
    policy: dict[Reason, Action] = dict(DEFAULT_POLICY)
    scoring_over: dict[str, tuple[str, object]] = {}
    defaults = ScoringParams()
    scoring_names = {f.name for f in dataclasses.fields(ScoringParams)}
    known = {f.name for f in dataclasses.fields(Settings)} - {"policy", "scoring"}

    path = config_file or env.get("BIOSHARD_CONFIG")
    if path:
        try:
            doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"BIOSHARD_CONFIG: cannot read {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"BIOSHARD_CONFIG: {path} is not valid TOML: {exc}") from None
        for key, val in doc.items():
            if key == "policy" and isinstance(val, dict):
                for rk, rv in val.items():
                    policy[_reason(f"policy.{rk}", rk)] = _parse_action(f"policy.{rk}", rv)
            elif key == "scoring" and isinstance(val, dict):
                for sk, sv in val.items():
                    if sk not in scoring_names:
                        raise ConfigError(f"scoring.{sk}: unknown setting")
                    scoring_over[sk] = (f"scoring.{sk}", sv)
            elif key in known:
                values[key] = _parse_scalar(key, key, val, _kind(key))
            else:
                raise ConfigError(f"{key}: unknown setting in {path}")

    for var, raw in env.items():
        if not var.startswith("BIOSHARD_") or var in _NOT_SETTINGS:
            continue
        name = var[len("BIOSHARD_"):].lower()
        if name.startswith("policy_"):
            rk = name[len("policy_"):]
            policy[_reason(var, rk)] = _parse_action(var, raw)
        elif name.startswith("scoring_"):
            sk = name[len("scoring_"):]
            if sk not in scoring_names:
                raise ConfigError(f"{var}: unknown scoring setting")
            scoring_over[sk] = (var, raw)
        elif name in known:
            values[name] = _parse_scalar(name, var, raw, _kind(name))
        else:
            raise ConfigError(f"{var}: unknown setting")

    for key, val in (overrides or {}).items():
        if val is None:
            continue
        if key.startswith("scoring."):
            scoring_over[key[len("scoring."):]] = (f"--{key}", val)
        elif key in known:
            values[key] = _parse_scalar(key, f"--{key.replace('_', '-')}", val, _kind(key))
        else:
            raise ConfigError(f"--{key}: unknown setting")

    scoring_kwargs: dict[str, object] = {}
    for sk, (where, sv) in scoring_over.items():
        scoring_kwargs[sk] = _scoring_value(where, getattr(defaults, sk), sv)
    try:
        scoring = dataclasses.replace(defaults, **scoring_kwargs)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        names = ", ".join(scoring_over[k][0] for k in scoring_kwargs) or "scoring"
        raise ConfigError(f"{names}: {exc}") from None

    settings = Settings(**values, policy=policy, scoring=scoring)
    validate(settings)
    return settings


_NOT_SETTINGS: Final = frozenset({
    "BIOSHARD_CONFIG", "BIOSHARD_PSEUDONYM_KEY", "BIOSHARD_PSEUDONYM_KEY_FILE",
    "BIOSHARD_ENCRYPTION_KEYS", "BIOSHARD_ENCRYPTION_KEYS_FILE",
})


def _reason(where: str, name: str) -> Reason:
    try:
        return Reason(name.lower())
    except ValueError:
        raise ConfigError(f"{where}: unknown reason code {name!r}") from None


def validate(s: Settings) -> None:
    """Reject conflicting or out-of-range settings with a message naming the field."""
    for name in ("listen", "admin_listen"):
        v = getattr(s, name)
        m = _HOSTPORT.match(v)
        if not m or not 0 < int(m.group(1)) < 65536:
            raise ConfigError(f"{name}: expected host:port, got {v!r}")
    if not s.store.startswith(("sqlite://", "redis://", "redis+cluster://", "rediss://",
                               "rediss+cluster://")):
        raise ConfigError("store: expected sqlite:///path, redis://host:port or "
                          "redis+cluster://host:port,...")
    if s.identity_header and not re.fullmatch(r"[a-z0-9-]+", s.identity_header):
        raise ConfigError("identity_header: a lower-case HTTP header name")
    if not 1 <= s.deadline_ms <= 10_000:
        raise ConfigError("deadline_ms: must be between 1 and 10000")
    if s.deadline_ms >= s.envoy_timeout_ms:
        raise ConfigError(
            f"deadline_ms ({s.deadline_ms}) must be below envoy_timeout_ms "
            f"({s.envoy_timeout_ms}) so that the sidecar answers before Envoy gives up")
    for name in ("max_telemetry_age_s", "max_clock_skew_s", "cache_ttl_s"):
        if getattr(s, name) <= 0:
            raise ConfigError(f"{name}: must be positive")
    if s.learn_delay_s < 0:
        raise ConfigError("learn_delay_s: must be zero or positive")
    if s.learn_strict_after < 0:
        raise ConfigError("learn_strict_after: must be zero or positive")
    if s.learn_interval_s < 0:
        raise ConfigError("learn_interval_s: must be zero or positive")
    if not (math.isfinite(s.gc_full_interval_s) and s.gc_full_interval_s >= 0):
        raise ConfigError("gc_full_interval_s: must be zero (no full collections) or a "
                          "finite positive number of seconds")
    if not 1 <= s.workers <= 256:
        raise ConfigError("workers: must be between 1 and 256")
    if s.cache_size < 0 or s.replay_sessions < 1:
        raise ConfigError("cache_size/replay_sessions: out of range")
    if s.tier3_action not in {"route", "deny"}:
        raise ConfigError("tier3_action: expected 'route' or 'deny'")
    if s.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError("log_level: expected DEBUG, INFO, WARNING or ERROR")
    for reason, action in s.policy.items():
        if action == "score" and reason not in SCORED_REASONS:
            raise ConfigError(f"policy.{reason.value}: 'score' is only valid for "
                              f"{', '.join(sorted(r.value for r in SCORED_REASONS))}")
    if s.admin_token is not None and len(s.admin_token) < 16:
        raise ConfigError("admin_token: must be at least 16 characters")
