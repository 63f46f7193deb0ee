"""Plain-text tables and DET/ROC plots for the benchmarks.

Tables are aligned columns of text (numbers right-aligned), made for a terminal and
for pasting into Markdown code blocks.  Plots use matplotlib's Agg backend (no
display needed); matplotlib is imported only when a plot is asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import ndtri

from sidecar.eval.metrics import FloatArray

if TYPE_CHECKING:  # pragma: no cover
    from sidecar.eval.keystroke import KeystrokeRun
    from sidecar.eval.mouse import MouseRun

__all__ = [
    "DET_GRID",
    "format_table",
    "keystroke_table",
    "mouse_tables",
    "plot_det_grid",
    "plot_mouse",
]

DET_GRID: FloatArray = np.concatenate([np.geomspace(1e-3, 0.5, 60), np.linspace(0.5, 0.999, 30)])
"""False-alarm rates at which curves are averaged and drawn (shape ``(90,)``)."""


def _is_number(text: str) -> bool:
    head = text.split(" ", 1)[0]
    try:
        float(head)
    except ValueError:
        return False
    return True


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Align ``rows`` under ``headers``; numeric columns are right-aligned.

    Floats are printed with 3 decimals; ``None`` and NaN as ``-``.
    """
    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return "-"
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]
    numeric = [bool(text) and all(_is_number(r[i]) or r[i] == "-" for r in text)
               for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w)
                 for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out.extend(line(r) for r in text)
    return "\n".join(out)


def _ms(pair: tuple[float, float]) -> str:
    return f"{pair[0]:.3f} ({pair[1]:.3f})"


def keystroke_table(run: KeystrokeRun) -> str:
    """The keystroke results: one row per (password, feature set, detector)."""
    head = ["password", "features", "detector", "dim", "subjects", "EER mean (std)",
            "zero-miss FAR mean (std)"]
    rows = [[r.password, r.feature_set, r.detector, r.dim, len(r.subjects), _ms(r.eer),
             _ms(r.zero_miss_far)] for r in run.results]
    info = format_table(
        ["password", "type", "keys", "repetitions", "dropped (corrections)", "subjects"],
        [[p.label, p.password_type, p.keys, p.repetitions, p.dropped_corrections, p.subjects]
         for p in run.passwords])
    return info + "\n\n" + format_table(head, rows)


def mouse_tables(run: MouseRun) -> str:
    """The mouse results: per-user EER/AUC, pooled, and the learning curve."""
    per_user = format_table(
        ["user", "train sess.", "test sess.", "train win.", "learned", "genuine",
         "impostor", "EER", "AUC", "genuine tier 1", "impostor tier 3"],
        [[u.user, u.train_sessions, u.test_sessions, u.train_windows, u.learned_windows,
          u.genuine, u.impostor, u.eer, u.auc, u.genuine_tiers[0], u.impostor_tiers[2]]
         for u in run.users])
    sl = run.sessions
    summary = format_table(
        ["", "EER", "AUC"],
        [["windows: mean over users", *run.mean_eer_auc()],
         ["windows: pooled (one threshold)", run.pooled_eer, run.pooled_auc],
         ["sessions: mean over users", None, sl.mean_auc],
         [f"sessions: pooled ({sl.genuine} genuine / {sl.impostor} impostor)",
          sl.pooled_eer, sl.pooled_auc]])
    curve = format_table(
        ["training windows", "users", "mean EER", "mean AUC", "pooled EER"],
        [[p.windows, p.users, p.mean_eer, p.mean_auc, p.pooled_eer] for p in run.curve])
    return (per_user + "\n\n" + summary + "\n\nEER vs number of training windows\n" + curve)


def _probit(p: FloatArray) -> FloatArray:
    return np.asarray(ndtri(np.clip(p, 1e-4, 1 - 1e-4)), dtype=np.float64)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_det_grid(path: str | Path, panels: Mapping[str, Mapping[str, tuple[FloatArray,
                                                                            FloatArray]]],
                  *, title: str, ncols: int = 3) -> None:
    """Draw one DET panel per key of ``panels``; each panel maps a line label to
    ``(false_alarm, miss)`` arrays of equal shape ``(g,)``.  Writes a PNG."""
    plt = _pyplot()
    n = max(len(panels), 1)
    ncols = min(ncols, n)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.8 * nrows), squeeze=False)
    ticks = np.array([0.01, 0.05, 0.2, 0.5, 0.8, 0.95])
    for ax, (name, lines) in zip(axes.ravel(), panels.items(), strict=False):
        for label, (fa, miss) in lines.items():
            ax.plot(_probit(fa), _probit(miss), label=label, linewidth=1.2)
        lim = _probit(np.array([0.01, 0.95]))
        ax.plot(lim, lim, color="grey", linewidth=0.6, linestyle=":")
        ax.set_xticks(_probit(ticks), [f"{t:g}" for t in ticks])
        ax.set_yticks(_probit(ticks), [f"{t:g}" for t in ticks])
        ax.set_xlim(*lim)
        ax.set_ylim(*lim)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("false-alarm rate (genuine flagged)", fontsize=8)
        ax.set_ylabel("miss rate (impostor accepted)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, linewidth=0.3)
        ax.legend(fontsize=6, loc="upper right")
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_mouse(path: str | Path, run: MouseRun) -> None:
    """ROC curves (per user and pooled) and EER against training windows.  Writes a PNG."""
    plt = _pyplot()
    fig, (roc, learn) = plt.subplots(1, 2, figsize=(10, 4.2))
    for u in run.users:
        c = u.curve
        roc.plot(c.false_alarm, 1.0 - c.miss, linewidth=0.8, alpha=0.7,
                 label=f"{u.user} (AUC {u.auc:.2f})")
    c = run.pooled_curve
    roc.plot(c.false_alarm, 1.0 - c.miss, color="black", linewidth=2,
             label=f"pooled (AUC {run.pooled_auc:.2f})")
    roc.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=0.6)
    roc.set_xlabel("false-alarm rate (genuine windows flagged)")
    roc.set_ylabel("impostor windows flagged")
    roc.set_title("Balabit windows: ROC", fontsize=10)
    roc.legend(fontsize=6, loc="lower right")
    roc.grid(True, linewidth=0.3)
    points = [p for p in run.curve if isinstance(p.windows, int)]
    if points:
        xs = [int(p.windows) for p in points]
        learn.plot(xs, [p.mean_eer for p in points], marker="o", label="mean per-user EER")
        learn.plot(xs, [p.pooled_eer for p in points], marker="s", label="pooled EER")
        learn.set_xscale("log")
    learn.set_xlabel("training windows offered to the profile")
    learn.set_ylabel("EER")
    learn.set_ylim(0, 0.6)
    learn.set_title("EER vs training windows", fontsize=10)
    learn.legend(fontsize=8)
    learn.grid(True, linewidth=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
