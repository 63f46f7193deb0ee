"""What the benchmark reads from the processes it runs: CPU time, memory, counters.

* CPU: ``utime + stime`` of ``/proc/PID/stat`` (all threads of the process), in µs.
* Memory: ``VmRSS`` and ``VmHWM`` (peak) of ``/proc/PID/status``, in KiB.
* Envoy: counters of the admin ``/stats`` endpoint (ext_authz outcomes, upstream requests).
* bioshard: ``bioshard_decisions_total`` by reason and ``bioshard_check_seconds`` from its
  ``/metrics`` (Prometheus text).
"""

from __future__ import annotations

import os
import re
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass
from typing import Final, TypeVar

_CLK_TCK: Final = os.sysconf("SC_CLK_TCK")
_DECISION_RE: Final = re.compile(
    r'^bioshard_decisions_total\{reason="(?P<reason>[a-z_]+)",tier="(?P<tier>\d)"\}\s+'
    r"(?P<n>[0-9.e+]+)$")
K = TypeVar("K", str, int)
EXT_AUTHZ_OUTCOMES: Final = ("ok", "denied", "error", "failure_mode_allowed", "disabled")


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it (bioshard's learning process, say)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except FileNotFoundError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{p}/task/{tid}/children", encoding="ascii") as f:
                    todo.extend(int(c) for c in f.read().split())
            except FileNotFoundError:
                pass
    return out


def _own_cpu_us(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            stat = f.read()
    except FileNotFoundError:  # a child that ended between listing and reading
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may contain spaces
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) * 1e6 / _CLK_TCK


def cpu_us(pid: int) -> float:
    """CPU time (user + system, all threads) used so far by the process and its live
    descendants, in µs: bioshard's learning process counts as bioshard's cost."""
    return sum(_own_cpu_us(p) for p in descendants(pid))


def _own_memory_kib(pid: int) -> tuple[int, int]:
    values = {"VmRSS": 0, "VmHWM": 0}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in values:
                    values[key] = int(rest.split()[0])
    except FileNotFoundError:
        pass
    return values["VmRSS"], values["VmHWM"]


def memory_kib(pid: int) -> tuple[int, int]:
    """``(VmRSS, VmHWM)`` in KiB, summed over the process and its live descendants (the
    peak is the sum of each process's own peak, an upper bound)."""
    rss = hwm = 0
    for p in descendants(pid):
        r, h = _own_memory_kib(p)
        rss += r
        hwm += h
    return rss, hwm


def http_text(url: str, timeout: float = 5.0) -> str:
    """The body of GET ``url`` as text."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        body: bytes = resp.read()
    return body.decode("utf-8", errors="replace")


def envoy_counters(admin_port: int, pattern: str) -> dict[str, int]:
    """Envoy counters (and gauges) whose name matches the regular expression ``pattern``."""
    query = urllib.parse.urlencode({"filter": pattern})
    text = http_text(f"http://127.0.0.1:{admin_port}/stats?{query}")
    out: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(": ")
        if sep and value.strip().isdigit():
            out[name.strip()] = int(value)
    return out


def ext_authz_outcomes(admin_port: int) -> dict[str, int]:
    """ext_authz outcomes summed over listeners: ``{"ok": n, "denied": n, "error": n, ...}``.

    Only the connection managers' ``http.<prefix>.ext_authz.*`` counters: Envoy also keeps
    per-cluster copies (``cluster.<name>.ext_authz.*``) that would count a Check twice.
    """
    totals: Counter[str] = Counter()
    for name, value in envoy_counters(admin_port, r"^http\..*\.ext_authz\.").items():
        outcome = name.rsplit(".", 1)[1]
        if outcome in EXT_AUTHZ_OUTCOMES:
            totals[outcome] += value
    return {k: totals[k] for k in EXT_AUTHZ_OUTCOMES}


def checks_answered(outcomes: dict[str, int]) -> int:
    """How many Checks the ext_authz server answered (allowed or denied)."""
    return outcomes["ok"] + outcomes["denied"]


@dataclass(frozen=True, slots=True)
class SidecarMetrics:
    """bioshard's own counters: decisions by reason, and pipeline time per Check."""

    reasons: dict[str, int]
    tiers: dict[int, int]
    check_seconds_sum: float
    check_count: int
    learned: int = 0
    """Windows the learner applied (``bioshard_learner_applied``)."""
    gc_full: int = 0
    """Full garbage collections (``bioshard_gc_full_collections``)."""
    gc_pause_max_s: float = 0.0
    """Longest collection pause since start (``bioshard_gc_pause_max_seconds``)."""

    def minus(self, before: SidecarMetrics) -> SidecarMetrics:
        """The difference ``self - before`` (one run's share of the counters)."""
        return SidecarMetrics(
            reasons=_diff(self.reasons, before.reasons),
            tiers=_diff(self.tiers, before.tiers),
            check_seconds_sum=self.check_seconds_sum - before.check_seconds_sum,
            check_count=self.check_count - before.check_count,
            learned=self.learned - before.learned, gc_full=self.gc_full - before.gc_full,
            gc_pause_max_s=self.gc_pause_max_s)

    @property
    def mean_check_us(self) -> float:
        """Mean time inside the decision pipeline per Check (excludes gRPC), µs."""
        return self.check_seconds_sum / self.check_count * 1e6 if self.check_count else 0.0


def _diff(after: dict[K, int], before: dict[K, int]) -> dict[K, int]:
    keys = set(after) | set(before)
    return {k: after.get(k, 0) - before.get(k, 0) for k in sorted(keys, key=str)
            if after.get(k, 0) - before.get(k, 0)}


def parse_sidecar_metrics(text: str) -> SidecarMetrics:
    """:class:`SidecarMetrics` from bioshard's ``/metrics`` text."""
    reasons: Counter[str] = Counter()
    tiers: Counter[int] = Counter()
    total, count, learned, gc_full, gc_max = 0.0, 0, 0, 0, 0.0
    for line in text.splitlines():
        m = _DECISION_RE.match(line)
        if m:
            n = int(float(m["n"]))
            reasons[m["reason"]] += n
            tiers[int(m["tier"])] += n
        elif line.startswith("bioshard_check_seconds_sum "):
            total = float(line.split()[1])
        elif line.startswith("bioshard_check_seconds_count "):
            count = int(float(line.split()[1]))
        elif line.startswith("bioshard_learner_applied "):
            learned = int(float(line.split()[1]))
        elif line.startswith("bioshard_gc_full_collections "):
            gc_full = int(float(line.split()[1]))
        elif line.startswith("bioshard_gc_pause_max_seconds "):
            gc_max = float(line.split()[1])
    return SidecarMetrics(reasons=dict(reasons), tiers=dict(tiers), check_seconds_sum=total,
                          check_count=count, learned=learned, gc_full=gc_full,
                          gc_pause_max_s=gc_max)


def sidecar_metrics(admin_port: int) -> SidecarMetrics:
    """Scrape bioshard's ``/metrics`` on its admin port."""
    return parse_sidecar_metrics(http_text(f"http://127.0.0.1:{admin_port}/metrics"))
