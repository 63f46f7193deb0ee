"""Open-loop latency at a fixed request rate (wrk2-style), in plain asyncio.

Why not ``hey`` (Debian has it) or wrk: both are closed loops (a slow answer delays
the next request, hiding queueing: "coordinated omission"), and neither can give each
request its own header value, which bioshard needs (a repeated telemetry value is a
replay).  This generator sends request ``i`` at ``t0 + i / rate`` whatever happened
before, on any idle keep-alive connection (it opens another when none is idle), so a
slow server meets the full offered rate.

Latency runs from the moment the generator takes a request off its schedule (and
writes it, or queues it when ``max_connections`` are all busy) to the moment its whole
response has been read: waiting for a connection counts.  The event loop wakes at most
once per millisecond (epoll), so at 1,000 req/s requests go out one per wake-up; how
late each was taken off the schedule is kept too (``lag``) and reported, so a
generator that falls behind is visible.  Measuring from the ideal schedule instead
would add that timer granularity (up to 1 ms) to every scenario alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class OpenLoopResult:
    """One fixed-rate run.  Arrays have one entry per *completed* request, in seconds."""

    rate: float
    duration_s: float
    sent: int
    completed: int
    errors: int
    """Responses with status >= 400, plus requests lost with a closed connection."""
    connections: int
    """Connections the generator needed (opened up front plus on demand)."""
    latency_s: FloatArray
    """Shape (completed,): taken off the schedule → full response."""
    lag_s: FloatArray
    """Shape (completed,): how late each request was taken off its schedule."""

    def percentile_us(self, q: float, *, from_schedule: bool = False) -> float:
        """The ``q``-th percentile (0–100) of latency in µs (plus lag if ``from_schedule``)."""
        values = self.latency_s + self.lag_s if from_schedule else self.latency_s
        return float(np.percentile(values, q) * 1e6) if values.size else float("nan")

    @property
    def achieved_rps(self) -> float:
        """Completed requests per second of run time."""
        return self.completed / self.duration_s if self.duration_s > 0 else 0.0


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with at most one request in flight."""

    def __init__(self, gen: _Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.need: int | None = None
        self.status = 0
        self.index = -1  # request in flight, -1 when idle
        self.started = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, index: int, data: bytes, started: float) -> None:
        assert self.transport is not None
        self.index = index
        self.started = started
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.buf += data
        while True:
            if self.need is None:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buf[:end]).lower()
                self.status = int(head[9:12])
                length = 0
                pos = head.find(b"\r\ncontent-length:")
                if pos >= 0:
                    stop = head.find(b"\r\n", pos + 2)
                    length = int(head[pos + 17:stop if stop >= 0 else None])
                self.need = end + 4 + length
            if len(self.buf) < self.need:
                return
            del self.buf[:self.need]
            self.need = None
            index, self.index = self.index, -1
            self.gen.done(self, index, now - self.started, self.status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost(self)


class _Generator:
    def __init__(self, host: str, port: int, requests: Sequence[bytes], rate: float,
                 count: int, max_connections: int) -> None:
        self.host, self.port = host, port
        self.requests = requests
        self.rate = rate
        self.count = count
        self.max_connections = max_connections
        self.idle: deque[_Connection] = deque()
        self.waiting: deque[tuple[int, float]] = deque()  # (index, started): no idle conn
        self.opening = 0
        self.connections = 0
        self.latency = np.full(count, np.nan)
        self.lag = np.full(count, np.nan)
        self.errors = 0
        self.finished = 0
        self.t0 = 0.0
        self.all_done = asyncio.Event()

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.opening += 1
        try:
            _, conn = await loop.create_connection(lambda: _Connection(self),
                                                   self.host, self.port)
        except OSError:
            self.opening -= 1
            if self.waiting:  # nothing will ever carry them: count as errors
                self._fail(self.waiting.popleft()[0])
            return
        self.opening -= 1
        self.connections += 1
        self.release(conn)

    def release(self, conn: _Connection) -> None:
        if self.waiting:
            self._send(conn, *self.waiting.popleft())
        else:
            self.idle.append(conn)

    def _send(self, conn: _Connection, index: int, started: float) -> None:
        conn.send(index, self.requests[index % len(self.requests)], started)

    def schedule(self, index: int) -> None:
        started = time.perf_counter()
        self.lag[index] = started - (self.t0 + index / self.rate)
        if self.idle:
            self._send(self.idle.popleft(), index, started)
            return
        self.waiting.append((index, started))
        room = self.max_connections - self.connections - self.opening
        if room > 0 and self.opening < len(self.waiting):
            asyncio.get_running_loop().create_task(self.open())

    def done(self, conn: _Connection, index: int, latency: float, status: int) -> None:
        if status >= 400:
            self.errors += 1
        self.latency[index] = latency
        self._finish()
        self.release(conn)

    def lost(self, conn: _Connection) -> None:
        with_request = conn.index >= 0
        if conn in self.idle:
            self.idle.remove(conn)
        if with_request:
            self._fail(conn.index)

    def _fail(self, index: int) -> None:
        self.errors += 1
        self.lag[index] = np.nan
        self._finish()

    def _finish(self) -> None:
        self.finished += 1
        if self.finished >= self.count:
            self.all_done.set()


async def _run(host: str, port: int, requests: Sequence[bytes], rate: float,
               duration_s: float, warm_connections: int, max_connections: int,
               drain_timeout_s: float) -> OpenLoopResult:
    count = max(1, round(rate * duration_s))
    gen = _Generator(host, port, requests, rate, count, max_connections)
    await asyncio.gather(*(gen.open() for _ in range(warm_connections)))
    gen.t0 = time.perf_counter() + 0.01
    for index in range(count):
        delay = gen.t0 + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        gen.schedule(index)
    elapsed = time.perf_counter() - gen.t0
    with contextlib.suppress(TimeoutError):  # unanswered requests are counted as errors
        await asyncio.wait_for(gen.all_done.wait(), drain_timeout_s)
    for conn in list(gen.idle):
        if conn.transport is not None:
            conn.transport.close()
    ok = ~np.isnan(gen.latency)
    unanswered = count - gen.finished
    return OpenLoopResult(
        rate=rate, duration_s=elapsed, sent=count, completed=int(ok.sum()),
        errors=gen.errors + unanswered, connections=gen.connections,
        latency_s=gen.latency[ok], lag_s=gen.lag[ok])


def run_open_loop(host: str, port: int, requests: Sequence[bytes], *, rate: float,
                  duration_s: float, warm_connections: int = 16,
                  max_connections: int = 256, drain_timeout_s: float = 10.0
                  ) -> OpenLoopResult:
    """Send ``rate × duration_s`` requests at a fixed rate; ``requests[i % len]`` is the i-th.

    ``requests`` are complete HTTP/1.1 requests (see :func:`http_get`); use at least
    ``rate × duration_s`` distinct ones when the server rejects repeats.  At most
    ``max_connections`` are open at once; beyond that, requests queue in the generator
    (and their wait counts in their latency).  Requests still unanswered
    ``drain_timeout_s`` after the last was scheduled count as errors.
    """
    if rate <= 0 or duration_s <= 0 or not requests or max_connections < 1:
        raise ValueError("rate, duration_s and max_connections must be > 0, requests "
                         "non-empty")
    return asyncio.run(_run(host, port, requests, rate, duration_s,
                            min(warm_connections, max_connections), max_connections,
                            drain_timeout_s))


def http_get(host: str, port: int, path: str, headers: Sequence[tuple[str, str]]) -> bytes:
    """A keep-alive ``GET`` request as bytes."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}",
             *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
