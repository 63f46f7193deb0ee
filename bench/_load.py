"""Closed-loop maximum throughput with ``wrk`` (Debian package ``wrk``).

Every request carries ``x-user-id`` and an ``x-bioshard-telemetry`` value of its own:
:func:`write_requests` writes the (user, telemetry) pairs to a TSV file and
``rotate_requests.lua`` sends each line once (see there).  The same file format feeds
every scenario, so the request bytes are the same whether or not ext_authz runs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

WRK_SCRIPT: Final = Path(__file__).with_name("rotate_requests.lua")
REQUEST_PATH: Final = "/api/ping"
_JSON_MARK: Final = "WRK_JSON "


class LoadToolError(RuntimeError):
    """wrk is missing or did not produce its result line."""


@dataclass(frozen=True, slots=True)
class WrkResult:
    """One wrk run.  Latencies are closed-loop (each connection waits for its answer)."""

    requests: int
    duration_s: float
    connections: int
    threads: int
    errors: int
    """Connect, read, write and timeout errors plus responses with status >= 400."""
    wrapped: int
    """How often a wrk thread ran out of distinct requests and started over (should be 0)."""
    mean_us: float
    p50_us: float
    p99_us: float
    p999_us: float

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0


def write_requests(path: Path, pairs: Iterable[tuple[str, str]]) -> int:
    """Write ``(user id, telemetry value)`` pairs as TSV lines; returns how many."""
    n = 0
    with path.open("w", encoding="ascii") as out:
        for user, telemetry in pairs:
            if "\t" in user or "\n" in user:
                raise ValueError("user ids in the benchmark must not contain tabs or newlines")
            out.write(f"{user}\t{telemetry}\n")
            n += 1
    return n


def wrk_binary() -> str:
    """Path of ``wrk`` (``LoadToolError`` naming the Debian package when missing)."""
    path = shutil.which("wrk")
    if path is None:
        raise LoadToolError("wrk not found: apt-get install -y wrk")
    return path


def run_wrk(url: str, requests_file: Path, *, connections: int, threads: int,
            duration_s: float, timeout_s: float = 5.0) -> WrkResult:
    """Run wrk against ``url`` rotating through ``requests_file`` and parse its result."""
    argv = [wrk_binary(), "-c", str(connections), "-t", str(threads),
            "-d", f"{max(1, round(duration_s))}s",  # wrk takes whole seconds
            "--timeout", f"{timeout_s:g}s",
            "-s", str(WRK_SCRIPT), url, "--", str(requests_file), str(threads)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False,
                          timeout=duration_s + 120)
    return parse_wrk_output(proc.stdout, connections=connections, threads=threads,
                            stderr=proc.stderr)


def parse_wrk_output(stdout: str, *, connections: int, threads: int,
                     stderr: str = "") -> WrkResult:
    """The :class:`WrkResult` in wrk's output (the ``WRK_JSON`` line of the Lua ``done``)."""
    for line in stdout.splitlines():
        if line.startswith(_JSON_MARK):
            d = json.loads(line[len(_JSON_MARK):])
            errors = sum(int(d[k]) for k in ("connect_errors", "read_errors", "write_errors",
                                             "status_errors", "timeouts"))
            return WrkResult(
                requests=int(d["requests"]), duration_s=d["duration_us"] / 1e6,
                connections=connections, threads=threads, errors=errors,
                wrapped=int(d["wrapped"]), mean_us=float(d["mean_us"]),
                p50_us=float(d["p50_us"]), p99_us=float(d["p99_us"]),
                p999_us=float(d["p999_us"]))
    raise LoadToolError(f"wrk printed no result line; stdout:\n{stdout}\nstderr:\n{stderr}")
