"""Tests for sidecar.procs: ports, managed processes (ready, fail, stop, reap), Envoy start."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

from sidecar import envoy_config as ec
from sidecar.procs import (
    ManagedProcess,
    ProcessError,
    envoy_binary,
    free_port,
    http_ok,
    start_envoy,
    wait_http,
)
from sidecar.upstream import running_upstream

PY = sys.executable


def _alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (reparented children may linger as zombies)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_free_port_is_bindable_on_loopback() -> None:
    """free_port() returns a port that 127.0.0.1 can bind right away."""
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_managed_process_waits_for_readiness_and_reaps(tmp_path: Path) -> None:
    """start() returns once the probe passes; leaving the block stops and reaps the process."""
    flag = tmp_path / "ready"
    code = f"import time,pathlib; time.sleep(0.2); pathlib.Path({str(flag)!r}).touch(); " \
           "time.sleep(60)"
    proc = ManagedProcess([PY, "-c", code], log_path=tmp_path / "p.log", ready=flag.exists)
    with proc:
        assert flag.exists()
        assert proc.running()
        pid = proc.pid
    assert not proc.running()
    assert proc.returncode is not None
    assert not _alive(pid)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("print('boom: bad config', flush=True); raise SystemExit(3)", "exited with code 3"),
        ("print('boom: still starting', flush=True); import time; time.sleep(60)", "not ready"),
    ],
    ids=["exits-early", "never-ready"],
)
def test_managed_process_failure_carries_last_log_lines(
    tmp_path: Path, code: str, message: str
) -> None:
    """A process that dies or never gets ready raises ProcessError with its log tail."""
    proc = ManagedProcess([PY, "-c", code], log_path=tmp_path / "p.log",
                          ready=lambda: False, ready_timeout=1.0)
    with pytest.raises(ProcessError, match=message) as err:
        proc.start()
    assert "boom:" in str(err.value)
    assert not proc.running()


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    """Children started by the process die with it (own process group)."""
    pidfile = tmp_path / "child.pid"
    script = f"sleep 60 & echo $! > {pidfile}; wait"
    with ManagedProcess(["/bin/sh", "-c", script], log_path=tmp_path / "p.log",
                        ready=pidfile.exists):
        time.sleep(0.05)
        child = int(pidfile.read_text())
        assert _alive(child)
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(child)


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    """A process that ignores SIGTERM is killed after stop_timeout."""
    flag = tmp_path / "ready"
    code = ("import signal,time,pathlib; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            f"pathlib.Path({str(flag)!r}).touch(); time.sleep(60)")
    proc = ManagedProcess([PY, "-c", code], log_path=tmp_path / "p.log", ready=flag.exists,
                          stop_timeout=0.3)
    proc.start()
    started = time.monotonic()
    assert proc.stop() == -9
    assert time.monotonic() - started < 3
    assert proc.stop() == -9  # idempotent


def test_wait_http_succeeds_or_times_out() -> None:
    """wait_http returns for a serving URL and raises TimeoutError naming a dead one."""
    with running_upstream("tier1") as server:
        wait_http(f"http://127.0.0.1:{server.port}/", timeout=5, expect=b'"pool": "tier1"')
    dead = f"http://127.0.0.1:{free_port()}/"
    assert not http_ok(dead)
    with pytest.raises(TimeoutError, match=dead):
        wait_http(dead, timeout=0.3)


def test_envoy_binary_found_and_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """envoy_binary() finds an executable; $BIOSHARD_ENVOY wins when it points at one."""
    path = envoy_binary()
    assert os.access(path, os.X_OK)
    monkeypatch.setenv("BIOSHARD_ENVOY", "/nonexistent/envoy")
    assert envoy_binary() == path  # unusable override → normal search
    monkeypatch.setenv("BIOSHARD_ENVOY", path)
    assert envoy_binary() == path


@pytest.mark.e2e
def test_start_envoy_ready_then_stopped(tmp_path: Path) -> None:
    """start_envoy returns when admin /ready says LIVE; the block's end stops Envoy."""
    http_port, admin_port = free_port(), free_port()
    config = tmp_path / "envoy.yaml"
    config.write_text(ec.to_yaml(ec.render(ec.RenderOptions(http_port=http_port,
                                                            admin_port=admin_port))))
    with start_envoy(config, admin_port, tmp_path / "envoy.log") as envoy:
        assert http_ok(f"http://127.0.0.1:{admin_port}/ready", expect=b"LIVE")
        pid = envoy.pid
    assert not _alive(pid)
    assert not http_ok(f"http://127.0.0.1:{admin_port}/ready")


@pytest.mark.e2e
def test_start_envoy_bad_config_raises_with_envoys_log(tmp_path: Path) -> None:
    """An invalid config fails fast with Envoy's own error in the exception."""
    config = tmp_path / "envoy.yaml"
    config.write_text("static_resources: {listeners: [{name: x, no_such_field: 1}]}\n")
    with pytest.raises(ProcessError, match="no_such_field"):
        start_envoy(config, free_port(), tmp_path / "envoy.log", ready_timeout=10)
