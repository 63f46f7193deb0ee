"""Settings: layered sources, validated once, messages that name the bad setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.config import DEFAULT_POLICY, ConfigError, load_settings
from sidecar.reasons import Reason


def test_defaults() -> None:
    """With nothing set, the named defaults apply and the deadline is below Envoy's timeout."""
    s = load_settings(env={})
    assert s.listen == "127.0.0.1:9001"
    assert s.deadline_ms < s.envoy_timeout_ms
    assert s.policy == DEFAULT_POLICY


def test_layering(tmp_path: Path) -> None:
    """TOML, then BIOSHARD_* variables, then flags: the later source wins."""
    f = tmp_path / "b.toml"
    f.write_text('deadline_ms = 100\nlearn_delay_s = 5\n[policy]\nbad_telemetry = "deny"\n'
                 '[scoring]\nmax_components = 2\n')
    s = load_settings(env={"BIOSHARD_DEADLINE_MS": "120", "BIOSHARD_POLICY_NO_TELEMETRY": "3"},
                      config_file=f, overrides={"learn_delay_s": 1.5})
    assert s.deadline_ms == 120
    assert s.learn_delay_s == 1.5
    assert s.policy[Reason.BAD_TELEMETRY] == "deny"
    assert s.policy[Reason.NO_TELEMETRY] == 3
    assert s.scoring.max_components == 2


@pytest.mark.parametrize(("env", "named"), [
    ({"BIOSHARD_LISTEN": "nowhere"}, "listen"),
    ({"BIOSHARD_LISTEN": "127.0.0.1:70000"}, "listen"),
    ({"BIOSHARD_DEADLINE_MS": "soon"}, "BIOSHARD_DEADLINE_MS"),
    ({"BIOSHARD_DEADLINE_MS": "300"}, "deadline_ms (300) must be below envoy_timeout_ms"),
    ({"BIOSHARD_STORE": "mysql://x"}, "store"),
    ({"BIOSHARD_POLICY_BAD_TELEMETRY": "7"}, "BIOSHARD_POLICY_BAD_TELEMETRY"),
    ({"BIOSHARD_POLICY_BAD_TELEMETRY": "score"}, "policy.bad_telemetry"),
    ({"BIOSHARD_POLICY_WHATEVER": "2"}, "unknown reason"),
    ({"BIOSHARD_NOPE": "1"}, "BIOSHARD_NOPE"),
    ({"BIOSHARD_TIER3_ACTION": "explode"}, "tier3_action"),
    ({"BIOSHARD_SCORING_T1": "0.99", "BIOSHARD_SCORING_T2": "0.5"}, "BIOSHARD_SCORING_T"),
    ({"BIOSHARD_SCORING_BOGUS": "1"}, "BIOSHARD_SCORING_BOGUS"),
    ({"BIOSHARD_ADMIN_TOKEN": "short"}, "admin_token"),
    ({"BIOSHARD_IDENTITY_HEADER": "X User"}, "identity_header"),
    ({"BIOSHARD_LEARN_WORKER": "sometimes"}, "BIOSHARD_LEARN_WORKER"),
    ({"BIOSHARD_GC_FULL_INTERVAL_S": "-1"}, "gc_full_interval_s"),
    ({"BIOSHARD_GC_FULL_INTERVAL_S": "nan"}, "gc_full_interval_s"),
    ({"BIOSHARD_GC_FULL_INTERVAL_S": "inf"}, "gc_full_interval_s"),
], ids=["listen-form", "listen-port", "not-int", "deadline-vs-envoy", "store-scheme",
        "policy-value", "policy-score-unscored", "policy-unknown-reason", "unknown-var",
        "tier3-action", "t1-above-t2", "unknown-scoring", "weak-admin-token", "header-name",
        "learn-worker-bool", "gc-interval-negative", "gc-interval-nan", "gc-interval-inf"])
def test_invalid_settings_named(env: dict[str, str], named: str) -> None:
    """Each invalid setting is refused with a message that names it."""
    with pytest.raises(ConfigError, match=named.replace("(", r"\(").replace(")", r"\)")):
        load_settings(env=env)


def test_bad_toml(tmp_path: Path) -> None:
    """An unreadable or invalid TOML file is named in the message."""
    f = tmp_path / "x.toml"
    f.write_text("deadline_ms = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(env={}, config_file=f)
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(env={}, config_file=tmp_path / "missing.toml")


def test_admin_token_not_in_repr() -> None:
    """The admin token never shows up in the settings' repr (logs, tracebacks)."""
    s = load_settings(env={"BIOSHARD_ADMIN_TOKEN": "s3cr3t-token-abcdefgh"})
    assert "s3cr3t" not in repr(s)
