"""The command line: every command and option documented; serve refuses bad keys."""

from __future__ import annotations

import argparse
import base64
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from sidecar.cli import build_parser
from sidecar.procs import ManagedProcess, free_port, http_ok


def _walk(parser: argparse.ArgumentParser, path: str = "bioshard"):  # type: ignore[no-untyped-def]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{path} {name}", "(command)", helps.get(name)
                yield from _walk(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction | argparse._VersionAction):
            yield path, "/".join(action.option_strings) or action.dest, action.help


def test_every_command_and_option_has_help() -> None:
    """`bioshard --help` documents every command and every option."""
    missing = [f"{cmd} {opt}" for cmd, opt, h in _walk(build_parser()) if not h]
    assert missing == []
    commands = {cmd for cmd, _, _ in _walk(build_parser())}
    for expected in ("serve", "demo", "envoy-config", "replay", "eval", "keys", "admin"):
        assert f"bioshard {expected}" in commands


def _serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sidecar", "serve", *args],
                          env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True,
                          timeout=60)


GOOD = base64.b64encode(hashlib.sha256(b"test key").digest()).decode()


@pytest.mark.parametrize(("env", "named"), [
    ({}, "BIOSHARD_PSEUDONYM_KEY"),
    ({"BIOSHARD_PSEUDONYM_KEY": base64.b64encode(b"\x00" * 32).decode(),
      "BIOSHARD_ENCRYPTION_KEYS": "k1:" + GOOD}, "BIOSHARD_PSEUDONYM_KEY"),
    ({"BIOSHARD_PSEUDONYM_KEY": GOOD}, "BIOSHARD_ENCRYPTION_KEYS"),
    ({"BIOSHARD_PSEUDONYM_KEY": GOOD, "BIOSHARD_ENCRYPTION_KEYS": "k1:c2hvcnQ="},
     "BIOSHARD_ENCRYPTION_KEYS"),
], ids=["no-keys", "zero-key", "no-encryption-keys", "short-encryption-key"])
def test_serve_refuses_missing_or_weak_keys(env: dict[str, str], named: str) -> None:
    """Without strong keys `serve` exits 2 with a message naming the setting (never the key)."""
    r = _serve(env)
    assert r.returncode == 2
    assert named in r.stderr and "refusing to start" in r.stderr
    assert GOOD not in r.stderr


def test_serve_rejects_bad_setting() -> None:
    """An invalid setting stops `serve` at start with the setting's name."""
    r = _serve({"BIOSHARD_DEADLINE_MS": "900"}, "--dev")
    assert r.returncode == 2 and "deadline_ms" in r.stderr


def test_serve_dev_mode_is_loud(tmp_path: Path) -> None:
    """`--dev` starts with throwaway keys and says so loudly in the log."""
    admin = free_port()
    proc = ManagedProcess(
        [sys.executable, "-m", "sidecar", "serve", "--dev", "--listen",
         f"127.0.0.1:{free_port()}", "--admin-listen", f"127.0.0.1:{admin}"],
        log_path=tmp_path / "dev.log", cwd=tmp_path,
        ready=lambda: http_ok(f"http://127.0.0.1:{admin}/health/anomalydetection"))
    with proc:
        pass
    log = (tmp_path / "dev.log").read_text()
    assert "DEV MODE" in log and "Never use --dev in production" in log
    assert "bioshard stopped" in log
