"""Plain-text rendering: the live table, the one-line progress and the summary.

Pure functions returning lines; :class:`LiveScreen` redraws a block in place with two ANSI
sequences (cursor up, clear to end of screen) — no curses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, TextIO

from sidecar.demo.prom import Histogram
from sidecar.demo.summary import DemoSummary, Latency
from sidecar.demo.tally import ENROLMENT, ROWS, RowCounts, TallySnapshot

_ROW_LABELS: Final = {"genuine": "genuine", "impostor": "impostor", "bot": "bot",
                      "anonymous": "anonymous", ENROLMENT: "(enrolment)",
                      "all": "sidecar (all)"}
_ACTION_LABELS: Final = {
    "own": "own behaviour", "navigate": "page navigation (cookie)",
    "replay": "replayed capture of victim", "stolen_account": "on a stolen account",
    "no_profile": "new account, no profile", "no_telemetry": "navigation, no telemetry",
    "enrol": "enrolment windows"}
_TOP_REASONS: Final = 3


def _fmt_cell(n: int, share: float) -> str:
    return f"{n:>6} {100.0 * share:5.1f}%"


def matrix_lines(rows: Mapping[str, RowCounts], reasons: Mapping[str, Counter[str]],
                 *, label_width: int = 13) -> list[str]:
    """A kind × tier table: counts, row %, replies no pool served, top reasons."""
    head = (f"{'':<{label_width}} {'tier1':>13} {'tier2':>13} {'tier3':>13} "
            f"{'other':>6} {'total':>6}  top reasons")
    out = [head]
    for key, c in rows.items():
        cells = " ".join(_fmt_cell(c.tiers[t - 1], c.share(t)) for t in (1, 2, 3))
        label = _ROW_LABELS.get(key, key)
        out.append(f"{label:<{label_width}} {cells} {c.other:>6} {c.total:>6}  "
                   f"{top_reasons(reasons.get(key, Counter()))}")
    return out


def top_reasons(c: Counter[str], n: int = _TOP_REASONS) -> str:
    """``"ok 120, replayed_telemetry 14"`` (the ``n`` most common), or ``"-"``."""
    return ", ".join(f"{r} {k}" for r, k in c.most_common(n)) or "-"


def sidecar_row(decisions: Counter[tuple[str, int]]) -> tuple[RowCounts, Counter[str]]:
    """All of the sidecar's decisions (``/metrics``) as one row, with reasons."""
    tiers = [0, 0, 0]
    reasons: Counter[str] = Counter()
    for (reason, tier), n in decisions.items():
        if 1 <= tier <= 3:
            tiers[tier - 1] += n
        reasons[reason] += n
    return RowCounts((tiers[0], tiers[1], tiers[2])), reasons


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f} ms"


def latency_text(lat: Latency) -> str:
    """``"p50 0.41 ms, p99 2.30 ms (n=812)"``."""
    return f"p50 {_ms(lat.p50_ms)}, p99 {_ms(lat.p99_ms)} (n={lat.count})"


@dataclass(frozen=True, slots=True)
class LiveView:
    """What one refresh of the live table shows."""

    elapsed_s: float
    phase: str
    tally: TallySnapshot
    decisions: Counter[tuple[str, int]]
    check: Histogram
    skipped: int = 0


def live_lines(v: LiveView) -> list[str]:
    """The live table: kinds (simulated traffic), enrolment, all sidecar decisions."""
    t = v.tally
    m, s = divmod(int(v.elapsed_s), 60)
    rows = {k: t.rows[k] for k in ROWS if t.rows[k].total or k != ENROLMENT}
    all_row, all_reasons = sidecar_row(v.decisions)
    lines = [f"bioshard demo  {m:02d}:{s:02d}  phase: {v.phase:<9}  {t.rate_rps:5.1f} req/s  "
             f"{t.requests} requests" + (f"  ({v.skipped} arrivals skipped)" if v.skipped
                                         else "")]
    lines += matrix_lines({**rows, "all": all_row},
                          {**t.reasons, "all": all_reasons})
    lines.append(f"Check inside the sidecar: {latency_text(Latency.from_histogram(v.check))}"
                 f"   round trip via Envoy: {latency_text(Latency.from_samples(t.latencies_s))}")
    lines.append("reasons per kind: Envoy access log, flushed every ~10 s; "
                 "'sidecar (all)': its /metrics.  Ctrl-C stops.")
    return lines


def progress_line(v: LiveView) -> str:
    """One line for logs/CI: elapsed, rate, and each kind's tier-1/2/3 shares."""
    t = v.tally
    parts = [f"[{v.elapsed_s:6.1f}s] {v.phase:<9} {t.requests:>6} req {t.rate_rps:5.1f}/s"]
    for k in ROWS:
        c = t.rows[k]
        if c.total:
            parts.append(f"{k} " + "/".join(f"{100 * c.share(i):.0f}" for i in (1, 2, 3)) + "%")
    return " | ".join(parts)


class LiveScreen:
    """Redraws a block of lines in place (ANSI cursor-up + clear-to-end)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._drawn = 0

    def draw(self, lines: list[str]) -> None:
        """Replace the previous block with ``lines``."""
        prefix = f"\x1b[{self._drawn}F\x1b[J" if self._drawn else ""
        self.stream.write(prefix + "\n".join(lines) + "\n")
        self.stream.flush()
        self._drawn = len(lines)


def summary_lines(s: DemoSummary) -> list[str]:
    """The human-readable summary printed when the demo stops."""
    t = s.tally
    out = [f"bioshard demo summary: ran {s.elapsed_s:.1f} s (mixed traffic {s.mixed_s:.1f} s), "
           f"stopped by {s.stopped_by}, {t.requests} simulated requests"]
    if s.traffic:
        out += ["", "Where each kind of traffic was routed (count, row %):"]
        out += ["  " + line for line in matrix_lines(s.matrix(), t.reasons)]
        out += ["", "By attempt:"]
        for row in ROWS:
            for action, c in sorted(t.actions[row].items()):
                cells = "  ".join(f"tier{i} {100 * c.share(i):5.1f}%" for i in (1, 2, 3))
                label = f"{_ROW_LABELS[row]} / {_ACTION_LABELS.get(action, action)}"
                out.append(f"  {label:<42} {cells}  (n={c.total}, other {c.other})")
        attackers = {n: c for n, c in sorted(t.actors.items())
                     if n.startswith(("impostor", "bot"))}
        if attackers:
            out += ["", "Per impostor and bot (the account it presents):"]
            for name, c in attackers.items():
                cells = "  ".join(f"tier{i} {100 * c.share(i):5.1f}%" for i in (1, 2, 3))
                label = f"{name} as {s.accounts.get(name, '?')}"
                out.append(f"  {label:<42} {cells}  (n={c.total})")
        e = t.rows[ENROLMENT]
        out += ["", f"Enrolment: {s.genuine_users} genuine users x {s.enrol_windows} windows "
                    f"(learn delay {s.learn_delay_s:g} s for the demo; production default 30 s):"
                    f" {s.enrolled_users}/{s.genuine_users} users enrolled; windows routed "
                    f"tier1 {e.tiers[0]}, tier2 {e.tiers[1]}, tier3 {e.tiers[2]}"]
        if s.skipped:
            out.append(f"Arrivals skipped because every worker was busy: {s.skipped}")
    out += ["", "All sidecar decisions (/metrics), reason x tier:"]
    for (reason, tier), n in sorted(s.decisions.items()):
        out.append(f"  {reason:<24} tier{tier} {n:>7}")
    if t.unattributed:
        out.append("  not from the simulator (page visitors, 429s): "
                   + top_reasons(t.unattributed, 6))
    out += ["", f"Check latency inside the sidecar (its histogram, estimate): "
                f"{latency_text(s.check_latency)}",
            f"Round trip through Envoy (simulator clients): {latency_text(s.client_latency)}"]
    if s.ids_mirrored is not None:
        out.append(f"IDS pool received {s.ids_mirrored} mirrored tier-3 requests")
    out.append(f"Stack start-up {s.startup_s:.1f} s; stopping traffic and every process "
               f"{s.stop_s:.1f} s")
    out += ["", f"Logs in {s.workdir}: " + ", ".join(f"{k} {v}" for k, v in s.logs.items())]
    return out
